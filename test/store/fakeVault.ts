/**
 * A minimal in-test Vault KV v2 server (node:http on 127.0.0.1, port 0), implementing only what
 * VaultKeyStore calls:
 * - `GET /v1/<mount>/data/<path>`: `{ data: { data, metadata: { version, ... } } }`, 404 `{errors:[]}` when absent;
 * - `POST|PUT /v1/<mount>/data/<path>` with `{ data, options?: { cas } }`: appends a version, returns its metadata;
 *   `cas: 0` refuses (400) when the secret exists, `cas: n` when the current version is not n;
 * - `GET /v1/<mount>/metadata/<path>?list=true|1` and `LIST`: `{ data: { keys } }` (sub-folders end with `/`), 404 when empty;
 * - `DELETE /v1/<mount>/metadata/<path>`: 204, removes the secret with all its versions (204 also when absent).
 * Every request needs `X-Vault-Token` equal to the server's token, else 403 `{errors:["permission denied"]}`.
 * Every version ever written is kept until its metadata is deleted, so tests can assert none remains.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeVault {
  /** Base URL, e.g. `http://127.0.0.1:43121`. */
  url: string;
  /** The token the server accepts. */
  token: string;
  /** Every stored version's data of the secret at `<mount>/<path>` (path without `data/`), oldest first. */
  versionsOf(path: string, mount?: string): Record<string, unknown>[];
  /** Paths (under the mount) of all stored secrets. */
  paths(mount?: string): string[];
  /** Makes the next request with this method (and path containing `pathIncludes`, or matching it) fail with `status`. */
  failNext(method: string, status: number, pathIncludes?: string | RegExp): void;
  /** Like failNext, but the request is carried out first and only its answer is replaced (a lost answer). */
  loseAnswerOfNext(method: string, status: number, pathIncludes?: string | RegExp): void;
  /** Requests served so far (method and URL only; never headers or bodies). */
  requests: { method: string; url: string }[];
  stop(): Promise<void>;
}

interface Secret {
  versions: { data: Record<string, unknown>; created: string }[];
}

function send(res: http.ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text.length > 0 ? JSON.parse(text) : {};
}

export async function start(opts: { token?: string } = {}): Promise<FakeVault> {
  const token = opts.token ?? 'fake-vault-root-token';
  /** `<mount>/<path>` -> secret */
  const secrets = new Map<string, Secret>();
  const failures: { method: string; status: number; pathIncludes: string | RegExp; afterDoing?: boolean }[] = [];
  const requests: { method: string; url: string }[] = [];

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://fake');
    requests.push({ method, url: url.pathname + url.search });

    const matches = (p: string | RegExp): boolean => (typeof p === 'string' ? url.pathname.includes(p) : p.test(url.pathname));
    const failure = failures.findIndex((f) => f.method === method && matches(f.pathIncludes));
    if (failure >= 0 && !failures[failure]!.afterDoing) {
      const [f] = failures.splice(failure, 1);
      send(res, f.status, { errors: ['injected failure'] });
      return;
    }
    if (failure >= 0) {
      // Carry the request out against a throwaway response, then answer with the injected status.
      const [f] = failures.splice(failure, 1);
      // A stand-in response that swallows the real answer (only writeHead/end are used by send()).
      const sink = { writeHead: () => ({ end: () => undefined }) } as unknown as http.ServerResponse;
      await handleInner(req, sink, method, url);
      send(res, f!.status, { errors: ['injected failure after doing'] });
      return;
    }
    await handleInner(req, res, method, url);
  };

  const handleInner = async (req: http.IncomingMessage, res: http.ServerResponse, method: string, url: URL): Promise<void> => {
    if (req.headers['x-vault-token'] !== token) {
      send(res, 403, { errors: ['permission denied'] });
      return;
    }
    const m = /^\/v1\/([A-Za-z0-9_-]+)\/(data|metadata)\/(.+)$/.exec(url.pathname);
    if (!m || m[3].split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) {
      send(res, 404, { errors: [] });
      return;
    }
    const [, mount, kind, path] = m;
    const id = `${mount}/${path.replace(/\/$/, '')}`;

    if (kind === 'data') {
      if (method === 'GET') {
        const secret = secrets.get(id);
        if (!secret) return send(res, 404, { errors: [] });
        const version = secret.versions.length;
        const latest = secret.versions[version - 1];
        return send(res, 200, {
          data: {
            data: latest.data,
            metadata: { version, created_time: latest.created, deletion_time: '', destroyed: false, custom_metadata: null },
          },
        });
      }
      if (method === 'POST' || method === 'PUT') {
        const body = (await readJson(req)) as { data?: unknown; options?: { cas?: unknown } };
        if (typeof body.data !== 'object' || body.data === null) return send(res, 400, { errors: ['no data provided'] });
        const existing = secrets.get(id);
        const current = existing?.versions.length ?? 0;
        if (body.options?.cas !== undefined && body.options.cas !== current) {
          return send(res, 400, { errors: ['check-and-set parameter did not match the current version'] });
        }
        const secret = existing ?? { versions: [] };
        const created = new Date().toISOString();
        secret.versions.push({ data: body.data as Record<string, unknown>, created });
        secrets.set(id, secret);
        return send(res, 200, {
          data: { version: secret.versions.length, created_time: created, deletion_time: '', destroyed: false, custom_metadata: null },
        });
      }
      return send(res, 405, { errors: [] });
    }

    // metadata
    const listing = method === 'LIST' || (method === 'GET' && ['true', '1'].includes(url.searchParams.get('list') ?? ''));
    if (listing) {
      const folder = `${id}/`;
      const keys = new Set<string>();
      for (const name of secrets.keys()) {
        if (!name.startsWith(folder)) continue;
        const rest = name.slice(folder.length);
        const slash = rest.indexOf('/');
        keys.add(slash < 0 ? rest : rest.slice(0, slash + 1));
      }
      if (keys.size === 0) return send(res, 404, { errors: [] });
      return send(res, 200, { data: { keys: [...keys].sort() } });
    }
    if (method === 'DELETE') {
      secrets.delete(id);
      return send(res, 204);
    }
    if (method === 'GET') {
      const secret = secrets.get(id);
      if (!secret) return send(res, 404, { errors: [] });
      return send(res, 200, { data: { current_version: secret.versions.length, versions: {} } });
    }
    return send(res, 405, { errors: [] });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => send(res, 500, { errors: ['internal error'] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    versionsOf: (path, mount = 'secret') => (secrets.get(`${mount}/${path}`)?.versions ?? []).map((v) => v.data),
    paths: (mount = 'secret') =>
      [...secrets.keys()].filter((k) => k.startsWith(`${mount}/`)).map((k) => k.slice(mount.length + 1)),
    failNext: (method, status, pathIncludes = '') => {
      failures.push({ method, status, pathIncludes });
    },
    loseAnswerOfNext: (method, status, pathIncludes = '') => {
      failures.push({ method, status, pathIncludes, afterDoing: true });
    },
    requests,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
