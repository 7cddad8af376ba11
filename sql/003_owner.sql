-- The identity at this end that opened the key stream (an application ID, `local`, or `etsi014`);
-- '' until a local application opened it. Only that identity may use the stream.
-- Streams that existed before this column belong to `local` (the identity of every caller of a module
-- without configured applications), so they stay usable after the upgrade.
-- Re-run after a crash between this DDL and its bookkeeping row: ER_DUP_FIELDNAME counts as applied.
ALTER TABLE {{table}} ADD COLUMN owner VARCHAR(128) NOT NULL DEFAULT 'local';
