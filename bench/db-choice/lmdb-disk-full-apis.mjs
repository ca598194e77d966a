// lmdb on a full disk, by write API: mounts a 2 MiB tmpfs at MOUNT, writes with one API (txn:
// transaction() + putSync; put: put(); putflushed: put() then await db.flushed) from 4 callers for
// 8 s, grows the tmpfs to 16 MiB after 4 s, and counts acknowledged writes, failures, writes
// acknowledged after the first failure, and rejections nobody could handle (lmdb-internal
// promises, caught here by a process-wide handler). A native abort shows as exit code 134.
// Usage: node lmdb-disk-full-apis.mjs API MOUNT
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [variant, mount] = process.argv.slice(2);
const { open } = createRequire(join(process.env.DBCHOICE_MODULES, 'package.json'))('lmdb');
let unhandled = 0;
process.on('unhandledRejection', () => unhandled++);
const root = open({ path: join(mount, 'store'), maxDbs: 4 });
const events = root.openDB({ name: 'events', encoding: 'binary' });
let id = 0;
let acks = 0;
let fails = 0;
let acksAfterFirstFailure = 0;
let acksAfterRemount = 0;
let remounted = false;
const payload = Buffer.alloc(200, 'x');
const one = async () => {
  const k = id++;
  if (variant === 'txn') await root.transaction(() => events.putSync(['t', k], payload));
  else if (variant === 'put') await events.put(['t', k], payload);
  else {
    await events.put(['t', k], payload);
    await root.flushed;
  }
};
const start = Date.now();
for (let c = 0; c < 4; c++) {
  (async () => {
    while (Date.now() - start < 8000) {
      try {
        await one();
        acks++;
        if (fails) acksAfterFirstFailure++;
        if (remounted) acksAfterRemount++;
      } catch {
        fails++;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  })();
}
setTimeout(() => {
  spawnSync('mount', ['-o', 'remount,size=16m', mount]);
  remounted = true;
}, 4000);
setTimeout(() => {
  console.log(
    JSON.stringify({
      step: 'lmdb-disk-full-api',
      variant,
      acks,
      fails,
      acksAfterFirstFailure,
      acksAfterRemount,
      unhandledRejections: unhandled,
    }),
  );
  process.exit(0);
}, 8500);
