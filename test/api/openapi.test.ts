/**
 * GET /openapi.json: an OpenAPI 3.1 document of every route app.ts serves, whose request schemas
 * are the zod schemas' JSON Schema, and whose constraints the routes enforce. Also keeps docs/api.md
 * in step with the error catalogue and the ETSI 004 statuses.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from '../../src/api/app.js';
import { toPyLiteral, type PyValue } from '../../src/api/codec/pyLiteral.js';
import { openApiPath, ROUTES, SchemaSet, type JsonSchema, type RouteDoc } from '../../src/api/openapi.js';
import type { Etsi014Service } from '../../src/core/Etsi014Service.js';
import { ERROR_CATALOGUE, Etsi004Status, fail, type ErrorCode } from '../../src/core/errors.js';
import { ModuleMetrics } from '../../src/metrics/ModuleMetrics.js';
import { buildPair, silentLog } from '../support/pair.js';

const ok = { ok: true, reason: 'test' };

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

type App = ReturnType<typeof createApp>;
let app: App;
let stop: () => Promise<void>;
let doc: JsonSchema;

/** Every peer and ETSI 014 route is mounted: a stub service (never reached by a rejected request) and a fixed caller. */
const etsi014Stub = {
  onPeerKeys: async () => fail('UNKNOWN_STREAM', 'stub'),
  onPeerReady: async () => fail('UNKNOWN_STREAM', 'stub'),
  stop: () => undefined,
} as unknown as Etsi014Service;

beforeAll(async () => {
  const p = await buildPair();
  stop = p.stop;
  // Metrics and readiness on, so their routes are in the route table the document is checked against.
  const readiness = { report: async () => ({ status: 'ready' as const, checks: { config: ok, handle_store: ok, key_store: ok, peer: ok } }) };
  app = createApp({ manager: p.alice.manager, exchange: p.alice.exchange, log: silentLog, requestLog: false, etsi014: etsi014Stub, identifySae: () => 'sae-a', metrics: new ModuleMetrics('alice'), readiness });
  const res = await request(app).get('/openapi.json');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/application\/json/);
  doc = res.body as JsonSchema;
});
afterAll(async () => stop());

// ------------------------------------------------------------------------------------ helpers

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: string;
}

/** The routes an Express 5 app serves: (method, path) pairs from its router stack, mounted paths joined. */
function routeTable(a: App): string[] {
  const out: string[] = [];
  const join2 = (p: string, q: string): string => `${p}/${q}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  const walk = (stack: Layer[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route) {
        for (const [method, on] of Object.entries(layer.route.methods)) if (on) out.push(`${method} ${join2(prefix, layer.route.path)}`);
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack, join2(prefix, typeof layer.rawPath === 'string' ? layer.rawPath : ''));
      }
    }
  };
  walk((a as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return [...new Set(out)];
}

/** Inlines `$ref`s against `defs` (by last path segment), so documents and zod output compare by content. */
function deref(value: unknown, defs: Record<string, unknown>): unknown {
  if (Array.isArray(value)) return value.map((v) => deref(v, defs));
  if (value === null || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  if (typeof obj.$ref === 'string') {
    const target = defs[obj.$ref.split('/').pop()!];
    expect(target, `dangling ${obj.$ref}`).toBeDefined();
    const { $ref: _ref, ...rest } = obj;
    return deref({ ...(target as object), ...rest }, defs);
  }
  return Object.fromEntries(Object.entries(obj).filter(([k]) => k !== '$defs' && k !== '$schema').map(([k, v]) => [k, deref(v, defs)]));
}

function zodJsonSchema(schema: z.ZodType): unknown {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return deref(json, (json.$defs ?? {}) as Record<string, unknown>);
}

const components = (): Record<string, unknown> => ((doc.components as JsonSchema).schemas ?? {}) as Record<string, unknown>;

function operation(route: RouteDoc): JsonSchema {
  return ((doc.paths as Record<string, Record<string, JsonSchema>>)[openApiPath(route.path)] ?? {})[route.method]!;
}

/**
 * The documented JSON object schema of a route's body: the first `oneOf` branch for the seed API's list
 * forms, or, on a path two routes share (seed API and key server 2.0), the branch `x-body-branches` names for the route's tag.
 */
function documentedBody(route: RouteDoc): JsonSchema {
  const op = operation(route);
  const content = (op.requestBody as JsonSchema).content as Record<string, { schema: JsonSchema }>;
  const schema = content['application/json']!.schema;
  const branch = ((op['x-body-branches'] ?? {}) as Record<string, number>)[route.tag] ?? 0;
  return deref(Array.isArray(schema.oneOf) ? schema.oneOf[branch] : schema, components()) as JsonSchema;
}

interface Violation {
  body: Record<string, unknown>;
  field: string;
  how: string;
}

/** Bodies the documented schema calls invalid: each required field dropped, each typed field given the wrong type. */
function violations(schema: JsonSchema, example: Record<string, unknown>, path: string[] = []): Violation[] {
  const out: Violation[] = [];
  const at = (name: string): string => [...path, name].join('.');
  const replace = (name: string, value: unknown): Record<string, unknown> => {
    const copy = structuredClone(example);
    if (value === undefined) delete copy[name];
    else copy[name] = value;
    return copy;
  };
  for (const name of (schema.required ?? []) as string[]) out.push({ body: replace(name, undefined), field: at(name), how: 'missing' });
  for (const [name, prop] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>)) {
    if (!(name in example)) continue;
    const type = prop.type;
    if (type === 'integer' || type === 'number') out.push({ body: replace(name, 'not a number'), field: at(name), how: 'string for a number' });
    else if (type === 'string') out.push({ body: replace(name, 12345), field: at(name), how: 'number for a string' });
    else if (type === 'object' && example[name] !== null && typeof example[name] === 'object') {
      for (const v of violations(prop, example[name] as Record<string, unknown>, [...path, name])) out.push({ ...v, body: replace(name, v.body) });
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------ tests

describe('GET /openapi.json', () => {
  it('when fetched, then it is an OpenAPI 3.1 document whose operations have responses and whose $refs resolve', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.jsonSchemaDialect).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, JsonSchema>>)) {
      expect(path.startsWith('/'), path).toBe(true);
      for (const [method, op] of Object.entries(item)) {
        expect(['get', 'post'], path).toContain(method);
        expect(Object.keys(op.responses as object).length, `${method} ${path}`).toBeGreaterThan(0);
        expect(ids.has(op.operationId as string), `duplicate operationId ${String(op.operationId)}`).toBe(false);
        ids.add(op.operationId as string);
        for (const p of (op.parameters ?? []) as JsonSchema[]) if (p.in === 'path') expect(path).toContain(`{${String(p.name)}}`);
      }
    }
    expect(() => deref(doc.paths, components())).not.toThrow();
    expect(JSON.stringify(doc)).not.toContain('#/$defs/');
  });

  it("when app.ts's route table is walked, then every route it serves is in the document", () => {
    const served = routeTable(app);
    expect(served.length).toBeGreaterThan(25);
    const documented = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths as Record<string, object>)) for (const method of Object.keys(item)) documented.add(`${method} ${path}`);
    const missing = served.map((r) => r.replace(/:([A-Za-z0-9_]+)/g, '{$1}')).filter((r) => !documented.has(r));
    expect(missing).toEqual([]);
    for (const needed of ['post /open_connect', 'post /api/v1/qkdm/actions/get_key', 'post /etsi004/v2.1.1/open_connect', 'get /streams/{id}', 'post /api/v1/keys/{slave_SAE_ID}/enc_keys', 'get /sync', 'get /metrics', 'get /health/live', 'get /health/ready', 'post /peer/ping']) {
      expect(documented.has(needed), needed).toBe(true);
    }
  });

  it('when a route validates a body or query with a zod schema, then the document carries exactly that schema', () => {
    let bodies = 0;
    for (const route of ROUTES) {
      if (route.body) {
        expect(documentedBody(route), `${route.method} ${route.path}`).toEqual(zodJsonSchema(route.body.schema));
        bodies++;
      }
      if (route.query) {
        const expected = zodJsonSchema(route.query) as JsonSchema;
        const params = ((operation(route).parameters ?? []) as JsonSchema[]).filter((p) => p.in === 'query');
        expect(params.map((p) => p.name)).toEqual(Object.keys(expected.properties as object));
        for (const p of params) {
          expect(deref(p.schema, components())).toEqual((expected.properties as Record<string, unknown>)[p.name as string]);
          expect(p.required).toBe(((expected.required ?? []) as string[]).includes(p.name as string));
        }
      }
    }
    expect(bodies).toBeGreaterThan(15);
  });

  it('when a documented example is sent, then the route accepts it (no 400), in JSON and as a Python literal', async () => {
    for (const route of ROUTES.filter((r) => r.body && r.tag !== 'etsi014' && !r.path.startsWith('/peer/etsi014'))) {
      const { example, positional } = route.body!;
      const res = await request(app)[route.method](route.path).send(example);
      expect(res.status, `${route.method} ${route.path}`).not.toBe(400);
      // The key server 2.0 interface answers a call that ran and failed (here: no such stream, no peer module) with 503.
      if (route.tag !== 'keyserver') expect(res.status, `${route.method} ${route.path}`).toBeLessThan(500);
      else expect(res.body, `${route.method} ${route.path}`).toHaveProperty('status');
      if (positional) {
        const literal = toPyLiteral(positional.names.map((n) => (example[n] ?? null) as PyValue));
        const py = await request(app)[route.method](route.path).set('content-type', '').send(literal);
        // A Python-literal failure is HTTP 400 whatever failed (as the original): the error header tells a bad request apart.
        expect(py.headers['x-qkdm-error'], `${route.path} ${literal}`).not.toBe('BAD_REQUEST');
        expect(py.status, `${route.path} ${literal}`).toBeLessThan(500);
      }
    }
  });

  it('when a request breaks the documented schema, then the route rejects it with 400 naming the field', async () => {
    let checked = 0;
    for (const route of ROUTES.filter((r) => r.body)) {
      for (const v of violations(documentedBody(route), route.body!.example)) {
        const res = await request(app)[route.method](route.path.replace(/:([A-Za-z0-9_]+)/g, 'sae-b')).send(v.body);
        const what = `${route.method} ${route.path}: ${v.field} ${v.how}`;
        expect(res.status, what).toBe(400);
        expect(JSON.stringify(res.body), what).toContain(v.field);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });
});

describe('SchemaSet', () => {
  it('when a named schema differs between its request and answer forms, then each form is its own component', () => {
    const named = z.object({ a: z.number().default(1) }).meta({ id: 'OpenApiTestNamed' });
    const set = new SchemaSet();
    expect(set.convert(z.object({ x: named }), 'input')).toMatchObject({ properties: { x: { $ref: '#/components/schemas/OpenApiTestNamed' } } });
    expect(set.convert(z.object({ y: named }), 'output')).toMatchObject({ properties: { y: { $ref: '#/components/schemas/OpenApiTestNamed_output' } } });
    expect(set.convert(named, 'input')).toEqual({ $ref: '#/components/schemas/OpenApiTestNamed' });
    expect(Object.keys(set.components).sort()).toEqual(['OpenApiTestNamed', 'OpenApiTestNamed_output']);
    expect((set.components.OpenApiTestNamed_output as JsonSchema).required).toEqual(['a']);
  });
});

describe('docs/api.md', () => {
  const apiMd = readFileSync(join(root, 'docs/api.md'), 'utf8');

  it('when the error catalogue changes, then docs/api.md lists every code with its HTTP status, seed status and ETSI 004 status', () => {
    for (const [code, def] of Object.entries(ERROR_CATALOGUE) as Array<[ErrorCode, (typeof ERROR_CATALOGUE)[ErrorCode]]>) {
      const row = apiMd.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
      expect(row, `docs/api.md has no row for ${code}`).toBeDefined();
      const cells = row!.split('|').map((c) => c.trim());
      expect(cells[2], `${code} HTTP status`).toBe(String(def.httpStatus));
      expect(cells[3], `${code} seed status`).toBe(def.seedStatus === undefined ? 'route default' : String(def.seedStatus));
      expect(cells[4], `${code} ETSI 004 status`).toBe(def.etsi004Status === undefined ? '—' : String(def.etsi004Status));
    }
  });

  it('when docs/api.md describes ETSI 004, then every status 0-8 has a row and /openapi.json is linked', () => {
    for (const status of Object.values(Etsi004Status)) expect(apiMd).toMatch(new RegExp(`^\\| ${status} \\|`, 'm'));
    expect(apiMd).toContain('/openapi.json');
  });
});
