/**
 * Small helpers for the auth tests: reading a JWT without verifying it, building HTTP Basic
 * credentials and form bodies, and reading `Set-Cookie` headers.
 */

/** The decoded (unverified) header and payload of a compact JWS. */
export interface DecodedJwt {
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
}

/** Decodes the base64url JSON header and payload of a compact JWT. @throws when it is not three parts. */
export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error(`not a compact JWS: ${parts.length} parts`);
  const json = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  return { header: json(parts[0]!), payload: json(parts[1]!) };
}

/** RFC 6749 §2.3.1: form-urlencode id and secret, then Basic. */
export function basicAuth(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** `application/x-www-form-urlencoded` text; an array value repeats the parameter. */
export function form(fields: Record<string, string | readonly string[]>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of typeof value === 'string' ? [value] : value) params.append(name, item);
  }
  return params.toString();
}

/** One parsed `Set-Cookie` header. Attribute names are lower-cased; flag attributes map to `true`. */
export interface SetCookie {
  readonly name: string;
  readonly value: string;
  readonly attributes: Readonly<Record<string, string | true>>;
}

/** Parses every `Set-Cookie` header of a response (supertest gives an array, or nothing). */
export function setCookies(headers: Record<string, unknown>): SetCookie[] {
  const raw = headers['set-cookie'];
  const lines = raw === undefined ? [] : Array.isArray(raw) ? (raw as string[]) : [String(raw)];
  return lines.map((line) => {
    const [pair = '', ...rest] = line.split(';');
    const eq = pair.indexOf('=');
    const attributes: Record<string, string | true> = {};
    for (const attribute of rest) {
      const trimmed = attribute.trim();
      if (trimmed === '') continue;
      const at = trimmed.indexOf('=');
      if (at < 0) attributes[trimmed.toLowerCase()] = true;
      else attributes[trimmed.slice(0, at).trim().toLowerCase()] = trimmed.slice(at + 1).trim();
    }
    return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes };
  });
}

/** The `Set-Cookie` for `name`. @throws when the response did not set it. */
export function cookieNamed(headers: Record<string, unknown>, name: string): SetCookie {
  const found = setCookies(headers).find((cookie) => cookie.name === name);
  if (found === undefined) {
    throw new Error(`no Set-Cookie for ${name}; got ${JSON.stringify(headers['set-cookie'] ?? [])}`);
  }
  return found;
}

/** Does this cookie tell the browser to drop it now (an expiry in the past, or Max-Age <= 0)? */
export function isExpired(cookie: SetCookie, now = Date.now()): boolean {
  const maxAge = cookie.attributes['max-age'];
  if (typeof maxAge === 'string' && Number(maxAge) <= 0) return true;
  const expires = cookie.attributes.expires;
  return typeof expires === 'string' && Date.parse(expires) < now;
}
