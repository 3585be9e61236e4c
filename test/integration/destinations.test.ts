/**
 * Destination control on loopback only: every blocked destination is refused before a socket is
 * opened (the target server counts connections and must see none), and allowed hops connect only
 * to the address that was checked.
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
  hostAllowed,
  type DestinationPolicy,
  type HostResolver,
} from '../../src/egress/destinations.js';

interface Target {
  port: number;
  connections: number;
  requests: { url: string; headers: IncomingHttpHeaders; method: string }[];
  server: Server;
}

async function startTarget(host: string, handler?: (url: string, res: ServerResponse) => void): Promise<Target> {
  const target: Target = { port: 0, connections: 0, requests: [], server: undefined as unknown as Server };
  target.server = createServer((req, res) => {
    target.requests.push({ url: req.url ?? '', headers: req.headers, method: req.method ?? '' });
    req.resume();
    if (handler) handler(req.url ?? '', res);
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true }));
  });
  target.server.on('connection', () => {
    target.connections += 1;
  });
  await new Promise<void>((resolve) => target.server.listen(0, host, resolve));
  target.port = (target.server.address() as AddressInfo).port;
  return target;
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

describe('destinations: blocked before connecting', () => {
  let loop: Target;
  before(async () => {
    loop = await startTarget('127.0.0.1');
  });
  after(async () => {
    await stop(loop);
  });

  // The allowlist names every spelling, so the refusal below is the address check's alone.
  const policy = (): DestinationPolicy => ({ allowHosts: ['127.0.0.1', 'localhost', '::1', '::ffff:7f00:1', 'loop.test'] });

  const spellings = (port: number) => [
    `http://127.0.0.1:${port}/`,
    `http://2130706433:${port}/`, // decimal
    `http://0x7f000001:${port}/`, // hex, one part
    `http://0x7f.0.0.1:${port}/`, // hex, dotted
    `http://0177.0.0.1:${port}/`, // octal
    `http://127.1:${port}/`, // short form
    `http://[::ffff:127.0.0.1]:${port}/`, // IPv4-mapped IPv6
  ];

  test('loopback in decimal, hex, octal, short and IPv4-mapped forms is refused and never connected to', async () => {
    for (const url of spellings(loop.port)) {
      const err = await assertBlocked(guardedFetch(url, {}, policy()), 'address_blocked');
      assert.match(err.address ?? '', /^(127\.0\.0\.1|::ffff:7f00:1)$/, url);
    }
    assert.equal(loop.connections, 0);
  });

  test('a host name that resolves to loopback is refused: system resolver (localhost) and an injected one', async () => {
    await assertBlocked(guardedFetch(`http://localhost:${loop.port}/`, {}, policy()), 'address_blocked');
    const resolve: HostResolver = async () => [
      { address: '203.0.113.7', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ];
    await assertBlocked(guardedFetch(`http://loop.test:${loop.port}/`, {}, { ...policy(), resolve }), 'address_blocked');
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
    ];
    for (const host of literals) {
      const hostname = host.replace(/^\[|\]$/g, '');
      await assertBlocked(guardedFetch(`http://${host}/`, {}, { allowHosts: [hostname, new URL(`http://${host}/`).hostname] }), 'address_blocked');
    }
    assert.equal(loop.connections, 0);
  });

  test('a host that is not on the allowlist is refused, whatever it resolves to', async () => {
    await assertBlocked(guardedFetch(`http://127.0.0.1:${loop.port}/`, {}, { allowHosts: ['api.example.com'], allowPrivate: true }), 'host_not_allowed');
    await assertBlocked(guardedFetch('file:///etc/hostname', {}, { allowHosts: ['*'] }), 'scheme');
    assert.equal(loop.connections, 0);
  });

  test('unspecified and multicast stay blocked even with allow_private', () => {
    assert.equal(blockedRange('0.0.0.0', true), 'unspecified');
    assert.equal(blockedRange('ff02::1', true), 'multicast');
    assert.equal(blockedRange('127.0.0.1', true), null);
    assert.equal(blockedRange('93.184.216.34'), null);
    assert.equal(blockedRange('2606:4700::1111'), null);
    assert.equal(blockedRange('::ffff:8.8.8.8'), 'ipv4Mapped');
  });
});

describe('destinations: redirects and pinning', () => {
  let target: Target;
  let forbidden: Target;
  let redirector: Target;
  before(async () => {
    target = await startTarget('127.0.0.1');
    forbidden = await startTarget('127.0.0.1');
    redirector = await startTarget('127.0.0.1', (url, res) => {
      const to = new URL(url, 'http://x').searchParams.get('to') ?? '/';
      res.writeHead(url.startsWith('/303') ? 303 : 302, { location: to }).end();
    });
  });
  after(async () => {
    await Promise.all([stop(target), stop(forbidden), stop(redirector)]);
  });

  const allowed = (): DestinationPolicy => ({ allowHosts: ['127.0.0.1'], allowPrivate: true });

  test('a redirect from an allowed server to a host off the allowlist is refused before connecting', async () => {
    const before = forbidden.connections;
    const to = encodeURIComponent(`http://localhost:${forbidden.port}/steal`);
    const err = await assertBlocked(guardedFetch(`http://127.0.0.1:${redirector.port}/r?to=${to}`, {}, allowed()), 'host_not_allowed');
    assert.equal(err.hop, 1);
    assert.equal(forbidden.connections, before);
    assert.equal(forbidden.requests.length, 0);
  });

  test('a redirect hop to the cloud metadata address is refused and reported with its hop number', async () => {
    await assert.rejects(checkDestination('http://169.254.169.254/latest/meta-data/', { allowHosts: ['169.254.169.254'] }, 1), {
      reason: 'address_blocked',
      hop: 1,
    });
  });

  test('an allowed redirect is followed, re-checked, and credentials do not cross origins', async () => {
    const to = encodeURIComponent(`http://127.0.0.1:${target.port}/final`);
    const response = await guardedFetch(
      `http://127.0.0.1:${redirector.port}/303?to=${to}`,
      { method: 'POST', body: '{"a":1}', headers: { authorization: 'Bearer canary-token', 'content-type': 'application/json' } },
      allowed(),
    );
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { ok: true });
    const final = target.requests.at(-1);
    assert.equal(final?.url, '/final');
    assert.equal(final?.method, 'GET');
    assert.equal(final?.headers.authorization, undefined);
  });

  test('redirect loops stop after maxRedirects', async () => {
    const self = `http://127.0.0.1:${redirector.port}/r?to=${encodeURIComponent(`http://127.0.0.1:${redirector.port}/r`)}`;
    const err = await assertBlocked(guardedFetch(self, {}, { ...allowed(), maxRedirects: 2 }), 'too_many_redirects');
    assert.equal(err.hop, 2);
  });

  test('the socket connects to the checked address: the host is resolved once and never by the system resolver', async () => {
    let calls = 0;
    // `pinned.test` does not exist in DNS: a second, unpinned lookup would fail the request.
    const resolve: HostResolver = async () => {
      calls += 1;
      return calls === 1 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '10.0.0.1', family: 4 }];
    };
    const before = target.requests.length;
    const response = await guardedFetch(`http://pinned.test:${target.port}/pinned`, {}, { allowHosts: ['pinned.test'], allowPrivate: true, resolve });
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    assert.equal(calls, 1);
    assert.equal(target.requests.length, before + 1);
    assert.equal(target.requests.at(-1)?.headers.host, `pinned.test:${target.port}`);
  });
});

describe('destinations: allowlist matching', () => {
  test('exact hosts and *.suffix subdomains match; look-alikes do not', () => {
    const list = ['api.example.com', '*.tools.example.org'];
    assert.ok(hostAllowed('api.example.com', list));
    assert.ok(hostAllowed('API.Example.com.', list));
    assert.ok(hostAllowed('a.tools.example.org', list));
    assert.ok(hostAllowed('a.b.tools.example.org', list));
    assert.ok(!hostAllowed('tools.example.org', list));
    assert.ok(!hostAllowed('eviltools.example.org', list));
    assert.ok(!hostAllowed('api.example.com.evil.net', list));
    assert.ok(!hostAllowed('xapi.example.com', list));
  });
});
