import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { load as loadYaml } from 'js-yaml';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactedConfig } from '../../src/config/load.js';
import { configKeys, storeMode, vaultEndpoint, type ModuleConfig } from '../../src/config/schema.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'qkdm-config-'));
let counter = 0;

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Writes `text` to a fresh file in the temp directory and returns its path. */
function file(text: string, name = `c${++counter}.yaml`): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

function load(yaml: string, env: NodeJS.ProcessEnv = {}, port?: number): ModuleConfig {
  return loadConfig({ file: file(yaml), env, ...(port === undefined ? {} : { overrides: { port } }) });
}

/** The ConfigError thrown by `fn` (fails the test when nothing, or something else, is thrown). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.message).toMatch(/^config: /);
    expect(e.message).not.toContain('\n');
    return e;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('defaults', () => {
  it('when the file is empty, then every field has its default and the stores are embedded', () => {
    const cfg = load('');
    expect(cfg.module).toEqual({
      host: '127.0.0.1',
      peer_host: '0.0.0.0',
      port: 5000,
      this_public_IP: '127.0.0.1:5000',
      sender: 1,
      sim: 'fake',
      max_key_count: 20,
      table: 'handles',
      data_dir: './data',
      log_level: 'info',
      log_format: 'auto',
      peer_timeout_ms: 5000,
      retry_initial_ms: 200,
      retry_max_ms: 10000,
      room_recheck_ms: 5000,
      peer_port: undefined,
      api_token: undefined,
      max_pending_registrations: 100,
      pending_registration_ttl_s: 3600,
      closed_stream_retention_s: 86400,
      redelivery_window_s: 60,
      operator_token: undefined,
      max_streams_per_application: 100,
      max_waiting_get_key_per_application: 64,
      max_waiting_get_key: 1024,
      max_app_body_bytes: 65_536,
      metrics: true,
    });
    expect(cfg.applications).toEqual([]);
    // No credentials and not insecure: valid as a file, but the module refuses to start (test/security).
    expect(cfg.peer_auth).toEqual({ credentials: undefined, insecure: false });
    expect(cfg.tls).toEqual({ cert: undefined, key: undefined, ca: undefined, client_cert: 'none' });
    expect(cfg.peer_tls).toEqual({ cert: undefined, key: undefined, ca: undefined, client_cert: 'require', peer_name: undefined });
    expect(cfg.etsi014).toEqual({
      kme_id: undefined,
      key_size: 256,
      max_key_per_request: 128,
      max_key_size: 8192,
      min_key_size: 64,
      max_key_count: undefined,
      key_id_ttl_s: 3600,
      allow_header_identity: false,
      saes: [],
      identities: [],
    });
    expect(cfg.vault).toMatchObject({ mount: 'secret', scheme: 'https', path_prefix: 'qkdm', allow_plain_http: false });
    expect(cfg.vault.host).toBeUndefined();
    expect(cfg.vault.token).toBeUndefined();
    expect(cfg.internal_db.host).toBeUndefined();
    expect(cfg.simulator).toMatchObject({
      table: 'bb',
      eve: 0,
      signature: 'slh-dsa-sha2-128f',
      pace: 'max',
      qber_threshold: 0.11,
      block_pulses: 175_000_000,
      intensities: [0.5, 0.25, 2e-4],
      intensity_probabilities: [0.4, 0.4, 0.2],
      basis_x_probability: 0.8,
      eps_sec: 1e-10,
      eps_cor: 1e-15,
      pa_block_bits: 4_000_000,
      cascade_passes: 14,
      privacy_amplification: 'modified-toeplitz',
      channel: {
        length_km: 25,
        attenuation_db_per_km: 0.2,
        detector_efficiency: 0.1,
        dark_count_probability: 1e-6,
        afterpulse_probability: 0,
        misalignment_error: 0.01,
        pulse_rate_hz: 100_000_000,
      },
    });
    expect(cfg.simulator.attack).toBeUndefined();
    expect(cfg.simulator.seed).toBeUndefined();
    expect(cfg.simulator.private_key).toBeUndefined();
    expect(storeMode(cfg)).toEqual({ handles: 'sqlite', keys: 'sqlite' });
  });

  it('when the file holds only comments, then the defaults apply', () => {
    expect(load('# nothing here\n').module.port).toBe(5000);
  });

  it('when sections and fields are empty (YAML null), then they count as not set', () => {
    const cfg = load('module:\nvault:\ninternal_db: {host: , port: , user: , passwd: , database: , socket: }\nsimulator:\n  eve:\n  seed:\n  channel:\n');
    expect(cfg.module.port).toBe(5000);
    expect(cfg.vault.mount).toBe('secret');
    expect(storeMode(cfg)).toEqual({ handles: 'sqlite', keys: 'sqlite' });
    expect(cfg.simulator.eve).toBe(0);
    expect(cfg.simulator.channel.length_km).toBe(25);
  });

  it('when this_public_IP is not set, then it follows the port', () => {
    expect(load('module:\n  port: 5002\n').module.this_public_IP).toBe('127.0.0.1:5002');
  });
});

describe('shipped files', () => {
  it('when configM.yaml is loaded, then it is a sender with the application API on 127.0.0.1:5000, the peer listener on 0.0.0.0:7000 and embedded stores in ./data/alice', () => {
    const cfg = loadConfig({ file: join(ROOT, 'configM.yaml'), env: {} });
    expect(cfg.module).toMatchObject({ host: '127.0.0.1', port: 5000, peer_host: '0.0.0.0', peer_port: 7000, sender: 1, sim: 'fake', this_public_IP: '127.0.0.1:7000', data_dir: './data/alice' });
    expect(cfg.peer_auth).toEqual({ credentials: './credentials/dev/alice.json', insecure: false });
    expect(storeMode(cfg)).toEqual({ handles: 'sqlite', keys: 'sqlite' });
    expect(cfg.simulator.eve).toBe(0);
  });

  it('when config/bob.yaml is loaded, then it is a receiver on 127.0.0.1:5001, its peer listener on 7001, in ./data/bob', () => {
    const cfg = loadConfig({ file: join(ROOT, 'config', 'bob.yaml'), env: {} });
    expect(cfg.module).toMatchObject({ host: '127.0.0.1', port: 5001, peer_port: 7001, sender: 0, this_public_IP: '127.0.0.1:7001', data_dir: './data/bob' });
    expect(storeMode(cfg)).toEqual({ handles: 'sqlite', keys: 'sqlite' });
  });

  it('when the shipped files are read as plain YAML, then they spell out every schema field', () => {
    expect(configKeys.fields.length).toBeGreaterThan(40);
    expect(configKeys.sections).toContainEqual(['simulator', 'channel']);
    for (const name of ['configM.yaml', 'config/bob.yaml']) {
      const raw = loadYaml(readFileSync(join(ROOT, name), 'utf8'));
      for (const path of configKeys.fields) {
        const parent = path.slice(0, -1).reduce<unknown>((node, k) => (node as Record<string, unknown> | undefined)?.[k], raw);
        expect(Object.keys(parent as object), `${name}: ${path.join('.')}`).toContain(path[path.length - 1]);
      }
    }
  });
});

describe('default file', () => {
  const cwd = process.cwd();
  afterEach(() => process.chdir(cwd));

  it('when no --config is given and ./configM.yaml is missing, then the defaults apply', () => {
    process.chdir(mkdtempSync(join(work, 'empty-')));
    const cfg = loadConfig({ env: {} });
    expect(cfg.module.port).toBe(5000);
    expect(cfg.module.data_dir).toBe('./data');
  });

  it('when no --config is given and ./configM.yaml exists, then it is read', () => {
    process.chdir(ROOT);
    expect(loadConfig({ env: {} }).module.data_dir).toBe('./data/alice');
  });

  it('when an explicitly given file is missing, then it is an error naming the file', () => {
    const missing = join(work, 'nope.yaml');
    const e = configError(() => loadConfig({ file: missing, env: {} }));
    expect(e.message).toContain(missing);
    expect(e.message).toContain('no such file');
  });
});

describe('environment overrides', () => {
  it('when QKDM_MODULE_PORT is a numeric string, then it is coerced and wins over the file', () => {
    const cfg = load('module:\n  port: 5000\n', { QKDM_MODULE_PORT: '5001', QKDM_MODULE_MAX_KEY_COUNT: '7' });
    expect(cfg.module.port).toBe(5001);
    expect(cfg.module.max_key_count).toBe(7);
  });

  it('when --port is given, then it wins over the environment', () => {
    expect(load('', { QKDM_MODULE_PORT: '5001' }, 6100).module.port).toBe(6100);
    expect(load('', {}, 0).module.port).toBe(0);
  });

  it('when a nested channel field is set, then it reaches simulator.channel', () => {
    const cfg = load('simulator:\n  channel:\n    length_km: 10\n', { QKDM_SIMULATOR_CHANNEL_LENGTH_KM: '50', QKDM_SIMULATOR_CHANNEL_PULSE_RATE_HZ: '1e9' });
    expect(cfg.simulator.channel.length_km).toBe(50);
    expect(cfg.simulator.channel.pulse_rate_hz).toBe(1e9);
    expect(cfg.simulator.channel.attenuation_db_per_km).toBe(0.2);
  });

  it('when internal_db fields are set (section name with an underscore), then MySQL is selected', () => {
    const cfg = load('', {
      QKDM_INTERNAL_DB_HOST: 'db.local',
      QKDM_INTERNAL_DB_PORT: '3307',
      QKDM_INTERNAL_DB_USER: 'qkd',
      QKDM_INTERNAL_DB_PASSWD: 'pw',
      QKDM_INTERNAL_DB_DATABASE: 'qkdm',
    });
    expect(cfg.internal_db).toMatchObject({ host: 'db.local', port: 3307, user: 'qkd', passwd: 'pw', database: 'qkdm' });
    expect(storeMode(cfg)).toEqual({ handles: 'mysql', keys: 'sqlite' });
  });

  it('when fields with underscores are set, then the whole name is matched', () => {
    const cfg = load('', {
      QKDM_MODULE_THIS_PUBLIC_IP: 'https://alice.example:8443',
      QKDM_MODULE_DATA_DIR: '/var/lib/qkdm',
      QKDM_MODULE_RETRY_INITIAL_MS: '50',
      QKDM_VAULT_PATH_PREFIX: 'qkdm/site-a',
    });
    expect(cfg.module.this_public_IP).toBe('https://alice.example:8443');
    expect(cfg.module.data_dir).toBe('/var/lib/qkdm');
    expect(cfg.module.retry_initial_ms).toBe(50);
    expect(cfg.vault.path_prefix).toBe('qkdm/site-a');
  });

  it('when an environment value is empty, then the field is not set', () => {
    const cfg = load('vault:\n  host: vault.local\n  token: t\n', { QKDM_VAULT_HOST: '' });
    expect(storeMode(cfg).keys).toBe('sqlite');
  });

  it('when sender and eve use the accepted spellings, then they are normalised', () => {
    expect(load('module:\n  sender: true\n').module.sender).toBe(1);
    expect(load('module:\n  sender: false\n').module.sender).toBe(0);
    expect(load('', { QKDM_MODULE_SENDER: '0' }).module.sender).toBe(0);
    expect(load('', { QKDM_MODULE_SENDER: 'true' }).module.sender).toBe(1);
    expect(load('simulator:\n  eve: false\n').simulator.eve).toBe(0);
    expect(load('simulator:\n  eve: true\n').simulator.eve).toBe(1);
    expect(load('simulator:\n  eve: 0.25\n').simulator.eve).toBe(0.25);
    expect(load('', { QKDM_SIMULATOR_EVE: 'true' }).simulator.eve).toBe(1);
    expect(load('', { QKDM_SIMULATOR_EVE: '0.5' }).simulator.eve).toBe(0.5);
    expect(load('', { QKDM_SIMULATOR_SEED: '42' }).simulator.seed).toBe(42);
  });

  it('when an unknown QKDM_* variable is set, then it is an error naming it', () => {
    const e = configError(() => load('', { QKDM_MODULE_PROT: '5001' }));
    expect(e.message).toContain('QKDM_MODULE_PROT');
    expect(e.message).toContain('did you mean QKDM_MODULE_PORT?');
    expect(configError(() => load('', { QKDM_SIMULATOR_CHANNEL: 'x' })).message).toContain('QKDM_SIMULATOR_CHANNEL');
    expect(configError(() => load('', { QKDM_INTERNALDB_HOST: 'x' })).message).toContain('QKDM_INTERNALDB_HOST');
  });

  it('when other variables are set, then they are ignored', () => {
    expect(load('', { PATH: '/bin', HOME: '/root', QKD_MODULE_PORT: 'x' }).module.port).toBe(5000);
  });
});

describe('values from files (_FILE)', () => {
  it('when QKDM_VAULT_TOKEN_FILE names a file, then the token is read with the trailing newline trimmed', () => {
    const tokenFile = file('hvs.token-from-file\n', 'token.txt');
    const cfg = load('vault:\n  host: vault.local\n', { QKDM_VAULT_TOKEN_FILE: tokenFile });
    expect(cfg.vault.token).toBe('hvs.token-from-file');
    expect(storeMode(cfg)).toEqual({ handles: 'sqlite', keys: 'vault' });
  });

  it('when _FILE is used for a non-secret field, then it works too', () => {
    expect(load('', { QKDM_INTERNAL_DB_PASSWD_FILE: file('pw\r\n'), QKDM_MODULE_PORT_FILE: file('5003\n') }).module.port).toBe(5003);
  });

  it('when both X and X_FILE are set, then it is an error naming both', () => {
    const e = configError(() => load('', { QKDM_VAULT_TOKEN: 'a', QKDM_VAULT_TOKEN_FILE: file('b\n') }));
    expect(e.message).toContain('vault.token');
    expect(e.message).toContain('QKDM_VAULT_TOKEN ');
    expect(e.message).toContain('QKDM_VAULT_TOKEN_FILE');
  });

  it('when the _FILE file is missing, then it is an error naming the variable', () => {
    const e = configError(() => load('', { QKDM_VAULT_TOKEN_FILE: join(work, 'missing-token') }));
    expect(e.message).toContain('vault.token');
    expect(e.message).toContain('QKDM_VAULT_TOKEN_FILE');
  });
});

describe('invalid values', () => {
  it('when the port is not a number, then the message names the field, the value and the variable', () => {
    const e = configError(() => load('', { QKDM_MODULE_PORT: 'abc' }));
    expect(e.message).toBe('config: module.port: expected an integer between 0 and 65535, got "abc" (from QKDM_MODULE_PORT)');
  });

  it('when ports are out of range, then they are rejected (only module.port may be 0)', () => {
    expect(configError(() => load('module:\n  port: 70000\n')).message).toContain('module.port: expected an integer between 0 and 65535, got 70000');
    expect(configError(() => load('module:\n  port: 1.5\n')).message).toContain('module.port');
    expect(configError(() => load('', {}, -1)).message).toContain('(from --port)');
    expect(configError(() => load('vault:\n  port: 0\n')).message).toContain('vault.port: expected an integer between 1 and 65535');
    expect(configError(() => load('', { QKDM_INTERNAL_DB_PORT: '0x10' })).message).toContain('internal_db.port');
  });

  it('when sender is not 0/1, then module.sender is named', () => {
    expect(configError(() => load('module:\n  sender: 2\n')).message).toContain('module.sender: expected 1 (source) or 0 (detector)');
    expect(configError(() => load('', { QKDM_MODULE_SENDER: 'yes' })).message).toContain('module.sender');
  });

  it('issue 11: when a configuration sets a removed epsilon or the mean photon number, then one line names the field and its replacement', () => {
    const e = configError(() => load('simulator:\n  eps_pe: 1.0e-10\n'));
    expect(e.message).toMatch(/^config: simulator\.eps_pe: removed; set simulator\.eps_sec instead \(the secrecy of the whole protocol: Lim et al\. 2014 compose every failure into eps_sec and eps_cor\) \(in [^)]+\.yaml\)$/);
    expect(configError(() => load('simulator:\n  eps_ec: 1.0e-10\n')).message).toContain('simulator.eps_ec: removed; set simulator.eps_cor instead');
    expect(configError(() => load('simulator:\n  eps_pa: 1.0e-10\n')).message).toContain('simulator.eps_pa: removed; set simulator.eps_sec instead');
    expect(configError(() => load('simulator:\n  sample_fraction: 0.1\n')).message).toContain('simulator.sample_fraction: removed; set simulator.basis_x_probability instead');
    const mu = configError(() => load('simulator:\n  channel:\n    mean_photon_number: 0.5\n'));
    expect(mu.message).toContain('simulator.channel.mean_photon_number: removed; set simulator.intensities instead');
    expect(mu.message).not.toContain('\n');
    expect(configError(() => load('', { QKDM_SIMULATOR_EPS_PA: '1e-10' })).message).toContain('simulator.eps_pa: removed; set simulator.eps_sec instead (the secrecy of the whole protocol: Lim et al. 2014 compose every failure into eps_sec and eps_cor) (from QKDM_SIMULATOR_EPS_PA)');
    expect(configError(() => load('', { QKDM_SIMULATOR_CHANNEL_MEAN_PHOTON_NUMBER: '0.5' })).message).toContain('simulator.channel.mean_photon_number: removed');
    // Empty means not set, for a removed field too.
    expect(load('simulator:\n  eps_pe:\n').simulator.eps_sec).toBe(1e-10);
  });

  it('issue 11: when the decoy source is set, then lists come from YAML or JSON in the environment and Lim 2014\'s order and sum are enforced', () => {
    const cfg = load('simulator:\n  intensities: [0.6, 0.2, 0.001]\n  intensity_probabilities: [0.5, 0.3, 0.2]\n', { QKDM_SIMULATOR_BASIS_X_PROBABILITY: '0.9' });
    expect(cfg.simulator).toMatchObject({ intensities: [0.6, 0.2, 0.001], intensity_probabilities: [0.5, 0.3, 0.2], basis_x_probability: 0.9 });
    expect(load('', { QKDM_SIMULATOR_INTENSITIES: '[0.5, 0.1, 0]' }).simulator.intensities).toEqual([0.5, 0.1, 0]);
    expect(configError(() => load('simulator:\n  intensities: [0.5, 0.1]\n')).message).toContain('simulator.intensities: expected a list of 3 numbers, signal first');
    expect(configError(() => load('simulator:\n  intensities: [0.3, 0.2, 0.15]\n')).message).toContain('simulator.intensities: expected mu1 > mu2 + mu3 (Lim 2014)');
    expect(configError(() => load('simulator:\n  intensities: [0.5, 0.1, 0.2]\n')).message).toContain('simulator.intensities: expected mu2 > mu3 (Lim 2014)');
    expect(configError(() => load('simulator:\n  intensity_probabilities: [0.5, 0.3, 0.3]\n')).message).toContain('simulator.intensity_probabilities: expected probabilities summing to 1');
    expect(configError(() => load('', { QKDM_SIMULATOR_INTENSITIES: '0.5,0.1,0' })).message).toContain('simulator.intensities');
  });

  it('issue 11: when an attack is simulated, then intercept-resend takes its fraction from eve, and eve alone still means intercept-resend', () => {
    expect(load('simulator:\n  attack: pns\n').simulator.attack).toBe('pns');
    expect(load('simulator:\n  attack: intercept-resend\n  eve: 0.5\n').simulator).toMatchObject({ attack: 'intercept-resend', eve: 0.5 });
    expect(configError(() => load('simulator:\n  attack: intercept-resend\n')).message).toContain('simulator.eve: expected the fraction of pulses intercepted');
    expect(configError(() => load('simulator:\n  attack: pns\n  eve: 0.3\n')).message).toContain('simulator.eve: applies to simulator.attack intercept-resend only');
  });

  it('when eve is 1.5, then simulator.eve is named', () => {
    expect(configError(() => load('simulator:\n  eve: 1.5\n')).message).toContain('simulator.eve: expected false, true or a number between 0 and 1, got 1.5');
  });

  it('when the table name is not an identifier, then module.table is named', () => {
    expect(configError(() => load('module:\n  table: "handles; DROP TABLE x"\n')).message).toContain('module.table: expected an identifier');
    expect(configError(() => load(`module:\n  table: ${'a'.repeat(65)}\n`)).message).toContain('module.table');
  });

  it('when enums, fractions and counts are out of range, then the field is named', () => {
    expect(configError(() => load('module:\n  sim: quantum\n')).message).toContain('module.sim: expected one of fake, bb84');
    expect(configError(() => load('module:\n  log_level: loud\n')).message).toContain('module.log_level');
    expect(configError(() => load('module:\n  max_key_count: 0\n')).message).toContain('module.max_key_count');
    expect(configError(() => load('simulator:\n  eps_sec: 0\n')).message).toContain('simulator.eps_sec: expected a number greater than 0 and less than 1');
    expect(configError(() => load('simulator:\n  eps_cor: 1\n')).message).toContain('simulator.eps_cor');
    expect(configError(() => load('simulator:\n  basis_x_probability: 1\n')).message).toContain('simulator.basis_x_probability');
    expect(configError(() => load('simulator:\n  pa_block_bits: 100\n')).message).toContain('simulator.pa_block_bits: expected an integer between 10000 and');
    expect(configError(() => load('simulator:\n  attack: mitm\n')).message).toContain('simulator.attack: expected one of none, intercept-resend, pns');
    expect(configError(() => load('simulator:\n  channel:\n    afterpulse_probability: 2\n')).message).toContain('simulator.channel.afterpulse_probability');
    expect(configError(() => load('simulator:\n  channel:\n    dark_count_probability: 0.6\n')).message).toContain('simulator.channel.dark_count_probability: expected a number between 0 and 0.5');
    expect(configError(() => load('simulator:\n  cascade_passes: 3\n')).message).toContain('simulator.cascade_passes');
    expect(configError(() => load('simulator:\n  privacy_amplification: sha3\n')).message).toContain('simulator.privacy_amplification');
    expect(configError(() => load('simulator:\n  block_pulses: -5\n')).message).toContain('simulator.block_pulses');
    expect(configError(() => load('', { QKDM_SIMULATOR_CHANNEL_LENGTH_KM: 'far' })).message).toContain(
      'simulator.channel.length_km: expected a number >= 0, got "far" (from QKDM_SIMULATOR_CHANNEL_LENGTH_KM)',
    );
    expect(configError(() => load('module:\n  this_public_IP: ftp://x:1\n')).message).toContain('module.this_public_IP');
    expect(configError(() => load('module:\n  retry_initial_ms: 20000\n')).message).toContain('module.retry_initial_ms: must not exceed');
  });

  it('when the YAML has an unknown key, then it is named with its section', () => {
    const e = configError(() => load('module:\n  port: 5000\n  prot: 5001\n'));
    expect(e.message).toContain('module: unknown key "prot"');
    expect(configError(() => load('modules:\n  port: 1\n')).message).toContain('unknown key "modules"');
    expect(configError(() => load('simulator:\n  channel:\n    lenght_km: 1\n')).message).toContain('simulator.channel: unknown key "lenght_km"');
  });

  it('when a section is not a mapping, then the section is named', () => {
    expect(configError(() => load('vault: 5\n')).message).toContain('vault: expected a mapping');
    expect(configError(() => load('- 1\n- 2\n')).message).toContain('expected a mapping of sections');
  });

  it('when the YAML is broken, then the message names the file and the line', () => {
    const path = file('module:\n  port: 5000\n   host: x\n', 'broken.yaml');
    const e = configError(() => loadConfig({ file: path, env: {} }));
    expect(e.message).toMatch(/^config: .*broken\.yaml line 3: bad indentation/);
    expect(configError(() => load('a: 1\na: 2\n')).message).toContain('line 2: duplicated mapping key');
  });
});

describe('cross-field checks', () => {
  it('when internal_db.host is set without user and database, then both are required', () => {
    const e = configError(() => load('internal_db:\n  host: db\n'));
    expect(e.message).toContain('internal_db.user: required when internal_db.host or internal_db.socket is set');
    expect(e.message).toContain('internal_db.database: required');
    expect(configError(() => load('internal_db:\n  socket: /run/mysqld.sock\n  user: u\n')).message).toContain('internal_db.database');
  });

  it('when vault.host is set without a token, then vault.token is required', () => {
    expect(configError(() => load('vault:\n  host: vault.local\n')).message).toContain('vault.token: required when vault.host is set');
  });

  it('when sim is bb84 without keys, then loading succeeds (keys are checked at start-up)', () => {
    expect(load('module:\n  sim: bb84\n').module.sim).toBe('bb84');
  });
});

describe('secrets', () => {
  const SECRET = 'Zebra!Secret#4711';
  const secretWords = ['Zebra', '4711'];
  const noSecret = (message: string): void => {
    for (const word of secretWords) expect(message).not.toContain(word);
  };

  it('when a secret field is invalid, then its value is redacted in the message', () => {
    const e = configError(() => load('', { QKDM_SIMULATOR_PRIVATE_KEY: SECRET }));
    expect(e.message).toContain('simulator.private_key: expected hex or base64 text, got <redacted> (from QKDM_SIMULATOR_PRIVATE_KEY)');
    noSecret(e.message);
    const e2 = configError(() => load('vault:\n  host: v\n  token: 94711\n'));
    expect(e2.message).toContain('vault.token: expected a string, got <redacted>');
    noSecret(e2.message);
    const e3 = configError(() => load(`simulator:\n  public_key: [${SECRET}]\n`));
    expect(e3.message).toContain('simulator.public_key');
    noSecret(e3.message);
  });

  it('when another field fails while secrets are set, then no secret appears', () => {
    const tokenFile = file(`${SECRET}\n`);
    const messages = [
      configError(() => load('internal_db:\n  host: db\n', { QKDM_INTERNAL_DB_PASSWD: SECRET })).message,
      configError(() => load(`vault:\n  host: v\n  token: "${SECRET}"\n  port: x\n`)).message,
      configError(() => load('', { QKDM_VAULT_TOKEN: SECRET, QKDM_VAULT_TOKEN_FILE: tokenFile })).message,
      configError(() => load('', { QKDM_VAULT_TOKN: SECRET })).message,
      configError(() => load(`vault:\n  token: "${SECRET}"\n  tokn: x\n`)).message,
      // a syntax error on the secret's own line: the message carries no source snippet
      configError(() => load(`vault:\n  token: "${SECRET}"\n   x: 1\n`)).message,
      configError(() => load(`vault:\n  token: "${SECRET}\n`)).message,
    ];
    for (const message of messages) noSecret(message);
  });

  it('when the configuration is logged, then redactedConfig hides every set secret and copies the rest', () => {
    const cfg = load(`internal_db:\n  host: db\n  user: u\n  database: d\n  passwd: "${SECRET}"\nvault:\n  host: v\n  token: "${SECRET}"\nsimulator:\n  private_key: abcd\n`);
    const red = redactedConfig(cfg) as { internal_db: Record<string, unknown>; vault: Record<string, unknown>; simulator: Record<string, unknown>; module: Record<string, unknown> };
    noSecret(JSON.stringify(red));
    expect(red.internal_db.passwd).toBe('<redacted>');
    expect(red.vault.token).toBe('<redacted>');
    expect(red.simulator.private_key).toBe('<redacted>');
    expect(red.simulator.public_key).toBeUndefined();
    expect(red.module.port).toBe(5000);
    expect(cfg.vault.token).toBe(SECRET); // the original is untouched
  });
});

describe('TLS, peer listener, API token and ETSI 014', () => {
  it('when a peer listener with a certificate is set, then this_public_IP defaults to https on the peer port', () => {
    const cfg = load('module:\n  port: 5000\n  peer_port: 7000\npeer_tls:\n  cert: a.crt\n  key: a.key\n  ca: ca.crt\n  peer_name: bob\n');
    expect(cfg.module.this_public_IP).toBe('https://127.0.0.1:7000');
    expect(cfg.peer_tls.client_cert).toBe('require');
    expect(load('module:\n  peer_port: 7000\n').module.this_public_IP).toBe('127.0.0.1:7000');
    expect(load('tls:\n  cert: a.crt\n  key: a.key\n').module.this_public_IP).toBe('https://127.0.0.1:5000');
  });

  it('when the peer listener would be on a port fetch blocks (6000, X11), then the field is named', () => {
    expect(configError(() => load('module:\n  peer_port: 6000\n')).message).toContain('module.peer_port: port 6000 is one the Fetch standard blocks');
    expect(configError(() => load('module:\n  this_public_IP: 10.0.0.2:6667\n')).message).toContain('module.this_public_IP: port 6667');
  });

  it('when TLS settings are incomplete, then the missing field is named', () => {
    expect(configError(() => load('tls:\n  cert: a.crt\n')).message).toContain('tls.key: required when tls.cert is set');
    expect(configError(() => load('peer_tls:\n  key: a.key\n')).message).toContain('peer_tls.cert: required when peer_tls.key is set');
    expect(configError(() => load('tls:\n  cert: a\n  key: b\n  client_cert: require\n')).message).toContain('tls.ca: required when tls.client_cert is require');
    expect(configError(() => load('tls:\n  client_cert: always\n')).message).toContain('tls.client_cert: expected one of none, request, require');
    // The peer listener either requires the peer's certificate or asks for none; the peer is pinned by name.
    expect(configError(() => load('peer_tls:\n  client_cert: request\n')).message).toContain('peer_tls.client_cert: expected one of none, require');
    expect(configError(() => load('peer_tls:\n  cert: a\n  key: b\n  ca: c\n')).message).toContain('peer_tls.peer_name: required when peer_tls.ca is set');
    expect(configError(() => load('module:\n  port: 5000\n  peer_port: 5000\n')).message).toContain('module.peer_port: must differ from module.port');
  });

  it('when ETSI 014 pairs come from the environment, then a JSON array is accepted and checked', () => {
    const pairs = JSON.stringify([{ sae_id: 'sae-a', peer_sae_id: 'sae-b', peer_module: '127.0.0.1:7001', peer_kme_id: 'KME-B' }]);
    const cfg = load('', { QKDM_ETSI014_KME_ID: 'KME-A', QKDM_ETSI014_SAES: pairs, QKDM_ETSI014_IDENTITIES: '[{"sae_id":"sae-a","cert_subject":"CN=sae-a"}]' });
    expect(cfg.etsi014.saes).toEqual([{ sae_id: 'sae-a', peer_sae_id: 'sae-b', peer_module: '127.0.0.1:7001', peer_kme_id: 'KME-B' }]);
    expect(cfg.etsi014.identities).toEqual([{ sae_id: 'sae-a', cert_subject: 'CN=sae-a' }]);
    expect(configError(() => load('', { QKDM_ETSI014_SAES: pairs })).message).toContain('etsi014.kme_id: required when etsi014.saes is set');
    expect(configError(() => load('', { QKDM_ETSI014_SAES: 'sae-a' })).message).toContain('etsi014.saes: expected a list (in the environment: a JSON array)');
    expect(configError(() => load('etsi014:\n  identities:\n    - sae_id: x\n')).message).toContain('etsi014.identities.0: set cert_subject, cert_sha256 or cert_name');
    expect(configError(() => load('etsi014:\n  key_size: 100\n')).message).toContain('etsi014.key_size: expected a multiple of 8');
    expect(configError(() => load('etsi014:\n  min_key_size: 512\n')).message).toContain('etsi014.key_size: must be between');
    expect(configError(() => load('etsi014:\n  max_key_count: 21\n')).message).toContain('etsi014.max_key_count: must not exceed module.max_key_count (20)');
    expect(load('etsi014:\n  allow_header_identity: true\n').etsi014.allow_header_identity).toBe(true);
  });

  it('when tls.key and api_token are set, then they are secrets: redacted in logs and messages', () => {
    const cfg = load('module:\n  api_token: Zebra-4711\ntls:\n  cert: a.crt\n  key: /secret/path.key\n');
    const red = JSON.stringify(redactedConfig(cfg));
    expect(red).not.toContain('Zebra');
    expect(red).not.toContain('/secret/path.key');
    expect(configError(() => load('module:\n  api_token: [Zebra4711]\n')).message).not.toContain('Zebra');
  });
});

describe('derived helpers', () => {
  it('when only the socket is set, then MySQL handles are selected', () => {
    expect(storeMode(load('internal_db:\n  socket: /run/mysqld/mysqld.sock\n  user: u\n  database: d\n')).handles).toBe('mysql');
  });

  it('when vault is configured, then vaultEndpoint is scheme://host:port with 8200 by default', () => {
    expect(vaultEndpoint(load('vault:\n  host: vault.local\n  token: t\n'))).toBe('https://vault.local:8200');
    expect(vaultEndpoint(load('vault:\n  host: 10.0.0.5\n  port: 8300\n  scheme: https\n  token: t\n'))).toBe('https://10.0.0.5:8300');
    expect(vaultEndpoint(load('vault:\n  host: "::1"\n  scheme: http\n  token: t\n'))).toBe('http://[::1]:8200');
  });

  it('when vault uses plain http to a host that is not loopback, then it is refused unless allow_plain_http says so explicitly', () => {
    expect(configError(() => load('vault:\n  host: vault.example\n  scheme: http\n  token: t\n')).message).toMatch(/vault\.scheme: http sends the Vault token and the keys in clear to vault\.example.*allow_plain_http: true \(INSECURE\)/);
    expect(load('vault:\n  host: vault.example\n  scheme: http\n  token: t\n  allow_plain_http: true\n').vault.allow_plain_http).toBe(true);
    for (const host of ['127.0.0.1', 'localhost', '"::1"']) expect(load(`vault:\n  host: ${host}\n  scheme: http\n  token: t\n`).vault.scheme).toBe('http');
  });

  it('when vault.host contains a scheme, then it is rejected', () => {
    expect(configError(() => load('vault:\n  host: http://vault:8200\n  token: t\n')).message).toContain('vault.host: expected a host name');
  });
});

describe('peer_auth.legacy_peer (issue 16 point 3: an original Python module as the peer)', () => {
  it('when it is set without peer_auth.insecure, then it is one config error naming both settings', () => {
    const err = configError(() => load('peer_auth:\n  legacy_peer: 10.0.2.15:5000\n'));
    expect(err.message).toMatch(/^config: peer_auth\.legacy_peer: needs peer_auth\.insecure: true/);
    expect(err.message).not.toContain('\n');
  });

  it('when it is set with insecure, then it needs the fake simulator, plain http and an explicit port', () => {
    expect(load('peer_auth:\n  insecure: true\n  legacy_peer: 10.0.2.15:5000\n').peer_auth.legacy_peer).toBe('10.0.2.15:5000');
    expect(configError(() => load('module:\n  sim: bb84\npeer_auth:\n  insecure: true\n  legacy_peer: 10.0.2.15:5000\n')).message).toContain('needs module.sim: fake');
    expect(configError(() => load('peer_auth:\n  insecure: true\n  legacy_peer: https://10.0.2.15:5000\n')).message).toContain('plain http');
    expect(configError(() => load('peer_auth:\n  insecure: true\n  legacy_peer: 10.0.2.15\n')).message).toContain('the port written out');
  });
});
