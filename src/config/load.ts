/**
 * Loads the configuration: YAML file (default ./configM.yaml), then QKDM_* environment variables,
 * then the --port override, then validation with `configSchema`.
 *
 * Environment variables: QKDM_<SECTION>_<FIELD> upper-cased, e.g. QKDM_MODULE_PORT, QKDM_INTERNAL_DB_PASSWD,
 * QKDM_SIMULATOR_CHANNEL_LENGTH_KM. The names are derived from the schema's fields (whole-name lookup, so
 * underscores inside section and field names are never split wrongly). QKDM_<...>_FILE=/path reads the value
 * from that file (trailing newlines removed). An empty value means "not set" (like `host: ` in YAML).
 * A QKDM_* variable that names no field is an error, so a typo cannot pass silently.
 *
 * Every failure is a ConfigError with a one-line message naming the field; secret values never appear in it.
 */
import { readFileSync } from 'node:fs';
import { CORE_SCHEMA, YAMLException, loadAll } from 'js-yaml';
import type { z } from 'zod';
import { REMOVED_FIELDS, SECRET_FIELDS, configKeys, configSchema, type ModuleConfig } from './schema.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface LoadConfigOptions {
  /** YAML file; default ./configM.yaml (which may be missing: then the defaults apply). */
  file?: string;
  /** Environment to read QKDM_* overrides from (pass process.env); omitted: no environment overrides. */
  env?: NodeJS.ProcessEnv;
  /** Command line overrides, applied last. */
  overrides?: { port?: number };
}

const DEFAULT_FILE = './configM.yaml';
const ENV_PREFIX = 'QKDM_';
const FILE_SUFFIX = '_FILE';
const REDACTED = '<redacted>';

type Raw = Record<string, unknown>;

const envName = (path: readonly string[]): string => ENV_PREFIX + path.join('_').toUpperCase();

/** QKDM_* name -> field path, derived from the schema (checked for collisions once). */
const FIELDS_BY_ENV: ReadonlyMap<string, readonly string[]> = (() => {
  const map = new Map<string, readonly string[]>();
  for (const path of configKeys.fields) {
    const name = envName(path);
    const clash = map.get(name);
    if (clash) throw new Error(`config schema: ${clash.join('.')} and ${path.join('.')} share the variable ${name}`);
    map.set(name, path);
  }
  return map;
})();
const SECTIONS_BY_ENV: ReadonlyMap<string, readonly string[]> = new Map(configKeys.sections.map((p) => [envName(p), p]));
/** Variables of removed fields: refused with the replacement (REMOVED_FIELDS), not as unknown. */
const REMOVED_BY_ENV: ReadonlyMap<string, readonly string[]> = new Map([...REMOVED_FIELDS.keys()].map((key) => [envName(key.split('.')), key.split('.')]));

export function loadConfig(opts: LoadConfigOptions = {}): ModuleConfig {
  const explicit = opts.file !== undefined;
  const file = opts.file ?? DEFAULT_FILE;
  const shown = opts.file ?? 'configM.yaml';

  const raw = readYaml(file, shown, explicit);
  /** "a.b.c" -> where the value came from, when not from the file. */
  const sources = new Map<string, string>();

  for (const { name, path, value } of environmentOverrides(opts.env ?? {})) {
    if (setAt(raw, path, value)) sources.set(path.join('.'), `from ${name}`);
  }
  if (opts.overrides?.port !== undefined) {
    if (setAt(raw, ['module', 'port'], opts.overrides.port)) sources.set('module.port', 'from --port');
  }

  const removed = [...REMOVED_FIELDS].filter(([key]) => !isUnsetValue(getAt(raw, key.split('.'))));
  // A removed field left empty is "not set", as any other field.
  for (const key of REMOVED_FIELDS.keys()) deleteAt(raw, key.split('.'));
  if (removed.length > 0) {
    throw new ConfigError(`config: ${removed.map(([key, instead]) => `${key}: removed; ${instead} (${sources.get(key) ?? `in ${shown}`})`).join('; ')}`);
  }

  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(`config: ${describeIssues(result.error.issues, raw, sources, shown)}`);
  return result.data;
}

/** A deep copy for logging, with token/passwd/private_key/public_key replaced by '<redacted>' when set. */
export function redactedConfig(cfg: ModuleConfig): Record<string, unknown> {
  const copy = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(copy);
    if (value === null || typeof value !== 'object') return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_FIELDS.has(k) && v !== undefined && v !== null && v !== '' ? REDACTED : copy(v);
    }
    return out;
  };
  return copy(cfg) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------

function readYaml(file: string, shown: string, explicit: boolean): Raw {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return {};
    throw new ConfigError(`config: cannot read ${shown}: ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`);
  }
  let docs: unknown[];
  try {
    docs = loadAll(text, { schema: CORE_SCHEMA, filename: shown, maxAliases: 100 });
  } catch (err) {
    throw new ConfigError(`config: ${yamlErrorText(err, shown)}`);
  }
  if (docs.length > 1) throw new ConfigError(`config: ${shown}: expected one YAML document, found ${docs.length}`);
  const doc = docs[0];
  if (doc === undefined || doc === null) return {};
  if (!isPlainObject(doc)) {
    throw new ConfigError(`config: ${shown}: expected a mapping of sections (${configKeys.sections.filter((p) => p.length === 1).join(', ')}) at the top level, got ${kindOf(doc)}`);
  }
  return doc;
}

/** "configM.yaml line 3: bad indentation of a mapping entry (column 2)"; never the source snippet. */
function yamlErrorText(err: unknown, shown: string): string {
  if (err instanceof YAMLException) {
    const where = err.mark ? `${shown} line ${err.mark.line + 1}` : shown;
    const column = err.mark ? ` (column ${err.mark.column + 1})` : '';
    return `${where}: ${err.reason}${column}`;
  }
  const first = String((err as Error)?.message ?? err).split('\n')[0];
  return `${shown}: ${first}`;
}

interface EnvOverride {
  name: string;
  path: readonly string[];
  /** null = "not set" */
  value: string | null;
}

function environmentOverrides(env: NodeJS.ProcessEnv): EnvOverride[] {
  const out: EnvOverride[] = [];
  const unknown: string[] = [];
  const names = Object.keys(env)
    .filter((n) => n.startsWith(ENV_PREFIX) && env[n] !== undefined)
    .sort();
  for (const name of names) {
    const value = env[name] as string;
    const direct = FIELDS_BY_ENV.get(name);
    if (direct) {
      if (env[name + FILE_SUFFIX] !== undefined) {
        throw new ConfigError(`config: ${direct.join('.')}: set either ${name} or ${name}${FILE_SUFFIX}, not both`);
      }
      out.push({ name, path: direct, value: value === '' ? null : value });
      continue;
    }
    const removed = REMOVED_BY_ENV.get(name) ?? REMOVED_BY_ENV.get(name.slice(0, -FILE_SUFFIX.length));
    if (removed) {
      // Reported by loadConfig with the replacement, like the same field in the file.
      out.push({ name, path: removed, value: value === '' ? null : value });
      continue;
    }
    const viaFile = name.endsWith(FILE_SUFFIX) ? FIELDS_BY_ENV.get(name.slice(0, -FILE_SUFFIX.length)) : undefined;
    if (viaFile) {
      out.push({ name, path: viaFile, value: readValueFile(name, viaFile, value) });
      continue;
    }
    unknown.push(name);
  }
  if (unknown.length > 0) {
    const described = unknown.map((name) => {
      const section = SECTIONS_BY_ENV.get(name);
      if (section) return `${name} (names the section ${section.join('.')}, not a field)`;
      const hint = suggest(name);
      return hint ? `${name} (did you mean ${hint}?)` : name;
    });
    throw new ConfigError(
      `config: unknown environment variable${unknown.length > 1 ? 's' : ''} ${described.join(', ')}: QKDM_* variables must name a configuration field, e.g. QKDM_MODULE_PORT`,
    );
  }
  return out;
}

function readValueFile(name: string, path: readonly string[], file: string): string | null {
  if (file === '') throw new ConfigError(`config: ${path.join('.')}: ${name} is empty (expected a file path)`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`config: ${path.join('.')}: cannot read ${file} (from ${name}): ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`);
  }
  const value = text.replace(/[\r\n]+$/, '');
  return value === '' ? null : value;
}

/** The closest known variable name, when close enough to be a likely typo. */
function suggest(name: string): string | undefined {
  const bare = name.endsWith(FILE_SUFFIX) ? name.slice(0, -FILE_SUFFIX.length) : name;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const known of FIELDS_BY_ENV.keys()) {
    const d = editDistance(bare, known);
    if (d < bestDistance) {
      bestDistance = d;
      best = known;
    }
  }
  if (best === undefined || bestDistance > 3) return undefined;
  return bare === name ? best : best + FILE_SUFFIX;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * Sets raw[path] = value, creating missing (or empty) sections. Returns false when a section on the way
 * holds something other than a mapping: the validator then reports that section.
 */
function setAt(raw: Raw, path: readonly string[], value: unknown): boolean {
  let node = raw;
  for (const key of path.slice(0, -1)) {
    const next = Object.hasOwn(node, key) ? node[key] : undefined;
    if (next === undefined || next === null) {
      const created: Raw = {};
      node[key] = created;
      node = created;
    } else if (isPlainObject(next)) {
      node = next;
    } else {
      return false;
    }
  }
  node[path[path.length - 1]] = value;
  return true;
}

function deleteAt(raw: unknown, path: readonly string[]): void {
  const parent = getAt(raw, path.slice(0, -1));
  if (isPlainObject(parent)) delete parent[path[path.length - 1]!];
}

/** Empty means "not set" (like `host: ` in YAML or an empty variable). */
const isUnsetValue = (v: unknown): boolean => v === undefined || v === null || v === '';

function getAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let node = raw;
  for (const key of path) {
    if (!isPlainObject(node) || typeof key === 'symbol' || !Object.hasOwn(node, key)) return undefined;
    node = node[key as string];
  }
  return node;
}

function isPlainObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (isPlainObject(v)) return 'a mapping';
  return describeScalar(v);
}

function describeScalar(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

const MAX_REPORTED = 5;

function describeIssues(issues: readonly z.core.$ZodIssue[], raw: Raw, sources: ReadonlyMap<string, string>, shown: string): string {
  const parts = issues.slice(0, MAX_REPORTED).map((issue) => describeIssue(issue, raw, sources, shown));
  if (issues.length > MAX_REPORTED) parts.push(`and ${issues.length - MAX_REPORTED} more`);
  return parts.join('; ');
}

function describeIssue(issue: z.core.$ZodIssue, raw: Raw, sources: ReadonlyMap<string, string>, shown: string): string {
  const key = issue.path.map(String).join('.');
  const where = key || 'top level';
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysUnder(issue.path.map(String));
    const names = issue.keys.map((k) => JSON.stringify(k)).join(', ');
    return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${names} in ${shown}${known.length ? ` (known: ${known.join(', ')})` : ''}`;
  }
  const value = getAt(raw, issue.path);
  // The validator's message is one line and carries no value; the value is added here (redacted for secrets).
  let text = `${where}: ${issue.message.split('\n')[0]}`;
  if (value !== undefined && value !== null) {
    const last = issue.path[issue.path.length - 1];
    const secret = typeof last === 'string' && SECRET_FIELDS.has(last);
    text += `, got ${secret ? REDACTED : kindOf(value)}`;
    text += ` (${sources.get(key) ?? `in ${shown}`})`;
  }
  return text;
}

function knownKeysUnder(prefix: readonly string[]): string[] {
  const depth = prefix.length;
  const under = [...configKeys.fields, ...configKeys.sections].filter((p) => p.length === depth + 1 && prefix.every((k, i) => p[i] === k));
  return under.map((p) => p[depth]);
}
