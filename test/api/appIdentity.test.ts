/**
 * Application and operator identity (src/api/appIdentity.ts): applicationGate, operatorGate,
 * isLoopbackAddress and callerOf. Real express apps on 127.0.0.1 (port 0) over HTTP (fetch) and HTTPS
 * with client certificates from scripts/certs.sh (httpsCall); callers from other hosts cannot be made
 * on loopback, so those cases call the middleware directly with minimal fake req/res objects.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import express, { type Request, type RequestHandler, type Response } from 'express';
import { beforeAll, describe, expect, it } from 'vitest';
import { applicationGate, callerOf, isLoopbackAddress, operatorGate, type AppIdentityOptions } from '../../src/api/appIdentity.js';
import { LOCAL_OWNER } from '../../src/core/types.js';
import { httpsCall, makeCerts, type CertSet } from '../support/tls.js';
import { loopbackServers } from '../support/servers.js';

// ---------------------------------------------------------------------------------------------------
// helpers

const listen = loopbackServers();

/** An app whose GET /who answers the caller the application gate found. */
function whoApp(options: AppIdentityOptions): express.Express {
  const app = express();
  app.use(applicationGate(options));
  app.get('/who', (_req, res) => {
    res.json({ caller: callerOf(res) });
  });
  return app;
}

/** An app whose GET /op (API clients) and GET /page (a browser's page) answer {ok: true} behind the operator gate. */
function operatorApp(options: AppIdentityOptions): express.Express {
  const app = express();
  app.get('/op', operatorGate(options), (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/page', operatorGate(options, { browser: true }), (_req, res) => {
    res.json({ ok: true });
  });
  return app;
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;

async function serveHttp(app: express.Express): Promise<string> {
  const port = await listen(createHttpServer(app));
  return `http://127.0.0.1:${port}`;
}

interface FakeRes {
  statusCode: number;
  headers: Record<string, string>;
  body: unknown;
  locals: Record<string, unknown>;
  status(code: number): FakeRes;
  json(body: unknown): FakeRes;
  set(name: string, value: string): FakeRes;
}

function fakeRes(): FakeRes {
  const res: FakeRes = {
    statusCode: 200,
    headers: {},
    body: undefined,
    locals: {},
    status(code) {
      res.statusCode = code;
      return res;
    },
    json(body) {
      res.body = body;
      return res;
    },
    set(name, value) {
      res.headers[name.toLowerCase()] = value;
      return res;
    },
  };
  return res;
}

function fakeReq(remoteAddress: string | undefined, headers: Record<string, string> = {}, socket: Record<string, unknown> = {}): Request {
  return { headers, socket: { remoteAddress, ...socket } } as unknown as Request;
}

/** Runs one middleware on fake objects: what it answered, and whether it called next. */
function runGate(gate: RequestHandler, req: Request): { res: FakeRes; nextCalled: boolean } {
  const res = fakeRes();
  let nextCalled = false;
  void gate(req, res as unknown as Response, () => {
    nextCalled = true;
  });
  return { res, nextCalled };
}

// ---------------------------------------------------------------------------------------------------

describe('isLoopbackAddress', () => {
  it.each(['127.0.0.1', '127.5.6.7', '127.255.255.254', '::1', '::ffff:127.0.0.1', '::ffff:127.9.8.7'])(
    'when the address is %s, then it is loopback',
    (address) => {
      expect(isLoopbackAddress(address)).toBe(true);
    },
  );

  it.each(['10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', '126.255.255.255', '0.0.0.0', '::', '::2', '192.168.1.127', 'fe80::1'])(
    'when the address is %s, then it is not loopback',
    (address) => {
      expect(isLoopbackAddress(address)).toBe(false);
    },
  );

  it.each(['localhost', 'LOCALHOST', 'ip6-localhost', '127.example.com', '127.0.0.1.example.com', '127.0.0.256', '::ffff:localhost'])(
    'when the string %s is a host name or not an address, then it is not loopback',
    (text) => {
      expect(isLoopbackAddress(text)).toBe(false);
    },
  );

  it('when the address is undefined or empty, then it is not loopback', () => {
    expect(isLoopbackAddress(undefined)).toBe(false);
    expect(isLoopbackAddress('')).toBe(false);
  });
});

describe('applicationGate with no applications', () => {
  it('when a loopback caller calls over real HTTP, then it is served as the caller "local"', async () => {
    const url = await serveHttp(whoApp({ applications: [] }));
    const res = await fetch(`${url}/who`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ caller: 'local' });
    expect(LOCAL_OWNER).toBe('local');
  });

  it('when a loopback caller sends some bearer token, then the token is ignored and the caller is still "local"', async () => {
    const url = await serveHttp(whoApp({ applications: [] }));
    const res = await fetch(`${url}/who`, { headers: { authorization: 'Bearer whatever-token' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ caller: 'local' });
  });

  it('when only an operator token is configured, then the application API is still loopback-only and local', async () => {
    const url = await serveHttp(whoApp({ applications: [], operatorToken: 'op-secret' }));
    const res = await fetch(`${url}/who`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ caller: 'local' });
    const { res: remote, nextCalled } = runGate(applicationGate({ applications: [], operatorToken: 'op-secret' }), fakeReq('10.0.0.1', { authorization: 'Bearer op-secret' }));
    expect(nextCalled).toBe(false);
    expect(remote.statusCode).toBe(403);
  });

  it('when the caller is 10.0.0.1, then it is refused with 403 and no caller is set', () => {
    const { res, nextCalled } = runGate(applicationGate({ applications: [] }), fakeReq('10.0.0.1'));
    expect(nextCalled).toBe(false);
    expect(res.statusCode).toBe(403);
    expect(res.body).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(res.locals.caller).toBeUndefined();
  });

  it('when the caller is the IPv4-mapped ::ffff:10.0.0.1, then it is refused with 403', () => {
    const { res, nextCalled } = runGate(applicationGate({ applications: [] }), fakeReq('::ffff:10.0.0.1'));
    expect(nextCalled).toBe(false);
    expect(res.statusCode).toBe(403);
  });

  it('when the socket has no remote address (already closed), then it is refused with 403', () => {
    const { res, nextCalled } = runGate(applicationGate({ applications: [] }), fakeReq(undefined));
    expect(nextCalled).toBe(false);
    expect(res.statusCode).toBe(403);
  });

  it('when the caller is ::1 or ::ffff:127.0.0.1 (fake request), then next runs with caller "local"', () => {
    for (const address of ['::1', '::ffff:127.0.0.1', '127.5.6.7']) {
      const { res, nextCalled } = runGate(applicationGate({ applications: [] }), fakeReq(address));
      expect(nextCalled, address).toBe(true);
      expect(res.locals.caller, address).toBe('local');
      expect(res.statusCode, address).toBe(200);
    }
  });
});

describe('applicationGate with bearer tokens', () => {
  const apps: AppIdentityOptions = {
    applications: [
      { id: 'app-one', token: 'token-one-0123456789' },
      { id: 'app-two', token: 'token-two-9876543210' },
    ],
  };

  it('when the right token is sent, then the caller is that application', async () => {
    const url = await serveHttp(whoApp(apps));
    const res = await fetch(`${url}/who`, { headers: { authorization: 'Bearer token-one-0123456789' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ caller: 'app-one' });
  });

  it('when two applications have different tokens, then each token maps to its own application', async () => {
    const url = await serveHttp(whoApp(apps));
    const one = await fetch(`${url}/who`, { headers: { authorization: 'Bearer token-one-0123456789' } });
    const two = await fetch(`${url}/who`, { headers: { authorization: 'Bearer token-two-9876543210' } });
    expect(await one.json()).toEqual({ caller: 'app-one' });
    expect(await two.json()).toEqual({ caller: 'app-two' });
  });

  it('when the scheme is written in lower case, then the token is still accepted', async () => {
    const url = await serveHttp(whoApp(apps));
    const res = await fetch(`${url}/who`, { headers: { authorization: 'bearer token-two-9876543210' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ caller: 'app-two' });
  });

  it('when a wrong token is sent, then 401 with WWW-Authenticate invalid_token and the body names neither token', async () => {
    const url = await serveHttp(whoApp(apps));
    const wrong = 'wrong-token-SENTINEL-42';
    const res = await fetch(`${url}/who`, { headers: { authorization: `Bearer ${wrong}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(text).not.toContain(wrong);
    expect(text).not.toContain('token-one-0123456789');
    expect(text).not.toContain('token-two-9876543210');
    expect(text).not.toContain('SENTINEL');
    const allHeaders = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
    expect(allHeaders).not.toContain(wrong);
    expect(allHeaders).not.toContain('token-one');
  });

  it('when a token that only extends or truncates a valid one is sent, then it is refused with 401', async () => {
    const url = await serveHttp(whoApp(apps));
    for (const candidate of ['token-one-0123456789x', 'token-one-012345678', 'TOKEN-ONE-0123456789']) {
      const res = await fetch(`${url}/who`, { headers: { authorization: `Bearer ${candidate}` } });
      expect(res.status, candidate).toBe(401);
      expect(await res.text(), candidate).not.toContain(candidate);
    }
  });

  it('when no credential is sent, even from loopback, then 401 with a plain Bearer challenge', async () => {
    const url = await serveHttp(whoApp(apps));
    const res = await fetch(`${url}/who`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await res.json()).toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('when the Authorization header is not a Bearer credential, then it counts as no credential (401)', async () => {
    const url = await serveHttp(whoApp(apps));
    for (const authorization of ['Basic dG9rZW4tb25lOg==', 'token-one-0123456789', 'Bearer', 'Bearer  ', 'Bearer token-one-0123456789 extra']) {
      const res = await fetch(`${url}/who`, { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get('www-authenticate'), authorization).toBe('Bearer');
    }
  });

  it('when the caller is another host but presents the right token, then it is served as that application', () => {
    const { res, nextCalled } = runGate(applicationGate(apps), fakeReq('10.0.0.1', { authorization: 'Bearer token-two-9876543210' }));
    expect(nextCalled).toBe(true);
    expect(res.locals.caller).toBe('app-two');
  });

  it('when an application has only a cert_name, then no bearer token (not even "undefined") identifies it', async () => {
    const url = await serveHttp(whoApp({ applications: [{ id: 'cert-only', cert_name: 'alice' }] }));
    for (const token of ['undefined', 'null', 'alice', 'cert-only']) {
      const res = await fetch(`${url}/who`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status, token).toBe(401);
    }
  });
});

describe('applicationGate with TLS client certificates', () => {
  let certs: CertSet;
  beforeAll(() => {
    certs = makeCerts();
  });

  /** HTTPS server (alice's certificate, CA ca) that asks for a client certificate but lets every one through. */
  async function serveHttps(options: AppIdentityOptions): Promise<number> {
    const server = createHttpsServer(
      { cert: certs.pem('alice', 'crt'), key: certs.pem('alice', 'key'), ca: certs.pem('ca', 'crt'), requestCert: true, rejectUnauthorized: false },
      whoApp(options),
    );
    return listen(server);
  }
  const client = (name: string) => ({ ca: certs.pem('ca', 'crt'), cert: certs.pem(name, 'crt'), key: certs.pem(name, 'key') });
  const noCert = () => ({ ca: certs.pem('ca', 'crt') });

  const byCert: AppIdentityOptions = {
    applications: [
      { id: 'app-alice', cert_name: 'alice' },
      { id: 'app-bob', cert_name: 'bob' },
      { id: 'app-sae-a', cert_name: 'sae-a' },
      { id: 'app-other', cert_name: 'other' },
      { id: 'app-token', token: 'tls-token-abcdef' },
    ],
  };

  it('when a CA-verified certificate has the CN of an application cert_name, then the caller is that application', async () => {
    const port = await serveHttps(byCert);
    for (const [name, id] of [
      ['alice', 'app-alice'],
      ['bob', 'app-bob'],
      ['sae-a', 'app-sae-a'],
    ] as const) {
      const res = await httpsCall(port, 'GET', '/who', client(name));
      expect(res.status, name).toBe(200);
      expect(JSON.parse(res.body), name).toEqual({ caller: id });
    }
  });

  it('when the certificate is signed by an unrelated CA (other), then 401 even though its CN is a cert_name', async () => {
    const port = await serveHttps(byCert);
    const res = await httpsCall(port, 'GET', '/who', client('other'));
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('when a verified certificate names no application (sae-b), then 401', async () => {
    const port = await serveHttps(byCert);
    const res = await httpsCall(port, 'GET', '/who', client('sae-b'));
    expect(res.status).toBe(401);
  });

  it('when no client certificate and no token are sent over TLS, then 401', async () => {
    const port = await serveHttps(byCert);
    const res = await httpsCall(port, 'GET', '/who', noCert());
    expect(res.status).toBe(401);
  });

  it('when a token is sent over TLS without a certificate, then the token identifies the application', async () => {
    const port = await serveHttps(byCert);
    const res = await httpsCall(port, 'GET', '/who', noCert(), undefined, { authorization: 'Bearer tls-token-abcdef' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ caller: 'app-token' });
  });

  it('when a wrong token comes with a valid certificate, then the token decides: 401 invalid_token', async () => {
    const port = await serveHttps(byCert);
    const res = await httpsCall(port, 'GET', '/who', client('alice'), undefined, { authorization: 'Bearer not-the-token' });
    expect(res.status).toBe(401);
    expect(res.body).not.toContain('not-the-token');
  });

  it('when cert_name matches a DNS subject alternative name of the certificate, then it identifies the application', async () => {
    // alice.crt: CN=alice, SAN DNS:localhost, IP:127.0.0.1
    const port = await serveHttps({ applications: [{ id: 'by-dns', cert_name: 'localhost' }] });
    const res = await httpsCall(port, 'GET', '/who', client('alice'));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ caller: 'by-dns' });
  });

  it('when cert_name equals an IP subject alternative name or differs in case or length from the CN, then 401', async () => {
    const port = await serveHttps({ applications: [{ id: 'x1', cert_name: '127.0.0.1' }, { id: 'x2', cert_name: 'Alice' }, { id: 'x3', cert_name: 'alic' }, { id: 'x4', cert_name: 'QKD dev' }] });
    const res = await httpsCall(port, 'GET', '/who', client('alice'));
    expect(res.status).toBe(401);
  });

  it('when a fake TLS socket is not authorized, then matching names do not identify the caller', () => {
    const gate = applicationGate({ applications: [{ id: 'app-alice', cert_name: 'alice' }] });
    const socket = { encrypted: true, authorized: false, getPeerCertificate: () => ({ subject: { CN: 'alice' }, subjectaltname: 'DNS:alice' }) };
    const refused = runGate(gate, fakeReq('127.0.0.1', {}, socket));
    expect(refused.nextCalled).toBe(false);
    expect(refused.res.statusCode).toBe(401);
    const accepted = runGate(gate, fakeReq('127.0.0.1', {}, { ...socket, authorized: true }));
    expect(accepted.nextCalled).toBe(true);
    expect(accepted.res.locals.caller).toBe('app-alice');
  });

  it('when a plain (unencrypted) socket claims a certificate, then it is not used', () => {
    const gate = applicationGate({ applications: [{ id: 'app-alice', cert_name: 'alice' }] });
    const socket = { encrypted: false, authorized: true, getPeerCertificate: () => ({ subject: { CN: 'alice' } }) };
    const { res, nextCalled } = runGate(gate, fakeReq('127.0.0.1', {}, socket));
    expect(nextCalled).toBe(false);
    expect(res.statusCode).toBe(401);
  });
});

describe('operatorGate', () => {
  it('when the operator token is set and the right token is sent, then the route runs', async () => {
    const url = await serveHttp(operatorApp({ applications: [], operatorToken: 'operator-secret-1' }));
    const res = await fetch(`${url}/op`, { headers: { authorization: 'Bearer operator-secret-1' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it('when the operator token is set and a wrong or no token is sent, then 401 with a Bearer challenge and no token echoed', async () => {
    const url = await serveHttp(operatorApp({ applications: [], operatorToken: 'operator-secret-1' }));
    const wrong = await fetch(`${url}/op`, { headers: { authorization: 'Bearer operator-secret-2' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
    const wrongText = await wrong.text();
    expect(wrongText).not.toContain('operator-secret');
    expect(JSON.parse(wrongText)).toMatchObject({ code: 'UNAUTHORIZED' });
    const missing = await fetch(`${url}/op`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('when the operator token is set, then an application token does not open operator routes', async () => {
    const url = await serveHttp(operatorApp({ applications: [{ id: 'app', token: 'app-token-1' }], operatorToken: 'operator-secret-1' }));
    const res = await fetch(`${url}/op`, { headers: { authorization: 'Bearer app-token-1' } });
    expect(res.status).toBe(401);
  });

  it('when the operator token is set, then a caller from another host with the right token passes and one without is refused', () => {
    const gate = operatorGate({ applications: [], operatorToken: 'operator-secret-1' });
    const ok = runGate(gate, fakeReq('10.0.0.1', { authorization: 'Bearer operator-secret-1' }));
    expect(ok.nextCalled).toBe(true);
    const refused = runGate(gate, fakeReq('10.0.0.1'));
    expect(refused.nextCalled).toBe(false);
    expect(refused.res.statusCode).toBe(401);
  });

  it('when no operator token is set, then a loopback caller passes over real HTTP, with or without a token', async () => {
    const url = await serveHttp(operatorApp({ applications: [{ id: 'app', token: 'app-token-1' }] }));
    const plain = await fetch(`${url}/op`);
    expect(plain.status).toBe(200);
    expect(await plain.json()).toEqual({ ok: true });
    const withToken = await fetch(`${url}/op`, { headers: { authorization: 'Bearer anything' } });
    expect(withToken.status).toBe(200);
  });

  it('when no operator token is set, then a caller from another host is refused with 403 even with a token', () => {
    const gate = operatorGate({ applications: [{ id: 'app', token: 'app-token-1' }] });
    for (const address of ['10.0.0.1', '::ffff:10.0.0.1', undefined]) {
      const { res, nextCalled } = runGate(gate, fakeReq(address, { authorization: 'Bearer app-token-1' }));
      expect(nextCalled, String(address)).toBe(false);
      expect(res.statusCode, String(address)).toBe(403);
      expect(res.body, String(address)).toMatchObject({ code: 'UNAUTHORIZED' });
    }
  });

  it('when no operator token is set, then ::1 and 127.x callers pass (fake request)', () => {
    const gate = operatorGate({ applications: [] });
    for (const address of ['::1', '127.0.0.2', '::ffff:127.0.0.1']) {
      expect(runGate(gate, fakeReq(address)).nextCalled, address).toBe(true);
    }
  });
});

describe('operatorGate with HTTP Basic (browsers)', () => {
  const token = 'operator-secret-1';

  it('when Basic carries the operator token as the password, then the route runs whatever the user name, on API and browser routes', async () => {
    const url = await serveHttp(operatorApp({ applications: [], operatorToken: token }));
    for (const user of ['operator', '', 'anyone at all']) {
      for (const path of ['/op', '/page']) {
        const res = await fetch(`${url}${path}`, { headers: { authorization: basic(user, token) } });
        expect(res.status, `${path} as ${JSON.stringify(user)}`).toBe(200);
        expect(await res.json()).toEqual({ ok: true });
      }
    }
  });

  it('when the token itself contains a colon, then only the first colon separates the user name (RFC 7617)', async () => {
    const url = await serveHttp(operatorApp({ applications: [], operatorToken: 'op:secret:2' }));
    expect((await fetch(`${url}/page`, { headers: { authorization: basic('me', 'op:secret:2') } })).status).toBe(200);
    // "op:secret:2" as user:password is the user "op" with the password "secret:2".
    expect((await fetch(`${url}/page`, { headers: { authorization: basic('op', 'secret:2') } })).status).toBe(401);
  });

  it('when Basic carries a wrong password, or the token as the user name, or no colon, then 401 and the token is never echoed', async () => {
    const url = await serveHttp(operatorApp({ applications: [], operatorToken: token }));
    const attempts = [
      basic('operator', 'operator-secret-2'),
      basic(token, ''),
      basic('operator', `${token}x`),
      `Basic ${Buffer.from(token).toString('base64')}`,
      'Basic not base64!',
      'Basic',
    ];
    for (const authorization of attempts) {
      const res = await fetch(`${url}/page`, { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      const text = await res.text();
      expect(text).not.toContain('operator-secret');
      expect(JSON.parse(text)).toMatchObject({ code: 'UNAUTHORIZED' });
    }
  });

  it('when a browser route refuses, then it challenges with Basic realm "qkd-module operator"; an API route keeps its Bearer challenge', async () => {
    const url = await serveHttp(operatorApp({ applications: [], operatorToken: token }));
    const page = await fetch(`${url}/page`);
    expect(page.status).toBe(401);
    expect(page.headers.get('www-authenticate')).toBe('Basic realm="qkd-module operator"');
    const wrongBearer = await fetch(`${url}/page`, { headers: { authorization: 'Bearer operator-secret-2' } });
    expect(wrongBearer.status).toBe(401);
    expect(wrongBearer.headers.get('www-authenticate')).toBe('Basic realm="qkd-module operator"');
    const api = await fetch(`${url}/op`, { headers: { authorization: basic('operator', 'wrong') } });
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('when a browser route is called with the right Bearer token, then it runs too', async () => {
    const url = await serveHttp(operatorApp({ applications: [], operatorToken: token }));
    expect((await fetch(`${url}/page`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });

  it('when the token is only in the query string, then it is refused (401)', async () => {
    const url = await serveHttp(operatorApp({ applications: [], operatorToken: token }));
    for (const query of [`?token=${token}`, `?access_token=${token}`, `?authorization=Bearer%20${token}`]) {
      expect((await fetch(`${url}/page${query}`)).status, query).toBe(401);
    }
  });

  it('when an application token comes as Basic, then it does not open operator routes', async () => {
    const url = await serveHttp(operatorApp({ applications: [{ id: 'app', token: 'app-token-1' }], operatorToken: token }));
    expect((await fetch(`${url}/page`, { headers: { authorization: basic('app', 'app-token-1') } })).status).toBe(401);
  });

  it('when another host sends the right Basic credentials, then it passes; without the token set, Basic from another host is still 403', () => {
    const withToken = operatorGate({ applications: [], operatorToken: token }, { browser: true });
    expect(runGate(withToken, fakeReq('10.0.0.1', { authorization: basic('op', token) })).nextCalled).toBe(true);
    const without = operatorGate({ applications: [] }, { browser: true });
    const refused = runGate(without, fakeReq('10.0.0.1', { authorization: basic('op', token) }));
    expect(refused.nextCalled).toBe(false);
    expect(refused.res.statusCode).toBe(403);
    for (const address of ['127.0.0.1', '::1']) expect(runGate(without, fakeReq(address)).nextCalled, address).toBe(true);
  });
});

describe('callerOf', () => {
  it('when the gate did not run, then it throws', () => {
    expect(() => callerOf(fakeRes() as unknown as Response)).toThrow(/applicationGate did not run/);
  });

  it('when res.locals.caller is not a string, then it throws', () => {
    const res = fakeRes();
    res.locals.caller = 42;
    expect(() => callerOf(res as unknown as Response)).toThrow(/applicationGate did not run/);
  });

  it('when the gate ran, then it returns the caller the gate set', () => {
    const { res } = runGate(applicationGate({ applications: [{ id: 'app-x', token: 'tok-x' }] }), fakeReq('10.0.0.1', { authorization: 'Bearer tok-x' }));
    expect(callerOf(res as unknown as Response)).toBe('app-x');
  });

  it('when a real route uses callerOf without the gate, then the request fails with 500 instead of serving an anonymous caller', async () => {
    const app = express();
    app.get('/who', (_req, res) => {
      res.json({ caller: callerOf(res) });
    });
    const url = await serveHttp(app);
    const res = await fetch(`${url}/who`);
    expect(res.status).toBe(500);
  });
});
