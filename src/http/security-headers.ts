import type { Context, Next } from 'koa';

/**
 * Headers every answer carries (OWASP Secure Headers). API answers are never cached and never
 * rendered as a page; the docs route sets its own, looser CSP. Also written into the event
 * stream's head, which is served before Koa (`routes/events.ts`).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
});

/** On answers over TLS (directly, or behind a trusted proxy that says so). */
export const HSTS = Object.freeze(['Strict-Transport-Security', 'max-age=31536000'] as const);

/** Sets the headers before `next()`, so they are on the response even when a stream takes over the socket. */
export async function securityHeaders(ctx: Context, next: Next): Promise<void> {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) ctx.set(name, value);
  if (ctx.secure) ctx.set(HSTS[0], HSTS[1]);
  await next();
  if (ctx.response.get('Cache-Control') === '') ctx.set('Cache-Control', 'no-store');
}
