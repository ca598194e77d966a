/**
 * The publish baseline: a minimal Koa 3 POST route that does the unavoidable work of an
 * authenticated publish (read the JSON body, verify an EdDSA JWT with jose) and answers 201.
 */
import { createPublicKey, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { jwtVerify } from 'jose';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';

const [portArg, keyFile, issuer] = process.argv.slice(2);
const key = createPublicKey(createPrivateKey(readFileSync(keyFile, 'utf8')));
const app = new Koa();
app.use(bodyParser());
app.use(async (ctx) => {
  if (ctx.method !== 'POST' || ctx.path !== '/events') return;
  const token = /^Bearer (.+)$/.exec(ctx.get('authorization'))?.[1];
  if (token === undefined) ctx.throw(401);
  await jwtVerify(token, key, { algorithms: ['EdDSA'], issuer, audience: 'notify' });
  ctx.status = 201;
  ctx.body = { ok: true };
});
const server = app.listen(Number(portArg ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

// Exit cleanly on SIGTERM, so that --cpu-prof can write its profile.
process.on('SIGTERM', () => process.exit(0));
