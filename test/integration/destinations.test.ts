/**
 * Destination control on loopback only: every blocked destination is refused before a socket is
 * opened (the target server counts connections and must see none), allowed hops connect only to
 * the address that was checked, an origin is scheme + host + port (another port on 127.0.0.1 is
 * another origin), and credentials never arrive at a redirect target of another origin (the
 * receiving server records every header it got).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  DestinationBlockedError,
  blockedRange,
  checkDestination,
  guardedFetch,
  type DestinationPolicy,
  type HostResolver,
} from '../../src/egress/destinations.js';
import { callHttpTool } from '../../src/tools/http-adapter.js';
import { ToolRejectedError, type ToolContext } from '../../src/tools/types.js';

interface Recorded {
  url: string;
  headers: IncomingHttpHeaders;
  method: string;
  body: string;
}

interface Target {
  port: number;
  origin: string;
  connections: number;
  requests: Recorded[];
  server: Server;
}

/** A loopback server that records every request; `handler` may answer instead of the default 200 JSON. */
async function startTarget(handler?: (url: string, res: ServerResponse) => void): Promise<Target> {
  const target: Target = { port: 0, origin: '', connections: 0, requests: [], server: undefined as unknown as Server };
  target.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      target.requests.push({ url: req.url ?? '', headers: req.headers, method: req.method ?? '', body: Buffer.concat(chunks).toString('utf8') });
      if (handler) handler(req.url ?? '', res);
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, at: req.url }));
    });
  });
  target.server.on('connection', () => {
    target.connections += 1;
  });
  await new Promise<void>((resolve) => target.server.listen(0, '127.0.0.1', resolve));
  target.port = (target.server.address() as AddressInfo).port;
  target.origin = `http://127.0.0.1:${target.port}`;
  return target;
}

/** Answers `/r?status=N&to=URL` with a redirect, `/loop` with a redirect to itself, anything else with 200 JSON. */
function redirector(url: string, res: ServerResponse): void {
  const params = new URL(url, 'http://x').searchParams;
  const to = url.startsWith('/loop') ? '/loop' : params.get('to');
  if (!(url.startsWith('/r') || url.startsWith('/loop')) || to === null) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, at: url }));
    return;
  }
  res.writeHead(Number(params.get('status') ?? '302'), { location: to }).end();
}

async function stop(target: Target): Promise<void> {
  target.server.closeAllConnections();
  await new Promise<void>((resolve) => target.server.close(() => resolve()));
}

async function assertBlocked(promise: Promise<unknown>, reason: DestinationBlockedError['reason']): Promise<DestinationBlockedError> {
  const err = await promise.then(
    () => assert.fail('expected the destination to be blocked'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof DestinationBlockedError, `expected DestinationBlockedError, got ${String(err)}`);
  assert.equal(err.reason, reason, err.message);
  return err;
}

const redirect = (from: Target, to: string, status = 302): string => `${from.origin}/r?status=${status}&to=${encodeURIComponent(to)}`;

/** Every header value a server received, to search for a credential's canary. */
const allValues = (r: Recorded | undefined): string => JSON.stringify(r?.headers ?? {});

describe('destinations: blocked before connecting', () => {
  let loop: Target;
  before(async () => {
    loop = await startTarget();
  });
  after(async () => {
    await stop(loop);
  });

  // The allowlist names the origin in every spelling, so the refusals below are the address check's alone.
  const policy = (port: number): DestinationPolicy => ({
    allowOrigins: [
      `http://127.0.0.1:${port}`,
      `http://localhost:${port}`,
      `http://[::1]:${port}`,
      `http://[::ffff:7f00:1]:${port}`,
      `http://loop.test:${port}`,
    ],
  });

  const spellings = (port: number) => [
    `http://127.0.0.1:${port}/`,
    `http://2130706433:${port}/`, // decimal
    `http://0x7f000001:${port}/`, // hex, one part
    `http://0x7f.0.0.1:${port}/`, // hex, dotted
    `http://0x7f.1:${port}/`, // hex, short
    `http://0177.0.0.1:${port}/`, // octal
    `http://127.1:${port}/`, // short form
    `http://127.0.0.1.:${port}/`, // trailing dot
    `http://[::ffff:127.0.0.1]:${port}/`, // IPv4-mapped IPv6
    `http://[0:0:0:0:0:ffff:127.0.0.1]:${port}/`, // IPv4-mapped, uncompressed
  ];

  test('loopback in decimal, hex, octal, short and IPv4-mapped forms is refused and never connected to', async () => {
    for (const url of spellings(loop.port)) {
      const err = await assertBlocked(guardedFetch(url, {}, policy(loop.port)), 'address_blocked');
      assert.match(err.address ?? '', /^(127\.0\.0\.1|::ffff:7f00:1)$/, url);
    }
    assert.equal(loop.connections, 0);
  });

  test('zone ids are refused as invalid URLs', async () => {
    await assertBlocked(guardedFetch(`http://[::1%25lo]:${loop.port}/`, {}, policy(loop.port)), 'invalid_url');
    assert.equal(loop.connections, 0);
  });

  test('a host name that resolves to loopback is refused: system resolver (localhost) and injected ones', async () => {
    await assertBlocked(guardedFetch(`http://localhost:${loop.port}/`, {}, policy(loop.port)), 'address_blocked');
    const mixed: HostResolver = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ];
    await assertBlocked(guardedFetch(`http://loop.test:${loop.port}/`, {}, { ...policy(loop.port), resolve: mixed }), 'address_blocked');
    const mappedMetadata: HostResolver = async () => [{ address: '::ffff:169.254.169.254', family: 6 }];
    const err = await assertBlocked(
      guardedFetch(`http://loop.test:${loop.port}/`, {}, { ...policy(loop.port), resolve: mappedMetadata, allowPrivate: true }),
      'address_blocked',
    );
    assert.match(err.message, /ipv4Mapped\(metadata\)/);
    assert.equal(loop.connections, 0);
  });

  test('literal private, link-local, CGNAT, unspecified, multicast and IPv6 local addresses are refused', async () => {
    const literals = [
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '[::1]',
      '[::]',
      '[fe80::1]',
      '[fc00::1]',
      '[::ffff:10.0.0.1]',
      '[64:ff9b::7f00:1]',
      '[2002:7f00:1::]',
      '[fd00:ec2::254]',
    ];
    for (const host of literals) {
      const url = new URL(`http://${host}/`);
      await assertBlocked(guardedFetch(url, {}, { allowOrigins: [url.origin] }), 'address_blocked');
    }
    assert.equal(loop.connections, 0);
  });

  test('an origin that is not allowed is refused, whatever it resolves to: other host, other port, other scheme', async () => {
    const wide = { allowPrivate: true };
    await assertBlocked(guardedFetch(`http://127.0.0.1:${loop.port}/`, {}, { ...wide, allowOrigins: ['https://api.example.com'] }), 'origin_not_allowed');
    await assertBlocked(
      guardedFetch(`http://127.0.0.1:${loop.port}/`, {}, { ...wide, allowOrigins: [`http://127.0.0.1:${loop.port + 1}`] }),
      'origin_not_allowed',
    );
    await assertBlocked(
      guardedFetch(`http://127.0.0.1:${loop.port}/`, {}, { ...wide, allowOrigins: [`https://127.0.0.1:${loop.port}`] }),
      'origin_not_allowed',
    );
    await assertBlocked(guardedFetch(`http://127.0.0.1:${loop.port}/`, {}, { ...wide, allowOrigins: ['http://127.0.0.1'] }), 'origin_not_allowed');
    await assertBlocked(guardedFetch('file:///etc/hostname', {}, { allowOrigins: ['https://*.example.com'] }), 'scheme');
    assert.equal(loop.connections, 0);
  });

  test('unspecified, multicast and metadata stay blocked even with allow_private', () => {
    assert.equal(blockedRange('0.0.0.0', true), 'unspecified');
    assert.equal(blockedRange('ff02::1', true), 'multicast');
    assert.equal(blockedRange('169.254.169.254', true), 'metadata');
    assert.equal(blockedRange('127.0.0.1', true), null);
    assert.equal(blockedRange('93.184.216.34'), null);
    assert.equal(blockedRange('2606:4700::1111'), null);
    assert.equal(blockedRange('::ffff:8.8.8.8'), 'ipv4Mapped');
  });
});

describe('destinations: redirects between loopback origins', () => {
  let first: Target; // the adapter's origin; redirects on /r
  let second: Target; // another allowed origin
  let forbidden: Target; // same host, another port, not allowed
  before(async () => {
    first = await startTarget(redirector);
    second = await startTarget(redirector);
    forbidden = await startTarget();
  });
  after(async () => {
    await Promise.all([stop(first), stop(second), stop(forbidden)]);
  });

  const allowed = (): DestinationPolicy => ({ allowOrigins: [first.origin, second.origin], allowPrivate: true });
  const credentials = {
    authorization: 'Bearer canary-authorization',
    cookie: 'sid=canary-cookie',
    'x-api-key': 'canary-api-key',
    'x-upstream-creds': 'canary-manifest-header',
  };
  const toolgateHeaders = { 'idempotency-key': 'idem-7', 'x-toolgate-request-id': 'req-7', 'content-type': 'application/json' };

  test('a redirect to another port of the same host is another origin: refused before connecting', async () => {
    const err = await assertBlocked(guardedFetch(redirect(first, `${forbidden.origin}/steal`), { headers: credentials }, allowed()), 'origin_not_allowed');
    assert.equal(err.hop, 1);
    assert.equal(forbidden.connections, 0);
    assert.equal(forbidden.requests.length, 0);
  });

  test('a redirect to a host off the list (localhost is not 127.0.0.1) is refused before connecting', async () => {
    const err = await assertBlocked(guardedFetch(redirect(first, `http://localhost:${forbidden.port}/steal`), {}, allowed()), 'origin_not_allowed');
    assert.equal(err.hop, 1);
    assert.equal(forbidden.connections, 0);
  });

  test('a 307 to a second allowed origin is followed with method and body, but no credential arrives there', async () => {
    const response = await guardedFetch(
      redirect(first, `${second.origin}/final`, 307),
      { method: 'POST', body: '{"a":1}', headers: { ...credentials, ...toolgateHeaders }, credentialHeaders: ['X-Upstream-Creds'] },
      allowed(),
    );
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { ok: true, at: '/final' });
    const atFirst = first.requests.at(-1);
    assert.equal(atFirst?.headers.authorization, 'Bearer canary-authorization'); // the first origin got them
    const received = second.requests.at(-1);
    assert.equal(received?.url, '/final');
    assert.equal(received?.method, 'POST');
    assert.equal(received?.body, '{"a":1}');
    assert.doesNotMatch(allValues(received), /canary/);
    assert.equal(received?.headers['idempotency-key'], 'idem-7');
    assert.equal(received?.headers['x-toolgate-request-id'], 'req-7');
  });

  test('a same-origin redirect keeps the credentials', async () => {
    const response = await guardedFetch(
      redirect(first, '/same', 308),
      { method: 'PUT', body: 'x', headers: { ...credentials, ...toolgateHeaders }, credentialHeaders: ['x-upstream-creds'] },
      allowed(),
    );
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    const received = first.requests.at(-1);
    assert.equal(received?.url, '/same');
    assert.equal(received?.method, 'PUT');
    assert.equal(received?.headers.authorization, 'Bearer canary-authorization');
    assert.equal(received?.headers['x-upstream-creds'], 'canary-manifest-header');
  });

  test('credentials dropped on the way to another origin stay dropped when a later hop comes back', async () => {
    const back = redirect(second, `${first.origin}/back`, 307);
    const response = await guardedFetch(
      redirect(first, back, 307),
      { method: 'POST', body: '{}', headers: credentials, credentialHeaders: ['x-upstream-creds'] },
      allowed(),
    );
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    const received = first.requests.at(-1);
    assert.equal(received?.url, '/back');
    assert.doesNotMatch(allValues(received), /canary/);
  });

  test('303 continues as a GET without body', async () => {
    const response = await guardedFetch(
      redirect(first, `${second.origin}/see-other`, 303),
      { method: 'POST', body: '{"a":1}', headers: toolgateHeaders },
      allowed(),
    );
    await response.arrayBuffer();
    const received = second.requests.at(-1);
    assert.equal(received?.url, '/see-other');
    assert.equal(received?.method, 'GET');
    assert.equal(received?.body, '');
    assert.equal(received?.headers['content-type'], undefined);
  });

  test('redirect loops stop after maxRedirects', async () => {
    const err = await assertBlocked(guardedFetch(`${first.origin}/loop`, {}, { ...allowed(), maxRedirects: 2 }), 'too_many_redirects');
    assert.equal(err.hop, 2);
  });

  test('a redirect hop to the cloud metadata address is refused and reported with its hop number', async () => {
    await assert.rejects(checkDestination('http://169.254.169.254/latest/meta-data/', { allowOrigins: ['http://169.254.169.254'], allowPrivate: true }, 1), {
      reason: 'address_blocked',
      hop: 1,
    });
  });

  test('the socket connects to the checked address: the host is resolved once and never by the system resolver', async () => {
    let calls = 0;
    // `pinned.test` does not exist in DNS: a second, unpinned lookup would fail the request.
    const resolve: HostResolver = async () => {
      calls += 1;
      return calls === 1 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '10.0.0.1', family: 4 }];
    };
    const before = second.requests.length;
    const response = await guardedFetch(
      `http://pinned.test:${second.port}/pinned`,
      {},
      { allowOrigins: [`http://pinned.test:${second.port}`], allowPrivate: true, resolve },
    );
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    assert.equal(calls, 1);
    assert.equal(second.requests.length, before + 1);
    assert.equal(second.requests.at(-1)?.headers.host, `pinned.test:${second.port}`);
  });
});

describe('destinations: the http adapter', () => {
  let first: Target;
  let second: Target;
  let forbidden: Target;
  before(async () => {
    first = await startTarget(redirector);
    second = await startTarget();
    forbidden = await startTarget();
  });
  after(async () => {
    await Promise.all([stop(first), stop(second), stop(forbidden)]);
  });

  const context = (): ToolContext => ({
    args: { n: 1 },
    idempotencyKey: 'idem-adapter',
    runAs: 'svc-test',
    requestId: 'req-adapter',
    tenant: 'acme',
    tool: 'probe',
    attempt: 1,
    signal: new AbortController().signal,
    deadline: new Date(Date.now() + 30_000),
  });
  const adapter = (url: string) => ({
    type: 'http' as const,
    url,
    method: 'POST' as const,
    timeoutMs: 5_000,
    // Manifest headers: credentials under any name, including one that does not look like auth.
    headers: { 'X-Upstream-Creds': 'canary-upstream', Authorization: 'Bearer canary-bearer' },
  });

  test('a redirect to the second origin in allow_hosts arrives without any manifest header', async () => {
    const egress = { allow_hosts: [second.origin], allow_private: true };
    const result = await callHttpTool(adapter(redirect(first, `${second.origin}/tool`, 307)), context(), true, egress);
    assert.deepEqual(result, { ok: true, at: '/tool' });
    assert.equal(first.requests.at(-1)?.headers['x-upstream-creds'], 'canary-upstream');
    const received = second.requests.at(-1);
    assert.equal(received?.method, 'POST');
    assert.deepEqual(JSON.parse(received?.body ?? 'null'), { tool: 'probe', args: { n: 1 }, requestId: 'req-adapter', tenant: 'acme' });
    assert.doesNotMatch(allValues(received), /canary/);
    assert.equal(received?.headers['idempotency-key'], 'idem-adapter');
    assert.equal(received?.headers['x-toolgate-tenant'], 'acme');
  });

  test('a same-origin redirect of the adapter keeps its manifest headers', async () => {
    const result = await callHttpTool(adapter(redirect(first, '/same-origin', 307)), context(), true, { allow_private: true });
    assert.deepEqual(result, { ok: true, at: '/same-origin' });
    assert.equal(first.requests.at(-1)?.headers['x-upstream-creds'], 'canary-upstream');
  });

  test('a redirect to another port, not in allow_hosts, is a rejection and nothing reaches it', async () => {
    await assert.rejects(
      callHttpTool(adapter(redirect(first, `${forbidden.origin}/tool`, 307)), context(), true, { allow_hosts: [second.origin], allow_private: true }),
      (e: unknown) => e instanceof ToolRejectedError && /origin .* is not allowed/.test(e.message),
    );
    assert.equal(forbidden.connections, 0);
  });
});
