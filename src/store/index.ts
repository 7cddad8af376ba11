/**
 * Chooses the store adapters from the configuration: the one place that knows which exist.
 *   handles: MySQL/MariaDB when internal_db.host (or socket) is set, else embedded SQLite;
 *   keys:    HashiCorp Vault KV v2 when vault.host is set, else embedded SQLite;
 *   reconciled: the same backend as keys (the bits keys are made from live where the keys live).
 */
import type { Logger } from 'pino';
import type Database from 'better-sqlite3';
import { isLoopbackHost, storeMode, vaultEndpoint, type ModuleConfig } from '../config/schema.js';
import { readPemOrPath } from '../config/tls.js';
import type { HandleStore } from './HandleStore.js';
import type { KeyStore } from './KeyStore.js';
import type { ReconciledBlockStore } from './ReconciledBlockStore.js';
import { MysqlHandleStore } from './mysql/MysqlHandleStore.js';
import { openSqliteDatabase } from './sqlite/SqliteDatabase.js';
import { SqliteHandleStore } from './sqlite/SqliteHandleStore.js';
import { SqliteKeyStore } from './sqlite/SqliteKeyStore.js';
import { SqliteReconciledBlockStore } from './sqlite/SqliteReconciledBlockStore.js';
import { VaultKeyStore, type VaultKeyStoreOptions } from './vault/VaultKeyStore.js';
import { VaultReconciledBlockStore } from './vault/VaultReconciledBlockStore.js';
import { StoreError } from './errors.js';

export interface Stores {
  handles: HandleStore;
  keys: KeyStore;
  /** Reconciled blocks waiting for privacy amplification (issue 11); same backend as `keys`. */
  reconciled: ReconciledBlockStore;
  /** e.g. "handles=mysql keys=vault" for the start-up log. */
  description: string;
  close(): Promise<void>;
}

export async function openStores(cfg: ModuleConfig, log: Logger): Promise<Stores> {
  const mode = storeMode(cfg);
  let sqlite: Database.Database | undefined;
  const embedded = (): Database.Database => {
    try {
      return (sqlite ??= openSqliteDatabase(cfg.module.data_dir));
    } catch (err) {
      throw startFailure(err, `module.data_dir (${cfg.module.data_dir})`, 'cannot open the embedded store there', 'set module.data_dir to a directory this process can write');
    }
  };

  let handles: HandleStore;
  if (mode.handles === 'mysql') {
    const db = cfg.internal_db;
    const where = db.socket ? `socket ${db.socket}` : `${db.host ?? 'localhost'}:${db.port ?? 3306}`;
    try {
      handles = await MysqlHandleStore.open({
        host: db.host ?? 'localhost',
        port: db.port ?? 3306,
        user: db.user ?? '',
        password: db.passwd ?? '',
        database: db.database ?? '',
        table: cfg.module.table,
        ...(db.socket ? { socketPath: db.socket } : {}),
      });
    } catch (err) {
      throw startFailure(
        err,
        `internal_db (${where}, database ${db.database ?? ''})`,
        'the handle store cannot be opened',
        isPermission(err)
          ? 'check internal_db.user, internal_db.passwd and the grants on the database'
          : 'start MariaDB/MySQL there or fix internal_db.host/port/socket/database, or unset internal_db.host and internal_db.socket to use the embedded store',
      );
    }
  } else {
    handles = new SqliteHandleStore(embedded());
  }

  let keys: KeyStore;
  let reconciled: ReconciledBlockStore;
  if (mode.keys === 'vault') {
    const ca = cfg.vault.ca ? readPemOrPath('vault.ca', cfg.vault.ca) : undefined;
    if (cfg.vault.scheme === 'http' && !isLoopbackHost(cfg.vault.host!)) {
      log.warn({ host: cfg.vault.host }, 'INSECURE: vault.allow_plain_http: the Vault token and the keys cross the network in clear');
    }
    const vaultOptions: VaultKeyStoreOptions = {
      endpoint: vaultEndpoint(cfg),
      token: cfg.vault.token ?? '',
      mount: cfg.vault.mount,
      pathPrefix: cfg.vault.path_prefix,
      // Vault takes `GET ...?list=true` as LIST; a plain verb also passes proxies and Node-based servers.
      noCustomHTTPVerbs: true,
      ...(ca ? { ca } : {}),
    };
    keys = new VaultKeyStore(vaultOptions);
    reconciled = new VaultReconciledBlockStore(vaultOptions);
    // Reachable, and the token may list the prefix: found now rather than at the first key.
    try {
      await keys.indices('startup-probe');
    } catch (err) {
      await handles.close().catch(() => undefined);
      await reconciled.close().catch(() => undefined);
      throw startFailure(
        err,
        `vault (${vaultEndpoint(cfg)})`,
        'the key store cannot be reached',
        isPermission(err) ? 'check vault.token (it needs list, read, create and delete on the mount and path_prefix)' : 'start Vault there or fix vault.host/port/scheme, or unset vault.host to use the embedded store',
      );
    }
  } else {
    keys = new SqliteKeyStore(embedded());
    reconciled = new SqliteReconciledBlockStore(embedded());
  }

  const description = `handles=${mode.handles} keys=${mode.keys}`;
  log.info({ stores: description, dataDir: sqlite ? cfg.module.data_dir : undefined }, 'stores opened');
  return {
    handles,
    keys,
    reconciled,
    description,
    async close() {
      await handles.close();
      await keys.close();
      await reconciled.close();
      sqlite?.close();
    },
  };
}

function isPermission(err: unknown): boolean {
  return err instanceof StoreError && err.kind === 'permission';
}

/**
 * A store that cannot be opened at start-up, as one line naming the setting and the fix (issue 16:
 * "every start-up failure is one line"). The adapter's message (never a secret) says what happened.
 */
function startFailure(err: unknown, setting: string, what: string, fix: string): Error {
  const detail = err instanceof Error ? err.message : String(err);
  return new Error(`${setting}: ${what} (${detail}): ${fix}`);
}
