/**
 * The module configuration (configM.yaml): one zod schema for the whole file.
 *
 * - Every field has a default except the secret and the "not set" ones (internal_db.*, vault.host/port/token,
 *   simulator.private_key/public_key/seed), so an empty file is a valid configuration (embedded stores).
 * - Empty values (`host: ` in YAML is null, or an empty string) mean "not set" for every field.
 * - Numbers may arrive as strings (environment variables): plain decimal text is converted, anything else
 *   is rejected with a message saying what was expected.
 * - Messages never contain the value: the loader adds it (redacted for secret fields).
 */
import { z } from 'zod';
import { PA_HASH_FAMILIES } from '../sim/index.js';

/** Field names whose values are secrets: never logged, never put into an error message. */
export const SECRET_FIELDS: ReadonlySet<string> = new Set(['token', 'passwd', 'private_key', 'public_key', 'key', 'api_token', 'credentials']);

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export const SIMULATORS = ['fake', 'bb84'] as const;
export const SIGNATURES = ['slh-dsa-sha2-128f', 'sphincs-shake256-256s-robust'] as const;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Vault mount / path prefix: slash-separated segments of safe characters, no leading or trailing slash. */
const VAULT_PATH = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*(\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$/;
/** Hex or (standard / URL-safe) base64 text. */
const KEY_TEXT = /^[A-Za-z0-9+/_-]+={0,2}$/;
/** Longest delay Node timers accept (larger values fire immediately). */
const MAX_TIMER_MS = 2_147_483_647;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

// ---------------------------------------------------------------------------------------------
// Pre-processing (runs before validation; never throws, leaves junk for the validator to reject)
// ---------------------------------------------------------------------------------------------

const isUnset = (v: unknown): boolean => v === null || v === undefined || v === '';

function toNumber(v: unknown): unknown {
  if (isUnset(v)) return undefined;
  if (typeof v === 'string' && DECIMAL.test(v.trim())) return Number(v.trim());
  return v;
}

function toText(secret: boolean) {
  return (v: unknown): unknown => {
    if (isUnset(v)) return undefined;
    // YAML turns `database: 123` into a number; accept it as text, except for secrets, where the YAML
    // number may already have lost characters (leading zeros, exponent forms): those must be quoted.
    if (!secret && typeof v === 'number' && Number.isFinite(v)) return String(v);
    return v;
  };
}

function toEnumText(v: unknown): unknown {
  if (isUnset(v)) return undefined;
  return typeof v === 'string' ? v.trim().toLowerCase() : v;
}

function toSender(v: unknown): unknown {
  if (isUnset(v)) return undefined;
  if (v === true) return 1;
  if (v === false) return 0;
  if (typeof v === 'string') {
    const t = v.trim().toLowerCase();
    if (t === '1' || t === 'true') return 1;
    if (t === '0' || t === 'false') return 0;
  }
  return v;
}

function toBoolean(v: unknown): unknown {
  if (isUnset(v)) return undefined;
  if (v === 1 || v === 0) return v === 1;
  if (typeof v === 'string') {
    const t = v.trim().toLowerCase();
    if (t === 'true' || t === '1') return true;
    if (t === 'false' || t === '0') return false;
  }
  return v;
}

function toEve(v: unknown): unknown {
  if (isUnset(v)) return undefined;
  if (v === true) return 1;
  if (v === false) return 0;
  if (typeof v === 'string') {
    const t = v.trim().toLowerCase();
    if (t === 'true') return 1;
    if (t === 'false') return 0;
  }
  return toNumber(v);
}

const toSection = (v: unknown): unknown => (v === null ? undefined : v);
const MAPPING = { error: 'expected a mapping' } as const;

// ---------------------------------------------------------------------------------------------
// Field builders
// ---------------------------------------------------------------------------------------------

/** A finite number accepted by `ok`; `expected` completes "expected ...". */
function num(expected: string, ok: (n: number) => boolean) {
  const error = `expected ${expected}`;
  return z.number({ error }).refine((n) => Number.isFinite(n) && ok(n), { error });
}

const intBetween = (min: number, max: number) =>
  num(`an integer between ${min} and ${max}`, (n) => Number.isInteger(n) && n >= min && n <= max);
const positiveInt = () => num('a positive integer', (n) => Number.isSafeInteger(n) && n > 0);
const timerMs = () => num(`an integer number of milliseconds between 1 and ${MAX_TIMER_MS}`, (n) => Number.isInteger(n) && n >= 1 && n <= MAX_TIMER_MS);
const openUnit = () => num('a number greater than 0 and less than 1', (n) => n > 0 && n < 1);

const text = (pattern?: { re: RegExp; expected: string }) => {
  const s = z.string({ error: 'expected a string' });
  return pattern ? s.regex(pattern.re, { error: `expected ${pattern.expected}` }) : s;
};

const identifier = () => text({ re: IDENTIFIER, expected: 'an identifier matching ^[A-Za-z_][A-Za-z0-9_]{0,63}$' });

const secretText = (keyText: boolean) =>
  z.preprocess(
    toText(true),
    (keyText ? text({ re: KEY_TEXT, expected: 'hex or base64 text' }) : text()).optional(),
  );

const oneOf = <const T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) =>
  z.preprocess(toEnumText, z.enum(values, { error: `expected one of ${values.join(', ')}` }).default(fallback));

/** host:port (or http://host:port) with the port written out: the original module derives its simulator's port from it. */
function isLegacyAddress(s: string): boolean {
  if (!isPublicAddress(s)) return false;
  const t = s.trim();
  if (/^https:\/\//i.test(t)) return false;
  return /:\d{1,5}\/?$/.test(t);
}

/** host:port or an http(s) URL without path, query or credentials (the peer uses it as the base URL). */
function isPublicAddress(s: string): boolean {
  const t = s.trim();
  if (t.length === 0 || t.length > 255) return false;
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(t) ? t : `http://${t}`);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (!url.hostname || url.username || url.password || url.search || url.hash) return false;
  return url.pathname === '/' || url.pathname === '';
}

/**
 * Ports the Fetch standard forbids (fetch in Node refuses them with "bad port"): a peer listener on one of
 * them could never be reached by the other module's client.
 */
const FETCH_BAD_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123,
  135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995,
  1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

function fetchBlocksPort(address: string): number | undefined {
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `http://${address}`);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    return FETCH_BAD_PORTS.has(port) ? port : undefined;
  } catch {
    return undefined;
  }
}

/** A bare host name or IP address: the scheme and the port have their own fields. */
function isBareHost(s: string): boolean {
  return s.trim() === s && !/[\s/@?#]/.test(s) && !s.includes('://');
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

const moduleSection = z.strictObject({
  /** The application listener: loopback unless applications are configured (docs/security.md). */
  host: z.preprocess(toText(false), text().default('127.0.0.1')),
  /** The peer listener's address (with module.peer_port): reachable by the peer module. */
  peer_host: z.preprocess(toText(false), text().default('0.0.0.0')),
  port: z.preprocess(toNumber, intBetween(0, 65535).default(5000)),
  /** Unset: `127.0.0.1:<port>` (filled in after validation). */
  this_public_IP: z.preprocess(
    toText(false),
    text()
      .refine(isPublicAddress, { error: 'expected host:port or an http(s) URL without a path' })
      .optional(),
  ),
  sender: z.preprocess(toSender, z.union([z.literal(0), z.literal(1)], { error: 'expected 1 (source) or 0 (detector), or true/false' }).default(1)),
  sim: oneOf(SIMULATORS, 'fake'),
  max_key_count: z.preprocess(toNumber, intBetween(1, 100_000).default(20)),
  table: z.preprocess(toText(false), identifier().default('handles')),
  data_dir: z.preprocess(toText(false), text().default('./data')),
  log_level: oneOf(LOG_LEVELS, 'info'),
  /** auto: readable lines (pino-pretty) when stdout is a terminal, JSON lines otherwise. */
  log_format: oneOf(LOG_FORMATS, 'auto'),
  peer_timeout_ms: z.preprocess(toNumber, timerMs().default(5000)),
  retry_initial_ms: z.preprocess(toNumber, timerMs().default(200)),
  retry_max_ms: z.preprocess(toNumber, timerMs().default(10_000)),
  /** While a stream is full, re-ask the peer's key count after this long (covers a lost /start notice). */
  room_recheck_ms: z.preprocess(toNumber, timerMs().default(5000)),
  /** Separate listener for the peer routes (/sync, /start, /peer/*) with peer_tls; unset: they stay on module.port. */
  peer_port: z.preprocess(toNumber, intBetween(0, 65535).optional()),
  /** Bearer token the application routes (seed API, ETSI 004) require when set (docs/tls.md). */
  api_token: secretText(false),
  /** Streams the peer registered (/sync) that no local application opened yet, at most; more are refused. */
  max_pending_registrations: z.preprocess(toNumber, intBetween(1, 100_000).default(100)),
  /** A stream the peer registered and no local application opened is dropped after this many seconds. */
  pending_registration_ttl_s: z.preprocess(toNumber, intBetween(1, 31_536_000).default(3600)),
  /** A closed stream, with any keys it still holds, is purged this many seconds after its close (0: at once). */
  closed_stream_retention_s: z.preprocess(toNumber, intBetween(0, 31_536_000).default(86_400)),
  /** A key delivered to an application stays re-deliverable to it this long (lost answers); 0 = erase at delivery. */
  redelivery_window_s: z.preprocess(toNumber, intBetween(0, 3_600).default(60)),
  /** Bearer token of the operator routes (/streams, stats); unset: they serve this host only. */
  operator_token: secretText(false),
  /** Open streams one application may own at most. */
  max_streams_per_application: z.preprocess(toNumber, intBetween(1, 100_000).default(100)),
  /** GET_KEY calls waiting for a key at once, per application and in all. */
  max_waiting_get_key_per_application: z.preprocess(toNumber, intBetween(1, 100_000).default(64)),
  max_waiting_get_key: z.preprocess(toNumber, intBetween(1, 1_000_000).default(1024)),
  /** Largest request body of the seed API and ETSI 004 routes, in bytes (peer routes and ETSI 014: 1 MiB). */
  max_app_body_bytes: z.preprocess(toNumber, intBetween(1024, 1_048_576).default(65_536)),
  /** Prometheus metrics: GET /metrics (operator route) and their instrumentation; false: neither (docs/metrics.md). */
  metrics: z.preprocess(toBoolean, z.boolean({ error: 'expected true or false' }).default(true)),
}, MAPPING);

/**
 * Authentication of the peer channel (docs/security.md). `credentials`: this module's link credentials
 * (`npm run keygen -- --pair DIR` writes both ends'), a file path or the JSON text itself
 * (QKDM_PEER_AUTH_CREDENTIALS_FILE). Without them the module refuses to start unless `insecure` is true.
 */
const peerAuthSection = z.strictObject({
  credentials: z.preprocess(toText(true), text().optional()),
  /** INSECURE: the peer channel without authentication; anyone on the network can inject and take keys. */
  insecure: z.preprocess(toBoolean, z.boolean({ error: 'expected true or false' }).default(false)),
  /**
   * INSECURE, with `insecure` only: the peer is an original Python module (ignaziopedone/qkd-module,
   * QKDModule.py with its fake simulator) at this address, host:port of its web server; its fake
   * simulator listens on port + 1. docs/peer-protocol.md, "Legacy peer: the original Python module".
   */
  legacy_peer: z.preprocess(toText(false), text().refine(isLegacyAddress, { error: 'expected host:port of the original module (plain http, the port written out)' }).optional()),
}, MAPPING);

const internalDbSection = z.strictObject({
  host: z.preprocess(toText(false), text().optional()),
  port: z.preprocess(toNumber, intBetween(1, 65535).optional()),
  user: z.preprocess(toText(false), text().optional()),
  passwd: secretText(false),
  database: z.preprocess(toText(false), text().optional()),
  socket: z.preprocess(toText(false), text().optional()),
}, MAPPING);

const vaultSection = z.strictObject({
  host: z.preprocess(
    toText(false),
    text()
      .refine(isBareHost, { error: 'expected a host name or IP address (set vault.scheme and vault.port separately)' })
      .optional(),
  ),
  port: z.preprocess(toNumber, intBetween(1, 65535).optional()),
  token: secretText(false),
  mount: z.preprocess(toText(false), text({ re: VAULT_PATH, expected: 'a Vault mount path such as "secret"' }).default('secret')),
  /** https by default: the Vault token and every key cross this connection. */
  scheme: oneOf(['http', 'https'] as const, 'https'),
  path_prefix: z.preprocess(toText(false), text({ re: VAULT_PATH, expected: 'a path such as "qkdm" or "qkdm/site-a"' }).default('qkdm')),
  /** CA (PEM text or path) that vouches for the Vault server's certificate, in addition to the system's. */
  ca: z.preprocess(toText(false), text().optional()),
  /** INSECURE: allows scheme http to a host that is not loopback (token and keys in clear on the network). */
  allow_plain_http: z.preprocess(toBoolean, z.boolean({ error: 'expected true or false' }).default(false)),
}, MAPPING);

const channelSection = z.strictObject({
  length_km: z.preprocess(toNumber, num('a number >= 0', (n) => n >= 0).default(25)),
  attenuation_db_per_km: z.preprocess(toNumber, num('a number >= 0', (n) => n >= 0).default(0.2)),
  detector_efficiency: z.preprocess(toNumber, num('a number greater than 0 and at most 1', (n) => n > 0 && n <= 1).default(0.1)),
  /** Per detector and detection window (Bob has two detectors). */
  dark_count_probability: z.preprocess(toNumber, num('a number between 0 and 0.5', (n) => n >= 0 && n <= 0.5).default(1e-6)),
  afterpulse_probability: z.preprocess(toNumber, num('a number between 0 and 1', (n) => n >= 0 && n <= 1).default(0)),
  misalignment_error: z.preprocess(toNumber, num('a number between 0 and 0.5', (n) => n >= 0 && n <= 0.5).default(0.01)),
  pulse_rate_hz: z.preprocess(toNumber, num('a number greater than 0', (n) => n > 0).default(100_000_000)),
}, MAPPING);

/** Lim et al. 2014 is written for three intensities: signal, weak decoy, near-vacuum. */
export const BB84_INTENSITY_COUNT = 3;
/** Defaults near the Lim 2014 optimum for the default PA block (4e6 key-basis bits) on the default link, rounded. */
export const DEFAULT_INTENSITIES = [0.5, 0.25, 2e-4];
export const DEFAULT_INTENSITY_PROBABILITIES = [0.4, 0.4, 0.2];
export const ATTACKS = ['none', 'intercept-resend', 'pns'] as const;
/** Smallest and largest privacy-amplification block (key-basis bits). */
export const MIN_PA_BLOCK_BITS = 10_000;
export const MAX_PA_BLOCK_BITS = 2 ** 27;

const intensityList = (expected: string, ok: (n: number) => boolean, fallback: number[]) =>
  z.preprocess(
    toList,
    z
      .array(z.preprocess(toNumber, num(expected, ok)), { error: `expected a list of ${BB84_INTENSITY_COUNT} numbers (in the environment: a JSON array)` })
      .length(BB84_INTENSITY_COUNT, { error: `expected a list of ${BB84_INTENSITY_COUNT} numbers, signal first` })
      .default(fallback),
  );

const simulatorSection = z.strictObject({
  /** Kept from the original module; unused by the embedded store. */
  table: z.preprocess(toText(false), identifier().default('bb')),
  /** Fraction of pulses an intercept-resend attacker measures (simulator.attack intercept-resend; > 0 alone implies it). */
  eve: z.preprocess(toEve, num('false, true or a number between 0 and 1', (n) => n >= 0 && n <= 1).default(0)),
  /** A simulated attack on the quantum channel (tests and demonstrations; both ends must agree). */
  attack: z.preprocess(toEnumText, z.enum(ATTACKS, { error: `expected one of ${ATTACKS.join(', ')}` }).optional()),
  private_key: secretText(true),
  public_key: secretText(true),
  signature: oneOf(SIGNATURES, 'slh-dsa-sha2-128f'),
  pace: oneOf(['max', 'realtime'] as const, 'max'),
  qber_threshold: z.preprocess(toNumber, num('a number greater than 0 and less than 0.5', (n) => n > 0 && n < 0.5).default(0.11)),
  block_pulses: z.preprocess(toNumber, positiveInt().default(175_000_000)),
  /** Mean photon numbers [mu1, mu2, mu3]: mu1 > mu2 + mu3, mu2 > mu3 >= 0. */
  intensities: intensityList('a number >= 0', (n) => n >= 0, DEFAULT_INTENSITIES),
  intensity_probabilities: intensityList('a number greater than 0 and less than 1', (n) => n > 0 && n < 1, DEFAULT_INTENSITY_PROBABILITIES),
  /** q_x: probability that Alice (and Bob) choose the key basis X; Z is the test basis. */
  basis_x_probability: z.preprocess(toNumber, num('a number greater than 0 and less than 1', (n) => n > 0 && n < 1).default(0.8)),
  eps_sec: z.preprocess(toNumber, openUnit().default(1e-10)),
  eps_cor: z.preprocess(toNumber, openUnit().default(1e-15)),
  /** Key-basis bits a privacy-amplification block gathers from EC blocks before it yields keys. */
  pa_block_bits: z.preprocess(
    toNumber,
    num(`an integer between ${MIN_PA_BLOCK_BITS} and ${MAX_PA_BLOCK_BITS}`, (n) => Number.isSafeInteger(n) && n >= MIN_PA_BLOCK_BITS && n <= MAX_PA_BLOCK_BITS).default(4_000_000),
  ),
  cascade_passes: z.preprocess(toNumber, num('an integer >= 4', (n) => Number.isSafeInteger(n) && n >= 4).default(14)),
  privacy_amplification: oneOf(PA_HASH_FAMILIES, 'modified-toeplitz'),
  seed: z.preprocess(toNumber, num('an integer', (n) => Number.isSafeInteger(n)).optional()),
  channel: z.preprocess(toSection, channelSection.prefault({})),
}, MAPPING).superRefine((s, ctx) => {
  const [mu1, mu2, mu3] = s.intensities as [number, number, number];
  if (!(mu2 > mu3)) ctx.addIssue({ code: 'custom', path: ['intensities'], message: `expected mu2 > mu3 (Lim 2014), got mu2 ${mu2} and mu3 ${mu3}` });
  else if (!(mu1 > mu2 + mu3)) ctx.addIssue({ code: 'custom', path: ['intensities'], message: `expected mu1 > mu2 + mu3 (Lim 2014), got mu1 ${mu1} and mu2 + mu3 ${mu2 + mu3}` });
  const sum = s.intensity_probabilities.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-9) ctx.addIssue({ code: 'custom', path: ['intensity_probabilities'], message: `expected probabilities summing to 1, got ${sum}` });
  if (s.attack === 'intercept-resend' && s.eve === 0) ctx.addIssue({ code: 'custom', path: ['eve'], message: 'expected the fraction of pulses intercepted (greater than 0) with simulator.attack intercept-resend' });
  if (s.attack !== undefined && s.attack !== 'intercept-resend' && s.eve > 0) {
    ctx.addIssue({ code: 'custom', path: ['eve'], message: `applies to simulator.attack intercept-resend only (attack is ${s.attack}): unset it or set it to 0` });
  }
});

/**
 * Fields earlier versions had, and what replaces them (issue 11): a configuration that sets one is refused with
 * one line naming the replacement, rather than an "unknown key".
 */
export const REMOVED_FIELDS: ReadonlyMap<string, string> = new Map([
  ['simulator.eps_pe', 'set simulator.eps_sec instead (the secrecy of the whole protocol: Lim et al. 2014 compose every failure into eps_sec and eps_cor)'],
  ['simulator.eps_ec', 'set simulator.eps_cor instead (the correctness of the whole protocol, Lim et al. 2014)'],
  ['simulator.eps_pa', 'set simulator.eps_sec instead (the secrecy of the whole protocol: Lim et al. 2014 compose every failure into eps_sec and eps_cor)'],
  ['simulator.sample_fraction', 'set simulator.basis_x_probability instead (the Z basis is now the test sample: every Z detection is disclosed)'],
  ['simulator.channel.mean_photon_number', 'set simulator.intensities instead ([signal, weak decoy, near-vacuum] mean photon numbers, with simulator.intensity_probabilities)'],
]);

export const CLIENT_CERT_POLICIES = ['none', 'request', 'require'] as const;

/** PEM text or a file path (read at start-up); the loader's _FILE variables give PEM text. */
const pemOrPath = () => z.preprocess(toText(false), text().optional());

/** A TLS listener: unset cert = plain HTTP. `ca` checks client certificates. */
const tlsSection = z.strictObject({
  cert: pemOrPath(),
  key: secretText(false),
  ca: pemOrPath(),
  client_cert: oneOf(CLIENT_CERT_POLICIES, 'none'),
}, MAPPING);

/**
 * The peer channel's TLS: the peer listener and this module's client. `ca` checks the peer's certificate
 * both ways and `peer_name` pins it: the certificate must carry that CN or DNS name (another certificate of
 * the same CA, e.g. an SAE's, is refused). `request` is not offered: a peer listener either requires the
 * peer's certificate or asks for none.
 */
const peerTlsSection = z.strictObject({
  cert: pemOrPath(),
  key: secretText(false),
  ca: pemOrPath(),
  client_cert: oneOf(['none', 'require'] as const, 'require'),
  peer_name: z.preprocess(toText(false), text({ re: /^[A-Za-z0-9.*_-][A-Za-z0-9 ._*-]{0,252}$/, expected: 'the CN or DNS name of the peer module\'s certificate' }).optional()),
}, MAPPING);

/** SAE and KME identifiers: printable, URL-path safe. */
const ETSI_ID = /^[A-Za-z0-9._~:-]{1,128}$/;
const etsiId = () => text({ re: ETSI_ID, expected: 'an ID of 1 to 128 characters A-Z a-z 0-9 . _ ~ : -' });
const SHA256_FINGERPRINT = /^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{64}$/;

/** Lists come from YAML; an environment variable carries them as a JSON array. */
function toList(v: unknown): unknown {
  if (isUnset(v)) return undefined;
  if (typeof v === 'string') {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v;
    }
  }
  return v;
}
const LIST = { error: 'expected a list (in the environment: a JSON array)' } as const;

/** One SAE pair: a local SAE (attached to this module) and a remote SAE behind the peer module. */
const etsiPairSchema = z.strictObject({
  sae_id: etsiId(),
  peer_sae_id: etsiId(),
  peer_module: text().refine(isPublicAddress, { error: 'expected host:port or an http(s) URL without a path' }),
  peer_kme_id: etsiId(),
}, { error: 'expected a mapping {sae_id, peer_sae_id, peer_module, peer_kme_id}' });

/** How a caller proves it is a local SAE: its client certificate's subject or SHA-256 fingerprint. */
const etsiIdentitySchema = z
  .strictObject({
    sae_id: etsiId(),
    cert_subject: text().min(3, { error: 'expected a subject such as "CN=sae-a,O=QKD dev"' }).optional(),
    cert_sha256: text({ re: SHA256_FINGERPRINT, expected: 'a SHA-256 fingerprint (64 hex digits, colons allowed)' }).optional(),
    /** The certificate's exact CN or one of its DNS subject alternative names. */
    cert_name: text().min(1).max(253).optional(),
  }, { error: 'expected a mapping {sae_id, cert_subject?, cert_sha256?, cert_name?}' })
  .refine((i) => i.cert_subject !== undefined || i.cert_sha256 !== undefined || i.cert_name !== undefined, { error: 'set cert_subject, cert_sha256 or cert_name' });

const keyBits = (fallback: number) => num('a multiple of 8 between 8 and 65536 (bits)', (n) => Number.isInteger(n) && n >= 8 && n <= 65536 && n % 8 === 0).default(fallback);

/** One application identity (docs/security.md, "Applications"): a bearer token and/or a client certificate name. */
const applicationSchema = z
  .strictObject({
    id: text({ re: /^[A-Za-z0-9._-]{1,64}$/, expected: 'an ID of 1 to 64 characters A-Z a-z 0-9 . _ -' }).refine((id) => id !== 'local' && id !== 'etsi014', {
      error: '"local" and "etsi014" are reserved',
    }),
    token: z.preprocess(toText(true), text().min(16, { error: 'expected at least 16 characters' }).optional()),
    cert_name: text().min(1).max(253).optional(),
  }, { error: 'expected a mapping {id, token?, cert_name?}' })
  .refine((a) => a.token !== undefined || a.cert_name !== undefined, { error: 'set token or cert_name' });

/** ETSI GS QKD 014 key delivery (docs/etsi014.md). Unset kme_id: the routes answer 503. */
const etsi014Section = z.strictObject({
  kme_id: z.preprocess(toText(false), etsiId().optional()),
  /** Size of the stream keys and the default `size` of enc_keys, in bits. */
  key_size: z.preprocess(toNumber, keyBits(256)),
  max_key_per_request: z.preprocess(toNumber, intBetween(1, 10_000).default(128)),
  max_key_size: z.preprocess(toNumber, keyBits(8192)),
  min_key_size: z.preprocess(toNumber, keyBits(64)),
  /** Reported in Status; unset: module.max_key_count (the stream's real limit); may not exceed it. */
  max_key_count: z.preprocess(toNumber, intBetween(1, 100_000).optional()),
  /** Issued key IDs no dec_keys fetched expire after this many seconds (records removed, keys erased); 0 = never. */
  key_id_ttl_s: z.preprocess(toNumber, intBetween(0, 31_536_000).default(3600)),
  /** Development only: over plain HTTP an `X-SAE-ID` header names the caller (anyone can claim any SAE). */
  allow_header_identity: z.preprocess(toBoolean, z.boolean({ error: 'expected true or false' }).default(false)),
  saes: z.preprocess(toList, z.array(etsiPairSchema, LIST).max(1000).default([])),
  identities: z.preprocess(toList, z.array(etsiIdentitySchema, LIST).max(1000).default([])),
}, MAPPING);

/**
 * The key server 2.0 interface (docs/api.md, "Key server 2.0 interface"): in that generation the key
 * server names key servers in open_connect, and the module knows its peer module from its own
 * configuration. Unset peer_module: the interface answers open_connect with status 4.
 */
const keyserverSection = z.strictObject({
  /** The peer module's peer listener (host:port or an http(s) URL), as a seed destination would name it. */
  peer_module: z.preprocess(toText(false), text().refine(isPublicAddress, { error: 'expected host:port or an http(s) URL without a path' }).optional()),
  /** Size of every key of the streams the key server opens, in bits (the "key_size" it registers the module with). */
  key_size: z.preprocess(toNumber, num('a multiple of 8 between 8 and 8192 (bits)', (n) => Number.isInteger(n) && n >= 8 && n <= 8192 && n % 8 === 0).default(256)),
}, MAPPING);

// ---------------------------------------------------------------------------------------------
// The whole file
// ---------------------------------------------------------------------------------------------

export const configSchema = z
  .strictObject({
    module: z.preprocess(toSection, moduleSection.prefault({})),
    internal_db: z.preprocess(toSection, internalDbSection.prefault({})),
    vault: z.preprocess(toSection, vaultSection.prefault({})),
    simulator: z.preprocess(toSection, simulatorSection.prefault({})),
    peer_auth: z.preprocess(toSection, peerAuthSection.prefault({})),
    applications: z.preprocess(toList, z.array(applicationSchema, LIST).max(10_000).default([])),
    tls: z.preprocess(toSection, tlsSection.prefault({})),
    peer_tls: z.preprocess(toSection, peerTlsSection.prefault({})),
    etsi014: z.preprocess(toSection, etsi014Section.prefault({})),
    keyserver: z.preprocess(toSection, keyserverSection.prefault({})),
  }, MAPPING)
  .superRefine((cfg, ctx) => {
    const db = cfg.internal_db;
    if (db && (db.host || db.socket)) {
      for (const field of ['user', 'database'] as const) {
        if (!db[field]) {
          ctx.addIssue({ code: 'custom', path: ['internal_db', field], message: 'required when internal_db.host or internal_db.socket is set' });
        }
      }
    }
    if (cfg.vault?.host && cfg.vault.scheme === 'http' && !isLoopbackHost(cfg.vault.host) && !cfg.vault.allow_plain_http) {
      ctx.addIssue({
        code: 'custom',
        path: ['vault', 'scheme'],
        message: `http sends the Vault token and the keys in clear to ${cfg.vault.host}, which is not this host: use https (set vault.ca for a private CA), or set vault.allow_plain_http: true (INSECURE)`,
      });
    }
    if (cfg.vault?.host && !cfg.vault.token) {
      ctx.addIssue({ code: 'custom', path: ['vault', 'token'], message: 'required when vault.host is set (or set QKDM_VAULT_TOKEN_FILE)' });
    }
    const m = cfg.module;
    if (m && typeof m.retry_initial_ms === 'number' && typeof m.retry_max_ms === 'number' && m.retry_initial_ms > m.retry_max_ms) {
      ctx.addIssue({ code: 'custom', path: ['module', 'retry_initial_ms'], message: `must not exceed module.retry_max_ms (${m.retry_max_ms})` });
    }
    for (const section of ['tls', 'peer_tls'] as const) {
      const t = cfg[section];
      if (!t) continue;
      if (t.cert && !t.key) ctx.addIssue({ code: 'custom', path: [section, 'key'], message: `required when ${section}.cert is set` });
      if (t.key && !t.cert) ctx.addIssue({ code: 'custom', path: [section, 'cert'], message: `required when ${section}.key is set` });
      if (t.cert && t.client_cert !== 'none' && !t.ca) {
        ctx.addIssue({ code: 'custom', path: [section, 'ca'], message: `required when ${section}.client_cert is ${t.client_cert} (the CA that signs client certificates)` });
      }
    }
    if (m && typeof m.host === 'string' && !isLoopbackHost(m.host) && (cfg.applications ?? []).length === 0 && !m.api_token) {
      ctx.addIssue({
        code: 'custom',
        path: ['module', 'host'],
        message:
          `${m.host} would serve the application API to other hosts without application credentials: keep module.host on 127.0.0.1 `
          + '(and give the peer channel its own listener: module.peer_port, module.peer_host), or configure applications (tokens or client certificates)',
      });
    }
    const appIds = new Set<string>();
    const tokens = new Set<string>();
    const certNames = new Set<string>();
    (cfg.applications ?? []).forEach((a, i) => {
      if (appIds.has(a.id)) ctx.addIssue({ code: 'custom', path: ['applications', i, 'id'], message: `the application ${a.id} is listed twice` });
      appIds.add(a.id);
      if (a.token !== undefined && tokens.has(a.token)) ctx.addIssue({ code: 'custom', path: ['applications', i, 'token'], message: 'another application has the same token' });
      if (a.token !== undefined) tokens.add(a.token);
      if (a.cert_name !== undefined && certNames.has(a.cert_name)) ctx.addIssue({ code: 'custom', path: ['applications', i, 'cert_name'], message: 'another application has the same cert_name' });
      if (a.cert_name !== undefined) certNames.add(a.cert_name);
    });
    const pa = cfg.peer_auth;
    if (pa?.legacy_peer !== undefined) {
      // The original module cannot authenticate itself, speaks plain HTTP and only has the fake simulator.
      if (!pa.insecure) {
        ctx.addIssue({ code: 'custom', path: ['peer_auth', 'legacy_peer'], message: 'needs peer_auth.insecure: true (the original module cannot authenticate itself, so a legacy peer is only possible on an unauthenticated peer channel)' });
      } else if (m && m.sim !== 'fake') {
        ctx.addIssue({ code: 'custom', path: ['peer_auth', 'legacy_peer'], message: `needs module.sim: fake (the original module's ${m.sim} exchange is not compatible)` });
      } else if (cfg.peer_tls?.cert) {
        ctx.addIssue({ code: 'custom', path: ['peer_auth', 'legacy_peer'], message: 'the original module speaks plain HTTP: remove peer_tls.cert (or peer_auth.legacy_peer)' });
      }
    }
    const pt = cfg.peer_tls;
    if (pt && pt.ca && !pt.peer_name) {
      ctx.addIssue({ code: 'custom', path: ['peer_tls', 'peer_name'], message: 'required when peer_tls.ca is set: the CN or DNS name the peer module\'s certificate carries (any other certificate of the CA, e.g. an SAE\'s, is refused)' });
    }
    const e = cfg.etsi014;
    if (e && typeof e.min_key_size === 'number' && typeof e.max_key_size === 'number' && typeof e.key_size === 'number') {
      if (e.min_key_size > e.max_key_size) ctx.addIssue({ code: 'custom', path: ['etsi014', 'min_key_size'], message: `must not exceed etsi014.max_key_size (${e.max_key_size})` });
      if (e.key_size < e.min_key_size || e.key_size > e.max_key_size) {
        ctx.addIssue({ code: 'custom', path: ['etsi014', 'key_size'], message: `must be between etsi014.min_key_size and etsi014.max_key_size` });
      }
      if (e.key_size > 8192) ctx.addIssue({ code: 'custom', path: ['etsi014', 'key_size'], message: 'must be at most 8192 bits (the stream key size limit)' });
      if (m && e.max_key_count !== undefined && typeof m.max_key_count === 'number' && e.max_key_count > m.max_key_count) {
        ctx.addIssue({ code: 'custom', path: ['etsi014', 'max_key_count'], message: `must not exceed module.max_key_count (${m.max_key_count}), the per-stream limit the module enforces` });
      }
      if (e.saes.length > 0 && !e.kme_id) ctx.addIssue({ code: 'custom', path: ['etsi014', 'kme_id'], message: 'required when etsi014.saes is set' });
      const seen = new Set<string>();
      e.saes.forEach((p, i) => {
        const pair = `${p.sae_id}|${p.peer_sae_id}`;
        if (seen.has(pair)) ctx.addIssue({ code: 'custom', path: ['etsi014', 'saes', i], message: `the pair ${p.sae_id} / ${p.peer_sae_id} is listed twice` });
        seen.add(pair);
      });
    }
    if (m && m.peer_port !== undefined && m.peer_port !== 0 && m.peer_port === m.port) {
      ctx.addIssue({ code: 'custom', path: ['module', 'peer_port'], message: 'must differ from module.port (unset it to serve the peer routes on module.port)' });
    }
  })
  .superRefine((cfg, ctx) => {
    // A loopback this_public_IP names this very process: its port must be the listener the peer routes
    // are on, or the pair is silently broken (issue 16: `--port` without changing this_public_IP).
    const given = cfg.module.this_public_IP;
    const target = given ? hostPortOf(given) : undefined;
    const peerRoutesPort = cfg.module.peer_port ?? cfg.module.port;
    if (target && isLoopbackHost(target.host) && peerRoutesPort !== 0 && target.port !== peerRoutesPort) {
      const listener = cfg.module.peer_port !== undefined ? `module.peer_port ${cfg.module.peer_port}` : `module.port ${cfg.module.port}`;
      ctx.addIssue({
        code: 'custom',
        path: ['module', 'this_public_IP'],
        message: `names port ${target.port} on this host, but the peer routes listen on ${listener}: set module.this_public_IP to ${target.host}:${peerRoutesPort} (or unset it: it then follows the listener)`,
      });
    }
    const address = cfg.module.this_public_IP ?? defaultPublicAddress(cfg);
    const bad = fetchBlocksPort(address);
    if (bad !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['module', cfg.module.this_public_IP ? 'this_public_IP' : cfg.module.peer_port !== undefined ? 'peer_port' : 'port'],
        message: `port ${bad} is one the Fetch standard blocks (the peer module's client cannot call it): choose another port for the peer listener`,
      });
    }
  })
  .transform((cfg) => ({
    ...cfg,
    module: { ...cfg.module, this_public_IP: cfg.module.this_public_IP ?? defaultPublicAddress(cfg) },
  }));

/**
 * How the peer reaches this module when module.this_public_IP is unset: the peer listener when there is one,
 * over https when that listener has a certificate; `127.0.0.1:<port>` otherwise (as before TLS existed).
 */
function defaultPublicAddress(cfg: { module: { port: number; peer_port?: number }; tls: { cert?: string }; peer_tls: { cert?: string } }): string {
  const peerListener = cfg.module.peer_port !== undefined;
  const port = peerListener ? cfg.module.peer_port : cfg.module.port;
  const tls = peerListener ? cfg.peer_tls.cert : cfg.tls.cert;
  return tls ? `https://127.0.0.1:${port}` : `127.0.0.1:${port}`;
}

/** Host and port of `host:port` or an http(s) URL (default ports 80/443); undefined when unparsable. */
function hostPortOf(address: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(/^https?:\/\//i.test(address) ? address : `http://${address}`);
    const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port };
  } catch {
    return undefined;
  }
}

/** The parsed, fully defaulted configuration. */
export type ModuleConfig = z.infer<typeof configSchema>;

// ---------------------------------------------------------------------------------------------
// Introspection (the loader derives the environment variable names from it)
// ---------------------------------------------------------------------------------------------

/** The object schema inside wrappers (preprocess, default, prefault, optional, refinements, transforms). */
function objectInside(schema: unknown): z.ZodObject | undefined {
  let s = schema;
  for (let depth = 0; depth < 16; depth++) {
    if (s instanceof z.ZodObject) return s;
    if (s instanceof z.ZodPipe) s = s.in instanceof z.ZodTransform ? s.out : s.in;
    else if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
    else return undefined;
  }
  return undefined;
}

export interface ConfigKeys {
  /** Paths of the value fields, e.g. ['simulator', 'channel', 'length_km']. */
  fields: string[][];
  /** Paths of the sections (mappings), e.g. ['internal_db'], ['simulator', 'channel']. */
  sections: string[][];
}

function collectKeys(): ConfigKeys {
  const keys: ConfigKeys = { fields: [], sections: [] };
  const walk = (schema: z.ZodObject, prefix: string[]): void => {
    for (const [name, child] of Object.entries(schema.shape)) {
      const path = [...prefix, name];
      const inner = objectInside(child);
      if (inner) {
        keys.sections.push(path);
        walk(inner, path);
      } else {
        keys.fields.push(path);
      }
    }
  };
  const root = objectInside(configSchema);
  if (!root) throw new Error('config schema: the root is not an object');
  walk(root, []);
  return keys;
}

/** Every field and section the configuration file knows, derived from `configSchema`. */
export const configKeys: Readonly<ConfigKeys> = collectKeys();

// ---------------------------------------------------------------------------------------------
// Derived helpers
// ---------------------------------------------------------------------------------------------

export interface StoreMode {
  handles: 'mysql' | 'sqlite';
  keys: 'vault' | 'sqlite';
}

/** MySQL when internal_db.host or internal_db.socket is set; Vault when vault.host is set; else embedded SQLite. */
export function storeMode(cfg: ModuleConfig): StoreMode {
  return {
    handles: cfg.internal_db.host || cfg.internal_db.socket ? 'mysql' : 'sqlite',
    keys: cfg.vault.host ? 'vault' : 'sqlite',
  };
}

/** localhost, 127.0.0.0/8 and ::1: addresses that never leave this host. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** `scheme://host:port` of the Vault server (port 8200 unless set; IPv6 addresses get brackets). */
export function vaultEndpoint(cfg: ModuleConfig): string {
  const { host, port, scheme } = cfg.vault;
  if (!host) throw new Error('vault.host is not set');
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${scheme}://${h}:${port ?? 8200}`;
}
