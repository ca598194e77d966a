import type { RoleTable } from './role-table.js';
import { resolveGrants } from './grants.js';
import type { IssuerConfig } from './issuer-config.js';
import type { TopicGrants } from './token-service.js';
import { SUBJECT_NAME } from './user-store.js';

/**
 * Turns the verified claims of an external token into notify's subject and grants (issue 10 §1).
 * Pure functions of the payload and the issuer's configuration: every claim is hostile until
 * checked (type, size, nesting), and a claim that is missing or of the wrong shape grants nothing
 * rather than failing, except the subject, without which there is no token.
 */

/** A list claim longer than this is refused: no real role or group list is, and each value is matched against the map. */
export const MAX_LIST_VALUES = 1000;
/** Longer list values cannot be role or group names; they are ignored. */
const MAX_VALUE_LENGTH = 256;
/** Longer subject claims are refused before encoding. */
const MAX_SUBJECT_CLAIM_LENGTH = 255;

/** Why a token's claims cannot be mapped; becomes a 401 `invalid_token` with this reason in the log. */
export class ClaimMappingError extends Error {
  constructor(readonly reason: 'subject' | 'claims') {
    super(`claim mapping failed: ${reason}`);
    this.name = 'ClaimMappingError';
  }
}

/**
 * The value at `path` in nested claim objects, following own properties only (a claim named
 * `__proto__` or `constructor` is never the prototype). `undefined` when any step is missing.
 */
export function claimAt(payload: unknown, path: readonly string[]): unknown {
  let node: unknown = payload;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/**
 * A list claim as strings: an array of strings (`groups`, `roles`), or one string of
 * space-separated values (`scope`, RFC 8693 §4.2). Other shapes give an empty list; non-string
 * items and over-long values are skipped.
 * @throws ClaimMappingError (`claims`) for more than `MAX_LIST_VALUES` values.
 */
export function listClaim(value: unknown): string[] {
  let items: unknown[];
  if (typeof value === 'string') items = value.split(' ').filter((item) => item !== '');
  else if (Array.isArray(value)) items = value;
  else return [];
  if (items.length > MAX_LIST_VALUES) throw new ClaimMappingError('claims');
  return items.filter((item): item is string => typeof item === 'string' && item.length > 0 && item.length <= MAX_VALUE_LENGTH);
}

/**
 * The notify subject of an external token: the configured claim, encoded, after the issuer's
 * prefix (`kc~<sub>` by default), so that it can never equal a local account name or a subject of
 * another issuer unless the configuration says so.
 * @throws ClaimMappingError (`subject`) when the claim is missing, not a string, or does not make a valid subject.
 */
export function externalSubject(payload: unknown, subject: IssuerConfig['subject']): string {
  const value = claimAt(payload, subject.claim);
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_SUBJECT_CLAIM_LENGTH) throw new ClaimMappingError('subject');
  const encoded = subject.encoding === 'base64url' ? Buffer.from(value, 'utf8').toString('base64url') : value;
  const name = `${subject.prefix}${encoded}`;
  if (!SUBJECT_NAME.test(name)) throw new ClaimMappingError('subject');
  return name;
}

/**
 * The topic grants of an external token: the union of the issuer's fixed grant, the roles its list
 * claim maps to (expanded through the role table, `{sub}` becoming the subject), and a `topics`
 * claim of notify's own shape when configured.
 * @throws ClaimMappingError (`claims`) when a list claim is oversized or a `topics` claim is malformed.
 */
export function externalGrants(payload: unknown, grants: IssuerConfig['grants'], roles: RoleTable, subject: string): TopicGrants {
  const publish = new Set<string>();
  const subscribe = new Set<string>();
  const presence = new Set<string>();
  const add = (granted: TopicGrants) => {
    for (const selector of granted.publish) publish.add(selector);
    for (const selector of granted.subscribe) subscribe.add(selector);
    for (const selector of granted.presence ?? []) presence.add(selector);
  };
  if (grants.fixed !== undefined) {
    add({
      publish: grants.fixed.publish.map((selector) => selector.replaceAll('{sub}', subject)),
      subscribe: grants.fixed.subscribe.map((selector) => selector.replaceAll('{sub}', subject)),
    });
  }
  if (grants.roles !== undefined) {
    const mapped = new Set<string>();
    for (const value of listClaim(claimAt(payload, grants.roles.claim))) {
      const targets = Object.hasOwn(grants.roles.map, value) ? grants.roles.map[value] : undefined;
      for (const role of targets ?? []) mapped.add(role);
    }
    add(resolveGrants(roles, [...mapped], subject));
  }
  if (grants.topicsClaim !== undefined) {
    const claim = claimAt(payload, grants.topicsClaim);
    if (claim !== undefined) add(topicsClaim(claim));
  }
  return { publish: [...publish], subscribe: [...subscribe], ...(presence.size > 0 ? { presence: [...presence] } : {}) };
}

/** Same bounds as our own `topics` claim (`token-service.ts`). */
const MAX_SELECTORS = 64;
const MAX_SELECTOR_LENGTH = 300;

function topicsClaim(claim: unknown): TopicGrants {
  if (claim === null || typeof claim !== 'object' || Array.isArray(claim)) throw new ClaimMappingError('claims');
  const keys = Object.keys(claim);
  if (keys.some((key) => key !== 'publish' && key !== 'subscribe')) throw new ClaimMappingError('claims');
  const list = (value: unknown): string[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.length > MAX_SELECTORS) throw new ClaimMappingError('claims');
    if (!value.every((item) => typeof item === 'string' && item.length > 0 && item.length <= MAX_SELECTOR_LENGTH)) {
      throw new ClaimMappingError('claims');
    }
    return value as string[];
  };
  const shaped = claim as { publish?: unknown; subscribe?: unknown };
  return { publish: list(shaped.publish), subscribe: list(shaped.subscribe) };
}
