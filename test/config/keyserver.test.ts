/**
 * Config section `keyserver` (the key server 2.0 interface, src/api/routes/keyServerV2.ts): the peer
 * module and the key size, from the file or QKDM_KEYSERVER_* variables, each checked at start-up.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'qkdm-keyserver-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(yaml: string, env: NodeJS.ProcessEnv = {}) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return loadConfig({ file, env });
}

function failure(yaml: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    load(yaml, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('config keyserver', () => {
  it('when the section is absent, then no peer module is set and keys are 256 bits', () => {
    expect(load('').keyserver).toEqual({ key_size: 256 });
  });

  it('when set in the file or the environment, then the environment wins', () => {
    expect(load('keyserver:\n  peer_module: 127.0.0.1:7001\n  key_size: 128\n').keyserver).toEqual({ peer_module: '127.0.0.1:7001', key_size: 128 });
    expect(load('keyserver:\n  peer_module: 127.0.0.1:7001\n', { QKDM_KEYSERVER_PEER_MODULE: 'https://bob.example:7001', QKDM_KEYSERVER_KEY_SIZE: '512' }).keyserver).toEqual({
      peer_module: 'https://bob.example:7001',
      key_size: 512,
    });
  });

  it('when a value is wrong, then start-up stops naming the field', () => {
    expect(failure('', { QKDM_KEYSERVER_KEY_SIZE: '100' })).toContain('keyserver.key_size: expected a multiple of 8 between 8 and 8192 (bits)');
    expect(failure('keyserver:\n  key_size: 16384\n')).toContain('keyserver.key_size');
    expect(failure('', { QKDM_KEYSERVER_PEER_MODULE: 'ftp://bob:7001' })).toContain('keyserver.peer_module: expected host:port or an http(s) URL without a path');
    expect(failure('keyserver:\n  peer_module: 127.0.0.1:7001/path\n')).toContain('keyserver.peer_module');
    expect(failure('keyserver:\n  peer: x\n')).toContain('keyserver');
  });
});
