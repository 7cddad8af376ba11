/** HTTP(S) servers a test file starts on 127.0.0.1 (port 0), closed after each test. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

/** Registers the clean-up and returns `listen(server)`, which resolves the port. Call once per file. */
export function loopbackServers(): (server: Server) => Promise<number> {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(
      servers.splice(0).map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections();
            s.close(() => resolve());
          }),
      ),
    );
  });
  return async (server: Server): Promise<number> => {
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return (server.address() as AddressInfo).port;
  };
}
