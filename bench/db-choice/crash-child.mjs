// Child for crash.mjs and disk-full.mjs: publishes without end (CONCURRENCY callers) and reports
// "ack <id>" on stdout as each publish's promise resolves (a pipe write is synchronous on Linux, so
// the line is out before the next statement runs). On a failed publish it reports
// "fail <code> <message>" and keeps trying every 20 ms (disk-full.mjs reads how the failure looks
// and whether publishing recovers once the disk has room again).
// Usage: node crash-child.mjs KIND MODE DIR [CONCURRENCY]
import { writeSync } from 'node:fs';
import { openStore } from './stores.mjs';

const [kind, mode, dir, concurrencyArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg ?? 4);
const store = await openStore(kind, mode, dir);
const payload = Buffer.alloc(200, 'c');
let nextId = Date.now() * 1000;
writeSync(1, 'ready\n');
const caller = async () => {
  for (;;) {
    const id = nextId++;
    try {
      await store.publish(`t-${id % 4}`, id, payload, `k-${id}`);
      writeSync(1, `ack ${id}\n`);
    } catch (error) {
      writeSync(1, `fail ${error.code ?? error.name} ${String(error.message).split('\n')[0]}\n`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
};
for (let c = 0; c < concurrency; c++) caller();
