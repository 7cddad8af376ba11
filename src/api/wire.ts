/**
 * Wire formats of the application API. A request body is either a Python literal (what legacy
 * clients send with `requests.post(url, data=repr([...]))`, no Content-Type) or JSON
 * (`Content-Type: application/json`, an array of the same shape or an object with named fields).
 * The answer uses the request's format and shape. Python answers are literals that both `eval`
 * and `ast.literal_eval` accept (keys as bytes literals); JSON answers carry keys in base64.
 */
import type { Request, Response } from 'express';
import type { z } from 'zod';
import { parsePyLiteral, PyLiteralError, toPyLiteral, type PyValue } from './codec/pyLiteral.js';

export type WireFormat = 'python' | 'json';
export type WireShape = 'array' | 'object';

export interface WireContext {
  format: WireFormat;
  shape: WireShape;
}

/** A request that could not be decoded or validated; the message names the problem. */
export class BadRequest extends Error {
  override readonly name = 'BadRequest';
}

/** Path segments that are our own field names are shown; anything else (a key the caller invented) is not. */
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * One validation issue as `path: problem`, never repeating request content: unknown field names are
 * counted, not listed, and path segments that are not field names of ours are shown as `<key>`.
 */
export function describeIssue(issue: z.core.$ZodIssue, fallback = 'body'): string {
  const path = issue.path.length ? issue.path.map((p) => (typeof p === 'number' || (typeof p === 'string' && FIELD_NAME.test(p)) ? String(p) : '<key>')).join('.') : fallback;
  if (issue.code === 'unrecognized_keys') {
    const n = issue.keys.length;
    return `${path}: ${n} unknown field${n === 1 ? '' : 's'} (names not repeated)`;
  }
  return `${path}: ${issue.message}`;
}

/** A JSON syntax error as a message: Node's own quotes the input, so only the position is kept. */
export function jsonSyntaxMessage(err: unknown): string {
  const position = /position (\d+)/.exec((err as Error).message)?.[1];
  return `body is not valid JSON${position ? ` (at position ${position})` : ''}`;
}

/** Deepest nesting of arrays and objects a JSON body may have (as the Python-literal parser's limit). */
export const MAX_JSON_DEPTH = 32;

/**
 * Throws BadRequest when `text` nests arrays or objects deeper than `maxDepth`. A linear scan before
 * JSON.parse, so a hostile document of a million brackets costs one pass over its bytes instead of a
 * million objects on the heap.
 */
export function checkJsonDepth(text: string, maxDepth = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw new BadRequest(`body is nested too deep (limit is ${maxDepth} levels) at position ${i}`);
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
}

/** JSON.parse with the depth limit; a syntax error names the position only (never the input). */
export function parseJsonText(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  checkJsonDepth(text, maxDepth);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    // Node's message quotes the input, which may hold key material: report the position only.
    throw new BadRequest(jsonSyntaxMessage(err));
  }
}

/** Decodes the raw body; `undefined` for an empty body. Throws BadRequest for malformed input. */
export function decodeBody(req: Request): { ctx: WireContext; value: unknown } {
  const raw = typeof req.body === 'string' ? req.body : '';
  const format: WireFormat = req.is('application/json') ? 'json' : 'python';
  if (raw.trim() === '') return { ctx: { format, shape: 'array' }, value: undefined };
  let value: unknown;
  if (format === 'json') {
    value = parseJsonText(raw);
  } else {
    try {
      value = parsePyLiteral(raw);
    } catch (err) {
      if (err instanceof PyLiteralError) throw new BadRequest(`body is not a valid Python literal: ${err.message}`);
      throw err;
    }
  }
  const shape: WireShape = value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array) ? 'object' : 'array';
  return { ctx: { format, shape }, value };
}

/**
 * Validates a decoded body against a route's object schema. An array body is read by position
 * (`names`), so both shapes share one schema and one set of messages.
 */
export function parseFields<S extends z.ZodType>(value: unknown, names: readonly string[], minItems: number, schema: S): z.infer<S> {
  let fields: Record<string, unknown>;
  if (Array.isArray(value)) {
    if (value.length < minItems || value.length > names.length) {
      const want = minItems === names.length ? `${names.length}` : `${minItems} to ${names.length}`;
      throw new BadRequest(`expected a list of ${want} items [${names.join(', ')}], got ${value.length}`);
    }
    fields = Object.fromEntries(value.map((v, i) => [names[i]!, v]));
  } else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    fields = { ...(value as Record<string, unknown>) };
  } else {
    throw new BadRequest(`expected a list [${names.join(', ')}] or an object with those fields`);
  }
  const parsed = schema.safeParse(fields);
  if (!parsed.success) {
    throw new BadRequest(describeIssue(parsed.error.issues[0]!));
  }
  return parsed.data;
}

type WireValue = PyValue | undefined;

/** Converts bytes to base64 for JSON; leaves everything else. */
function toJsonValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonValue(v)]));
  }
  return value;
}

/** Sends the answer in the request's format: `array` for list-shaped requests, `object` otherwise. */
export function sendAnswer(res: Response, ctx: WireContext, httpStatus: number, array: WireValue, object: Record<string, WireValue>): void {
  res.status(httpStatus);
  if (ctx.format === 'json') {
    res.type('application/json').send(JSON.stringify(toJsonValue(ctx.shape === 'object' ? object : array)));
    return;
  }
  res.type('text/plain; charset=utf-8').send(toPyLiteral((array ?? null) as PyValue));
}

/** Longest idempotency token accepted (the IETF Idempotency-Key header; docs/api.md, "Lost answers"). */
export const MAX_IDEMPOTENCY_TOKEN = 128;

/**
 * The `Idempotency-Key` header of a GET_KEY, if any: 1 to 128 visible ASCII characters. A repeat of
 * the request with the same token within the re-delivery window gets the same key.
 */
export function idempotencyToken(req: Request): string | undefined {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const value = Array.isArray(raw) ? raw.join(',') : raw;
  if (value.length === 0 || value.length > MAX_IDEMPOTENCY_TOKEN || !/^[\x21-\x7e]+$/.test(value)) {
    throw new BadRequest(`Idempotency-Key: must be 1 to ${MAX_IDEMPOTENCY_TOKEN} visible ASCII characters`);
  }
  return value;
}
