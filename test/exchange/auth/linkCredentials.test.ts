/**
 * Link credential files (src/exchange/auth/linkCredentials.ts): a generated pair loads at its own end
 * only, hand-edited or mixed-up files are refused, and errors name peer_auth.credentials without ever
 * echoing key bytes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CREDENTIALS_FORMAT,
  CredentialsError,
  generateCredentialPair,
  keyFingerprint,
  loadLinkCredentials,
  type CredentialPair,
  type LinkCredentialsFile,
} from '../../../src/exchange/auth/linkCredentials.js';

let pair: CredentialPair;
let other: CredentialPair;
let dir: string;

beforeAll(async () => {
  [pair, other] = await Promise.all([generateCredentialPair(), generateCredentialPair('slh-dsa-sha2-128f', { sender: 'carol', detector: 'dave' })]);
  dir = mkdtempSync(join(tmpdir(), 'qkdm-creds-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const clone = (f: LinkCredentialsFile): LinkCredentialsFile => structuredClone(f);

function writeFile(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

/** The CredentialsError `fn` throws; fails the test when it throws nothing or something else. */
function errorOf(fn: () => unknown): CredentialsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CredentialsError);
    return err as CredentialsError;
  }
  throw new Error('expected a CredentialsError, nothing was thrown');
}

/** Every secret of every generated file: no error message may contain any of them. */
function secrets(): string[] {
  return [pair.sender.secret_key, pair.detector.secret_key, other.sender.secret_key, other.detector.secret_key];
}

function expectNoSecret(message: string): void {
  for (const s of secrets()) {
    expect(message).not.toContain(s);
    // Not even a recognisable part (the first 32 hex digits: SK.seed).
    expect(message).not.toContain(s.slice(0, 32));
  }
}

describe('generateCredentialPair', () => {
  it('when a pair is generated, then the two files name each other, share a link id and cross-reference their public keys', () => {
    expect(pair.sender.format).toBe(CREDENTIALS_FORMAT);
    expect(pair.sender.link_id).toBe(pair.detector.link_id);
    expect(pair.sender.link_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(pair.sender.this_module).toEqual({ name: 'alice', sender: 1 });
    expect(pair.detector.this_module).toEqual({ name: 'bob', sender: 0 });
    expect(pair.sender.peer_module).toEqual({ name: 'bob', sender: 0, public_key: pair.detector.public_key });
    expect(pair.detector.peer_module).toEqual({ name: 'alice', sender: 1, public_key: pair.sender.public_key });
    expect(pair.sender.secret_key).not.toBe(pair.detector.secret_key);
    expect(pair.sender.public_key).not.toBe(pair.detector.public_key);
    expect(other.sender.link_id).not.toBe(pair.sender.link_id);
  });

  it('when a pair is generated, then each file holds only its own secret (the peer\'s secret appears nowhere in it)', () => {
    expect(JSON.stringify(pair.sender)).not.toContain(pair.detector.secret_key);
    expect(JSON.stringify(pair.detector)).not.toContain(pair.sender.secret_key);
  });
});

describe('loadLinkCredentials', () => {
  it('when each generated file is loaded at its own end, then it loads with the expected fields and fingerprints', () => {
    const s = loadLinkCredentials(writeFile('sender.json', pair.sender), 1);
    const d = loadLinkCredentials(writeFile('detector.json', pair.detector), 0);
    expect(s.sender).toBe(1);
    expect(d.sender).toBe(0);
    expect(s.name).toBe('alice');
    expect(s.peerName).toBe('bob');
    expect(s.linkId).toBe(pair.sender.link_id);
    expect(s.scheme).toBe('slh-dsa-sha2-128f');
    expect(s.secretKey.length).toBe(64);
    expect(s.publicKey.length).toBe(32);
    expect(hex(s.secretKey)).toBe(pair.sender.secret_key);
    expect(hex(s.publicKey)).toBe(pair.sender.public_key);
    expect(hex(s.peerPublicKey)).toBe(pair.detector.public_key);
    expect(s.fingerprint).toMatch(/^[0-9a-f]{32}$/);
    expect(s.fingerprint).toBe(keyFingerprint(s.publicKey));
    expect(s.fingerprint).toBe(d.peerFingerprint);
    expect(d.fingerprint).toBe(s.peerFingerprint);
    expect(s.fingerprint).not.toBe(d.fingerprint);
  });

  it('when the sender file is loaded by the detector (and the other way round), then it is refused naming module.sender and asking for each module\'s own file', () => {
    for (const [file, expected, ownName] of [[pair.sender, 0, 'alice'], [pair.detector, 1, 'bob']] as const) {
      const err = errorOf(() => loadLinkCredentials(writeFile(`${ownName}-wrong-end.json`, file), expected));
      expect(err.message).toMatch(/^peer_auth\.credentials: /);
      expect(err.message).toContain('module.sender');
      expect(err.message).toContain(`'${ownName}'`);
      expect(err.message).toContain(`this module has module.sender ${expected}`);
      expect(err.message).toContain('give each module its own file');
      expectNoSecret(err.message);
    }
  });

  it('when JSON text (starting with "{", even after whitespace) is given instead of a path, then it loads the same as the file', () => {
    const fromText = loadLinkCredentials(JSON.stringify(pair.detector), 0);
    const fromIndented = loadLinkCredentials(`\n   ${JSON.stringify(pair.detector, null, 2)}\n`, 0);
    const fromFile = loadLinkCredentials(writeFile('detector-text.json', pair.detector), 0);
    expect(hex(fromText.secretKey)).toBe(hex(fromFile.secretKey));
    expect(fromText.fingerprint).toBe(fromFile.fingerprint);
    expect(fromIndented.peerFingerprint).toBe(fromFile.peerFingerprint);
  });

  it('when public_key is not the one of secret_key (the other module\'s key), then the file is refused', () => {
    const f = clone(pair.sender);
    f.public_key = pair.detector.public_key;
    f.peer_module.public_key = pair.sender.public_key; // still distinct from public_key
    const err = errorOf(() => loadLinkCredentials(JSON.stringify(f), 1));
    expect(err.message).toMatch(/^peer_auth\.credentials: public_key does not belong to secret_key/);
    expectNoSecret(err.message);
  });

  it('when secret_key comes from another pair but public_key is unchanged, then the file is refused', () => {
    const f = clone(pair.sender);
    f.secret_key = other.sender.secret_key;
    const err = errorOf(() => loadLinkCredentials(JSON.stringify(f), 1));
    expect(err.message).toContain('public_key does not belong to secret_key');
    expectNoSecret(err.message);
  });

  it('when peer_module.public_key is this module\'s own public key, then the file is refused', () => {
    const f = clone(pair.detector);
    f.peer_module.public_key = f.public_key;
    const err = errorOf(() => loadLinkCredentials(JSON.stringify(f), 0));
    expect(err.message).toMatch(/^peer_auth\.credentials: peer_module\.public_key is this module's own public key/);
    expectNoSecret(err.message);
  });

  it('when this_module and peer_module have the same sender, then the file is refused', () => {
    const f = clone(pair.sender);
    f.peer_module.sender = 1;
    const err = errorOf(() => loadLinkCredentials(JSON.stringify(f), 1));
    expect(err.message).toContain('same sender');
  });

  it('when format is another value, then the error names peer_auth.credentials and the format field', () => {
    const f = { ...clone(pair.sender), format: 'qkdm-link-credentials/2' };
    const err = errorOf(() => loadLinkCredentials(JSON.stringify(f), 1));
    expect(err.message).toBe(`peer_auth.credentials: format: expected "${CREDENTIALS_FORMAT}"`);
  });

  it('when the text is not JSON, then the error names peer_auth.credentials and says so', () => {
    const err = errorOf(() => loadLinkCredentials('{ "format": ', 1));
    expect(err.message).toBe('peer_auth.credentials: not a JSON credentials file');
    const fileErr = errorOf(() => loadLinkCredentials(writeFile('not-json.json', `secret_key: ${pair.sender.secret_key}\n`), 1));
    expect(fileErr.message).toBe('peer_auth.credentials: not a JSON credentials file');
    expectNoSecret(fileErr.message);
  });

  it('when the file does not exist, then the error names peer_auth.credentials, the path and how to create credentials', () => {
    const missing = join(dir, 'nope', 'missing.json');
    const err = errorOf(() => loadLinkCredentials(missing, 1));
    expect(err.message).toMatch(/^peer_auth\.credentials: cannot read /);
    expect(err.message).toContain(missing);
    expect(err.message).toContain('no such file');
    expect(err.message).toContain('npm run keygen -- --pair DIR');
  });

  it('when a custom field name is given, then errors name that field instead', () => {
    const err = errorOf(() => loadLinkCredentials(JSON.stringify(pair.sender), 0, 'QKDM_PEER_AUTH_CREDENTIALS'));
    expect(err.message).toMatch(/^QKDM_PEER_AUTH_CREDENTIALS: /);
  });

  it('when a field is missing or malformed, then the error names the field path and never the key bytes', () => {
    const cases: [string, (f: Record<string, any>) => void, RegExp][] = [
      ['missing secret_key', (f) => delete f.secret_key, /^peer_auth\.credentials: secret_key: /],
      ['upper-case secret_key', (f) => (f.secret_key = String(f.secret_key).toUpperCase()), /^peer_auth\.credentials: secret_key: expected lower-case hex$/],
      ['short secret_key', (f) => (f.secret_key = String(f.secret_key).slice(2)), /^peer_auth\.credentials: secret_key: expected 64 bytes of hex for slh-dsa-sha2-128f$/],
      ['odd-length public_key', (f) => (f.public_key = `${String(f.public_key)}0`), /^peer_auth\.credentials: public_key: expected 32 bytes/],
      ['bad peer key', (f) => (f.peer_module.public_key = 'zz'), /^peer_auth\.credentials: peer_module\.public_key: expected lower-case hex$/],
      ['unknown scheme', (f) => (f.signature = 'rsa'), /^peer_auth\.credentials: signature: expected one of /],
      ['sender 2', (f) => (f.this_module.sender = 2), /^peer_auth\.credentials: this_module\.sender: expected 0 or 1$/],
      ['bad link id', (f) => (f.link_id = 'link-1'), /^peer_auth\.credentials: link_id: expected a UUID$/],
      ['bad name', (f) => (f.peer_module.name = 'bob the module'), /^peer_auth\.credentials: peer_module\.name: /],
      // The key of the wrong scheme: SPHINCS+-256s keys are twice as long.
      ['other scheme', (f) => (f.signature = 'sphincs-shake256-256s-robust'), /^peer_auth\.credentials: secret_key: expected 128 bytes of hex for sphincs-shake256-256s-robust$/],
    ];
    for (const [what, edit, expected] of cases) {
      const f = clone(pair.sender) as unknown as Record<string, any>;
      edit(f);
      const err = errorOf(() => loadLinkCredentials(JSON.stringify(f), 1));
      expect(err.message, what).toMatch(expected);
      expectNoSecret(err.message);
    }
  });

  it('when a JSON array or a bare JSON value is given as text, then it is refused (not read as credentials)', () => {
    expect(errorOf(() => loadLinkCredentials(writeFile('array.json', [pair.sender]), 1)).message).toMatch(/^peer_auth\.credentials: file: /);
    expect(errorOf(() => loadLinkCredentials(writeFile('null.json', 'null'), 1)).message).toMatch(/^peer_auth\.credentials: file: /);
  });

  it('when key material is given where a path belongs (bare secret hex, quoted JSON, a JSON array), then the error does not echo it', () => {
    for (const value of [pair.sender.secret_key, `'${JSON.stringify(pair.sender)}'`, JSON.stringify([pair.sender])]) {
      const err = errorOf(() => loadLinkCredentials(value, 1));
      expect(err.message).toMatch(/^peer_auth\.credentials: cannot read \(the value, not shown/);
      expect(err.message).not.toContain(pair.sender.secret_key);
    }
  });

  it('when the file starts with a UTF-8 byte-order mark, then it loads', () => {
    const creds = loadLinkCredentials(writeFile('bom.json', `\uFEFF${JSON.stringify(pair.sender)}`), 1);
    expect(creds.name).toBe(pair.sender.this_module.name);
  });

  it('when the secret key is refused after decoding (mismatch), then the error does not contain the public key or secret key hex', () => {
    const f = clone(pair.detector);
    f.peer_module.public_key = f.public_key;
    const err = errorOf(() => loadLinkCredentials(writeFile('self-peer.json', f), 0));
    expect(err.message).not.toContain(f.public_key);
    expectNoSecret(err.message);
  });
});
