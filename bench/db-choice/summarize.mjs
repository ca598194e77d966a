// Turns bench/results/db-choice-raw.jsonl into the Markdown tables of embedded-db-choice.md:
// medians over the rounds, and ratios against the baselines measured in the same rounds.
// Usage: node bench/db-choice/summarize.mjs [RAW.jsonl]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const raw = process.argv[2] ?? fileURLToPath(new URL('../results/db-choice-raw.jsonl', import.meta.url));
const rows = readFileSync(raw, 'utf8')
  .split('\n')
  .filter((l) => l.startsWith('{'))
  .map((l) => JSON.parse(l));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f = (x, d = 2) => (x === undefined || x === null ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(d));
const group = (list, key) => {
  const m = new Map();
  for (const r of list) {
    const k = key(r);
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(r);
  }
  return m;
};

const durable = new Set([
  'fsfile:fsync',
  'fsfile:fsync-batched',
  'lmdb:flushed',
  'lmdb:synccommit',
  'level:sync',
  'sqlite:full',
  'sqlite:full-batched',
  'sqlite:worker-full',
]);
for (const delay of [...new Set(rows.filter((r) => r.step === 'publish').map((r) => r.fsyncDelayUs ?? 0))].sort((a, b) => a - b)) {
  const publish = rows.filter((r) => r.step === 'publish' && (r.fsyncDelayUs ?? 0) === delay);
  const slow = delay ? `, every fsync ${delay / 1000} ms slower` : '';
  for (const c of [...new Set(publish.map((r) => r.concurrency))].sort((a, b) => a - b)) {
    const at = publish.filter((r) => r.concurrency === c);
    const byStore = group(at, (r) => `${r.kind}:${r.mode}`);
    const baseDurable = median((byStore.get(c === 1 ? 'fsfile:fsync' : 'fsfile:fsync-batched') ?? []).map((r) => r.perSecond));
    const baseMemory = median((byStore.get('memory:memory') ?? []).map((r) => r.perSecond));
    console.log(
      `\n#### Publish, ${c} concurrent caller${c === 1 ? '' : 's'}${slow} (median of ${median([...byStore.values()].map((v) => v.length))} runs)\n`,
    );
    console.log(
      '| store:mode | durable | p50 ms | p99 ms | publishes/s | x baseline | CPU µs/publish | event-loop delay p99 / max ms | load (1 min) |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const [k, v] of byStore) {
      const isDurable = durable.has(k);
      const base = isDurable ? baseDurable : baseMemory;
      const perSecond = median(v.map((r) => r.perSecond));
      console.log(
        `| ${k} | ${isDurable ? 'yes' : 'no'} | ${f(median(v.map((r) => r.p50Ms)), 3)} | ${f(median(v.map((r) => r.p99Ms)), 3)} | ${f(perSecond)} | ${f(perSecond / base, 3)} | ${f(median(v.map((r) => r.cpuUsPerPublish)), 1)} | ${f(median(v.map((r) => r.eventLoopP99Ms)), 1)} / ${f(median(v.map((r) => r.eventLoopMaxMs)), 1)} | ${v.map((r) => f(r.load1, 1)).join(', ')} |`,
      );
    }
  }
}

const syncs = rows.filter((r) => r.step === 'syncs');
if (syncs.length) {
  console.log('\n#### fsync-family system calls per 1,200 publishes (strace -f -c)\n');
  console.log('| store:mode | 1 caller | 16 callers |');
  console.log('|---|---|---|');
  for (const [k, v] of group(syncs, (r) => `${r.kind}:${r.mode}`)) {
    const show = (c) => {
      const r = v.find((x) => x.concurrency === c);
      return r
        ? Object.entries(r.calls)
            .map(([n, x]) => `${n} ${x}`)
            .join(', ') || 'none'
        : '-';
    };
    console.log(`| ${k} | ${show(1)} | ${show(16)} |`);
  }
}

const replay = rows.filter((r) => r.step === 'replay');
if (replay.length) {
  const byStore = group(replay, (r) => r.kind);
  const base1 = median(byStore.get('memory').map((r) => r.oneTopicMedianMs));
  const base10 = median(byStore.get('memory').map((r) => r.tenTopicsMedianMs));
  console.log('\n#### Replay: 1,000 events after an id (median over rounds of the per-round median of 30 reads)\n');
  console.log('| store | 1 topic ms | x memory | 10 topics x 1,000 ms | x memory | events/s (10 topics) | load (1 min) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const [k, v] of byStore) {
    const one = median(v.map((r) => r.oneTopicMedianMs));
    const ten = median(v.map((r) => r.tenTopicsMedianMs));
    console.log(
      `| ${k} | ${f(one, 3)} | ${f(one / base1, 1)} | ${f(ten, 2)} | ${f(ten / base10, 1)} | ${f(10000 / (ten / 1000))} | ${v.map((r) => f(r.load1, 1)).join(', ')} |`,
    );
  }
}

const crash = rows.filter((r) => r.step === 'crash');
if (crash.length) {
  console.log('\n#### kill -9 right after an acknowledged publish\n');
  console.log(
    '| store:mode | runs | acknowledged (total) | missing after reopen | runs with loss | stored but not yet acknowledged | load (1 min) |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const r of crash)
    console.log(
      `| ${r.kind}:${r.mode} | ${r.runs} | ${r.ackedTotal} | ${r.missingTotal} | ${r.runsWithLoss} | ${r.unackedButStored} | ${f(r.load1, 1)} |`,
    );
}

const outcome = (x) =>
  x === undefined
    ? '-'
    : x === 'ok'
      ? 'ok'
      : typeof x === 'object' && 'events' in x
        ? `${x.events} events`
        : `**${x.code ?? x.name}**: ${String(x.message ?? '').replace(/\|/g, '/')}`;
for (const r of rows.filter((x) => x.step === 'corrupt')) {
  console.log(`\n#### Damaged file: ${r.kind} (${r.expectedEvents} events written)\n`);
  const qc = r.kind === 'sqlite';
  console.log(`| file | damage |${qc ? ' PRAGMA quick_check |' : ''} open | read | write | process |`);
  console.log(`|---|---|${qc ? '---|' : ''}---|---|---|---|`);
  for (const x of r.results) {
    const proc = x.signal ? `killed by ${x.signal}` : `exit ${x.exitCode}${x.stderr ? ` (${x.stderr.slice(0, 120)})` : ''}`;
    console.log(
      `| ${x.target} | ${x.damage} |${qc ? ` ${outcome(x.quickCheck)} |` : ''} ${outcome(x.open)} | ${outcome(x.read)} | ${outcome(x.write)} | ${proc} |`,
    );
  }
}

const full = rows.filter((r) => r.step === 'diskfull');
if (full.length) {
  console.log('\n#### Full disk (2 MiB tmpfs)\n');
  console.log(
    '| store:mode | acknowledged before full | how publishes failed | process | resumed in place once the disk had room | after a restart: reopen, read, write |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const r of full) {
    if (r.skipped) {
      console.log(`| ${r.kind}:${r.mode} | - | ${r.skipped} | - | - | - |`);
      continue;
    }
    const re = r.reopenAfterSpaceFreed;
    console.log(
      `| ${r.kind}:${r.mode} | ${r.ackedBeforeFull} | ${(r.distinctFailures ?? []).join('; ').replace(/\|/g, '/') || '-'} | ${r.outcome} | ${r.resumedWithoutRestart ? 'yes' : 'no'} | ${re.signal ? `killed by ${re.signal}` : `${outcome(re.open)}, ${outcome(re.read)}, write ${outcome(re.write)}`}${r.ackedMissing === 0 ? `, all ${r.ackedTotal} acknowledged present` : `, **${r.ackedMissing} of ${r.ackedTotal} acknowledged missing**`} |`,
    );
  }
}

const apis = rows.filter((r) => r.step === 'lmdb-disk-full-api');
if (apis.length) {
  console.log('\n#### lmdb on a full disk, by write API (2 MiB tmpfs, grown to 16 MiB after 4 s)\n');
  console.log('| API | acknowledged | failed | acknowledged after the disk had room | rejections nobody could handle | process |');
  console.log('|---|---|---|---|---|---|');
  for (const r of apis) {
    if (r.exitCode !== undefined) console.log(`| ${r.variant} | - | - | - | - | **aborted (exit ${r.exitCode})** |`);
    else
      console.log(
        `| ${r.variant} | ${r.acks} | ${r.fails} | ${r.acksAfterRemount} | ${r.unhandledRejections} | survived (with a process-wide unhandledRejection handler) |`,
      );
  }
}

const checks = rows.filter((r) => r.step === 'sqlite-check');
for (const r of checks) {
  console.log(
    `\nSQLite start-up check on ${r.events} events (${(r.bytes / 2 ** 20).toFixed(1)} MiB): quick_check ${f(r.quickCheckMs, 0)} ms (${r.quickCheck}), integrity_check ${f(r.integrityCheckMs, 0)} ms (${r.integrityCheck}), load ${f(r.load1, 1)}.`,
  );
}

const sustain = rows.filter((r) => r.step === 'sustain');
if (sustain.length) {
  console.log('\n#### Sustained publishing with trimming\n');
  console.log(
    '| store:mode | seconds | publishes/s | publish p99 ms | trimmed | trim chunk p50 / max ms | longest event-loop pause ms | median of per-second longest pauses ms | seconds with a pause > 50 ms | size at end (apparent / allocated MiB) | after close | load (1 min) at the samples |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  const mib = (b) => (b / 2 ** 20).toFixed(1);
  for (const r of sustain) {
    const last = r.samples[r.samples.length - 1];
    console.log(
      `| ${r.kind}:${r.mode}${r.variant ? ` (${r.variant})` : ''} | ${r.seconds} | ${f(r.publishedPerSecond)} | ${f(r.publishP99Ms)} | ${r.deleted} | ${f(r.trimChunkP50Ms)} / ${f(r.trimChunkMaxMs)} | ${f(Math.max(r.eventLoopMaxMsSecondsWithTrim, r.eventLoopMaxMsSecondsWithoutTrim ?? 0), 1)} | ${r.eventLoopSecondMaxesMs ? f(median(r.eventLoopSecondMaxesMs), 0) : '-'} | ${r.eventLoopSecondsOver50Ms ?? '-'} | ${mib(last.apparent)} / ${mib(last.allocated)} | ${mib(r.finalAfterClose.apparent)} / ${mib(r.finalAfterClose.allocated)} | ${f(Math.min(...r.samples.map((x) => x.load1)), 1)}-${f(Math.max(...r.samples.map((x) => x.load1)), 1)} |`,
    );
  }
  console.log('\nSize over time (allocated MiB; live events in brackets):\n');
  const times = [...new Set(sustain.flatMap((r) => r.samples.map((s) => s.s)))]
    .sort((a, b) => a - b)
    .filter((s, i, all) => s % 30 === 0 || i === all.length - 1);
  console.log(`| s | ${sustain.map((r) => `${r.kind}:${r.mode} (${r.seconds} s run${r.variant ? `, ${r.variant}` : ''})`).join(' | ')} |`);
  console.log(`|---|${sustain.map(() => '---').join('|')}|`);
  for (const t of times) {
    const cells = sustain.map((r) => {
      const s = r.samples.find((x) => x.s === t);
      return s ? `${mib(s.allocated)} (${s.live})` : '';
    });
    console.log(`| ${t} | ${cells.join(' | ')} |`);
  }
}
