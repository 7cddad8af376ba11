/**
 * ETSI GS QKD 004 v2.1.1, JSON binding: OPEN_CONNECT, GET_KEY and CLOSE over the same core as the
 * seed API (a stream opened through one binding is read through the other).
 *
 * HTTP 200 whenever the call ran, whatever its ETSI status (0-8, docs/api.md); HTTP 400
 * `{code, message}` naming the field for a malformed body; errors the standard has no status for
 * (a store failure) answer with the error catalogue's HTTP status and `{code, message}`.
 */
import { clientGone } from '../clientGone.js';
import { Router, type Request, type Response } from 'express';
import type { z } from 'zod';
import { Etsi004Status, QkdmError, type Etsi004StatusCode } from '../../core/errors.js';
import type { KeyDelivery, KeyStreamManager, NoKeyReason } from '../../core/KeyStreamManager.js';
import type { ExchangeService, RoundRecord } from '../../exchange/ExchangeService.js';
import { fillQos, negotiateQos } from '../etsi004Qos.js';
import {
  etsi004CloseSchema,
  etsi004GetKeySchema,
  etsi004OpenConnectSchema,
  peerAddressOf,
  type Etsi004CloseAnswer,
  type Etsi004GetKeyAnswer,
  type Etsi004KeyMetadata,
  type Etsi004OpenConnectAnswer,
  type Etsi004Qos,
} from '../etsi004Schemas.js';
import { BadRequest, describeIssue, idempotencyToken, parseJsonText } from '../wire.js';
import { callerOf } from '../appIdentity.js';

/** Where the binding is mounted (app.ts). */
export const ETSI004_PREFIX = '/etsi004/v2.1.1';

const NO_KEY_STATUS: Readonly<Record<NoKeyReason, Etsi004StatusCode>> = {
  timeout: Etsi004Status.TIMEOUT_ERROR,
  unavailable: Etsi004Status.GET_KEY_INSUFFICIENT_KEY,
  peer_not_connected: Etsi004Status.GET_KEY_PEER_NOT_CONNECTED,
  declined: Etsi004Status.GET_KEY_METADATA_INSUFFICIENT,
};

const NO_KEY_MESSAGE: Readonly<Record<NoKeyReason, string>> = {
  timeout: 'no key became available within the stream timeout',
  unavailable: 'no key available (index already delivered or erased, stream closed, or Timeout 0)',
  peer_not_connected: 'the peer application has not opened this Key_stream_ID yet',
  declined: 'Metadata_size is too small; Metadata_size in this answer is the size needed',
};

/** Parses the raw body as JSON (whatever the Content-Type) and validates it; BadRequest names the field. */
function parseJson<S extends z.ZodType>(req: Request, schema: S): z.output<S> {
  const raw = typeof req.body === 'string' ? req.body : '';
  if (raw.trim() === '') throw new BadRequest('body: expected a JSON object');
  const value = parseJsonText(raw);
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new BadRequest(describeIssue(parsed.error.issues[0]!));
  }
  return parsed.data;
}

/** A core failure: its ETSI 004 status (HTTP 200), or undefined when the standard has none for it. */
function statusOf(err: QkdmError): Etsi004StatusCode | undefined {
  return err.definition.etsi004Status;
}

/** Runs a handler; a BadRequest is 400, a core error without an ETSI status gets its catalogue HTTP status. */
function handle(work: (req: Request, res: Response) => Promise<void>) {
  return async (req: Request, res: Response): Promise<void> => {
    try {
      await work(req, res);
    } catch (err) {
      if (err instanceof BadRequest) {
        res.status(400).json({ code: 'BAD_REQUEST', message: err.message });
        return;
      }
      if (err instanceof QkdmError) {
        // A caller over a limit gets its connection closed too: refused calls must not pile up sockets.
        if (err.code === 'LIMIT_REACHED') res.set('Connection', 'close');
        res.status(err.definition.httpStatus).json({ code: err.code, message: err.message });
        return;
      }
      throw err;
    }
  };
}

/** QBER and secret fraction of the round that produced `index`, from the exchange's in-memory history. */
export function blockFigures(rounds: readonly RoundRecord[], index: number): Pick<Etsi004KeyMetadata, 'qber' | 'secret_fraction'> {
  const round = rounds.find((r) => r.keys > 0 && index >= r.firstIndex && index < r.firstIndex + r.keys);
  const stats = round?.stats ?? {};
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const qber = num(stats.qber) ?? num(stats.qberEstimate) ?? null;
  const sifted = num(stats.siftedBits);
  const secret = num(stats.secretBits);
  const fraction = num(stats.secretFraction) ?? (sifted !== undefined && sifted > 0 && secret !== undefined ? secret / sifted : undefined);
  return { qber, secret_fraction: fraction ?? null };
}

export function etsi004Router(manager: KeyStreamManager, exchange: ExchangeService): Router {
  const router = Router();
  /** Streams opened here with an empty Metadata_mimetype (kept in memory: after a restart they report metadata again). */
  const noMetadata = new Set<string>();

  router.post(
    '/open_connect',
    handle(async (req, res) => {
      const body = parseJson(req, etsi004OpenConnectSchema);
      const requestedId = body.Key_stream_ID ?? null;
      const caller = callerOf(res);
      // Another application's stream is never described to this caller (no QoS counter-proposal from it).
      const found = requestedId ? manager.stream(requestedId) : undefined;
      const existing = found && (!found.localOpen || found.owner === caller) ? found : undefined;
      const requested = fillQos(body.QoS, existing);
      const verdict = negotiateQos(requested, (bits) => exchange.linkCapability(bits), existing);
      const answer = (status: Etsi004StatusCode, id: string | null, qos: Etsi004Qos, message?: string): void => {
        const out: Etsi004OpenConnectAnswer = { Key_stream_ID: id, QoS: qos, status, ...(message ? { message } : {}) };
        res.status(200).json(out);
      };
      if (verdict.problems.length > 0) {
        answer(Etsi004Status.OPEN_CONNECT_QOS_NOT_MET, requestedId, verdict.qos, `QoS could not be met: ${verdict.problems.join('; ')}`);
        return;
      }
      const result = await manager.openConnect({
        source: body.source,
        destination: body.destination,
        peerAddress: peerAddressOf(body.destination)!,
        keyLengthBits: verdict.qos.Key_chunk_size * 8,
        timeoutMs: verdict.qos.Timeout,
        ttlSeconds: verdict.qos.TTL,
        keyStreamId: requestedId,
        repeatable: true,
        owner: caller,
      });
      if (!result.ok) {
        const status = statusOf(result.error);
        if (status === undefined) throw result.error;
        answer(status, requestedId, verdict.qos, result.error.message);
        return;
      }
      const id = result.value.keyStreamId;
      const stream = manager.stream(id);
      const qos: Etsi004Qos = stream ? { ...verdict.qos, Key_chunk_size: stream.keyLengthBits / 8, Timeout: stream.timeoutMs, TTL: stream.ttlSeconds } : verdict.qos;
      // An empty Metadata_mimetype asks for no metadata (6.1): GET_KEY on this stream then reports none.
      if (verdict.qos.Metadata_mimetype === '') noMetadata.add(id);
      else noMetadata.delete(id);
      if (result.value.peerConnected) answer(Etsi004Status.SUCCESSFUL, id, qos);
      else answer(Etsi004Status.PEER_NOT_CONNECTED, id, qos, 'connected; the peer application has not opened this Key_stream_ID yet');
    }),
  );

  router.post(
    '/get_key',
    handle(async (req, res) => {
      const body = parseJson(req, etsi004GetKeySchema);
      const id = body.Key_stream_ID;
      // Metadata_size 0, or a stream opened with an empty Metadata_mimetype: the key without metadata.
      const asked = body.Metadata?.Metadata_size;
      const room = asked === 0 || noMetadata.has(id) ? undefined : asked;
      let metadata: string | undefined;
      let metadataBytes = 0;
      const token = idempotencyToken(req);
      const result = await manager.deliverKey(id, body.index, {
        caller: callerOf(res),
        ...(token === undefined ? {} : { token }),
        peerNotConnected: 'report',
        signal: clientGone(res),
        // The metadata is built before the key leaves the store, so a too-small buffer costs no key.
        ...(room !== undefined
          ? {
              accept: (index: number, storedAt: number | undefined): boolean => {
                const age = storedAt === undefined ? null : Math.max(0, Date.now() - storedAt);
                const doc: Etsi004KeyMetadata = {
                  age,
                  hops: 1,
                  age_ms: age,
                  ...blockFigures(exchange.roundHistory(id), index),
                };
                metadata = JSON.stringify(doc);
                metadataBytes = Buffer.byteLength(metadata, 'utf8');
                return metadataBytes <= room;
              },
            }
          : {}),
      });
      const answer = (out: Etsi004GetKeyAnswer): void => {
        res.status(200).json(out);
      };
      if (!result.ok) {
        const status = statusOf(result.error);
        if (status === undefined) throw result.error;
        answer({ status, Key_buffer: null, index: body.index, Metadata: { Metadata_size: 0, Metadata_buffer: null }, message: result.error.message });
        return;
      }
      const outcome: KeyDelivery = result.value;
      if (outcome.kind === 'none') {
        const declined = outcome.reason === 'declined';
        answer({
          status: NO_KEY_STATUS[outcome.reason],
          Key_buffer: null,
          index: outcome.index,
          Metadata: { Metadata_size: declined ? metadataBytes : 0, Metadata_buffer: null },
          message: NO_KEY_MESSAGE[outcome.reason],
        });
        return;
      }
      const { key, index } = outcome.delivered;
      const keyBuffer = Buffer.from(key).toString('base64');
      key.fill(0);
      answer({
        status: Etsi004Status.SUCCESSFUL,
        Key_buffer: keyBuffer,
        index,
        Metadata: { Metadata_size: metadata === undefined ? 0 : metadataBytes, Metadata_buffer: metadata ?? null },
      });
    }),
  );

  router.post(
    '/close',
    handle(async (req, res) => {
      const body = parseJson(req, etsi004CloseSchema);
      const result = await manager.close(body.Key_stream_ID, callerOf(res));
      let out: Etsi004CloseAnswer = { status: Etsi004Status.SUCCESSFUL };
      if (!result.ok) {
        const status = statusOf(result.error);
        if (status === undefined) throw result.error;
        out = { status, message: result.error.message };
      }
      res.status(200).json(out);
    }),
  );

  return router;
}
