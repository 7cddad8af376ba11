/**
 * The HTTP transport node-vault uses, replaced (its `request-promise` hook) by one that sends each
 * request exactly where it was addressed, because the requests carry the Vault token and key bytes:
 *
 * - no proxy from the environment (axios, node-vault's own transport, honours HTTP_PROXY/HTTPS_PROXY);
 * - no redirects: a 3xx answer is returned as it is (node-vault turns it into an error), so the token
 *   and the key are never re-sent to another host;
 * - answers larger than MAX_VAULT_ANSWER_BYTES are refused (a key read is a few hundred bytes).
 */
import http from 'node:http';
import https from 'node:https';

export const MAX_VAULT_ANSWER_BYTES = 1_048_576;

/** What node-vault hands its transport. */
interface VaultRequest {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  json?: unknown;
  timeout?: number;
}

/** What node-vault expects back. */
interface VaultResponse {
  statusCode: number;
  body: unknown;
  request: { path: string };
}

export interface VaultTransportOptions {
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
  timeoutMs: number;
}

export type VaultRequestFunction = (options: VaultRequest) => Promise<VaultResponse>;

export function createVaultTransport(opts: VaultTransportOptions): { defaults: () => VaultRequestFunction } {
  const send: VaultRequestFunction = (options) =>
    new Promise((resolve, reject) => {
      const url = new URL(options.uri);
      const isHttps = url.protocol === 'https:';
      const body = options.json !== undefined && typeof options.json === 'object' ? Buffer.from(JSON.stringify(options.json)) : undefined;
      const req = (isHttps ? https : http).request(
        url,
        {
          method: options.method,
          agent: isHttps ? opts.httpsAgent : opts.httpAgent,
          headers: {
            ...options.headers,
            accept: 'application/json',
            ...(body ? { 'content-type': options.headers?.['Content-Type'] ?? 'application/json', 'content-length': String(body.length) } : {}),
          },
          timeout: options.timeout ?? opts.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let total = 0;
          res.on('data', (c: Buffer) => {
            total += c.length;
            if (total > MAX_VAULT_ANSWER_BYTES) {
              res.destroy(Object.assign(new Error('vault answer too large'), { code: 'EVAULTANSWER' }));
              return;
            }
            chunks.push(c);
          });
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = undefined;
            if (text.length > 0) {
              try {
                parsed = JSON.parse(text);
              } catch {
                parsed = undefined; // not JSON (a proxy page, a redirect body): node-vault reports the status
              }
            }
            resolve({ statusCode: res.statusCode ?? 0, body: parsed, request: { path: url.pathname } });
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('vault request timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(body);
    });
  return { defaults: () => send };
}
