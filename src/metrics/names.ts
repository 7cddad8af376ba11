/**
 * The names of the module's own Prometheus metrics: the contract between src/metrics (which registers
 * them) and the operator docs (docs/operations.md, docs/grafana/qkd-module.json,
 * docs/prometheus/alerts.yml), which test/docs/operations.test.ts holds to this list. Labels never
 * carry key material or unbounded user input. Besides these, /metrics serves prom-client's default
 * process_* and nodejs_* metrics, and Prometheus adds `up` for every target.
 */
export const METRIC_NAMES = [
  /** Counter {stream, role}: keys committed at this end after key confirmation (deliverable from then on). */
  'qkdm_keys_produced_total',
  /** Counter {stream, role}: keys handed to applications (seed API, ETSI 004, ETSI 014, key server). */
  'qkdm_keys_delivered_total',
  /** Counter {stream, role, reason}: keys erased without being delivered, by reason (a fixed list). */
  'qkdm_keys_discarded_total',
  /** Gauge {stream, role}: keys stored and deliverable now (committed, not delivered); one series per stream. */
  'qkdm_keys_buffered',
  /** Counter {stream, role}: secret bits of committed blocks (BB84: the finite-key length; fake: the key bits). */
  'qkdm_secret_bits_total',
  /** Counter {stream, role}: key-exchange rounds (blocks) that committed keys. */
  'qkdm_blocks_total',
  /** Counter {stream, role, reason}: key-exchange rounds (blocks) that ended without committing keys, by reason. */
  'qkdm_blocks_aborted_total',
  /** Gauge {stream, role}: QBER estimated in the last block (BB84; absent for the fake device). */
  'qkdm_qber',
  /** Histogram {role}: QBER per block (buckets over 0..0.15). */
  'qkdm_block_qber',
  /** Gauge {stream, role}: secret bits per pulse sent in the last block (BB84). */
  'qkdm_secret_bits_per_pulse',
  /** Histogram {role}: duration of a key-exchange round, from its first message to its commit or its end. */
  'qkdm_round_duration_seconds',
  /** Counter {kind}: failed calls to the peer module, by kind (a fixed list). */
  'qkdm_peer_request_errors_total',
  /** Gauge: 1 when the peer module answered recently, else 0 (also while no peer is known). */
  'qkdm_peer_up',
  /** Gauge {stream}: 1 while the stream's exchange is halted (key confirmation failed, counters out of step), else 0. */
  'qkdm_stream_halted',
  /** Histogram {route, method, status}: HTTP request duration by route pattern (never the raw path; `unmatched`). */
  'qkdm_http_request_duration_seconds',
  /** Histogram {store, operation}: duration of handle-store and key-store calls (store: sqlite, mysql, vault, memory). */
  'qkdm_store_operation_duration_seconds',
] as const;

export type MetricName = (typeof METRIC_NAMES)[number];
