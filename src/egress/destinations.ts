/**
 * Destination control for the `http` adapter: a tool reaches only the hosts its policy lists, every
 * redirect hop is checked again, and private address space is refused unless the tool allows it.
 *
 * The check and the connection use the same address: each hop's host is resolved once, every
 * address is classified, and the connection's `lookup` hands the socket only that pre-checked
 * address, so a DNS answer that changes between check and connect (rebinding) cannot redirect it.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, Headers, fetch, type RequestInit, type Response } from 'undici';

/** One resolved address of a host. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all its addresses; injectable so tests can simulate any DNS answer. */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** Where an `http` tool may connect. */
export interface DestinationPolicy {
  /** Hosts the tool may reach: an exact host (`api.example.com`, `127.0.0.1`) or `*.suffix` for any subdomain of it. */
  allowHosts: readonly string[];
  /** Permits loopback, private, link-local, CGNAT and other non-public unicast addresses. @default false */
  allowPrivate?: boolean;
  /** Redirect hops followed, each re-checked, before giving up. @default 5 */
  maxRedirects?: number;
  /** How host names are resolved. @default the system resolver (all addresses) */
  resolve?: HostResolver;
}

/** Why a destination was refused. */
export type DestinationBlockReason = 'scheme' | 'host_not_allowed' | 'address_blocked' | 'unresolvable' | 'too_many_redirects' | 'bad_redirect';

/** Thrown when a URL or a redirect hop may not be reached; nothing was sent to it. */
export class DestinationBlockedError extends Error {
  override readonly name = 'DestinationBlockedError';
  /** The URL that was refused (after WHATWG normalisation). */
  readonly url: string;
  /** The rule that refused it. */
  readonly reason: DestinationBlockReason;
  /** The address that was refused, for `address_blocked`. */
  readonly address?: string;
  /** 0 for the original URL, n for the n-th redirect. */
  readonly hop: number;
  constructor(message: string, fields: { url: string; reason: DestinationBlockReason; hop: number; address?: string; cause?: unknown }) {
    super(message, { cause: fields.cause });
    this.url = fields.url;
    this.reason = fields.reason;
    this.hop = fields.hop;
    this.address = fields.address;
  }
}

/** A destination that passed every check, with the addresses the connection may use. */
export interface CheckedDestination {
  url: URL;
  /** Host name without IPv6 brackets, lower case. */
  hostname: string;
  addresses: ResolvedAddress[];
}

const DEFAULT_MAX_REDIRECTS = 5;
/** ipaddr.js ranges that are never reachable, even with `allowPrivate`. */
const ALWAYS_BLOCKED = new Set(['unspecified', 'broadcast', 'multicast']);

/** The system resolver, returning every address of a host. */
export const systemResolver: HostResolver = async (hostname) => {
  const answers = await dnsLookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/** Whether a host name matches an allowlist entry: exact, or `*.suffix` for a strict subdomain. */
export function hostAllowed(hostname: string, allowHosts: readonly string[]): boolean {
  const host = stripBrackets(hostname.toLowerCase()).replace(/\.$/, '');
  return allowHosts.some((entry) => {
    const pattern = stripBrackets(entry.toLowerCase()).replace(/\.$/, '');
    if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
    return host === normaliseLiteral(pattern);
  });
}

/**
 * Classifies an IP address: `null` when it may be reached under the policy, otherwise the name of
 * the blocked range (`loopback`, `private`, `linkLocal`, `carrierGradeNat`, `ipv4Mapped`, ...).
 * Only public unicast passes by default; IPv4-mapped and translated IPv6 forms are judged by the
 * IPv4 address they carry as well.
 */
export function blockedRange(address: string, allowPrivate = false): string | null {
  if (!ipaddr.isValid(address)) return 'invalid';
  const parsed = ipaddr.parse(address);
  const range = parsed.range();
  if (ALWAYS_BLOCKED.has(range)) return range;
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) {
      const inner = blockedRange(v6.toIPv4Address().toString(), allowPrivate);
      if (inner !== null) return `ipv4Mapped(${inner})`;
      return allowPrivate ? null : 'ipv4Mapped';
    }
  }
  if (allowPrivate) return null;
  return range === 'unicast' ? null : range;
}

/**
 * Checks one URL against the policy and resolves it: scheme, allowlist, then every address the
 * host resolves to (one blocked address refuses the host). Throws `DestinationBlockedError`.
 */
export async function checkDestination(target: string | URL, policy: DestinationPolicy, hop = 0): Promise<CheckedDestination> {
  let url: URL;
  try {
    url = new URL(target);
  } catch (err) {
    throw new DestinationBlockedError(`not a valid URL: ${String(target).slice(0, 200)}`, { url: String(target), reason: 'bad_redirect', hop, cause: err });
  }
  const href = url.href;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DestinationBlockedError(`${href}: only http and https are allowed`, { url: href, reason: 'scheme', hop });
  }
  const hostname = stripBrackets(url.hostname.toLowerCase());
  if (!hostAllowed(hostname, policy.allowHosts)) {
    throw new DestinationBlockedError(`${href}: host ${hostname} is not on the tool's allowlist (egress.allow_hosts)`, {
      url: href,
      reason: 'host_not_allowed',
      hop,
    });
  }
  let addresses: ResolvedAddress[];
  const literal = isIP(hostname);
  if (literal !== 0) {
    addresses = [{ address: hostname, family: literal === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await (policy.resolve ?? systemResolver)(hostname);
    } catch (err) {
      throw new DestinationBlockedError(`${href}: cannot resolve ${hostname}`, { url: href, reason: 'unresolvable', hop, cause: err });
    }
    if (addresses.length === 0) throw new DestinationBlockedError(`${href}: ${hostname} has no addresses`, { url: href, reason: 'unresolvable', hop });
  }
  for (const { address } of addresses) {
    const range = blockedRange(address, policy.allowPrivate ?? false);
    if (range !== null) {
      throw new DestinationBlockedError(
        `${href}: ${hostname} resolves to ${address} (${range}), which is blocked; set egress.allow_private only for tools that must reach internal hosts`,
        { url: href, reason: 'address_blocked', hop, address },
      );
    }
  }
  return { url, hostname, addresses };
}

/** Request options for `guardedFetch`: the body must be replayable so 307/308 redirects can resend it. */
export type GuardedRequestInit = Omit<RequestInit, 'redirect' | 'dispatcher' | 'body'> & { body?: string | Uint8Array | null };

const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

/**
 * `fetch` that reaches only destinations the policy allows: the URL and every redirect hop are
 * checked before connecting, the socket connects only to the checked address, and redirects are
 * followed manually (up to `maxRedirects`). Credentials are not forwarded across origins.
 */
export async function guardedFetch(target: string | URL, init: GuardedRequestInit, policy: DestinationPolicy): Promise<Response> {
  const maxRedirects = policy.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  // Host name -> the addresses that passed the check for the hop being sent.
  const pinned = new Map<string, ResolvedAddress[]>();
  const lookup: LookupFunction = (hostname, options, callback) => {
    const addresses = pinned.get(stripBrackets(hostname.toLowerCase()));
    if (!addresses || addresses.length === 0) {
      const err = Object.assign(new Error(`${hostname} was not checked by the destination policy`), { code: 'ENOTFOUND' });
      callback(err, '', 4);
      return;
    }
    if (options.all) callback(null, addresses);
    else callback(null, addresses[0]!.address, addresses[0]!.family);
  };
  // Short keep-alive: this agent lives for one call and must not hold the process open.
  const agent = new Agent({ connect: { lookup }, keepAliveTimeout: 10, keepAliveMaxTimeout: 10 });

  let current = new URL(target);
  let method = (init.method ?? 'GET').toUpperCase();
  let body = init.body ?? null;
  let headers = new Headers(init.headers);
  for (let hop = 0; ; hop++) {
    const checked = await checkDestination(current, policy, hop);
    pinned.clear();
    pinned.set(checked.hostname, checked.addresses);
    const response = await fetch(checked.url, { ...init, method, body, headers, redirect: 'manual', dispatcher: agent });
    const location = response.headers.get('location');
    if (response.status < 300 || response.status > 399 || response.status === 304 || location === null) return response;
    await response.body?.cancel();
    if (hop >= maxRedirects) {
      throw new DestinationBlockedError(`${current.href}: more than ${maxRedirects} redirects`, { url: current.href, reason: 'too_many_redirects', hop });
    }
    let next: URL;
    try {
      next = new URL(location, current);
    } catch (err) {
      throw new DestinationBlockedError(`${current.href}: invalid redirect location`, { url: current.href, reason: 'bad_redirect', hop: hop + 1, cause: err });
    }
    // Fetch semantics: 303 always, and 301/302 after POST, continue as a GET without a body.
    if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
      if (method !== 'HEAD') method = 'GET';
      body = null;
      headers = new Headers(headers);
      headers.delete('content-type');
    }
    if (next.origin !== current.origin) {
      headers = new Headers(headers);
      for (const name of CREDENTIAL_HEADERS) headers.delete(name);
    }
    current = next;
  }
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Normalises an IP literal in an allowlist entry the way the URL parser normalises hosts. */
function normaliseLiteral(entry: string): string {
  if (isIP(entry) === 6) {
    try {
      return ipaddr.parse(entry).toString();
    } catch {
      return entry;
    }
  }
  return entry;
}
