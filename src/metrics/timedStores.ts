/**
 * Store timing (qkdm_store_operation_duration_seconds{store,operation}): decorators around the
 * KeyStore and HandleStore ports, so no adapter is touched and every adapter is timed the same way.
 * The series of each operation is looked up once here; a call costs two clock reads and an observation.
 */
import type { HandleStore } from '../store/HandleStore.js';
import type { KeyStore } from '../store/KeyStore.js';
import type { HistogramSeries, LiteHistogram } from './LiteHistogram.js';

export type StoreKind = 'sqlite' | 'mysql' | 'vault' | 'memory';
export type StoreLabel = 'store' | 'operation';

/** The `operation` label values (a fixed list: one per port method; close is not timed). */
export const KEY_STORE_OPERATIONS = ['put_many', 'take', 'deliver', 'redeliver', 'delivered', 'erase', 'indices', 'delete_stream'] as const;
export const HANDLE_STORE_OPERATIONS = ['create', 'get', 'list', 'update', 'advance_index', 'delete'] as const;

function timed<A extends unknown[], R>(series: HistogramSeries, call: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return (...args: A): Promise<R> => {
    const started = performance.now();
    return call(...args).then(
      (value) => {
        series.observe((performance.now() - started) / 1000);
        return value;
      },
      (err: unknown) => {
        series.observe((performance.now() - started) / 1000);
        throw err;
      },
    );
  };
}

export function timeKeyStore(inner: KeyStore, store: StoreKind, histogram: LiteHistogram<StoreLabel>): KeyStore {
  const op = (operation: (typeof KEY_STORE_OPERATIONS)[number]): HistogramSeries => histogram.series({ store, operation });
  return {
    putMany: timed(op('put_many'), inner.putMany.bind(inner)),
    take: timed(op('take'), inner.take.bind(inner)),
    deliver: timed(op('deliver'), inner.deliver.bind(inner)),
    redeliver: timed(op('redeliver'), inner.redeliver.bind(inner)),
    delivered: timed(op('delivered'), inner.delivered.bind(inner)),
    erase: timed(op('erase'), inner.erase.bind(inner)),
    indices: timed(op('indices'), inner.indices.bind(inner)),
    deleteStream: timed(op('delete_stream'), inner.deleteStream.bind(inner)),
    close: () => inner.close(),
  };
}

export function timeHandleStore(inner: HandleStore, store: StoreKind, histogram: LiteHistogram<StoreLabel>): HandleStore {
  const op = (operation: (typeof HANDLE_STORE_OPERATIONS)[number]): HistogramSeries => histogram.series({ store, operation });
  return {
    create: timed(op('create'), inner.create.bind(inner)),
    get: timed(op('get'), inner.get.bind(inner)),
    list: timed(op('list'), inner.list.bind(inner)),
    update: timed(op('update'), inner.update.bind(inner)),
    advanceIndex: timed(op('advance_index'), inner.advanceIndex.bind(inner)),
    delete: timed(op('delete'), inner.delete.bind(inner)),
    close: () => inner.close(),
  };
}
