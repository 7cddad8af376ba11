/**
 * Worker thread of SignaturePool (see signatures.ts): computes one sign / verify / keygen at a time for the
 * scheme given in workerData, and replies { type: 'result', id, ok, value | error }.
 *
 * - Posts { type: 'ready', protocol } once the scheme's library is loaded; the pool dispatches only then.
 * - Zeroes its copy of the secret key after each sign.
 * - Error replies carry a fixed text plus the error class name and never any bytes; a failed verify is
 *   reported as false, not as an error.
 * - Nothing here logs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  isSignatureScheme,
  loadDirectBackend,
  WORKER_PROTOCOL,
  type WorkerInit,
  type WorkerReply,
  type WorkerRequest,
} from './signatures.js';

if (!parentPort) throw new Error('signWorker.js must be started as a worker thread by SignaturePool');
const port = parentPort;
const init = workerData as Partial<WorkerInit> | undefined;
if (!init || !isSignatureScheme(init.scheme)) throw new Error('signWorker.js: workerData.scheme is missing or unknown');

const backend = await loadDirectBackend(init.scheme);

function reply(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

async function handle(req: WorkerRequest): Promise<void> {
  const id = req.id;
  try {
    switch (req.op) {
      case 'sign': {
        try {
          const sig = await backend.sign(req.message, req.secretKey);
          reply({ type: 'result', id, ok: true, value: sig }, [sig.buffer as ArrayBuffer]);
        } finally {
          req.secretKey.fill(0);
        }
        return;
      }
      case 'verify': {
        let ok = false;
        try {
          ok = await backend.verify(req.signature, req.message, req.publicKey);
        } catch {
          ok = false;
        }
        reply({ type: 'result', id, ok: true, value: ok });
        return;
      }
      case 'keygen': {
        const kp = await backend.keyPair();
        reply({ type: 'result', id, ok: true, value: kp }, [kp.publicKey.buffer as ArrayBuffer, kp.secretKey.buffer as ArrayBuffer]);
        return;
      }
      default:
        reply({ type: 'result', id, ok: false, error: 'signature worker: unknown request' });
    }
  } catch (err) {
    const kind = err instanceof Error ? err.name : typeof err;
    reply({ type: 'result', id, ok: false, error: `signature worker: ${req.op} failed (${kind})` });
  }
}

// One request at a time: the pool sends the next only after this one's reply.
port.on('message', (req: WorkerRequest) => {
  void handle(req);
});
reply({ type: 'ready', protocol: WORKER_PROTOCOL });
