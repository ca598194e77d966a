import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Which addresses a webhook may connect to (server-side request forgery, OWASP SSRF prevention
 * cheat sheet). A webhook URL comes from a configuration file, but the name in it resolves
 * through DNS, which the file's author does not control forever: a name that resolves to
 * 127.0.0.1 or 169.254.169.254 (cloud metadata) would turn the server into a proxy into its own
 * network. So private ranges are refused unless a target allows them, and the check is made on
 * the address actually connected to (see `checkedLookup`), not on a separate earlier lookup that
 * a rebinding DNS server could answer differently.
 */

/** Never a sensible destination, even with `allowPrivateNetwork`: "this host", multicast, broadcast, reserved. */
const NEVER: Array<[string, number]> = [
  ['0.0.0.0', 8], // RFC 791 "this network"; connecting to 0.0.0.0 reaches the local host on Linux
  ['224.0.0.0', 4], // multicast (RFC 5771)
  ['240.0.0.0', 4], // reserved (RFC 1112), includes 255.255.255.255
];
const NEVER_V6: Array<[string, number]> = [
  ['::', 128], // unspecified
  ['ff00::', 8], // multicast
];

/** Private, loopback, link-local, shared and documentation ranges (IANA special-purpose registries, RFC 6890). */
const PRIVATE: Array<[string, number]> = [
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // RFC 6598 carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata services
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
];
const PRIVATE_V6: Array<[string, number]> = [
  ['::', 96], // loopback (::1) and the deprecated IPv4-compatible form ::a.b.c.d (RFC 4291 §2.5.5.1)
  ['64:ff9b:1::', 48], // NAT64 local use (RFC 8215)
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID, ...)
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
];

/** IPv4 inside IPv6: mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::). */
function embeddings(v4: string, prefix: number): Array<[string, number]> {
  const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
  const hex = (high: number, low: number) => ((high << 8) | low).toString(16);
  return [
    [`::ffff:${v4}`, 96 + prefix],
    [`64:ff9b::${v4}`, 96 + prefix],
    [`2002:${hex(a, b)}:${hex(c, d)}::`, 16 + prefix],
  ];
}

function blockList(v4: Array<[string, number]>, v6: Array<[string, number]>): BlockList {
  const list = new BlockList();
  for (const [address, prefix] of v4) {
    list.addSubnet(address, prefix, 'ipv4');
    for (const [embedded, bits] of embeddings(address, prefix)) list.addSubnet(embedded, bits, 'ipv6');
  }
  for (const [address, prefix] of v6) list.addSubnet(address, prefix, 'ipv6');
  return list;
}

const never = blockList(NEVER, NEVER_V6);
const privateRanges = blockList(PRIVATE, PRIVATE_V6);

export type AddressProblem = 'reserved_address' | 'private_address';

/** Why a webhook may not connect to this IP address, or `undefined` when it may. Not an IP address at all: `reserved_address`. */
export function addressProblem(address: string, allowPrivateNetwork: boolean): AddressProblem | undefined {
  const family = isIP(address);
  if (family === 0) return 'reserved_address';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (never.check(address, type)) return 'reserved_address';
  if (!allowPrivateNetwork && privateRanges.check(address, type)) return 'private_address';
  return undefined;
}

/** The host of a URL as an IP address (brackets of an IPv6 literal removed), or `undefined` for a name. */
export function literalAddress(hostname: string): string | undefined {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(bare) === 0 ? undefined : bare;
}

/**
 * What can be known about a URL's host without DNS: an IP literal is checked now, and `localhost`
 * (and `*.localhost`) always mean loopback (RFC 6761 §6.3). Any other name is checked when it is
 * resolved, at every connection.
 */
export function hostProblem(hostname: string, allowPrivateNetwork: boolean): AddressProblem | undefined {
  const literal = literalAddress(hostname);
  if (literal !== undefined) return addressProblem(literal, allowPrivateNetwork);
  const name = hostname.toLowerCase().replace(/\.$/, '');
  if (!allowPrivateNetwork && (name === 'localhost' || name.endsWith('.localhost'))) return 'private_address';
  return undefined;
}

interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Resolves a host name to its addresses; injected so tests can make any name point anywhere. */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** The operating system's resolver (getaddrinfo: /etc/hosts, then DNS), as Node's own connections use it. */
export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => {
      if (error) reject(error);
      else resolve(addresses.map((entry) => ({ address: entry.address, family: entry.family === 6 ? 6 : 4 })));
    });
  });

/** A connection was not made because the host resolved to an address the target may not reach. */
export class AddressRefusedError extends Error {
  readonly code = 'ERR_WEBHOOK_ADDRESS_REFUSED';
  constructor(
    readonly hostname: string,
    readonly address: string,
    readonly reason: AddressProblem,
  ) {
    super(`${hostname} resolves to ${address}, which this webhook target may not reach (${reason})`);
    this.name = 'AddressRefusedError';
  }
}

/**
 * A `lookup` for `net.connect`/`http.request`: resolves with `resolver`, refuses the whole name
 * when any of its addresses is refused (the answer is then either misconfigured or hostile, and
 * which address a connection would pick must not decide), and hands the checked addresses to the
 * socket, so the address connected to is the one that was checked: a DNS server that answers the
 * check with a public address and the connection with 127.0.0.1 has no second question to answer.
 */
export function checkedLookup(resolver: Resolver, allowPrivateNetwork: boolean): LookupFunction {
  return (hostname, options, callback) => {
    resolver(hostname).then(
      (resolved) => {
        const wanted =
          options.family === 4 || options.family === 6 ? resolved.filter((entry) => entry.family === options.family) : resolved;
        if (wanted.length === 0) {
          callback(Object.assign(new Error(`${hostname} has no usable address`), { code: 'ENOTFOUND' }), '', 0);
          return;
        }
        for (const entry of wanted) {
          const problem = addressProblem(entry.address, allowPrivateNetwork);
          if (problem !== undefined) {
            callback(new AddressRefusedError(hostname, entry.address, problem), '', 0);
            return;
          }
        }
        if (options.all === true) (callback as unknown as (error: null, addresses: ResolvedAddress[]) => void)(null, [...wanted]);
        else callback(null, wanted[0]!.address, wanted[0]!.family);
      },
      (error: unknown) => callback(error as NodeJS.ErrnoException, '', 0),
    );
  };
}
