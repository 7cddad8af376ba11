/**
 * Issue 13, "a crash test in the suite": a pair under load from both ends, either module SIGKILLed at
 * random moments (during GET_KEY, during a round, at start-up) dozens of times. Afterwards every index
 * below the commit counter was delivered identically at both ends or is still deliverable; nothing was
 * delivered twice, nothing lost.
 *
 * The two applications are the ones a careful client would write with the re-delivery window
 * (docs/api.md, "Lost answers"): Alice's asks ETSI 004 GET_KEY for explicit indices 0, 1, 2, ... and
 * repeats an index until it gets it; Bob's asks the seed API for "the next key" (index -1) with an
 * Idempotency-Key and repeats the same token until it gets an answer. Neither ever skips a key: a key
 * an application could not get again after a lost answer is counted as lost.
 *
 * Real processes, fake simulator, embedded SQLite stores. CRASH_TEST_KILLS sets the number of kills
 * (default 36), CRASH_TEST_WINDOW_S the re-delivery window (default 60; 0 shows what the window prevents). The figures are printed as one JSON line and one readable line.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { tableIdentifiers } from '../../src/store/mysql/migrate.js';
import { parseMysqlUrl } from '../../src/store/mysql/MysqlHandleStore.js';
import { freePort, getJson, startModule, tempDir, type ModuleSpec, type RunningModule } from '../support/processes.js';
import { openStream } from '../security/support.js';

const KILLS = Number(process.env.CRASH_TEST_KILLS ?? 36);
const running = new Set<RunningModule>();
afterAll(async () => {
  await Promise.all([...running].map((m) => m.kill('SIGKILL')));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const random = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

interface Figures {
  kills: number;
  startupKills: number;
  deliveredAlice: number;
  deliveredBob: number;
  repeatedRequests: number;
  answersAfterRepeat: number;
  lost: number;
  mismatched: number;
  duplicated: number;
  checkedBelowCounter: number;
}

/** One module end whose process may be replaced; requests go to whichever process runs now. */
class End {
  current: RunningModule;
  constructor(first: RunningModule) {
    this.current = first;
    running.add(first);
  }
  get url(): string {
    return this.current.url;
  }
  /** SIGKILL now, then start again; with `atStartup`, the first restart is killed again before it listens. */
  async crash(atStartup: boolean): Promise<void> {
    const old = this.current;
    await old.kill('SIGKILL');
    running.delete(old);
    if (atStartup) {
      let proc: ChildProcess | undefined;
      const spec: ModuleSpec = { ...old.spec, onSpawn: (p) => (proc = p) };
      const starting = startModule(spec).then(
        (m) => m,
        () => undefined,
      );
      await sleep(random(30, 400));
      proc?.kill('SIGKILL');
      const m = await starting;
      if (m) await m.kill('SIGKILL'); // it was already up: killed right after start-up then
    }
    this.current = await startModule(old.spec);
    running.add(this.current);
  }
}

/** POST JSON; undefined when no answer came (connection refused or reset, killed mid-request, timeout). */
async function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<any | undefined> {
  try {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(8_000),
    });
    if (res.status !== 200) return { httpStatus: res.status };
    return await res.json();
  } catch {
    return undefined;
  }
}

/**
 * Runs the pair under load through `kills` SIGKILLs and checks the invariants; `env` selects the stores
 * (per end: Alice's first, Bob's second).
 */
async function crashRun(kills: number, env: [Record<string, string>, Record<string, string>]): Promise<void> {
    const KILLS = kills;
    const [pa, pb] = [await freePort(), await freePort()];
    const common = (own: Record<string, string>) => ({ maxKeyCount: 20, env: { QKDM_MODULE_REDELIVERY_WINDOW_S: process.env.CRASH_TEST_WINDOW_S ?? '60', ...own } });
    const alice = new End(await startModule({ name: 'alice', sender: 1, port: pa, dataDir: tempDir('crash-alice'), ...common(env[0]) }));
    const bob = new End(await startModule({ name: 'bob', sender: 0, port: pb, dataDir: tempDir('crash-bob'), ...common(env[1]) }));
    const id = await openStream({ alice: alice.current, bob: bob.current });

    const figures: Figures = {
      kills: 0,
      startupKills: 0,
      deliveredAlice: 0,
      deliveredBob: 0,
      repeatedRequests: 0,
      answersAfterRepeat: 0,
      lost: 0,
      mismatched: 0,
      duplicated: 0,
      checkedBelowCounter: 0,
    };
    /** index -> key (base64), per end, as the applications received them. */
    const gotA = new Map<number, string>();
    const gotB = new Map<number, string>();
    const lostIndices: string[] = [];
    let stopping = false;

    // Alice's application: explicit indices, each repeated until it comes.
    const consumerA = (async () => {
      for (let want = 0; !stopping; want++) {
        for (let attempt = 0; ; attempt++) {
          if (attempt > 0) figures.repeatedRequests++;
          const a = await post(alice.url, '/etsi004/v2.1.1/get_key', { Key_stream_ID: id, index: want });
          if (a?.status === 0) {
            if (gotA.has(want)) figures.duplicated++;
            if (attempt > 0) figures.answersAfterRepeat++;
            gotA.set(want, a.Key_buffer);
            figures.deliveredAlice++;
            break;
          }
          if (a?.status === 2) {
            // "None can come": the key is gone at this end although the application never got it.
            figures.lost++;
            lostIndices.push(`alice:${want}`);
            break;
          }
          await sleep(30); // no answer (killed), timeout (6) or peer not connected (1): ask again
          if (stopping && attempt > 400) return;
        }
      }
    })();

    // Bob's application: "the next key" with an idempotency token, repeated until it comes.
    const consumerB = (async () => {
      for (let n = 0; !stopping; n++) {
        const token = `bob-${n}`;
        let first: number | undefined;
        for (let attempt = 0; ; attempt++) {
          if (attempt > 0) figures.repeatedRequests++;
          const b = await post(bob.url, '/get_key', { Key_stream_ID: id, index: -1 }, { 'idempotency-key': token });
          if (b?.status === 0 && typeof b.index === 'number') {
            if (gotB.has(b.index)) figures.duplicated++;
            first ??= b.index;
            if (attempt > 0) figures.answersAfterRepeat++;
            gotB.set(b.index, b.key);
            figures.deliveredBob++;
            break;
          }
          await sleep(30);
          if (stopping && attempt > 400) return;
        }
      }
    })();

    // The killer: random moments, random victim; one kill in four also kills the restart at start-up.
    for (let k = 0; k < KILLS; k++) {
      await sleep(random(150, 700));
      const victim = Math.random() < 0.5 ? alice : bob;
      const atStartup = k % 4 === 3;
      await victim.crash(atStartup);
      figures.kills++;
      if (atStartup) figures.startupKills++;
    }
    // Some load after the last kill, then stop the applications (each finishes the key it is after).
    await sleep(2_000);
    stopping = true;
    await Promise.all([consumerA, consumerB]);

    // Both ends settle on one commit counter.
    const counters = async () => [
      (await getJson(alice.url, `/streams/${id}`)).body.nextIndex as number,
      (await getJson(bob.url, `/streams/${id}`)).body.nextIndex as number,
    ];
    await expect.poll(async () => new Set(await counters()).size, { timeout: 15_000 }).toBe(1);
    const [counter] = await counters();

    // Below the counter: delivered at both ends identically, or still deliverable where it was not.
    const fetchAt = async (end: End, index: number): Promise<string | undefined> => {
      const r = await post(end.url, '/etsi004/v2.1.1/get_key', { Key_stream_ID: id, index });
      return r?.status === 0 ? r.Key_buffer : undefined;
    };
    for (let i = 0; i < counter!; i++) {
      figures.checkedBelowCounter++;
      let a = gotA.get(i);
      let b = gotB.get(i);
      if (a === undefined) a = await fetchAt(alice, i);
      if (b === undefined) b = await fetchAt(bob, i);
      if (a === undefined || b === undefined) {
        figures.lost++;
        lostIndices.push(`${a === undefined ? 'alice' : 'bob'}:${i} not deliverable`);
      } else if (a !== b) {
        figures.mismatched++;
      }
    }
    // Nothing was delivered above the counter (it would have no partner).
    const above = [...gotA.keys(), ...gotB.keys()].filter((i) => i >= counter!);

    console.log(JSON.stringify({ crashTest: { ...figures, counter, lostIndices: lostIndices.slice(0, 10) } }));
    console.log(
      `crash test: ${figures.kills} SIGKILLs (${figures.startupKills} also at start-up); delivered ${figures.deliveredAlice} keys at Alice, ${figures.deliveredBob} at Bob; ` +
        `${figures.answersAfterRepeat} answers came only after a repeated request; lost ${figures.lost}, mismatched ${figures.mismatched}, duplicated ${figures.duplicated}; counter ${counter}`,
    );
    expect(figures.kills).toBe(KILLS);
    expect(figures.deliveredAlice + figures.deliveredBob).toBeGreaterThan(KILLS); // load really ran between kills
    expect(above).toEqual([]);
    expect(lostIndices).toEqual([]);
    expect(figures.lost).toBe(0);
    expect(figures.mismatched).toBe(0);
    expect(figures.duplicated).toBe(0);
}

/** MariaDB for the handle store variant: the machine's (CI starts it); outside CI an unreachable server skips visibly. */
const mysqlUrl = process.env.QKDM_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const mysqlConn = parseMysqlUrl(mysqlUrl);
async function probeMysql(): Promise<string | undefined> {
  try {
    const c = await createConnection({ ...mysqlConn, connectTimeout: 3_000 });
    await c.end();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? 'unknown error';
  }
}
const mysqlDown = await probeMysql();
const tables = [`crash_a_${randomBytes(4).toString('hex')}`, `crash_b_${randomBytes(4).toString('hex')}`];
afterAll(async () => {
  if (mysqlDown) return;
  const c = await createConnection(mysqlConn);
  try {
    for (const t of tables) {
      const ids = tableIdentifiers(t);
      await c.query(`DROP TABLE IF EXISTS ${ids.table}, ${ids.migrations}`);
    }
  } finally {
    await c.end();
  }
});
const mysqlEnv = (table: string): Record<string, string> => ({
  QKDM_INTERNAL_DB_HOST: mysqlConn.host ?? '127.0.0.1',
  QKDM_INTERNAL_DB_PORT: String(mysqlConn.port ?? 3306),
  QKDM_INTERNAL_DB_USER: mysqlConn.user ?? 'root',
  ...(mysqlConn.password ? { QKDM_INTERNAL_DB_PASSWD: mysqlConn.password } : {}),
  QKDM_INTERNAL_DB_DATABASE: mysqlConn.database ?? 'test',
  QKDM_MODULE_TABLE: table,
});

describe('crash test (issue 13): SIGKILLs of either module under load from both ends', () => {
  it(`when either module is SIGKILLed ${KILLS} times at random moments (GET_KEY, rounds, start-up), embedded SQLite stores, then every index below the commit counter is delivered identically at both ends or still deliverable, none twice, none lost`, async () => {
    await crashRun(KILLS, [{}, {}]);
  }, 400_000);

  const mariaKills = Math.max(4, Math.round(KILLS / 3));
  if (mysqlDown && process.env.CI === 'true') {
    it('when CI runs the crash test, then MariaDB must be reachable', () => {
      expect(mysqlDown, `MariaDB unreachable at ${mysqlUrl.replace(/\/\/[^@]*@/, '//')}`).toBeUndefined();
    });
  } else {
    it.skipIf(Boolean(mysqlDown))(
      `when either module is SIGKILLed ${mariaKills} times with its stream handles in MariaDB${mysqlDown ? ` [skipped: MariaDB unreachable (${mysqlDown})]` : ''}, then the same holds`,
      async () => {
        await crashRun(mariaKills, [mysqlEnv(tables[0]!), mysqlEnv(tables[1]!)]);
      },
      300_000,
    );
  }
});
