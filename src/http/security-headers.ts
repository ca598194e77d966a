import type { Context, Next } from 'koa';

/**
 * Headers every answer carries (OWASP Secure Headers). API answers are never cached and never
 * rendered as a page; the docs route sets its own, looser CSP. Set before `next()` so they are
 * on the response even when a stream takes over the socket.
 */
export async function securityHeaders(ctx: Context, next: Next): Promise<void> {
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
  ctx.set('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
  if (ctx.secure) ctx.set('Strict-Transport-Security', 'max-age=31536000');
  await next();
  if (ctx.response.get('Cache-Control') === '') ctx.set('Cache-Control', 'no-store');
}
