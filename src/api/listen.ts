/**
 * One listener: HTTP, or HTTPS with the section's certificate and client-certificate policy
 * (docs/tls.md). The composition root starts one for module.port and, when module.peer_port is
 * set, one for the peer routes.
 */
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { httpsServerOptions, servesHttps, type TlsMaterial } from '../config/tls.js';

export interface Listener {
  server: Server;
  port: number;
  https: boolean;
  close(): Promise<void>;
}

export async function listenOn(handler: RequestListener, port: number, host: string, tls: TlsMaterial): Promise<Listener> {
  const https = servesHttps(tls);
  const server: Server = https ? createHttpsServer(httpsServerOptions(tls), handler) : createHttpServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.keepAliveTimeout = 65_000;
  let closing: Promise<void> | undefined;
  return {
    server,
    port: (server.address() as AddressInfo).port,
    https,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
