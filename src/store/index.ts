/**
 * Chooses the store adapters from the configuration: the one place that knows which exist.
 *   handles: MySQL/MariaDB when internal_db.host (or socket) is set, else embedded SQLite;
 *   keys:    HashiCorp Vault KV v2 when vault.host is set, else embedded SQLite.
 */
import type { Logger } from 'pino';
import type Database from 'better-sqlite3';
import { isLoopbackHost, storeMode, vaultEndpoint, type ModuleConfig } from '../config/schema.js';
import { readPemOrPath } from '../config/tls.js';
import type { HandleStore } from './HandleStore.js';
import type { KeyStore } from './KeyStore.js';
import { MysqlHandleStore } from './mysql/MysqlHandleStore.js';
import { openSqliteDatabase } from './sqlite/SqliteDatabase.js';
import { SqliteHandleStore } from './sqlite/SqliteHandleStore.js';
import { SqliteKeyStore } from './sqlite/SqliteKeyStore.js';
import { VaultKeyStore } from './vault/VaultKeyStore.js';

export interface Stores {
  handles: HandleStore;
  keys: KeyStore;
  /** e.g. "handles=mysql keys=vault" for the start-up log. */
  description: string;
  close(): Promise<void>;
}

export async function openStores(cfg: ModuleConfig, log: Logger): Promise<Stores> {
  const mode = storeMode(cfg);
  let sqlite: Database.Database | undefined;
  const embedded = (): Database.Database => (sqlite ??= openSqliteDatabase(cfg.module.data_dir));

  let handles: HandleStore;
  if (mode.handles === 'mysql') {
    const db = cfg.internal_db;
    handles = await MysqlHandleStore.open({
      host: db.host ?? 'localhost',
      port: db.port ?? 3306,
      user: db.user ?? '',
      password: db.passwd ?? '',
      database: db.database ?? '',
      table: cfg.module.table,
      ...(db.socket ? { socketPath: db.socket } : {}),
    });
  } else {
    handles = new SqliteHandleStore(embedded());
  }

  let keys: KeyStore;
  if (mode.keys === 'vault') {
    const ca = cfg.vault.ca ? readPemOrPath('vault.ca', cfg.vault.ca) : undefined;
    if (cfg.vault.scheme === 'http' && !isLoopbackHost(cfg.vault.host!)) {
      log.warn({ host: cfg.vault.host }, 'INSECURE: vault.allow_plain_http: the Vault token and the keys cross the network in clear');
    }
    keys = new VaultKeyStore({
      endpoint: vaultEndpoint(cfg),
      token: cfg.vault.token ?? '',
      mount: cfg.vault.mount,
      pathPrefix: cfg.vault.path_prefix,
      ...(ca ? { ca } : {}),
    });
  } else {
    keys = new SqliteKeyStore(embedded());
  }

  const description = `handles=${mode.handles} keys=${mode.keys}`;
  log.info({ stores: description, dataDir: sqlite ? cfg.module.data_dir : undefined }, 'stores opened');
  return {
    handles,
    keys,
    description,
    async close() {
      await handles.close();
      await keys.close();
      sqlite?.close();
    },
  };
}
