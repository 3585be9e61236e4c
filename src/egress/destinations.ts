/**
 * Destination control for the `http` adapter: a tool reaches only the origins (scheme, host and
 * port) its policy lists, every redirect hop is checked again, credentials never follow a redirect
 * to another origin, and non-public address space is refused unless the tool allows it.
 *
 * The check and the connection use the same address: each hop's host is resolved once, every
 * address is classified, and the connection's `lookup` hands the socket only that pre-checked
 * address, so a DNS answer that changes between check and connect (rebinding) cannot redirect it.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, Headers, fetch, type RequestInit, type Response } from 'undici';
import { redactText } from './redact.js';
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';

/** One resolved address of a host. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all its addresses; injectable so tests can simulate any DNS answer. */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** Where an `http` tool may connect. */
export interface DestinationPolicy {
  /**
   * Origins the tool may reach, each `scheme://host[:port]` (`https://api.example.com`,
   * `http://127.0.0.1:8080`) or `scheme://*.suffix[:port]` for any strict subdomain; the port
   * defaults to the scheme's. See `parseAllowedOrigin`.
   */
  allowOrigins: readonly string[];
  /** Permits loopback, private, link-local, CGNAT and other non-public unicast addresses. @default false */
  allowPrivate?: boolean;
  /** Redirect hops followed, each re-checked, before giving up. @default 5 */
  maxRedirects?: number;
  /** How host names are resolved. @default the system resolver (all addresses) */
  resolve?: HostResolver;
}

/** Why a destination was refused. */
export type DestinationBlockReason =
  'scheme' | 'origin_not_allowed' | 'downgrade' | 'address_blocked' | 'unresolvable' | 'too_many_redirects' | 'invalid_url' | 'invalid_policy';

/** Thrown when a URL or a redirect hop may not be reached; nothing was sent to it. */
export class DestinationBlockedError extends ToolgateError {
  override readonly name = 'DestinationBlockedError';
  /** The URL that was refused (after WHATWG normalisation when it parsed). */
  readonly url: string;
  /** The rule that refused it. */
  readonly reason: DestinationBlockReason;
  /** The address that was refused, for `address_blocked`. */
  readonly address?: string;
  /** 0 for the original URL, n for the n-th redirect. */
  readonly hop: number;
  constructor(message: string, fields: { url: string; reason: DestinationBlockReason; hop: number; address?: string; cause?: unknown }) {
    super('destination_blocked', message, { cause: fields.cause });
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

/** The system resolver, returning every address of a host. */
export const systemResolver: HostResolver = async (hostname) => {
  const answers = await dnsLookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

// ---------------------------------------------------------------------------------------------
// Origins
// ---------------------------------------------------------------------------------------------

/** One allowed origin, parsed: exact host or `*.suffix`, scheme and port always explicit. */
export interface AllowedOrigin {
  scheme: 'http:' | 'https:';
  /** Lower-case host without brackets or trailing dot; for a wildcard, the suffix after `*.`. */
  host: string;
  wildcard: boolean;
  port: number;
}

/** Thrown by `parseAllowedOrigin` for an entry that is not an origin; the message says the expected form. */
export class InvalidOriginError extends ToolgateError {
  override readonly name = 'InvalidOriginError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('invalid_origin', message, options);
  }
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };
const ORIGIN_SHAPE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#@\\\s]+)\/?$/;
const FORM =
  "an origin is scheme://host[:port], e.g. https://api.example.com, https://api.example.com:8443 or https://*.example.com; the port defaults to the scheme's";

/**
 * Parses an allowlist entry into an origin. Only `http://` and `https://` entries with a host and
 * an optional port (and nothing else: no path, query or user info) are accepted; the host is
 * normalised exactly as the URL parser normalises request hosts (IDNA, IPv4 number forms, IPv6
 * compression). A bare host (`api.example.com`) is refused: entries used to mean "any scheme,
 * any port", and guessing a scheme and port for them would silently change what a policy allows.
 * Throws `InvalidOriginError`.
 */
export function parseAllowedOrigin(entry: string): AllowedOrigin {
  const shape = ORIGIN_SHAPE.exec(entry.trim());
  if (!shape) {
    if (/^(\*\.)?[A-Za-z0-9.:[\]-]+$/.test(entry.trim())) {
      throw new InvalidOriginError(`"${entry}" is a bare host, not an origin: write https://${entry.trim()} (${FORM})`);
    }
    throw new InvalidOriginError(`"${entry}" is not an origin (${FORM})`);
  }
  const scheme = `${shape[1]!.toLowerCase()}:`;
  if (scheme !== 'http:' && scheme !== 'https:') throw new InvalidOriginError(`"${entry}": only http and https origins are allowed`);
  let url: URL;
  try {
    url = new URL(`${scheme}//${shape[2]!}`);
  } catch {
    throw new InvalidOriginError(`"${entry}" is not a valid origin (${FORM})`);
  }
  const port = url.port === '' ? DEFAULT_PORTS[scheme]! : Number(url.port);
  if (port === 0) throw new InvalidOriginError(`"${entry}": port 0 cannot be reached`);
  const hostname = normaliseHost(url.hostname);
  if (!hostname.includes('*')) return { scheme, host: hostname, wildcard: false, port };
  const suffix = hostname.slice(2);
  // Only a leading `*.` label, over a registrable-looking suffix: `*.com` or `*.10.0.0.1` would allow far too much.
  if (!hostname.startsWith('*.') || suffix.includes('*') || !suffix.includes('.') || suffix.split('.').some((l) => l === '') || isIP(suffix) !== 0) {
    throw new InvalidOriginError(`"${entry}": a wildcard is only a leading "*." over a domain of at least two labels, e.g. https://*.example.com`);
  }
  return { scheme, host: suffix, wildcard: true, port };
}

/** An allowed origin written back as text (`https://*.example.com:443`), for messages. */
export function formatOrigin(origin: AllowedOrigin): string {
  const host = isIP(origin.host) === 6 ? `[${origin.host}]` : origin.host;
  return `${origin.scheme}//${origin.wildcard ? '*.' : ''}${host}:${origin.port}`;
}

/** The port a URL connects to: explicit, or its scheme's default. */
export function effectivePort(url: URL): number {
  return url.port === '' ? (DEFAULT_PORTS[url.protocol] ?? 0) : Number(url.port);
}

/** Whether a URL's origin matches one of the allowed origins: same scheme, same port, same host or a strict subdomain of a wildcard. */
export function originAllowed(target: URL, allowed: readonly AllowedOrigin[]): boolean {
  const host = normaliseHost(target.hostname);
  const port = effectivePort(target);
  return allowed.some(
    (origin) =>
      origin.scheme === target.protocol &&
      origin.port === port &&
      (origin.wildcard ? isIP(host) === 0 && host.endsWith(`.${origin.host}`) : host === origin.host),
  );
}

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

/** Where an IPv4 address is carried inside an IPv6 one: byte offsets of its 4 octets, and an XOR mask (Teredo obfuscates the client). */
interface Embedding {
  bytes: readonly number[];
  xor?: number;
}

interface RangeRule {
  cidr: [ipaddr.IPv4 | ipaddr.IPv6, number];
  name: string;
  /** Blocked even with `allowPrivate`: nothing legitimate lives there, or it holds instance credentials. */
  always: boolean;
  /** IPv4 addresses carried inside an IPv6 address of this range; each is classified too. */
  embeds?: readonly Embedding[];
}

function rules(list: readonly [string, string, boolean, (readonly Embedding[])?][]): RangeRule[] {
  return list.map(([cidr, name, always, embeds]) => ({ cidr: ipaddr.parseCIDR(cidr), name, always, embeds }));
}

/** RFC 6052 position of an IPv4 address under a translation prefix of `bits` length; byte 8 (bits 64-71) is skipped. */
function rfc6052(bits: number): Embedding {
  const bytes: number[] = [];
  for (let i = bits / 8; bytes.length < 4; i++) if (i !== 8) bytes.push(i);
  return { bytes };
}
const LOW_32: Embedding = { bytes: [12, 13, 14, 15] };

/**
 * Explicit ranges, checked before ipaddr.js's own `range()` so a change in the library's tables
 * cannot unblock them; more specific entries first (the metadata hosts sit inside link-local/ULA).
 */
const IPV4_RULES = rules([
  ['0.0.0.0/8', 'unspecified', true],
  ['255.255.255.255/32', 'broadcast', true],
  ['224.0.0.0/4', 'multicast', true],
  ['240.0.0.0/4', 'reserved', true],
  ['169.254.169.254/32', 'metadata', true], // AWS, GCP, Azure, OCI, DigitalOcean instance metadata
  ['169.254.170.2/32', 'metadata', true], // AWS ECS task credentials
  ['100.100.100.200/32', 'metadata', true], // Alibaba Cloud
  ['127.0.0.0/8', 'loopback', false],
  ['10.0.0.0/8', 'private', false],
  ['172.16.0.0/12', 'private', false],
  ['192.168.0.0/16', 'private', false],
  ['169.254.0.0/16', 'linkLocal', false],
  ['100.64.0.0/10', 'carrierGradeNat', false],
  ['192.0.0.0/24', 'ietfProtocol', false],
  ['198.18.0.0/15', 'benchmarking', false],
  ['192.0.2.0/24', 'documentation', false],
  ['198.51.100.0/24', 'documentation', false],
  ['203.0.113.0/24', 'documentation', false],
  ['192.88.99.0/24', '6to4Relay', false],
]);

const IPV6_RULES = rules([
  ['::/128', 'unspecified', true],
  ['::1/128', 'loopback', false],
  ['fd00:ec2::254/128', 'metadata', true], // AWS instance metadata over IPv6
  ['ff00::/8', 'multicast', true],
  ['100::/64', 'discard', true],
  ['::ffff:0:0/96', 'ipv4Mapped', false, [LOW_32]],
  ['::ffff:0:0:0/96', 'ipv4Translated', false, [LOW_32]],
  ['::/96', 'ipv4Compatible', false, [LOW_32]],
  ['64:ff9b::/96', 'nat64', false, [LOW_32]],
  // Local-use NAT64 (RFC 8215): the operator picks the prefix length, so every RFC 6052 position is
  // checked and any reading that lands on a blocked address blocks (the /96 reading first, the usual one).
  ['64:ff9b:1::/48', 'nat64Local', false, [LOW_32, rfc6052(64), rfc6052(56), rfc6052(48)]],
  ['2002::/16', '6to4', false, [{ bytes: [2, 3, 4, 5] }]],
  ['2001::/32', 'teredo', false, [{ bytes: [4, 5, 6, 7] }, { bytes: [12, 13, 14, 15], xor: 0xff }]],
  ['fc00::/7', 'uniqueLocal', false],
  ['fe80::/10', 'linkLocal', false],
  ['fec0::/10', 'siteLocal', false],
  ['2001:db8::/32', 'documentation', false],
  ['3fff::/20', 'documentation', false],
]);

/** ipaddr.js range names that stay blocked even with `allowPrivate`. */
const ALWAYS_BLOCKED = new Set(['unspecified', 'broadcast', 'multicast', 'discard']);
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

interface Classification {
  range: string;
  always: boolean;
}

/**
 * Classifies an IP address: `null` when it may be reached under the policy, otherwise the name
 * of the range that blocks it (`loopback`, `private`, `linkLocal`, `metadata`, `nat64(loopback)`,
 * ...). Only public unicast passes by default. IPv6 forms that carry an IPv4 address (mapped,
 * compatible, NAT64, 6to4, Teredo) are blocked by default whatever they carry — the carried
 * address is named in the reason — and with `allowPrivate` they pass only if the carried address
 * would. Unspecified, broadcast, multicast, reserved, discard and cloud metadata addresses, zone
 * ids and anything that is not a plain IP address are blocked even with `allowPrivate`.
 */
export function blockedRange(address: string, allowPrivate = false): string | null {
  const found = classify(address);
  if (found === null) return null;
  return found.always || !allowPrivate ? found.range : null;
}

function classify(address: string): Classification | null {
  // A zone id picks an interface, not a destination the policy can reason about.
  if (address.includes('%')) return { range: 'zoneId', always: true };
  // node's isIP is strict (dotted-quad IPv4 only); ipaddr.js alone would also accept `0x7f.1`-style forms.
  const family = isIP(address);
  if (family === 0) return { range: 'invalid', always: true };
  // ipaddr.js reads the deprecated `::a.b.c.d` as `::ffff:a.b.c.d`; the URL standard's IPv6 parser
  // (the one request hosts go through) reads it as `::a.b.c.d`, so IPv6 text is normalised by it first.
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(family === 6 ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address);
  } catch {
    return { range: 'invalid', always: true };
  }
  if (parsed.kind() === 'ipv4') {
    const v4 = parsed as ipaddr.IPv4;
    const rule = IPV4_RULES.find((r) => v4.match(r.cidr as [ipaddr.IPv4, number]));
    if (rule) return { range: rule.name, always: rule.always };
    const range = v4.range();
    return range === 'unicast' ? null : { range, always: ALWAYS_BLOCKED.has(range) };
  }
  const v6 = parsed as ipaddr.IPv6;
  const rule = IPV6_RULES.find((r) => v6.match(r.cidr as [ipaddr.IPv6, number]));
  if (rule?.embeds) {
    const bytes = v6.toByteArray();
    for (const embedding of rule.embeds) {
      const inner = new ipaddr.IPv4(embedding.bytes.map((i) => bytes[i]! ^ (embedding.xor ?? 0)));
      const innerClass = classify(inner.toString());
      // Carrying a blocked address: named after it, and as strict as the address itself.
      if (innerClass !== null) return { range: `${rule.name}(${innerClass.range})`, always: innerClass.always };
    }
    // Carrying public addresses: still a translation mechanism whose far end we cannot check.
    return { range: rule.name, always: false };
  }
  if (rule) return { range: rule.name, always: rule.always };
  const range = v6.range();
  if (range !== 'unicast') return { range, always: ALWAYS_BLOCKED.has(range) };
  // Outside 2000::/3 nothing is assigned for global unicast.
  if (!v6.match(GLOBAL_UNICAST_V6)) return { range: 'unassigned', always: false };
  return null;
}

// ---------------------------------------------------------------------------------------------
// Checking and fetching
// ---------------------------------------------------------------------------------------------

function parseOrigins(policy: DestinationPolicy, url: string, hop: number): AllowedOrigin[] {
  return policy.allowOrigins.map((entry) => {
    try {
      return parseAllowedOrigin(entry);
    } catch (err) {
      throw new DestinationBlockedError(`destination policy: ${(err as Error).message}`, { url, reason: 'invalid_policy', hop, cause: err });
    }
  });
}

/**
 * Checks one URL against the policy and resolves it: scheme, allowed origins, then every address
 * the host resolves to (one blocked address refuses the host). Throws `DestinationBlockedError`.
 */
export async function checkDestination(target: string | URL, policy: DestinationPolicy, hop = 0): Promise<CheckedDestination> {
  let url: URL;
  try {
    url = new URL(target);
  } catch (err) {
    // Also IPv6 zone ids (`[fe80::1%25eth0]`), which the URL standard refuses.
    // Redacted whole, then cut: a URL password cut before its @host would no longer be recognised.
    throw new DestinationBlockedError(`not a valid URL: ${redactText(String(target)).slice(0, 200)}`, {
      url: redactText(String(target)),
      reason: 'invalid_url',
      hop,
      cause: err,
    });
  }
  const href = url.href;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DestinationBlockedError(`${href}: only http and https are allowed`, { url: href, reason: 'scheme', hop });
  }
  if (!originAllowed(url, parseOrigins(policy, href, hop))) {
    throw new DestinationBlockedError(
      `${href}: origin ${url.protocol}//${url.host} (port ${effectivePort(url)}) is not allowed: only the adapter URL's origin and egress.allow_hosts`,
      { url: href, reason: 'origin_not_allowed', hop },
    );
  }
  const hostname = stripBrackets(url.hostname.toLowerCase());
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

/**
 * Request options for `guardedFetch`: the body must be replayable so 307/308 redirects can resend
 * it. `credentialHeaders` names headers that hold credentials whatever they are called (for the
 * `http` adapter: every manifest header); they are dropped on any hop to another origin.
 */
export type GuardedRequestInit = Omit<RequestInit, 'redirect' | 'dispatcher' | 'body'> & {
  body?: string | Uint8Array | null;
  credentialHeaders?: readonly string[];
};

/** Always dropped when a redirect leaves the original origin. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie']);
/** Header names that look like they carry a secret: `x-api-key`, `*-token`, `*-key`, `*-secret`, `*auth*`, ... */
const AUTH_LIKE = /auth|token|secret|passw|credential|cookie|session|signature|api-?key|(?:^|[-_])key$/;
/** The fetch standard's request-body headers, dropped when a redirect turns the request into a GET. */
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location'];

/**
 * Whether a header is dropped on a hop to another origin: a header named in `credentialHeaders`,
 * `authorization`/`proxy-authorization`/`cookie`, or anything whose name looks like auth — except
 * toolgate's own `idempotency-key` and `x-toolgate-*` headers, which carry no secret.
 */
export function isCredentialHeader(name: string, credentialHeaders: readonly string[] = []): boolean {
  const lower = name.toLowerCase();
  if (credentialHeaders.some((h) => h.toLowerCase() === lower)) return true;
  if (lower === 'idempotency-key' || lower.startsWith('x-toolgate-')) return false;
  return CREDENTIAL_HEADERS.has(lower) || AUTH_LIKE.test(lower);
}

/** One request of a redirect chain. */
export interface HopRequest {
  url: URL;
  method: string;
  body: string | Uint8Array | null;
  headers: Headers;
}

/**
 * The request a redirect leads to, before its destination is checked: refuses an https→http
 * downgrade; 303 (and 301/302 after POST) becomes a GET without body, 307/308 keep method and
 * body; a hop whose origin differs from `firstOrigin` loses every credential header (and they do
 * not come back if a later hop returns). Throws `DestinationBlockedError`.
 */
export function redirectRequest(
  from: HopRequest,
  status: number,
  location: string,
  options: { firstOrigin: string; credentialHeaders?: readonly string[]; hop: number },
): HopRequest {
  let url: URL;
  try {
    url = new URL(location, from.url);
  } catch (err) {
    throw new DestinationBlockedError(`${from.url.href}: invalid redirect location`, {
      url: redactText(location).slice(0, 200),
      reason: 'invalid_url',
      hop: options.hop,
      cause: err,
    });
  }
  if (from.url.protocol === 'https:' && url.protocol === 'http:') {
    throw new DestinationBlockedError(`${from.url.href}: redirect to ${url.href} would downgrade https to http`, {
      url: url.href,
      reason: 'downgrade',
      hop: options.hop,
    });
  }
  let { method, body } = from;
  const headers = new Headers(from.headers);
  // Fetch semantics: 303 always, and 301/302 after POST, continue as a GET without a body.
  if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
    if (method !== 'HEAD') method = 'GET';
    body = null;
    for (const name of BODY_HEADERS) headers.delete(name);
  }
  if (url.origin !== options.firstOrigin) {
    for (const name of [...headers.keys()]) {
      if (isCredentialHeader(name, options.credentialHeaders)) headers.delete(name);
    }
  }
  return { url, method, body, headers };
}

/**
 * `fetch` that reaches only destinations the policy allows: the URL and every redirect hop are
 * checked before connecting, the socket connects only to the checked address, and redirects are
 * followed manually (up to `maxRedirects`), never from https to http, and without credentials
 * once they leave the original origin (see `redirectRequest`).
 */
export async function guardedFetch(target: string | URL, init: GuardedRequestInit, policy: DestinationPolicy): Promise<Response> {
  const maxRedirects = policy.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const { credentialHeaders, headers, method, body, ...rest } = init;
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

  let checked = await checkDestination(target, policy, 0);
  const firstOrigin = checked.url.origin;
  let request: HopRequest = { url: checked.url, method: (method ?? 'GET').toUpperCase(), body: body ?? null, headers: new Headers(headers) };
  for (let hop = 0; ; hop++) {
    pinned.clear();
    pinned.set(checked.hostname, checked.addresses);
    const response = await fetch(checked.url, {
      ...rest,
      method: request.method,
      body: request.body,
      headers: request.headers,
      redirect: 'manual',
      dispatcher: agent,
    });
    const location = response.headers.get('location');
    if (response.status < 300 || response.status > 399 || response.status === 304 || location === null) return response;
    await response.body?.cancel();
    if (hop >= maxRedirects) {
      throw new DestinationBlockedError(`${request.url.href}: more than ${maxRedirects} redirects`, {
        url: request.url.href,
        reason: 'too_many_redirects',
        hop,
      });
    }
    request = redirectRequest(request, response.status, location, { firstOrigin, credentialHeaders, hop: hop + 1 });
    checked = await checkDestination(request.url, policy, hop + 1);
  }
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** A URL host as compared against allowed origins: lower case, no brackets, no trailing dot (same DNS name). */
function normaliseHost(hostname: string): string {
  return stripBrackets(hostname.toLowerCase()).replace(/\.$/, '');
}
