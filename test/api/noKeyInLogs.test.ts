/**
 * Key material never reaches a log line: every route is exercised with request logging on at the
 * most verbose level, and the captured log must contain none of the delivered keys.
 */
import { Writable } from 'node:stream';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.js';
import { KeyStreamManager } from '../../src/core/KeyStreamManager.js';
import { ExchangeService } from '../../src/exchange/ExchangeService.js';
import { createLogger } from '../../src/log.js';
import { FakeSimulator } from '../../src/sim/fake/FakeSimulator.js';
import { InMemoryPeer } from '../support/inMemoryPeer.js';
import { MemoryHandleStore, MemoryKeyStore } from '../support/memoryStores.js';

describe('logs', () => {
  it('when keys are exchanged and delivered with trace logging, then no key appears in any log line', async () => {
    let captured = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        captured += chunk.toString();
        cb();
      },
    });
    const log = createLogger('trace', sink);
    const side = (sender: 0 | 1, address: string) => {
      const peer = new InMemoryPeer();
      const manager = new KeyStreamManager(new MemoryHandleStore(), new MemoryKeyStore(), peer, { sender, sim: 'fake', publicAddress: address, maxKeyCount: 10, peerTimeoutMs: 1000 }, log);
      const exchange = new ExchangeService(manager, new FakeSimulator(), peer, { sender, peerTimeoutMs: 1000, retryInitialMs: 10, retryMaxMs: 50, roomRecheckMs: 200, statsWindow: 10 }, log);
      return { manager, exchange, peer, app: createApp({ manager, exchange, log, requestLog: true }) };
    };
    const a = side(1, 'http://127.0.0.1:5000');
    const b = side(0, 'http://127.0.0.1:5001');
    a.peer.target = b;
    b.peer.target = a;
    await a.manager.init();
    await b.manager.init();
    a.exchange.start();
    b.exchange.start();
    const open = await request(a.app).post('/open_connect').send([null, '127.0.0.1:5001', { timeout: 2000, length: 256 }, null]);
    const id = open.body[0] as string;
    await request(b.app).post('/open_connect').send([null, '127.0.0.1:5000', { timeout: 2000, length: 256 }, id]);
    const keys: string[] = [];
    for (let i = 0; i < 10; i++) {
      for (const s of [a, b]) {
        const r = await request(s.app).post('/get_key').send([id, -1, {}]);
        expect(r.body[2]).toBe(0);
        keys.push(r.body[0] as string);
      }
      const py = await request(a.app).post('/get_key').set('content-type', '').send(`['${id}', -1, {}]`);
      const hexes = [...String(py.text).matchAll(/\\x([0-9a-f]{2})/g)].map((m) => m[1]).join('');
      if (hexes) keys.push(Buffer.from(hexes, 'hex').toString('base64'));
    }
    await request(a.app).post('/close').send([id]);
    await a.exchange.stop();
    await b.exchange.stop();
    expect(captured.length).toBeGreaterThan(1000); // logging really happened
    for (const k of keys) {
      const bytes = Buffer.from(k, 'base64');
      for (const form of [k, bytes.toString('hex'), bytes.toString('base64url')]) expect(captured).not.toContain(form);
    }
  });
});
