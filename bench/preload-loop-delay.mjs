// Loaded into the server under the store benchmarks (`--import`): every second, the longest and
// the 99th-percentile event-loop delay of that second go to $BENCH_LOOP_FILE as a JSON line. The
// delay is how late a 5 ms timer ran: the longest time the event loop was busy with one thing.
import { appendFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.BENCH_LOOP_FILE;
if (file) {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  setInterval(() => {
    appendFileSync(file, `${JSON.stringify({ t: Date.now(), maxMs: histogram.max / 1e6, p99Ms: histogram.percentile(99) / 1e6 })}\n`);
    histogram.reset();
  }, 1000).unref();
}
