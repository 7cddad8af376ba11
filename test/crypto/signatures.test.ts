/**
 * Post-quantum signatures in worker threads (src/crypto/signatures.ts, signWorker.ts, keys.ts, scripts/keygen.ts).
 *
 * The workers run the compiled dist/src/crypto/signWorker.js: `npm test` builds first; when running vitest
 * directly, run `npx tsc -p tsconfig.json` before.
 * SPHINCS+-256s signing takes seconds: the suite signs with it exactly once (in beforeAll).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CORE_SCHEMA, load as loadYaml } from 'js-yaml';
import { slh_dsa_sha2_128f } from '@noble/post-quantum/slh-dsa.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURES as CONFIG_SIGNATURES } from '../../src/config/schema.js';
import { encodeKey, generateKeyPair, KeyMaterialError, parseKeyMaterial } from '../../src/crypto/keys.js';
import {
  resolveSignWorkerUrl,
  SCHEME_SIZES,
  SIGNATURE_SCHEMES,
  SignaturePool,
  type KeyPair,
  type SignatureScheme,
} from '../../src/crypto/signatures.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const MESSAGE = new Uint8Array(randomBytes(1024));

/** Standards §5 (public key / secret key / signature bytes): 128f 32/64/17088, 256s 64/128/29792. */
const STANDARD_SIZES: Record<SignatureScheme, [number, number, number]> = {
  'slh-dsa-sha2-128f': [32, 64, 17_088],
  'sphincs-shake256-256s-robust': [64, 128, 29_792],
};

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[index] ^= 0x01;
  return copy;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** Runs `fn` while a 10 ms interval ticks on this thread; reports how well the event loop kept up. */
async function withTicker<T>(fn: () => Promise<T>): Promise<{ value: T; ticks: number; elapsedMs: number; maxGapMs: number }> {
  let ticks = 0;
  let last = performance.now();
  let maxGapMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    ticks++;
  }, 10);
  const start = performance.now();
  try {
    const value = await fn();
    const end = performance.now();
    maxGapMs = Math.max(maxGapMs, end - last);
    return { value, ticks, elapsedMs: end - start, maxGapMs };
  } finally {
    clearInterval(timer);
  }
}

/** The sphincs package's own sizes, read in a throwaway worker (loading it installs process-wide hooks). */
function sphincsPackageSizes(): Promise<{ bytes: number; publicKeyBytes: number; privateKeyBytes: number }> {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const { createRequire } = require('node:module');
    const { sphincs } = createRequire(${JSON.stringify(join(ROOT, 'package.json'))})('sphincs');
    Promise.all([sphincs.bytes, sphincs.publicKeyBytes, sphincs.privateKeyBytes])
      .then(([bytes, publicKeyBytes, privateKeyBytes]) => parentPort.postMessage({ bytes, publicKeyBytes, privateKeyBytes }));
  `;
  return new Promise((res, rej) => {
    const w = new Worker(code, { eval: true });
    w.once('message', (m) => {
      res(m);
      void w.terminate();
    });
    w.once('error', rej);
  });
}

// ---------------------------------------------------------------------------------------------

describe('signature schemes and sizes', () => {
  it('when the scheme list is compared with the configuration schema, then they name the same schemes', () => {
    expect([...SIGNATURE_SCHEMES].sort()).toEqual([...CONFIG_SIGNATURES].sort());
  });

  it('when the sizes are measured from @noble/post-quantum, then slh-dsa-sha2-128f matches the table', () => {
    const [pk, sk, sig] = STANDARD_SIZES['slh-dsa-sha2-128f'];
    expect(slh_dsa_sha2_128f.lengths).toMatchObject({ publicKey: pk, secretKey: sk, signature: sig });
    expect(SCHEME_SIZES['slh-dsa-sha2-128f']).toEqual({ publicKey: pk, secretKey: sk, signature: sig });
  });

  it('when the sizes are measured from the sphincs package, then they match the table (its 2-byte length prefix removed)', async () => {
    const [pk, sk, sig] = STANDARD_SIZES['sphincs-shake256-256s-robust'];
    const lib = await sphincsPackageSizes();
    expect(lib).toEqual({ bytes: sig + 2, publicKeyBytes: pk, privateKeyBytes: sk });
    expect(SCHEME_SIZES['sphincs-shake256-256s-robust']).toEqual({ publicKey: pk, secretKey: sk, signature: sig });
  });
});

describe.each(SIGNATURE_SCHEMES)('SignaturePool with %s', (scheme) => {
  const sizes = SCHEME_SIZES[scheme];
  let pool: SignaturePool;
  let keys: KeyPair;
  let other: KeyPair;
  let signature: Uint8Array;
  let during: { ticks: number; elapsedMs: number; maxGapMs: number };
  let secretKeyBefore: Uint8Array;

  beforeAll(async () => {
    pool = SignaturePool.create(scheme, { workers: 2 });
    keys = await generateKeyPair(scheme, pool);
    other = await generateKeyPair(scheme, pool);
    secretKeyBefore = new Uint8Array(keys.secretKey);
    const r = await withTicker(() => pool.sign(MESSAGE, keys.secretKey)); // the suite's only sphincs signature
    signature = r.value;
    during = { ticks: r.ticks, elapsedMs: r.elapsedMs, maxGapMs: r.maxGapMs };
  }, 60_000);

  afterAll(async () => {
    await pool?.close();
  });

  it('when key pairs are generated, then they have the scheme sizes and differ', () => {
    expect(keys.publicKey.length).toBe(sizes.publicKey);
    expect(keys.secretKey.length).toBe(sizes.secretKey);
    expect(hex(other.secretKey)).not.toBe(hex(keys.secretKey));
  });

  it('when a message is signed, then the signature has the scheme size and verifies with the public key', async () => {
    expect(signature).toBeInstanceOf(Uint8Array);
    expect(signature.length).toBe(sizes.signature);
    await expect(pool.verify(signature, MESSAGE, keys.publicKey)).resolves.toBe(true);
  });

  it('when a message is signed, then the caller\'s key and message buffers are neither detached nor changed', () => {
    expect(keys.secretKey.length).toBe(sizes.secretKey);
    expect(hex(keys.secretKey)).toBe(hex(secretKeyBefore));
    expect(MESSAGE.length).toBe(1024);
  });

  it('when one bit of the message is altered, then verify is false', async () => {
    await expect(pool.verify(signature, flip(MESSAGE, 0), keys.publicKey)).resolves.toBe(false);
    await expect(pool.verify(signature, flip(MESSAGE, 1023), keys.publicKey)).resolves.toBe(false);
    await expect(pool.verify(signature, MESSAGE.subarray(0, 1023), keys.publicKey)).resolves.toBe(false);
  });

  it('when one bit of the signature is altered, then verify is false', async () => {
    for (const i of [0, 100, Math.floor(sizes.signature / 2), sizes.signature - 1]) {
      await expect(pool.verify(flip(signature, i), MESSAGE, keys.publicKey)).resolves.toBe(false);
    }
  });

  it('when verified with another key pair\'s public key, then verify is false', async () => {
    await expect(pool.verify(signature, MESSAGE, other.publicKey)).resolves.toBe(false);
  });

  it('when the signature is truncated, extended, empty, garbage or not bytes, then verify is false and does not throw', async () => {
    const extended = new Uint8Array(sizes.signature + 1);
    extended.set(signature);
    const bad: unknown[] = [
      signature.subarray(0, sizes.signature - 1),
      signature.subarray(0, 10),
      extended,
      new Uint8Array(0),
      new Uint8Array(randomBytes(sizes.signature)),
      new Uint8Array(sizes.signature),
      new Uint8Array(sizes.signature).fill(0xff),
      undefined,
      'not a signature',
    ];
    for (const sig of bad) {
      await expect(pool.verify(sig as Uint8Array, MESSAGE, keys.publicKey)).resolves.toBe(false);
    }
  });

  it('when the secret key has the wrong length, then sign rejects with a RangeError that names the length, not the bytes', async () => {
    const short = keys.secretKey.subarray(0, sizes.secretKey - 1);
    const err = await pool.sign(MESSAGE, short).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RangeError);
    expect(String((err as Error).message)).toContain(String(sizes.secretKey));
    expect((err as Error).message).not.toContain(hex(short).slice(0, 16));
  });

  it('when the public key has the wrong length, then verify rejects (a configuration error, not a bad signature)', async () => {
    await expect(pool.verify(signature, MESSAGE, keys.publicKey.subarray(1))).rejects.toThrow(RangeError);
  });

  if (scheme === 'sphincs-shake256-256s-robust') {
    it('when a SPHINCS+ signature is computed, then the event loop keeps ticking every 10 ms meanwhile', () => {
      // Signing takes seconds; on this thread it would produce one gap of that length and ~no ticks.
      expect(during.elapsedMs).toBeGreaterThan(500);
      expect(during.ticks).toBeGreaterThanOrEqual(Math.floor((during.elapsedMs / 10) * 0.25));
      expect(during.maxGapMs).toBeLessThan(1000);
    });
  }
});

describe('SignaturePool dispatch and failures (slh-dsa-sha2-128f)', () => {
  const scheme: SignatureScheme = 'slh-dsa-sha2-128f';
  let keys: KeyPair;
  let tmp: string;

  beforeAll(async () => {
    keys = await generateKeyPair(scheme);
    tmp = mkdtempSync(join(tmpdir(), 'qkdm-sig-'));
  });

  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('when more signs are requested than there are workers, then all are queued, complete and verify', async () => {
    const pool = SignaturePool.create(scheme, { workers: 2 });
    try {
      const messages = Array.from({ length: 5 }, (_, i) => new Uint8Array(randomBytes(100 + i)));
      const pending = messages.map((m) => pool.sign(m, keys.secretKey));
      expect(pool.pending).toBe(5);
      const sigs = await Promise.all(pending);
      expect(pool.pending).toBe(0);
      const checks = await Promise.all(sigs.map((s, i) => pool.verify(s, messages[i]!, keys.publicKey)));
      expect(checks).toEqual([true, true, true, true, true]);
      // Each signature belongs to its own message.
      await expect(pool.verify(sigs[0]!, messages[1]!, keys.publicKey)).resolves.toBe(false);
    } finally {
      await pool.close();
    }
  });

  it('when a worker crashes during a sign, then that call rejects without key material and the worker is replaced', async () => {
    const crashing = join(tmp, 'crashingWorker.mjs');
    writeFileSync(crashing, [
      "import { parentPort } from 'node:worker_threads';",
      "parentPort.on('message', (req) => {",
      "  if (req.op === 'sign' && req.message.length === 3 && req.message[0] === 0xde) process.exit(70);",
      '});',
      `await import(${JSON.stringify(resolveSignWorkerUrl().href)});`,
    ].join('\n'));
    const pool = SignaturePool.create(scheme, { workers: 1, workerUrl: pathToFileURL(crashing) });
    try {
      const err = await pool.sign(new Uint8Array([0xde, 0xad, 0x01]), keys.secretKey).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      const text = `${(err as Error).message} ${(err as Error).stack ?? ''}`;
      expect(text).toMatch(/exited with code 70 during sign/);
      expect(text).not.toContain(hex(keys.secretKey).slice(0, 16));
      expect(text).not.toContain(b64(keys.secretKey).slice(0, 16));
      expect(text).not.toContain('dead01');

      const sig = await pool.sign(MESSAGE, keys.secretKey);
      await expect(pool.verify(sig, MESSAGE, keys.publicKey)).resolves.toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('when the worker cannot start, then calls reject with the cause instead of hanging', async () => {
    const broken = join(tmp, 'brokenWorker.mjs');
    writeFileSync(broken, "throw new Error('this worker cannot start');\n");
    const pool = SignaturePool.create(scheme, { workers: 1, workerUrl: pathToFileURL(broken) });
    try {
      await expect(pool.sign(MESSAGE, keys.secretKey)).rejects.toThrow(/failed to start 3 times: this worker cannot start/);
      await expect(pool.verify(new Uint8Array(SCHEME_SIZES[scheme].signature), MESSAGE, keys.publicKey)).rejects.toThrow(/failed to start/);
    } finally {
      await pool.close();
    }
  });

  it('when the pool is closed during a sign, then that call and later calls reject with "SignaturePool closed"', async () => {
    const pool = SignaturePool.create(scheme);
    const inFlight = expect(pool.sign(MESSAGE, keys.secretKey)).rejects.toThrow('SignaturePool closed');
    const queued = expect(pool.sign(MESSAGE, keys.secretKey)).rejects.toThrow('SignaturePool closed');
    await new Promise((r) => setTimeout(r, 50));
    expect(pool.pending).toBe(2);
    await pool.close();
    await inFlight;
    await queued;
    await expect(pool.sign(MESSAGE, keys.secretKey)).rejects.toThrow('SignaturePool closed');
    await expect(pool.close()).resolves.toBeUndefined();
  });

  it('when the scheme or the worker count is invalid, then create throws', () => {
    expect(() => SignaturePool.create('rsa' as SignatureScheme)).toThrow(TypeError);
    expect(() => SignaturePool.create(scheme, { workers: 0 })).toThrow(RangeError);
    expect(() => SignaturePool.create(scheme, { workers: 1.5 })).toThrow(RangeError);
  });
});

describe('resolveSignWorkerUrl', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'qkdm-sigroot-'));
    writeFileSync(join(root, 'package.json'), '{}');
    mkdirSync(join(root, 'src', 'crypto'), { recursive: true });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const sourceUrl = (): string => pathToFileURL(join(root, 'src', 'crypto', 'signatures.ts')).href;

  it('when running from compiled JS, then the worker is the sibling signWorker.js', () => {
    expect(resolveSignWorkerUrl('file:///opt/app/dist/src/crypto/signatures.js').href)
      .toBe('file:///opt/app/dist/src/crypto/signWorker.js');
  });

  it('when running from .ts sources without a build, then it says to run npm run build first', () => {
    expect(() => resolveSignWorkerUrl(sourceUrl())).toThrow(/run npm run build first/);
  });

  it('when running from .ts sources after a build, then it points into dist/ under the package root', () => {
    mkdirSync(join(root, 'dist', 'src', 'crypto'), { recursive: true });
    writeFileSync(join(root, 'dist', 'src', 'crypto', 'signWorker.js'), '');
    expect(resolveSignWorkerUrl(sourceUrl()).href)
      .toBe(pathToFileURL(join(root, 'dist', 'src', 'crypto', 'signWorker.js')).href);
  });
});

describe('parseKeyMaterial / encodeKey', () => {
  const scheme: SignatureScheme = 'slh-dsa-sha2-128f';
  const sk = new Uint8Array(randomBytes(64));
  const pk = new Uint8Array(randomBytes(32));

  /** The error, checked to be a KeyMaterialError that names the field and length and never echoes the value. */
  function rejectText(text: string, what: 'private_key' | 'public_key', s: SignatureScheme = scheme): KeyMaterialError {
    let caught: unknown;
    try {
      parseKeyMaterial(text, what, s);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(KeyMaterialError);
    const err = caught as KeyMaterialError;
    const expected = what === 'private_key' ? SCHEME_SIZES[s].secretKey : SCHEME_SIZES[s].publicKey;
    expect(err.message).toContain(what);
    expect(err.message).toContain(`${expected} bytes`);
    expect(err.field).toBe(what);
    expect(err.expectedBytes).toBe(expected);
    const core = text.replace(/\s+/g, '').replace(/^0x/i, '');
    if (core.length >= 6) expect(err.message).not.toContain(core.slice(0, 6));
    if (core.length > 0) expect(err.message).not.toContain(core);
    return err;
  }

  it('when given hex (lower, upper, 0x-prefixed, wrapped over lines), then it returns the bytes', () => {
    const h = hex(sk);
    for (const text of [h, h.toUpperCase(), `0x${h}`, `0X${h}`, `  ${h.slice(0, 64)}\n  ${h.slice(64)}\n`]) {
      expect(hex(parseKeyMaterial(text, 'private_key', scheme))).toBe(h);
    }
    expect(hex(parseKeyMaterial(hex(pk), 'public_key', scheme))).toBe(hex(pk));
  });

  it('when given base64 (standard, URL-safe, unpadded), then it returns the bytes', () => {
    const std = b64(sk);
    const url = Buffer.from(sk).toString('base64url');
    for (const text of [std, std.replace(/=+$/, ''), url, `${url}==`]) {
      expect(hex(parseKeyMaterial(text, 'private_key', scheme))).toBe(hex(sk));
    }
  });

  it('when the decoded length is wrong for the field or the scheme, then a KeyMaterialError names the field and the expected length', () => {
    rejectText(hex(pk), 'private_key'); // a public key where the secret key belongs
    rejectText(hex(sk), 'public_key');
    rejectText(`0x${hex(sk)}00`, 'private_key');
    rejectText(b64(sk.subarray(0, 63)), 'private_key');
    rejectText(hex(sk), 'private_key', 'sphincs-shake256-256s-robust');
    expect(rejectText(hex(sk.subarray(0, 40)), 'private_key').message).toContain('40 bytes');
  });

  it('when given garbage, then a KeyMaterialError is thrown without the value', () => {
    for (const text of ['', '   ', 'not a key at all!', `0x${hex(sk).slice(0, 127)}z`, `${hex(sk).slice(1)}`, 'ab$cd'.repeat(20), '====']) {
      rejectText(text, 'private_key');
    }
  });

  it('when sphincs keys are given, then its lengths (128 / 64 bytes) apply', () => {
    const sk2 = new Uint8Array(randomBytes(128));
    expect(hex(parseKeyMaterial(b64(sk2), 'private_key', 'sphincs-shake256-256s-robust'))).toBe(hex(sk2));
    rejectText(hex(sk2), 'public_key', 'sphincs-shake256-256s-robust');
  });

  it('when bytes are encoded, then encodeKey gives lower-case hex that parses back', () => {
    const view = new Uint8Array(randomBytes(80)).subarray(8, 72);
    const text = encodeKey(view);
    expect(text).toMatch(/^[0-9a-f]{128}$/);
    expect(hex(parseKeyMaterial(text, 'private_key', scheme))).toBe(hex(view));
  });
});

describe('scripts/keygen', () => {
  const KEYGEN = join(ROOT, 'dist', 'scripts', 'keygen.js');
  const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((res) => {
      execFile(process.execPath, [KEYGEN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
        res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
    });

  it('when run with the default scheme, then it prints YAML whose keys parse and sign/verify', async () => {
    const r = await run([]);
    expect(r.code).toBe(0);
    const doc = loadYaml(r.stdout, { schema: CORE_SCHEMA }) as { simulator: Record<string, unknown> };
    expect(doc.simulator.signature).toBe('slh-dsa-sha2-128f');
    expect(doc.simulator.private_key).toMatch(/^[0-9a-f]{128}$/);
    // The public key is for the PEER module: printed as a comment, so pasting the fragment here cannot set it.
    expect(doc.simulator.public_key).toBeUndefined();
    const peerLine = /^#\s+public_key: "([0-9a-f]{64})"$/m.exec(r.stdout);
    expect(peerLine).not.toBeNull();
    expect(r.stdout).toMatch(/PEER module/);
    const sk = parseKeyMaterial(String(doc.simulator.private_key), 'private_key', 'slh-dsa-sha2-128f');
    const pk = parseKeyMaterial(peerLine![1]!, 'public_key', 'slh-dsa-sha2-128f');
    const sig = slh_dsa_sha2_128f.sign(MESSAGE, sk);
    expect(slh_dsa_sha2_128f.verify(sig, MESSAGE, pk)).toBe(true);
  });

  it('when run with --scheme sphincs-shake256-256s-robust, then the keys have its lengths', async () => {
    const r = await run(['--scheme', 'sphincs-shake256-256s-robust']);
    expect(r.code).toBe(0);
    const doc = loadYaml(r.stdout, { schema: CORE_SCHEMA }) as { simulator: Record<string, unknown> };
    expect(doc.simulator.signature).toBe('sphincs-shake256-256s-robust');
    expect(doc.simulator.private_key).toMatch(/^[0-9a-f]{256}$/);
    expect(r.stdout).toMatch(/^#\s+public_key: "[0-9a-f]{128}"$/m);
  });

  it('when run with an unknown scheme, then it exits 2 with a message listing the schemes', async () => {
    const r = await run(['--scheme', 'rsa-2048']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('unknown scheme "rsa-2048"');
    expect(r.stderr).toContain('slh-dsa-sha2-128f');
  });
});
