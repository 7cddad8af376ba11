/**
 * The connection to a Vault (or OpenBao) KV version 2 mount shared by the Vault adapters
 * (VaultKeyStore, VaultReconciledBlockStore): option checks, the node-vault client on our own
 * transport, and the mapping of failures to StoreErrors.
 *
 * - Mount and prefix are validated before they are put in a path (no path injection).
 * - node-vault's debug output (which would print written data) is disabled; its errors (which
 *   carry request headers, i.e. the token) are never passed on: {@link vaultError} reads only the
 *   HTTP status or the network error code.
 */
import http from 'node:http';
import https from 'node:https';
import nodeVault from 'node-vault';
import { TLS_CLIENT_HYGIENE } from '../../config/tls.js';
import { StoreError } from '../errors.js';
import { createVaultTransport } from './vaultTransport.js';

export interface VaultKvOptions {
  /** Vault address, e.g. `http://127.0.0.1:8200`. */
  endpoint: string;
  /** Vault token (secret: never logged, never in an error). */
  token: string;
  /** KV v2 mount, default `secret`. */
  mount?: string;
  /** Folder under the mount, default `qkdm`. */
  pathPrefix?: string;
  /** Use `GET ?list=1` instead of the LIST verb (needed with Node-based test servers). */
  noCustomHTTPVerbs?: boolean;
  /** CA certificates (PEM) that vouch for the Vault server, in addition to the system's. */
  ca?: Buffer;
  /** Per-request timeout in ms, default {@link DEFAULT_VAULT_TIMEOUT_MS}. */
  requestTimeoutMs?: number;
}

export const DEFAULT_VAULT_MOUNT = 'secret';
export const DEFAULT_VAULT_PREFIX = 'qkdm';
export const DEFAULT_VAULT_TIMEOUT_MS = 10_000;
/** Requests in flight at once for putMany / deleteStream. */
export const VAULT_PARALLELISM = 8;

/** Key_stream_IDs allowed in Vault paths (UUIDs and similar). */
export const VAULT_STREAM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const PATH_PATTERN = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/;
export const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export type VaultOperation = 'read' | 'write' | 'list' | 'delete';

export function statusOf(err: unknown): number | undefined {
  const code = (err as { response?: { statusCode?: unknown } })?.response?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** Builds the StoreError for a failed request; reads only the status / network error code. */
export function vaultError(err: unknown, operation: VaultOperation): StoreError {
  const status = statusOf(err);
  if (status === undefined) {
    const code = (err as { code?: unknown })?.code;
    const reason = typeof code === 'string' && /^[A-Z_]{1,32}$/.test(code) ? code : 'network error';
    return new StoreError('unavailable', `vault: unreachable (${reason}) on ${operation}`);
  }
  if (status === 401 || status === 403) {
    return new StoreError('permission', 'vault: permission denied (check vault.token)');
  }
  const kind = status >= 500 || status === 429 || status === 404 ? 'unavailable' : 'conflict';
  return new StoreError(kind, `vault: HTTP ${status} on ${operation}`);
}

/** Runs fn over items with at most `limit` in flight; rejects with the first failure after all settle. */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failure) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
}

export interface VaultKv {
  client: nodeVault.client;
  /** `<mount>/data/<prefix>`: where secrets are read and written. */
  dataBase: string;
  /** `<mount>/metadata/<prefix>`: where secrets are listed and destroyed (all versions). */
  metadataBase: string;
  /** Closes the keep-alive connections. */
  close(): void;
}

/** Checks the options (RangeError naming the option) and builds the client; no request is sent. */
export function openVaultKv(options: VaultKvOptions): VaultKv {
  const mount = options.mount ?? DEFAULT_VAULT_MOUNT;
  const prefix = options.pathPrefix ?? DEFAULT_VAULT_PREFIX;
  if (!PATH_PATTERN.test(mount)) throw new RangeError('invalid vault mount: segments of [A-Za-z0-9_-] separated by /');
  if (!PATH_PATTERN.test(prefix)) throw new RangeError('invalid vault pathPrefix: segments of [A-Za-z0-9_-] separated by /');
  if (typeof options.token !== 'string' || options.token.length === 0) throw new RangeError('vault token is required');
  let endpoint: URL;
  try {
    endpoint = new URL(options.endpoint);
  } catch {
    throw new RangeError('invalid vault endpoint URL');
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new RangeError('vault endpoint must be http(s)');

  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: VAULT_PARALLELISM * 2 });
  const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: VAULT_PARALLELISM * 2, ...TLS_CLIENT_HYGIENE, ...(options.ca ? { ca: options.ca } : {}) });
  const client = nodeVault({
    apiVersion: 'v1',
    endpoint: options.endpoint,
    token: options.token,
    noCustomHTTPVerbs: options.noCustomHTTPVerbs ?? false,
    // node-vault's default debug logger prints written data (key bytes) when DEBUG=node-vault.
    debug: () => undefined,
    // Our transport: no proxy from the environment, no redirects (vaultTransport.ts).
    'request-promise': createVaultTransport({ httpAgent, httpsAgent, timeoutMs: options.requestTimeoutMs ?? DEFAULT_VAULT_TIMEOUT_MS }),
  } as nodeVault.VaultOptions);
  // node-vault falls back to $VAULT_PREFIX when no prefix is configured; our paths are complete.
  (client as unknown as { pathPrefix: string }).pathPrefix = '';
  return {
    client,
    dataBase: `${mount}/data/${prefix}`,
    metadataBase: `${mount}/metadata/${prefix}`,
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
