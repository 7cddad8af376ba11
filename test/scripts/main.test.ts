/**
 * The command line (src/main.ts) as a newcomer meets it: a start-up failure is one line on stderr that
 * names the setting and the fix (issue 16's friction list).
 */
import { createServer, type Server } from 'node:net';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { credentialsEnv } from '../../scripts/lib/linkCredentials.js';
import { freePort, ROOT, startModule, tempDir, testLinkCredentials, type RunningModule } from '../support/processes.js';
import { makeCerts, type CertSet } from '../support/tls.js';
import { createLogger, prettyDestination, prettyLogs } from '../../src/log.js';

const MAIN = join(ROOT, 'dist', 'src', 'main.js');
let blockers: Server[] = [];
let running: RunningModule[] = [];
afterEach(async () => {
  for (const b of blockers) b.close();
  blockers = [];
  await Promise.all(running.map((m) => m.kill()));
  running = [];
});

const run = (env: Record<string, string>, args: string[] = ['--config', '/dev/null']): Promise<{ code: number; stderr: string }> =>
  new Promise((res) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 20_000, env: { PATH: process.env.PATH ?? '', ...env } }, (err, _stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr });
    });
  });

describe('start-up failures', () => {
  it('when module.port is taken, then the module exits with one line naming module.port and the fix', async () => {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    blockers.push(blocker);
    const r = await run({ QKDM_MODULE_PORT: String(port), QKDM_MODULE_DATA_DIR: tempDir('taken'), QKDM_MODULE_LOG_LEVEL: 'silent', ...credentialsEnv(await testLinkCredentials(), 1) });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`^qkd-module: start-up failed: module\\.port: 127\\.0\\.0\\.1:${port} is already in use .*--port`));
  });

  it('issue 16: when --port moves the listener that serves the peer routes but module.this_public_IP still names the old port, then one line names this_public_IP and the value to set', async () => {
    const dir = tempDir('port-mismatch');
    const file = join(dir, 'm.yaml');
    writeFileSync(file, 'module:\n  port: 5000\n  this_public_IP: 127.0.0.1:5000\n');
    const port = await freePort();
    const r = await run({ QKDM_MODULE_DATA_DIR: dir, QKDM_MODULE_LOG_LEVEL: 'silent' }, ['--config', file, '--port', String(port)]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`module.this_public_IP: names port 5000 on this host, but the peer routes listen on module.port ${port}: set module.this_public_IP to 127.0.0.1:${port}`);
  });

  it('issue 16: when the shipped configuration is started with --port, then the peer address stays the peer listener and the module starts', async () => {
    const port = await freePort();
    const peerPort = await freePort();
    const m = await startModule({ name: 'alice', sender: 1, port, dataDir: tempDir('port-ok'), env: { QKDM_MODULE_PEER_PORT: String(peerPort), QKDM_MODULE_THIS_PUBLIC_IP: `127.0.0.1:${peerPort}` } });
    running.push(m);
    expect(m.proc.exitCode).toBeNull();
  });

  it('issue 16: when a store cannot be opened (MariaDB down, Vault unreachable, data_dir not a directory), then one line names the setting, what happened and the fix', async () => {
    const closedPort = String(await freePort()); // nothing listens there
    const base = { QKDM_MODULE_PORT: String(await freePort()), QKDM_MODULE_LOG_LEVEL: 'silent', QKDM_PEER_AUTH_INSECURE: 'true' };
    const cases: Array<[Record<string, string>, RegExp]> = [
      [
        { QKDM_MODULE_DATA_DIR: tempDir('mysql-down'), QKDM_INTERNAL_DB_HOST: '127.0.0.1', QKDM_INTERNAL_DB_PORT: closedPort, QKDM_INTERNAL_DB_USER: 'root', QKDM_INTERNAL_DB_DATABASE: 'test' },
        /^qkd-module: start-up failed: internal_db \(127\.0\.0\.1:\d+, database test\): the handle store cannot be opened \(mysql: ECONNREFUSED on connect\): start MariaDB\/MySQL there .*unset internal_db\.host/,
      ],
      [
        { QKDM_MODULE_DATA_DIR: tempDir('vault-down'), QKDM_VAULT_HOST: '127.0.0.1', QKDM_VAULT_PORT: closedPort, QKDM_VAULT_SCHEME: 'http', QKDM_VAULT_TOKEN: 'dev-only-token' },
        /^qkd-module: start-up failed: vault \(http:\/\/127\.0\.0\.1:\d+\): the key store cannot be reached \(vault: unreachable \(ECONNREFUSED\) on list\): start Vault there .*unset vault\.host/,
      ],
      [
        { QKDM_MODULE_DATA_DIR: join(ROOT, 'package.json', 'data') },
        /^qkd-module: start-up failed: module\.data_dir \(.*package\.json\/data\): cannot open the embedded store there \(sqlite: ENOTDIR on open\): set module\.data_dir to a directory/,
      ],
    ];
    for (const [env, line] of cases) {
      const r = await run({ ...base, ...env });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(line);
      expect(r.stderr).not.toContain('dev-only-token');
    }
  });

  it('when a setting is invalid, then the module exits with one line naming the field', async () => {
    const r = await run({ QKDM_MODULE_PORT: 'abc', QKDM_MODULE_LOG_LEVEL: 'silent' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/module\.port: expected an integer between 0 and 65535/);
  });
});

describe('ETSI GS QKD 014, "the SAE confirms the KME ID from the KME\'s certificate": etsi014.kme_id against tls.cert at start-up', () => {
  let certs: CertSet;
  const tlsEnv = (name: string): Record<string, string> => ({ QKDM_TLS_CERT: certs.path(name, 'crt'), QKDM_TLS_KEY: certs.path(name, 'key') });
  const start = async (name: string, kmeId: string): Promise<RunningModule> => {
    const m = await startModule({ name: 'alice', sender: 1, port: await freePort(), dataDir: tempDir('kme-id'), env: { ...tlsEnv(name), QKDM_ETSI014_KME_ID: kmeId } });
    running.push(m);
    return m;
  };

  it('when tls.cert carries another KME ID than etsi014.kme_id, then the module exits with one line naming both IDs and the setting to fix', async () => {
    certs ??= makeCerts();
    const r = await run({
      QKDM_MODULE_PORT: String(await freePort()),
      QKDM_MODULE_DATA_DIR: tempDir('kme-id'),
      QKDM_MODULE_LOG_LEVEL: 'silent',
      QKDM_ETSI014_KME_ID: 'KME-B',
      ...tlsEnv('alice'),
      ...credentialsEnv(await testLinkCredentials(), 1),
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      /^qkd-module: start-up failed: config: etsi014\.kme_id is KME-B, but the main listener's certificate \(tls\.cert\) carries KME ID KME-A .*set etsi014\.kme_id to KME-A, or set tls\.cert to a certificate issued for KME-B$/m,
    );
    expect(r.stderr).not.toMatch(/BEGIN|PRIVATE/);
  });

  it('when tls.cert carries the configured KME ID, then the module starts without a KME ID warning', async () => {
    certs ??= makeCerts();
    const m = await start('alice', 'KME-A');
    expect(m.proc.exitCode).toBeNull();
    expect(m.output()).not.toContain('SAEs cannot confirm the KME ID');
  });

  it('when tls.cert carries no KME ID, then the module starts and warns that SAEs cannot confirm the KME ID from the certificate', async () => {
    certs ??= makeCerts();
    const m = await start('other', 'KME-A');
    expect(m.proc.exitCode).toBeNull();
    await expect.poll(() => m.output(), { timeout: 5000 }).toContain('SAEs cannot confirm the KME ID from the certificate');
  });
});

describe('log format (issue 16: "logs are raw JSON on a terminal")', () => {
  it('when log_format is auto, then a terminal gets readable lines and anything else gets JSON lines', () => {
    expect(prettyLogs('auto', true)).toBe(true);
    expect(prettyLogs('auto', false)).toBe(false);
    expect(prettyLogs('json', true)).toBe(false);
    expect(prettyLogs('pretty', false)).toBe(true);
  });

  it('when the logs are pretty, then a line is readable and still redacted (the JSON is redacted before formatting)', async () => {
    let out = '';
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => ((out += chunk.toString()), done()) });
    const log = createLogger('info', prettyDestination(sink));
    log.info({ keyStreamId: 'abc', key: 'c2VjcmV0LWtleS1ieXRlcw==' }, 'key streams loaded');
    await expect.poll(() => out).toMatch(/INFO.*key streams loaded/);
    expect(out).not.toMatch(/^\{/);
    expect(out).toContain('[redacted]');
    expect(out).not.toContain('c2VjcmV0LWtleS1ieXRlcw==');
  });

  it('when a module is started with log_format pretty, then its start-up lines are readable, not JSON', async () => {
    const m = await startModule({ name: 'alice', sender: 1, port: await freePort(), dataDir: tempDir('pretty'), env: { QKDM_MODULE_LOG_FORMAT: 'pretty', QKDM_MODULE_LOG_LEVEL: 'info' } });
    running.push(m);
    await expect.poll(() => m.output(), { timeout: 5000 }).toMatch(/INFO.*key streams loaded/);
    expect(m.output()).not.toMatch(/^\{"level"/m);
  });
});
