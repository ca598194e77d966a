// Measures how often the HMAC secret check (src/auth/hmac-secret.ts) refuses a secret that is in
// fact random: N secrets of 32 random bytes in each form the README suggests (`openssl rand -hex
// 32`, `openssl rand -base64 32`, base64url), counted by refusal code, with the largest share of
// a random secret that dictionary words covered. A measurement, not a test: run it by hand.
//
//   npx tsx scripts/hmac-secret-false-refusals.ts [N per encoding, default 1000000]
import { randomBytes } from 'node:crypto';
import { checkHmacSecret } from '../src/auth/hmac-secret.js';

const perEncoding = Number(process.argv[2] ?? 1_000_000);
let total = 0;
let refused = 0;
for (const encoding of ['hex', 'base64', 'base64url'] as const) {
  const codes = new Map<string, number>();
  const started = performance.now();
  for (let i = 0; i < perEncoding; i++) {
    const verdict = checkHmacSecret(randomBytes(32).toString(encoding));
    if (!verdict.ok) {
      codes.set(verdict.code, (codes.get(verdict.code) ?? 0) + 1);
      refused++;
    }
  }
  total += perEncoding;
  const microseconds = ((performance.now() - started) * 1000) / perEncoding;
  const byCode = [...codes].map(([code, count]) => `${code} ${count}`).join(', ') || 'none';
  console.log(`${encoding}: ${perEncoding} random secrets, refused: ${byCode} (${microseconds.toFixed(1)} µs each)`);
}
// With no refusal in N trials the rate is below 3/N at 95 % confidence (the rule of three).
const bound = refused === 0 ? `below ${(3 / total).toExponential(1)} (95 %, rule of three)` : (refused / total).toExponential(2);
console.log(`${refused} false refusals in ${total}: rate ${bound}`);
