/** Turns the runs into medians, ratios against the raw baseline of the same run, a Markdown table and an SVG chart. */

export interface Throughput {
  subscribers: number;
  events: number;
  delivered: number;
  seconds: number;
  cpuSeconds: number;
  eventsPerS: number;
  eventsPerCpuS: number;
  p50Ms: number;
  p99Ms: number;
}

export interface SweepPoint extends Throughput {
  rssBytes: number;
  memPerSubscriber: number;
  connectsPerS: number;
  connectsPerCpuS: number;
}

export interface StormResult {
  subscribers: number;
  reconnected: number;
  /** Subscribers that got every event up to the last one published before the drop. */
  resumed: number;
  /** Events missing from subscribers' sequences, over all of them. */
  lost: number;
  duplicates: number;
  /** Subscribers that had not received the last event when the phase ended. */
  behind: number;
  /** Server CPU from the first reconnect to the last one answered. */
  cpuSeconds: number;
  connectsPerCpuS: number;
  /** From the first reconnect to the last subscriber's 200. */
  lastConnectedMs: number;
  /** From the first reconnect to the last subscriber holding every event it had missed. */
  lastResumedMs: number;
}

export interface ServerResult {
  name: 'notify' | 'raw' | 'nchan';
  label: string;
  sweep: SweepPoint[];
  latencySlow?: Throughput;
  topics: Array<Throughput & { layout: string }>;
  publishes?: { perS: number; perCpuS: number };
  /** Fan-out under bursts of concurrent publishes. */
  burst?: Throughput;
  storm?: StormResult;
  /** Memory per idle subscriber (bytes) over HTTPS/1.1 and HTTP/2. */
  tls?: { https: number; h2: number };
}

export interface RunResult {
  run: number;
  servers: ServerResult[];
  koaPost: { perS: number; perCpuS: number } | undefined;
}

const median = (values: number[]): number => {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
};

type Metric = (server: ServerResult) => number | undefined;

export interface Summary {
  names: string[];
  labels: Record<string, string>;
  subscribers: number[];
  /** rows: metric name -> server -> median value; and ratio to raw (median of per-run ratios). */
  value: (name: string, metric: Metric) => number;
  ratio: (name: string, metric: Metric, base?: string) => number;
  koaPost: (metric: (k: { perS: number; perCpuS: number }) => number) => number;
  topicLayouts: string[];
  latencyAt: number | undefined;
}

export function summarise(runs: RunResult[]): Summary {
  const names = [...new Set(runs.flatMap((r) => r.servers.map((s) => s.name)))];
  const labels = Object.fromEntries(runs.flatMap((r) => r.servers.map((s) => [s.name, s.label])));
  const subscribers = runs[0]?.servers[0]?.sweep.map((p) => p.subscribers) ?? [];
  const find = (run: RunResult, name: string) => run.servers.find((s) => s.name === name);
  return {
    names,
    labels,
    subscribers,
    value: (name, metric) =>
      median(
        runs.map((r) => {
          const s = find(r, name);
          return s === undefined ? NaN : (metric(s) ?? NaN);
        }),
      ),
    ratio: (name, metric, base = 'raw') =>
      median(
        runs.map((r) => {
          const s = find(r, name);
          const b = find(r, base);
          if (s === undefined || b === undefined) return NaN;
          return (metric(s) ?? NaN) / (metric(b) ?? NaN);
        }),
      ),
    koaPost: (metric) => median(runs.map((r) => (r.koaPost === undefined ? NaN : metric(r.koaPost)))),
    topicLayouts: runs[0]?.servers.find((s) => s.name === 'notify')?.topics.map((t) => t.layout) ?? [],
    latencyAt: runs[0]?.servers[0]?.latencySlow?.subscribers,
  };
}

/** Point of the sweep nearest `n` subscribers (connect failures may leave a few short). */
export const at = (n: number) => (s: ServerResult) =>
  s.sweep.reduce<SweepPoint | undefined>(
    (best, p) => (best === undefined || Math.abs(p.subscribers - n) < Math.abs(best.subscribers - n) ? p : best),
    undefined,
  );

const fmt = (x: number, digits = 0) =>
  Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–';
const fmtRatio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : '–');

export function renderMarkdown(meta: Record<string, unknown>, s: Summary): string {
  const servers = ['raw', 'notify', 'nchan'].filter((n) => s.names.includes(n));
  const head = `| metric | ${servers.map((n) => s.labels[n]).join(' | ')} | notify / raw | target |\n|---|${servers.map(() => '---:').join('|')}|---:|---|\n`;
  const row = (label: string, metric: Metric, digits: number, target = '') => {
    return `| ${label} | ${servers.map((n) => fmt(s.value(n, metric), digits)).join(' | ')} | ${fmtRatio(s.ratio('notify', metric))} | ${target} |\n`;
  };
  const nominal = s.subscribers;
  const lo = nominal[0]!;
  const hi = nominal.includes(10000) ? 10000 : nominal.at(-1)!;
  const lat = s.latencyAt ?? hi;
  let out = `Measured ${String(meta.date).slice(0, 16).replace('T', ' ')} UTC, ${meta.mode} mode, median of ${meta.runs} run(s), commit ${meta.commit ?? '?'}; Node ${meta.node}, ${meta.cpus} CPUs (${meta.cpuModel}); server on CPU 0, load client on CPU 1.${meta.nchan ? '' : ' nchan not installed: not measured.'}\n\n`;
  out += head;
  out += row(`delivered events / server CPU-s, ${fmt(lo)} subscribers`, (x) => at(lo)(x)?.eventsPerCpuS, 0);
  out += row(`delivered events / server CPU-s, ${fmt(hi)} subscribers`, (x) => at(hi)(x)?.eventsPerCpuS, 0, '≥ 1.0x raw');
  out += row(`delivered events / s, ${fmt(lo)} subscribers`, (x) => at(lo)(x)?.eventsPerS, 0);
  out += row(`delivered events / s, ${fmt(hi)} subscribers`, (x) => at(hi)(x)?.eventsPerS, 0);
  out += row(`latency p50 (ms), ${fmt(lat)} subs, 2 events/s`, (x) => x.latencySlow?.p50Ms, 2);
  out += row(`latency p99 (ms), ${fmt(lat)} subs, 2 events/s`, (x) => x.latencySlow?.p99Ms, 2, '≤ 1.2x raw');
  out += row(`latency p50 (ms), ${fmt(lat)} subs, max rate`, (x) => at(lat)(x)?.p50Ms, 2);
  out += row(`latency p99 (ms), ${fmt(lat)} subs, max rate`, (x) => at(lat)(x)?.p99Ms, 2);
  out += row(`memory per idle subscriber (KiB), ${fmt(hi)} subs`, (x) => (at(hi)(x)?.memPerSubscriber ?? NaN) / 1024, 1, '≤ 1.2x raw');
  if (nominal.at(-1)! !== hi) {
    const top = nominal.at(-1)!;
    out += row(`memory per idle subscriber (KiB), ${fmt(top)} subs`, (x) => (at(top)(x)?.memPerSubscriber ?? NaN) / 1024, 1, '≤ 1.2x raw');
  }
  out += row(
    `connects / s (notify: each with a fresh JWT), ${fmt(lo)}→${fmt(nominal[1] ?? lo)}`,
    (x) => (nominal[1] === undefined ? undefined : at(nominal[1])(x)?.connectsPerS),
    0,
  );
  out += row(`connects / server CPU-s`, (x) => (nominal[1] === undefined ? undefined : at(nominal[1])(x)?.connectsPerCpuS), 0);
  const pub = s.value('notify', (x) => x.publishes?.perS);
  const pubCpu = s.value('notify', (x) => x.publishes?.perCpuS);
  const koa = s.koaPost((k) => k.perS);
  const koaCpu = s.koaPost((k) => k.perCpuS);
  out += `\nAuthenticated publishes (POST with a JWT, 16 in flight, no subscribers): notify ${fmt(pub)}/s (${fmt(pubCpu)} per server CPU-s); minimal Koa POST route with jose verify ${fmt(koa)}/s (${fmt(koaCpu)} per CPU-s): ${fmtRatio(pubCpu / koaCpu)} per CPU-s.\n`;

  out += renderIssue12(s, servers, hi, pubCpu / koaCpu);

  out += `\nCost growth with subscribers (delivered events per server CPU-second; memory per idle subscriber):\n\n`;
  out += `| subscribers | ${servers.map((n) => `${n} events/CPU-s`).join(' | ')} | ${servers.map((n) => `${n} KiB/sub`).join(' | ')} | notify/raw events/CPU-s |\n|---:|${servers.map(() => '---:').join('|')}|${servers.map(() => '---:').join('|')}|---:|\n`;
  for (const n of nominal) {
    out += `| ${fmt(n)} | ${servers.map((x) => fmt(s.value(x, (r) => at(n)(r)?.eventsPerCpuS))).join(' | ')} | ${servers
      .map((x) =>
        fmt(
          s.value(x, (r) => (at(n)(r)?.memPerSubscriber ?? NaN) / 1024),
          1,
        ),
      )
      .join(' | ')} | ${fmtRatio(s.ratio('notify', (r) => at(n)(r)?.eventsPerCpuS))} |\n`;
  }
  const first = s.value('notify', (r) => at(lo)(r)?.eventsPerCpuS);
  const last = s.value('notify', (r) => at(nominal.at(-1)!)(r)?.eventsPerCpuS);
  out += `\nnotify cost per event, ${fmt(nominal.at(-1)!)} vs ${fmt(lo)} subscribers: ${fmtRatio(first / last)} (target: within 1.2x).\n`;
  if (s.topicLayouts.length > 0) {
    const broadcast = (r: ServerResult) => at(r.topics[0]?.subscribers ?? hi)(r)?.eventsPerCpuS;
    out += `\nTopics (notify, ${fmt(s.value('notify', (r) => r.topics[0]?.subscribers))} subscribers, one broadcast event at a time):\n\n| layout | events/CPU-s | vs 1 topic |\n|---|---:|---:|\n`;
    out += `| 1 topic (all on \`public/bench\`) | ${fmt(s.value('notify', broadcast))} | 1.00x |\n`;
    const describe: Record<string, string> = {
      'topics-100': '100 topics (own `public/t/<i%100>` + broadcast)',
      'topics-10000': '10,000 topics (own `public/t/<i>` + broadcast)',
      wildcard: 'wildcard selectors (`users/u<i>/**` + `public/*`)',
    };
    for (const layout of s.topicLayouts) {
      const metric = (r: ServerResult) => r.topics.find((t) => t.layout === layout)?.eventsPerCpuS;
      out += `| ${describe[layout] ?? layout} | ${fmt(s.value('notify', metric))} | ${fmtRatio(s.value('notify', metric) / s.value('notify', broadcast))} |\n`;
    }
  }
  return out;
}

/** The connect storm, bursts, memory over TLS, and the targets of issue 12 against what was measured. */
function renderIssue12(s: Summary, servers: string[], hi: number, publishRatio: number): string {
  const top = s.subscribers.at(-1)!;
  const row = (label: string, metric: Metric, digits: number, target = '') =>
    `| ${label} | ${servers.map((n) => fmt(s.value(n, metric), digits)).join(' | ')} | ${fmtRatio(s.ratio('notify', metric))} | ${target} |\n`;
  const head = `| metric | ${servers.map((n) => s.labels[n]).join(' | ')} | notify / raw | target |\n|---|${servers.map(() => '---:').join('|')}|---:|---|\n`;
  const stormN = s.value('notify', (x) => x.storm?.subscribers);
  let out = `\nConnect storm: ${fmt(stormN)} subscribers drop their connections at once and reconnect at once (64 in flight per load client, 4 clients), each with its Last-Event-ID and (notify) a fresh EdDSA token, while events are published at 10/s. raw has no history: what it "loses" is what it cannot replay.\n\n${head}`;
  out += row('connects / server CPU-s during the storm', (x) => x.storm?.connectsPerCpuS, 0, '≥ 0.5x raw');
  out += row('time to the last reconnect answered (ms)', (x) => x.storm?.lastConnectedMs, 0);
  out += row('time to the last subscriber resumed (ms)', (x) => x.storm?.lastResumedMs, 0);
  out += row('subscribers resumed', (x) => x.storm?.resumed, 0);
  out += row('events lost (over all subscribers)', (x) => x.storm?.lost, 0, 'notify: 0');
  out += row('events delivered twice', (x) => x.storm?.duplicates, 0, 'notify: 0');
  out += `\nFan-out under bursts (${fmt(s.value('notify', (x) => x.burst?.subscribers))} subscribers, publishes arriving 10 at a time: notify coalesces one subscriber's frames of one turn into one write; raw writes once per event):\n\n${head}`;
  out += row('delivered events / server CPU-s, bursts', (x) => x.burst?.eventsPerCpuS, 0, '> 1.0x raw');
  out += `\nMemory per idle subscriber over TLS (one connection per subscriber; nchan not measured over TLS):\n\n${head}`;
  out += row('KiB per subscriber, HTTPS/1.1', (x) => (x.tls?.https ?? NaN) / 1024, 1);
  out += row('KiB per subscriber, HTTP/2', (x) => (x.tls?.h2 ?? NaN) / 1024, 1);

  const check = (ratio: number, ok: (r: number) => boolean) => (Number.isFinite(ratio) ? (ok(ratio) ? 'met' : '**not met**') : '–');
  const storm = s.ratio('notify', (x) => x.storm?.connectsPerCpuS);
  const lost = s.value('notify', (x) => x.storm?.lost);
  const dups = s.value('notify', (x) => x.storm?.duplicates);
  const resumedAll = s.value('notify', (x) => (x.storm === undefined ? undefined : x.storm.resumed === x.storm.subscribers ? 1 : 0));
  const memHi = s.ratio('notify', (x) => at(hi)(x)?.memPerSubscriber);
  const memTop = s.ratio('notify', (x) => at(top)(x)?.memPerSubscriber);
  const fan = s.ratio('notify', (x) => at(hi)(x)?.eventsPerCpuS);
  const burst = s.ratio('notify', (x) => x.burst?.eventsPerCpuS);
  out += `\nIssue 12's targets (medians of the per-run ratios):\n\n| target | measured | |\n|---|---:|---|\n`;
  out += `| storm: every subscriber resumed, zero loss, zero duplicates | ${resumedAll === 1 ? 'all resumed' : 'not all resumed'}, ${fmt(lost)} lost, ${fmt(dups)} duplicates | ${resumedAll === 1 && lost === 0 && dups === 0 ? 'met' : '**not met**'} |\n`;
  out += `| storm: connects / server CPU-s ≥ 0.5x raw | ${fmtRatio(storm)} | ${check(storm, (r) => r >= 0.5)} |\n`;
  out += `| memory per idle subscriber ≤ 1.2x raw, ${fmt(hi)} | ${fmtRatio(memHi)} | ${check(memHi, (r) => r <= 1.2)} |\n`;
  out += `| memory per idle subscriber ≤ 1.2x raw, ${fmt(top)} | ${fmtRatio(memTop)} | ${check(memTop, (r) => r <= 1.2)} |\n`;
  out += `| authenticated publishes / server CPU-s ≥ 1.0x Koa + jose | ${fmtRatio(publishRatio)} | ${check(publishRatio, (r) => r >= 1)} |\n`;
  out += `| fan-out ≥ 1.0x raw, ${fmt(hi)} | ${fmtRatio(fan)} | ${check(fan, (r) => r >= 1)} |\n`;
  out += `| fan-out under bursts > 1.0x raw | ${fmtRatio(burst)} | ${check(burst, (r) => r > 1)} |\n`;
  return out;
}

const COLORS: Record<string, string> = { raw: '#555555', notify: '#d62728', nchan: '#1f77b4' };

export function renderSvg(s: Summary): string {
  const W = 900;
  const H = 360;
  const panel = (x0: number, title: string, metric: (n: number) => Metric, unit: string) => {
    const pw = 380;
    const ph = 250;
    const top = 50;
    const xs = s.subscribers;
    const series = s.names.map((name) => ({
      name,
      points: xs.map((n) => [n, s.value(name, metric(n))] as const).filter(([, v]) => Number.isFinite(v)),
    }));
    const maxY = Math.max(1, ...series.flatMap((x) => x.points.map(([, v]) => v))) * 1.1;
    const maxX = Math.max(...xs, 1);
    const px = (n: number) => x0 + 50 + (n / maxX) * (pw - 60);
    const py = (v: number) => top + ph - (v / maxY) * ph;
    let g = `<text x="${x0 + pw / 2}" y="30" text-anchor="middle" font-size="15" font-weight="bold">${title}</text>`;
    g += `<line x1="${x0 + 50}" y1="${top + ph}" x2="${x0 + pw}" y2="${top + ph}" stroke="#000"/><line x1="${x0 + 50}" y1="${top}" x2="${x0 + 50}" y2="${top + ph}" stroke="#000"/>`;
    for (let i = 0; i <= 4; i++) {
      const v = (maxY / 4) * i;
      g += `<text x="${x0 + 45}" y="${py(v) + 4}" text-anchor="end" font-size="11">${v >= 1000 ? `${Math.round(v / 1000)}k` : v.toFixed(1)}</text>`;
      g += `<line x1="${x0 + 50}" y1="${py(v)}" x2="${x0 + pw}" y2="${py(v)}" stroke="#ddd"/>`;
    }
    for (const n of xs)
      g += `<text x="${px(n)}" y="${top + ph + 16}" text-anchor="middle" font-size="11">${n >= 1000 ? `${n / 1000}k` : n}</text>`;
    g += `<text x="${x0 + 50 + (pw - 50) / 2}" y="${top + ph + 34}" text-anchor="middle" font-size="12">subscribers (${unit})</text>`;
    for (const { name, points } of series) {
      const color = COLORS[name] ?? '#2ca02c';
      g += `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map(([n, v]) => `${px(n).toFixed(1)},${py(v).toFixed(1)}`).join(' ')}"/>`;
      for (const [n, v] of points) g += `<circle cx="${px(n).toFixed(1)}" cy="${py(v).toFixed(1)}" r="3" fill="${color}"/>`;
    }
    return g;
  };
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/>`;
  svg += panel(10, 'Delivered events per server CPU-second', (n) => (r) => at(n)(r)?.eventsPerCpuS, 'higher is better');
  svg += panel(460, 'Memory per idle subscriber (KiB)', (n) => (r) => (at(n)(r)?.memPerSubscriber ?? NaN) / 1024, 'lower is better');
  s.names.forEach((name, i) => {
    svg += `<rect x="${70 + i * 220}" y="${H - 22}" width="14" height="4" fill="${COLORS[name] ?? '#2ca02c'}"/><text x="${90 + i * 220}" y="${H - 16}" font-size="12">${s.labels[name]}</text>`;
  });
  return `${svg}</svg>\n`;
}
