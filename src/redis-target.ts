interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Where Redis is, parsed from `REDIS_URL` once, in `config.ts` (a bad one stops the server naming
 * REDIS_URL), and handed to the Redis backend. Moving between a single Redis, Sentinel and Cluster is
 * a change of this one setting:
 * - `redis://[user:password@]host:port[/db]` (or `rediss://`): one primary.
 * - `redis+sentinel://[user:password@]host:port,host:port,.../master-name`: the primary the
 *   sentinels name; followed through failovers by itself. The password is the data nodes'.
 * - `redis+cluster://[user:password@]host:port,host:port,...`: any reachable nodes of a Redis
 *   Cluster (the rest are discovered).
 */
export type RedisTarget =
  | { readonly kind: 'single'; readonly url: string }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly HostPort[];
      readonly name: string;
      readonly auth: Auth;
      readonly tls: boolean;
    }
  | { readonly kind: 'cluster'; readonly nodes: readonly HostPort[]; readonly auth: Auth; readonly tls: boolean };

interface Auth {
  readonly username?: string;
  readonly password?: string;
}

const MULTI_HOST = /^(rediss?)\+(sentinel|cluster):\/\/(?:([^@/]*)@)?([^/@]+)(?:\/([^/]*))?$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/**
 * Parses `REDIS_URL`.
 * @throws Error saying what is wrong (the caller names the setting).
 */
export function parseRedisTarget(url: string): RedisTarget {
  if (/^rediss?:\/\//.test(url)) {
    new URL(url); // throws on a malformed URL
    return { kind: 'single', url };
  }
  const match = MULTI_HOST.exec(url);
  if (match === null) throw new Error('must be redis://, rediss://, redis+sentinel://host:port,.../name or redis+cluster://host:port,...');
  const [, scheme, kind, userinfo, hosts, path] = match as unknown as [
    string,
    string,
    'sentinel' | 'cluster',
    string | undefined,
    string,
    string | undefined,
  ];
  const endpoints = hosts.split(',').map((item) => {
    const parts = HOST_PORT.exec(item.trim());
    const port = Number(parts?.[2]);
    if (parts === null || port < 1 || port > 65535) throw new Error(`${JSON.stringify(item)} is not host:port`);
    return { host: parts[1]!.replace(/^\[|\]$/g, ''), port };
  });
  let auth: Auth = {};
  if (userinfo !== undefined && userinfo !== '') {
    const colon = userinfo.indexOf(':');
    const decode = (value: string) => decodeURIComponent(value);
    auth =
      colon < 0
        ? { password: decode(userinfo) }
        : { ...(colon > 0 ? { username: decode(userinfo.slice(0, colon)) } : {}), password: decode(userinfo.slice(colon + 1)) };
  }
  const tls = scheme === 'rediss';
  if (kind === 'sentinel') {
    if (path === undefined || !/^[A-Za-z0-9_.-]{1,128}$/.test(path)) throw new Error('needs the master name after the hosts (/mymaster)');
    return { kind, sentinels: endpoints, name: path, auth, tls };
  }
  if (path !== undefined && path !== '') throw new Error('a cluster URL has no path (Redis Cluster has only database 0)');
  return { kind, nodes: endpoints, auth, tls };
}
