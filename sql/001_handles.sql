-- Key-stream handles (one row per Key_stream_ID). Never holds key bytes.
-- {{table}} is replaced by the migrator with the configured, validated and backquoted table name.
-- `seq` only records creation order (list() returns streams in the order they were created).
-- Statements are separated by a semicolon at the end of a line.
CREATE TABLE IF NOT EXISTS {{table}} (
  seq          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  handle       VARCHAR(64)  NOT NULL,
  source       VARCHAR(255) NOT NULL,
  destination  VARCHAR(255) NOT NULL,
  peer_url     VARCHAR(255) NOT NULL,
  length       INT          NOT NULL,
  timeout      INT          NOT NULL,
  local_open   TINYINT      NOT NULL DEFAULT 0,
  synchronized TINYINT      NOT NULL DEFAULT 0,
  closed       TINYINT      NOT NULL DEFAULT 0,
  next_index   BIGINT       NOT NULL DEFAULT 0,
  created_at   BIGINT       NOT NULL,
  updated_at   BIGINT       NOT NULL,
  PRIMARY KEY (handle),
  UNIQUE KEY seq_unique (seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
