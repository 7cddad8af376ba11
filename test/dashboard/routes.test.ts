/**
 * GET /dashboard, /dashboard/feed and /dashboard/assets/:file on an in-process pair (fake simulator): the feed
 * matches GET /streams, carries no key material, and every path sits behind the operator gate (HTTP Basic or
 * Bearer with module.operator_token; loopback callers when it is unset).
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.js';
import { dashboardFeedSchema } from '../../src/dashboard/feedSchema.js';
import { buildPair, hex, openBoth, silentLog, type Side } from '../support/pair.js';

let alice: Side;
let bob: Side;
let stop: () => Promise<void>;
beforeAll(async () => {
  const p = await buildPair({ maxKeyCount: 12 });
  ({ alice, bob, stop } = p);
});
afterAll(async () => stop());

const appOf = (side: Side, operatorToken?: string) =>
  createApp({ manager: side.manager, exchange: side.exchange, log: silentLog, requestLog: false, ...(operatorToken ? { operatorToken } : {}) });
const basic = (password: string, user = 'operator') => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('GET /dashboard/feed', () => {
  it('when a stream has delivered keys, then the feed shows its counts as GET /streams does, and no key in any encoding', async () => {
    const id = await openBoth(alice, bob);
    await until(() => (alice.manager.summary(id)?.available ?? 0) >= 12 && (bob.manager.summary(id)?.available ?? 0) >= 12, 'a full buffer');
    const keys: string[] = [];
    for (let i = 0; i < 5; i++) {
      const a = await alice.manager.getKey(id, -1);
      const b = await bob.manager.getKey(id, -1);
      if (!a.ok || !a.value || !b.ok || !b.value) throw new Error('no key');
      keys.push(hex(a.value.key));
    }
    // The sender refills once a quarter of the capacity (3 of 12) is free: 10 or more keys is a settled buffer.
    await until(() => (alice.manager.summary(id)?.available ?? 0) >= 10 && (bob.manager.summary(id)?.available ?? 0) >= 10, 'the refill');
    const app = appOf(alice);
    const res = await request(app).get('/dashboard/feed');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    const feed = dashboardFeedSchema.parse(res.body);
    const streams = (await request(app).get('/streams')).body.streams as { keyStreamId: string; nextIndex: number; available: number; exchangeRunning: boolean }[];
    const listed = streams.find((s) => s.keyStreamId === id)!;
    const shown = feed.streams.find((s) => s.keyStreamId === id)!;
    expect({ produced: shown.produced, available: shown.available, exchangeRunning: shown.exchangeRunning }).toEqual({
      produced: listed.nextIndex,
      available: listed.available,
      exchangeRunning: listed.exchangeRunning,
    });
    expect(shown.taken).toBe(listed.nextIndex - listed.available);
    expect(shown.taken).toBeGreaterThanOrEqual(5);
    expect(shown.capacity).toBe(12);
    expect(feed).toMatchObject({ role: 'sender', simulator: 'fake', capacity: 12, plannedCurve: null });
    const rounds = (await request(app).get(`/streams/${id}/stats`)).body.rounds as { firstIndex: number; keys: number }[];
    expect(shown.rounds.map((b) => [b.firstIndex, b.keys])).toEqual(rounds.map((r) => [r.firstIndex, r.keys]));
    const text = JSON.stringify(res.body);
    for (const k of keys) {
      expect(text).not.toContain(k);
      expect(text).not.toContain(Buffer.from(k, 'hex').toString('base64'));
      expect(text).not.toContain(Buffer.from(k, 'hex').toString('base64url'));
    }
    // The receiver's feed describes the same stream from Bob's side.
    const bobFeed = dashboardFeedSchema.parse((await request(appOf(bob)).get('/dashboard/feed')).body);
    expect(bobFeed.role).toBe('receiver');
    expect(bobFeed.streams.find((s) => s.keyStreamId === id)?.produced).toBe(bob.manager.summary(id)!.nextIndex);
  });
});

describe('GET /dashboard and its assets', () => {
  it('when the page is fetched, then it is HTML that loads only its own scripts and styles under a strict content security policy', async () => {
    const res = await request(appOf(alice)).get('/dashboard');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    const csp = res.headers['content-security-policy'] as string;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers['x-frame-options']).toBe('DENY');
    for (const asset of ['/dashboard/assets/uPlot.iife.min.js', '/dashboard/assets/uPlot.min.css', '/dashboard/assets/dashboard.js', '/dashboard/assets/dashboard.css']) expect(res.text).toContain(asset);
    expect(res.text).not.toMatch(/https?:\/\//); // no CDN, nothing from elsewhere
    expect((await request(appOf(alice)).get('/dashboard/')).status).toBe(200);
  });

  it('when an asset is fetched, then the page script comes as JavaScript; a name outside the list or a path is 404', async () => {
    const app = appOf(alice);
    const js = await request(app).get('/dashboard/assets/dashboard.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['x-content-type-options']).toBe('nosniff');
    for (const path of ['/dashboard/assets/index.html', '/dashboard/assets/sampler.ts', '/dashboard/assets/..%2Fsampler.ts', '/dashboard/assets/..%2F..%2F..%2Fpackage.json', '/dashboard/assets/.env']) {
      const res = await request(app).get(path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).toMatchObject({ code: 'NOT_FOUND' });
    }
  });

  it('when the module listens for peers only, then it serves no dashboard', async () => {
    const peerOnly = createApp({ manager: alice.manager, exchange: alice.exchange, log: silentLog, requestLog: false, routes: 'peer' });
    expect((await request(peerOnly).get('/dashboard')).status).toBe(404);
    expect((await request(peerOnly).get('/dashboard/feed')).status).toBe(404);
  });
});

describe('the dashboard behind the operator gate', () => {
  const token = 'operator-token-for-the-dashboard';

  it('when module.operator_token is set and no credential is sent, then every dashboard path is 401 with a Basic challenge', async () => {
    const app = appOf(alice, token);
    for (const path of ['/dashboard', '/dashboard/feed', '/dashboard/assets/dashboard.js']) {
      const res = await request(app).get(path);
      expect(res.status, path).toBe(401);
      expect(res.headers['www-authenticate'], path).toBe('Basic realm="qkd-module operator"');
      expect(res.text).not.toContain(token);
    }
    // The other operator routes keep their Bearer challenge.
    expect((await request(app).get('/streams')).headers['www-authenticate']).toBe('Bearer');
  });

  it('when the token comes as the Basic password or as a Bearer token, then the dashboard answers; a wrong one or a query parameter does not', async () => {
    const app = appOf(alice, token);
    expect((await request(app).get('/dashboard').set('authorization', basic(token))).status).toBe(200);
    expect((await request(app).get('/dashboard/feed').set('authorization', basic(token, 'anyone'))).status).toBe(200);
    expect((await request(app).get('/dashboard/feed').set('authorization', `Bearer ${token}`)).status).toBe(200);
    expect((await request(app).get('/streams').set('authorization', basic(token))).status).toBe(200);
    expect((await request(app).get('/dashboard/feed').set('authorization', basic(`${token}-wrong`))).status).toBe(401);
    expect((await request(app).get(`/dashboard/feed?token=${token}`)).status).toBe(401);
    expect((await request(app).get(`/dashboard?password=${token}`)).status).toBe(401);
  });

  it("when an application's token is sent (Bearer or Basic), then the dashboard stays closed: it is the operator's", async () => {
    const app = createApp({ manager: alice.manager, exchange: alice.exchange, log: silentLog, requestLog: false, applications: [{ id: 'app', token: 'app-token-1' }], operatorToken: token });
    for (const authorization of ['Bearer app-token-1', basic('app-token-1'), basic('app-token-1', 'app')]) {
      const res = await request(app).get('/dashboard/feed').set('authorization', authorization);
      expect(res.status, authorization).toBe(401);
      expect(res.text).not.toContain('keyStreamId');
    }
  });

  it('when no operator token is set, then a loopback caller opens the dashboard without credentials', async () => {
    expect((await request(appOf(alice)).get('/dashboard/feed')).status).toBe(200);
  });
});
