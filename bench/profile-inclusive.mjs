// Inclusive time of the functions whose names are given, in a V8 .cpuprofile.
// Usage: node bench/profile-inclusive.mjs FILE NAME [NAME...]   (NAME matches "function file:line" by substring)
import { readFileSync } from 'node:fs';
const [file, ...names] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const parent = new Map();
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const label = (node) =>
  `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules\/[^/]+|src|dist|lib|bench)\//, '$1/')}:${node.callFrame.lineNumber + 1}`;
const totals = new Map(names.map((name) => [name, 0]));
let busy = 0;
for (let i = 0; i < profile.samples.length; i++) {
  let id = profile.samples[i];
  const dt = profile.timeDeltas[i] ?? 0;
  if (byId.get(id).callFrame.functionName === '(idle)') continue;
  busy += dt;
  const seen = new Set();
  while (id !== undefined) {
    const l = label(byId.get(id));
    for (const name of names)
      if (!seen.has(name) && l.includes(name)) {
        seen.add(name);
        totals.set(name, totals.get(name) + dt);
      }
    id = parent.get(id);
  }
}
console.log(`busy ${(busy / 1e6).toFixed(2)} s`);
for (const [name, us] of totals)
  console.log(`${(us / 1e6).toFixed(2).padStart(7)} s  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${name}`);
