-- QoS TTL per key stream (ETSI GS QKD 004), in seconds; 0 = no TTL. Keys of a stream with a TTL are
-- erased once older than it (see src/core/KeyStreamManager.ts). BIGINT: the ETSI field is a uint32.
-- Re-run after a crash between this DDL and its bookkeeping row: the migrator takes the duplicate-column
-- error (ER_DUP_FIELDNAME) as "already applied" (MySQL 8 has no ADD COLUMN IF NOT EXISTS).
ALTER TABLE {{table}} ADD COLUMN ttl BIGINT NOT NULL DEFAULT 0;
