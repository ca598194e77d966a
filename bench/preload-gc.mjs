// Loaded into every Node server under test (run with --expose-gc): SIGUSR2 runs a full GC, so
// idle-memory readings are not skewed by garbage that has not been collected yet. With
// BENCH_HEAP_DIR set, SIGWINCH writes a heap snapshot there (bench/heap-summary.mjs reads it).
import { writeHeapSnapshot } from 'node:v8';
import path from 'node:path';

process.on('SIGUSR2', () => globalThis.gc?.());
if (process.env.BENCH_HEAP_DIR) {
  let n = 0;
  process.on('SIGWINCH', () => {
    globalThis.gc?.();
    writeHeapSnapshot(path.join(process.env.BENCH_HEAP_DIR, `heap-${process.pid}-${++n}.heapsnapshot`));
  });
}
