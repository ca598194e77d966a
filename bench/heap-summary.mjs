// Compares two heap snapshots: retained-by-type growth per subscriber, by constructor name.
// Usage: node bench/heap-summary.mjs BEFORE.heapsnapshot AFTER.heapsnapshot SUBSCRIBERS_ADDED [N]
import { readFileSync } from 'node:fs';
const [a, b, added, n = '30'] = process.argv.slice(2);
function load(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = f.length;
  const iType = f.indexOf('type'),
    iName = f.indexOf('name'),
    iSize = f.indexOf('self_size');
  const out = new Map();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]];
    let name = type === 'object' || type === 'closure' ? snap.strings[snap.nodes[i + iName]] : `(${type})`;
    if (type === 'closure') name = `closure ${name}`;
    const entry = out.get(name) ?? { count: 0, size: 0 };
    entry.count++;
    entry.size += snap.nodes[i + iSize];
    out.set(name, entry);
  }
  return out;
}
const before = load(a);
const after = load(b);
const per = Number(added);
const rows = [];
let total = 0;
for (const [name, e] of after) {
  const o = before.get(name) ?? { count: 0, size: 0 };
  const dSize = (e.size - o.size) / per;
  total += dSize;
  rows.push([name, (e.count - o.count) / per, dSize]);
}
rows.sort((x, y) => y[2] - x[2]);
console.log(`heap growth per subscriber: ${total.toFixed(0)} bytes`);
for (const [name, count, size] of rows.slice(0, Number(n)))
  console.log(`${size.toFixed(0).padStart(7)} B  ${count.toFixed(2).padStart(6)} objs  ${name}`);
