/**
 * Preloaded (node --expose-gc --require) into module processes by hostile-requests.test.ts: on SIGUSR2
 * the main thread runs a full garbage collection and appends its memory figures (bytes) to
 * $HOSTILE_TEST_MEMLOG as one JSON line, so the test compares what the process keeps, not how much garbage
 * V8 happened to leave uncollected at the moment of a reading.
 */
'use strict';
const { appendFileSync } = require('node:fs');
const { isMainThread } = require('node:worker_threads');

const out = process.env.HOSTILE_TEST_MEMLOG;
if (out && isMainThread && typeof global.gc === 'function') {
  process.on('SIGUSR2', () => {
    global.gc();
    global.gc();
    const m = process.memoryUsage();
    appendFileSync(out, `${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external })}\n`);
  });
}
