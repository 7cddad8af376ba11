/**
 * Post-quantum signatures for the classical channel, computed in worker threads.
 *
 * Schemes
 * - 'slh-dsa-sha2-128f': FIPS 205 SLH-DSA-SHA2-128f (pure, empty context, hedged randomness) from
 *   `@noble/post-quantum`. Sign ~0.1 s, verify ~10 ms.
 * - 'sphincs-shake256-256s-robust': round-3 SPHINCS+-SHAKE256-256s-robust from the `sphincs` npm package
 *   (PQClean in WASM). Sign ~3.5 s, verify ~5 ms. Not interchangeable with FIPS 205 signatures.
 *   The package returns a 29794-byte signature: a 2-byte little-endian length prefix (always 29792) followed
 *   by the PQClean signature. Our wire format is the bare 29792-byte PQClean signature: the prefix is
 *   removed after signing and re-added before verifying (so sizes match the usual SPHINCS+ tables).
 *
 * Both libraries compute synchronously (the `sphincs` promises resolve only after the whole computation), so
 * a signature computed on the main thread stalls every HTTP request for its duration. SignaturePool runs every
 * sign / verify / keygen in `node:worker_threads` workers instead:
 * - requests are queued and dispatched one at a time to idle workers (FIFO);
 * - messages travel by structured clone; the pool copies the caller's message and secret key into fresh
 *   buffers and transfers those copies (the caller's buffers are never detached), and the worker zeroes its
 *   copy of the secret key after use;
 * - secret keys are sent with each sign call (nothing is registered in the workers, so a replaced worker
 *   needs no state);
 * - a worker that dies fails only the call it was running (an Error without key material) and is replaced;
 *   a worker that cannot even start three times in a row fails the pool (all pending and later calls reject);
 * - idle workers are unref'd: an idle pool does not keep the process alive, a busy one does.
 *
 * The worker code is the compiled `signWorker.js` next to this file. When this module runs from its .ts
 * source (vitest), the worker is taken from the compiled tree instead (dist/src/crypto/signWorker.js, found
 * by walking up to package.json); if that file is missing the pool throws "... run npm run build first".
 *
 * Nothing here logs, and no error message contains key, message or signature bytes (lengths at most).
 * The crypto libraries are loaded lazily (only by loadDirectBackend), so importing this module on the main
 * thread loads neither of them; the `sphincs` package in particular installs a process-wide
 * 'uncaughtException' listener when loaded, which is one more reason to keep it inside workers.
 */
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { packageRootOf } from '../packageRoot.js';

// ---------------------------------------------------------------------------------------------
// Schemes and sizes
// ---------------------------------------------------------------------------------------------

export type SignatureScheme = 'slh-dsa-sha2-128f' | 'sphincs-shake256-256s-robust';

export const SIGNATURE_SCHEMES: readonly SignatureScheme[] = Object.freeze([
  'slh-dsa-sha2-128f',
  'sphincs-shake256-256s-robust',
] as const);

export function isSignatureScheme(value: unknown): value is SignatureScheme {
  return typeof value === 'string' && (SIGNATURE_SCHEMES as readonly string[]).includes(value);
}

/** Byte lengths of the key material and signatures of one scheme. */
export interface SchemeSizes {
  readonly publicKey: number;
  readonly secretKey: number;
  readonly signature: number;
}

/** Exact sizes (bytes); checked against both libraries in test/crypto/signatures.test.ts. */
export const SCHEME_SIZES: Readonly<Record<SignatureScheme, SchemeSizes>> = Object.freeze({
  'slh-dsa-sha2-128f': Object.freeze({ publicKey: 32, secretKey: 64, signature: 17_088 }),
  'sphincs-shake256-256s-robust': Object.freeze({ publicKey: 64, secretKey: 128, signature: 29_792 }),
});

/**
 * Largest message accepted for sign/verify (bytes). The `sphincs` WASM heap is small (about 16 MiB; a 20 MB
 * message aborts with OOM), so its limit is 4 MiB; hash larger payloads first.
 */
export const MAX_MESSAGE_BYTES: Readonly<Record<SignatureScheme, number>> = Object.freeze({
  'slh-dsa-sha2-128f': 64 * 1024 * 1024,
  'sphincs-shake256-256s-robust': 4 * 1024 * 1024,
});

export interface KeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Direct (in-thread) backends: used by the worker and by the benchmark
// ---------------------------------------------------------------------------------------------

/**
 * One scheme computed in the calling thread. Every call blocks that thread for the whole computation:
 * use SignaturePool on a thread that serves requests.
 * Lengths are checked here too (the WASM library would read or write past its buffers otherwise):
 * a wrong secret / public key length throws a RangeError, a wrong signature length verifies as false.
 */
export interface SignatureBackend {
  readonly scheme: SignatureScheme;
  keyPair(): Promise<KeyPair>;
  sign(message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array>;
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<boolean>;
}

function checkKeyLength(scheme: SignatureScheme, what: 'secretKey' | 'publicKey', key: unknown): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  const expected = SCHEME_SIZES[scheme][what];
  if (key.length !== expected) {
    throw new RangeError(`${what} must be ${expected} bytes for ${scheme}, got ${key.length}`);
  }
}

function checkMessage(scheme: SignatureScheme, message: unknown): asserts message is Uint8Array {
  if (!(message instanceof Uint8Array)) throw new TypeError('message must be a Uint8Array');
  if (message.length > MAX_MESSAGE_BYTES[scheme]) {
    throw new RangeError(`message too long for ${scheme}: ${message.length} bytes, at most ${MAX_MESSAGE_BYTES[scheme]}`);
  }
}

function hasSignatureShape(scheme: SignatureScheme, signature: unknown): signature is Uint8Array {
  return signature instanceof Uint8Array && signature.length === SCHEME_SIZES[scheme].signature;
}

async function nobleBackend(): Promise<SignatureBackend> {
  const { slh_dsa_sha2_128f: slh } = await import('@noble/post-quantum/slh-dsa.js');
  const scheme: SignatureScheme = 'slh-dsa-sha2-128f';
  return {
    scheme,
    async keyPair() {
      const { publicKey, secretKey } = slh.keygen();
      return { publicKey: Uint8Array.from(publicKey), secretKey: Uint8Array.from(secretKey) };
    },
    async sign(message, secretKey) {
      checkMessage(scheme, message);
      checkKeyLength(scheme, 'secretKey', secretKey);
      return Uint8Array.from(slh.sign(message, secretKey));
    },
    async verify(signature, message, publicKey) {
      checkMessage(scheme, message);
      checkKeyLength(scheme, 'publicKey', publicKey);
      if (!hasSignatureShape(scheme, signature)) return false;
      try {
        return slh.verify(signature, message, publicKey) === true;
      } catch {
        return false;
      }
    },
  };
}

async function sphincsBackend(): Promise<SignatureBackend> {
  // The package's named export fails at run time in Node (CommonJS): take it from the default export.
  const sphincs = (await import('sphincs')).default.sphincs;
  const scheme: SignatureScheme = 'sphincs-shake256-256s-robust';
  const sigBytes = SCHEME_SIZES[scheme].signature;
  const wrapped = await sphincs.bytes;
  if (wrapped !== sigBytes + 2 || (await sphincs.publicKeyBytes) !== SCHEME_SIZES[scheme].publicKey
    || (await sphincs.privateKeyBytes) !== SCHEME_SIZES[scheme].secretKey) {
    throw new Error('the installed sphincs package does not have the expected SPHINCS+-SHAKE256-256s sizes');
  }
  return {
    scheme,
    async keyPair() {
      const { publicKey, privateKey } = await sphincs.keyPair();
      return { publicKey, secretKey: privateKey };
    },
    async sign(message, secretKey) {
      checkMessage(scheme, message);
      checkKeyLength(scheme, 'secretKey', secretKey);
      const out = await sphincs.signDetached(message, secretKey);
      // Strip the package's 2-byte little-endian length prefix (see the module comment).
      if (out.length !== sigBytes + 2 || (out[0]! | (out[1]! << 8)) !== sigBytes) {
        throw new Error('sphincs returned a signature of an unexpected shape');
      }
      return out.slice(2);
    },
    async verify(signature, message, publicKey) {
      checkMessage(scheme, message);
      checkKeyLength(scheme, 'publicKey', publicKey);
      if (!hasSignatureShape(scheme, signature)) return false;
      const framed = new Uint8Array(sigBytes + 2);
      framed[0] = sigBytes & 0xff;
      framed[1] = sigBytes >>> 8;
      framed.set(signature, 2);
      try {
        return (await sphincs.verifyDetached(framed, message, publicKey)) === true;
      } catch {
        return false;
      }
    },
  };
}

const backends = new Map<SignatureScheme, Promise<SignatureBackend>>();

/** Loads (once per thread) the library of one scheme. Blocking: see SignatureBackend. */
export function loadDirectBackend(scheme: SignatureScheme): Promise<SignatureBackend> {
  if (!isSignatureScheme(scheme)) return Promise.reject(new TypeError(`unknown signature scheme (expected one of ${SIGNATURE_SCHEMES.join(', ')})`));
  let p = backends.get(scheme);
  if (!p) {
    p = scheme === 'slh-dsa-sha2-128f' ? nobleBackend() : sphincsBackend();
    p.catch(() => backends.delete(scheme));
    backends.set(scheme, p);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Worker protocol (shared with signWorker.ts)
// ---------------------------------------------------------------------------------------------

/** Bumped whenever the messages below change: catches a stale dist/ build used from the .ts sources. */
export const WORKER_PROTOCOL = 1;

export interface WorkerInit {
  scheme: SignatureScheme;
  protocol: number;
}

export type WorkerRequest =
  | { id: number; op: 'sign'; message: Uint8Array; secretKey: Uint8Array }
  | { id: number; op: 'verify'; signature: Uint8Array; message: Uint8Array; publicKey: Uint8Array }
  | { id: number; op: 'keygen' };

export type WorkerReply =
  | { type: 'ready'; protocol: number }
  | { type: 'result'; id: number; ok: true; value: Uint8Array | boolean | KeyPair }
  | { type: 'result'; id: number; ok: false; error: string };

// ---------------------------------------------------------------------------------------------
// Worker file resolution
// ---------------------------------------------------------------------------------------------

/**
 * The URL of the compiled worker for a module at `moduleUrl` (default: this module).
 * From compiled JS: the sibling signWorker.js. From a .ts source: the same relative place under
 * <package root>/dist/, which must exist (throws "... run npm run build first" otherwise).
 */
export function resolveSignWorkerUrl(moduleUrl: string = import.meta.url): URL {
  if (!/\.[cm]?ts$/.test(new URL(moduleUrl).pathname)) return new URL('./signWorker.js', moduleUrl);
  const here = dirname(fileURLToPath(moduleUrl));
  const root = packageRootOf(moduleUrl);
  if (root === null) throw new Error(`cannot locate the signature worker: no package.json above ${here}`);
  const compiled = join(root, 'dist', relative(root, here), 'signWorker.js');
  if (!existsSync(compiled)) {
    throw new Error(`the signature worker is not built (${compiled} is missing): run npm run build first`);
  }
  return pathToFileURL(compiled);
}

// ---------------------------------------------------------------------------------------------
// The pool
// ---------------------------------------------------------------------------------------------

export interface SignaturePoolOptions {
  /** Worker threads (default 1). Each runs one computation at a time. */
  workers?: number;
  /** Advanced / tests: a worker script speaking the signWorker protocol (default: resolveSignWorkerUrl()). */
  workerUrl?: URL;
}

interface Job {
  request: WorkerRequest;
  transfer: ArrayBuffer[];
  /** The pool's own copy of a secret key: zeroed if the job never reaches a worker. */
  wipe?: Uint8Array;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Job | null;
  startError?: string;
}

const MAX_WORKERS = 64;
const MAX_START_FAILURES = 3;

export class SignaturePool {
  readonly scheme: SignatureScheme;
  readonly size: number;
  readonly #workerUrl: URL;
  readonly #slots = new Set<Slot>();
  readonly #queue: Job[] = [];
  #nextId = 1;
  #startFailures = 0;
  #failure: Error | null = null;
  #closed: Promise<void> | null = null;

  private constructor(scheme: SignatureScheme, size: number, workerUrl: URL) {
    this.scheme = scheme;
    this.size = size;
    this.#workerUrl = workerUrl;
    for (let i = 0; i < size; i++) this.#spawn();
  }

  /**
   * Starts `workers` worker threads (default 1) for `scheme`. Throws synchronously for an unknown scheme,
   * a bad worker count, or a missing compiled worker.
   */
  static create(scheme: SignatureScheme, opts: SignaturePoolOptions = {}): SignaturePool {
    if (!isSignatureScheme(scheme)) {
      throw new TypeError(`unknown signature scheme (expected one of ${SIGNATURE_SCHEMES.join(', ')})`);
    }
    const size = opts.workers ?? 1;
    if (!Number.isSafeInteger(size) || size < 1 || size > MAX_WORKERS) {
      throw new RangeError(`workers must be an integer from 1 to ${MAX_WORKERS}`);
    }
    return new SignaturePool(scheme, size, opts.workerUrl ?? resolveSignWorkerUrl());
  }

  get sizes(): SchemeSizes {
    return SCHEME_SIZES[this.scheme];
  }

  /** Calls queued or running. */
  get pending(): number {
    let n = this.#queue.length;
    for (const s of this.#slots) if (s.job) n++;
    return n;
  }

  /**
   * Signs `message` with `secretKey` (exactly sizes.secretKey bytes) in a worker.
   * Rejects with TypeError / RangeError for wrong argument types or lengths, with an Error if the worker
   * crashes or the pool is closed. The caller's buffers are copied, never detached or modified.
   */
  async sign(message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array> {
    this.#checkOpen();
    checkMessage(this.scheme, message);
    checkKeyLength(this.scheme, 'secretKey', secretKey);
    const msg = new Uint8Array(message);
    const sk = new Uint8Array(secretKey);
    return (await this.#submit(
      { id: 0, op: 'sign', message: msg, secretKey: sk },
      [msg.buffer, sk.buffer],
      sk,
    )) as Uint8Array;
  }

  /**
   * Verifies in a worker. Resolves false for a wrong signature, including signatures of the wrong length
   * or type (never rejects for bad signature bytes). Rejects with TypeError / RangeError for a message that
   * is not bytes or too long, or a public key of the wrong length (a configuration error, not a bad
   * signature); with an Error if the worker crashes or the pool is closed.
   */
  async verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<boolean> {
    this.#checkOpen();
    checkMessage(this.scheme, message);
    checkKeyLength(this.scheme, 'publicKey', publicKey);
    if (!hasSignatureShape(this.scheme, signature)) return false;
    const sig = new Uint8Array(signature);
    const msg = new Uint8Array(message);
    const pk = new Uint8Array(publicKey);
    return (await this.#submit(
      { id: 0, op: 'verify', signature: sig, message: msg, publicKey: pk },
      [sig.buffer, msg.buffer, pk.buffer],
    )) as boolean;
  }

  /** Generates a key pair in a worker (the sphincs keygen takes ~0.3 s). */
  async generateKeyPair(): Promise<KeyPair> {
    this.#checkOpen();
    return (await this.#submit({ id: 0, op: 'keygen' }, [])) as KeyPair;
  }

  /**
   * Stops the workers at once. Calls still queued or running reject with Error('SignaturePool closed');
   * later calls reject the same way. Idempotent.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      const err = (): Error => new Error('SignaturePool closed');
      for (const job of this.#queue.splice(0)) this.#abandon(job, err());
      const slots = [...this.#slots];
      for (const s of slots) {
        if (s.job) {
          const job = s.job;
          s.job = null;
          job.reject(err());
        }
      }
      this.#closed = Promise.all(slots.map((s) => s.worker.terminate())).then(() => undefined);
    }
    return this.#closed;
  }

  // -------------------------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closed) throw new Error('SignaturePool closed');
    if (this.#failure) throw this.#failure;
  }

  #submit(request: WorkerRequest, transfer: ArrayBuffer[], wipe?: Uint8Array): Promise<unknown> {
    request.id = this.#nextId++;
    return new Promise<unknown>((resolve, reject) => {
      this.#queue.push({ request, transfer, wipe, resolve, reject });
      this.#dispatch();
    });
  }

  #abandon(job: Job, error: Error): void {
    job.wipe?.fill(0);
    job.reject(error);
  }

  #spawn(): void {
    const init: WorkerInit = { scheme: this.scheme, protocol: WORKER_PROTOCOL };
    const worker = new Worker(this.#workerUrl, { workerData: init });
    const slot: Slot = { worker, ready: false, job: null };
    this.#slots.add(slot);
    worker.on('message', (reply: WorkerReply) => this.#onMessage(slot, reply));
    worker.on('error', (err: unknown) => {
      // Only reported for a worker that has not started: it has not seen any key material.
      if (!slot.ready) slot.startError = err instanceof Error ? err.message : String(err);
    });
    worker.on('exit', (code: number) => this.#onExit(slot, code));
    this.#updateRefs();
  }

  #onMessage(slot: Slot, reply: WorkerReply): void {
    if (this.#closed) return;
    if (reply?.type === 'ready') {
      if (reply.protocol !== WORKER_PROTOCOL) {
        this.#fail(new Error(
          `the signature worker speaks protocol ${reply.protocol}, expected ${WORKER_PROTOCOL} (stale build?): run npm run build first`,
        ));
        return;
      }
      slot.ready = true;
      this.#startFailures = 0;
      this.#dispatch();
      return;
    }
    const job = slot.job;
    if (reply?.type !== 'result' || !job || job.request.id !== reply.id) return;
    slot.job = null;
    if (reply.ok) job.resolve(reply.value);
    else job.reject(new Error(reply.error));
    this.#dispatch();
  }

  #onExit(slot: Slot, code: number): void {
    this.#slots.delete(slot);
    if (this.#closed || this.#failure) return;
    const job = slot.job;
    slot.job = null;
    if (job) {
      job.reject(new Error(`signature worker (${this.scheme}) exited with code ${code} during ${job.request.op}; it was replaced`));
    }
    if (!slot.ready) {
      this.#startFailures++;
      if (this.#startFailures >= MAX_START_FAILURES) {
        this.#fail(new Error(
          `signature worker (${this.scheme}) failed to start ${this.#startFailures} times: ${slot.startError ?? `exit code ${code}`}`,
        ));
        return;
      }
    }
    this.#spawn();
    this.#dispatch();
  }

  /** Fatal: rejects everything and stops the workers; later calls reject with `error`. */
  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const job of this.#queue.splice(0)) this.#abandon(job, error);
    for (const s of [...this.#slots]) {
      if (s.job) {
        const job = s.job;
        s.job = null;
        job.reject(error);
      }
      void s.worker.terminate();
    }
  }

  #dispatch(): void {
    if (this.#closed || this.#failure) return;
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) break;
      if (!slot.ready || slot.job) continue;
      const job = this.#queue.shift()!;
      slot.job = job;
      try {
        slot.worker.postMessage(job.request, job.transfer);
      } catch {
        slot.job = null;
        this.#abandon(job, new Error(`cannot send the ${job.request.op} request to the signature worker`));
      }
    }
    this.#updateRefs();
  }

  /** Workers keep the process alive only while there is work queued or running. */
  #updateRefs(): void {
    const busy = this.#queue.length > 0 || [...this.#slots].some((s) => s.job !== null);
    for (const s of this.#slots) {
      if (busy) s.worker.ref();
      else s.worker.unref();
    }
  }
}
