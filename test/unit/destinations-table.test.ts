/**
 * The destination guard as tables: every spelling of a loopback, private, link-local, metadata or
 * IPv4-carrying IPv6 address (as an address, as a URL host, as a DNS answer) with the verdict and
 * the reason; the origin grammar of `egress.allow_hosts`; and the redirect rules (downgrade,
 * method changes, credential stripping). No network: URL hosts here are literals or answered by
 * an injected resolver.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Headers } from 'undici';
import {
  DestinationBlockedError,
  InvalidOriginError,
  blockedRange,
  checkDestination,
  formatOrigin,
  isCredentialHeader,
  originAllowed,
  parseAllowedOrigin,
  redirectRequest,
  type HopRequest,
  type HostResolver,
} from '../../src/egress/destinations.js';

/** [address, expected range (null = reachable)] with the default policy (allow_private: false). */
const ADDRESSES: [string, string | null][] = [
  // IPv4
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['10.0.0.1', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.0.1', 'private'],
  ['169.254.169.254', 'metadata'],
  ['169.254.170.2', 'metadata'],
  ['100.100.100.200', 'metadata'],
  ['169.254.1.1', 'linkLocal'],
  ['100.64.0.1', 'carrierGradeNat'],
  ['100.127.255.255', 'carrierGradeNat'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['255.255.255.255', 'broadcast'],
  ['240.0.0.1', 'reserved'],
  ['192.0.0.8', 'ietfProtocol'],
  ['198.18.0.1', 'benchmarking'],
  ['198.19.255.255', 'benchmarking'],
  ['192.0.2.1', 'documentation'],
  ['198.51.100.1', 'documentation'],
  ['203.0.113.1', 'documentation'],
  ['172.32.0.1', null],
  ['100.128.0.1', null],
  ['8.8.8.8', null],
  ['93.184.216.34', null],
  // IPv6
  ['::1', 'loopback'],
  ['0000:0000:0000:0000:0000:0000:0000:0001', 'loopback'],
  ['0::0:1', 'loopback'],
  ['::', 'unspecified'],
  ['::ffff:127.0.0.1', 'ipv4Mapped(loopback)'],
  ['::ffff:7f00:1', 'ipv4Mapped(loopback)'],
  ['0:0:0:0:0:ffff:127.0.0.1', 'ipv4Mapped(loopback)'],
  ['::FFFF:A9FE:A9FE', 'ipv4Mapped(metadata)'],
  ['::ffff:10.0.0.1', 'ipv4Mapped(private)'],
  ['::ffff:8.8.8.8', 'ipv4Mapped'],
  ['::ffff:0:7f00:1', 'ipv4Translated(loopback)'],
  ['::127.0.0.1', 'ipv4Compatible(loopback)'],
  ['::7f00:1', 'ipv4Compatible(loopback)'],
  ['::a9fe:a9fe', 'ipv4Compatible(metadata)'],
  ['::8.8.8.8', 'ipv4Compatible'],
  ['64:ff9b::127.0.0.1', 'nat64(loopback)'],
  ['64:ff9b::7f00:1', 'nat64(loopback)'],
  ['64:ff9b::a00:1', 'nat64(private)'],
  ['64:ff9b::a9fe:a9fe', 'nat64(metadata)'],
  ['64:ff9b::808:808', 'nat64'],
  ['64:ff9b:1::7f00:1', 'nat64Local(loopback)'],
  ['2002:7f00:1::', '6to4(loopback)'],
  ['2002:a9fe:a9fe::1', '6to4(metadata)'],
  ['2002:c0a8:101::', '6to4(private)'],
  ['2002:808:808::1', '6to4'],
  // Teredo: server 65.54.227.120, client 127.0.0.1 stored XOR-ed as 80ff:fffe.
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'teredo(loopback)'],
  ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'teredo'], // client 8.8.8.8
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo(documentation)'], // client 192.0.2.45
  ['fc00::1', 'uniqueLocal'],
  ['fd12:3456:789a::1', 'uniqueLocal'],
  ['fd00:ec2::254', 'metadata'],
  ['fe80::1', 'linkLocal'],
  ['febf:ffff::1', 'linkLocal'],
  ['fec0::1', 'siteLocal'],
  ['ff02::1', 'multicast'],
  ['ff0e::1', 'multicast'],
  ['100::1', 'discard'],
  ['2001:db8::1', 'documentation'],
  ['4000::1', 'unassigned'],
  ['fe80::1%eth0', 'zoneId'],
  ['::1%lo', 'zoneId'],
  ['2606:4700:4700::1111', null],
  ['2a00:1450:4001:80e::200e', null],
  // Not plain IP addresses (a resolver that answers these is refused, never reinterpreted).
  ['0x7f.1', 'invalid'],
  ['2130706433', 'invalid'],
  ['localhost', 'invalid'],
];

/** With allow_private: private space opens, the always-blocked ranges and carried metadata do not. */
const ADDRESSES_ALLOW_PRIVATE: [string, string | null][] = [
  ['127.0.0.1', null],
  ['10.0.0.1', null],
  ['fc00::1', null],
  ['::ffff:8.8.8.8', null],
  ['64:ff9b::7f00:1', null],
  ['0.0.0.0', 'unspecified'],
  ['::', 'unspecified'],
  ['255.255.255.255', 'broadcast'],
  ['ff02::1', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['100::1', 'discard'],
  ['169.254.169.254', 'metadata'],
  ['100.100.100.200', 'metadata'],
  ['fd00:ec2::254', 'metadata'],
  ['::ffff:169.254.169.254', 'ipv4Mapped(metadata)'],
  ['64:ff9b::a9fe:a9fe', 'nat64(metadata)'],
  ['2002:a9fe:a9fe::', '6to4(metadata)'],
  ['64:ff9b::0.0.0.0', 'nat64(unspecified)'],
  ['fe80::1%eth0', 'zoneId'],
];

describe('address table', () => {
  test(`${ADDRESSES.length} addresses classified with the default policy`, () => {
    assert.ok(ADDRESSES.length >= 40);
    for (const [address, expected] of ADDRESSES) assert.equal(blockedRange(address), expected, address);
  });

  test(`${ADDRESSES_ALLOW_PRIVATE.length} addresses classified with allow_private`, () => {
    for (const [address, expected] of ADDRESSES_ALLOW_PRIVATE) assert.equal(blockedRange(address, true), expected, address);
  });
});

/**
 * [URL as written, the address it must be refused at, or the reason when it is refused earlier].
 * The policy allows the URL's own origin, so the verdict is the address check's alone.
 */
const URL_SPELLINGS: [string, { address: string } | { reason: DestinationBlockedError['reason'] }][] = [
  ['http://127.0.0.1/', { address: '127.0.0.1' }],
  ['http://2130706433/', { address: '127.0.0.1' }],
  ['http://0x7f000001/', { address: '127.0.0.1' }],
  ['http://0x7f.1/', { address: '127.0.0.1' }],
  ['http://0x7f.0.0.1/', { address: '127.0.0.1' }],
  ['http://0177.0.0.1/', { address: '127.0.0.1' }],
  ['http://017700000001/', { address: '127.0.0.1' }],
  ['http://127.1/', { address: '127.0.0.1' }],
  ['http://127.0.0.1./', { address: '127.0.0.1' }],
  ['http://%31%32%37.0.0.1/', { address: '127.0.0.1' }],
  ['http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/', { address: '127.0.0.1' }], // full-width digits
  ['http://0/', { address: '0.0.0.0' }],
  ['http://169.254.169.254/latest/meta-data/', { address: '169.254.169.254' }],
  ['http://0251.0376.0251.0376/', { address: '169.254.169.254' }],
  ['http://2852039166/', { address: '169.254.169.254' }],
  ['http://100.100.100.200/', { address: '100.100.100.200' }],
  ['http://[::1]/', { address: '::1' }],
  ['http://[0000::1]/', { address: '::1' }],
  ['http://[::]/', { address: '::' }],
  ['http://[::ffff:127.0.0.1]/', { address: '::ffff:7f00:1' }],
  ['http://[::ffff:7f00:1]/', { address: '::ffff:7f00:1' }],
  ['http://[0:0:0:0:0:ffff:127.0.0.1]/', { address: '::ffff:7f00:1' }],
  ['http://[::FFFF:169.254.169.254]/', { address: '::ffff:a9fe:a9fe' }],
  ['http://[::127.0.0.1]/', { address: '::7f00:1' }],
  ['http://[64:ff9b::127.0.0.1]/', { address: '64:ff9b::7f00:1' }],
  ['http://[2002:7f00:1::]/', { address: '2002:7f00:1::' }],
  ['http://[fd00:ec2::254]/', { address: 'fd00:ec2::254' }],
  ['http://[fe80::1]/', { address: 'fe80::1' }],
  ['http://[::1%25lo]/', { reason: 'invalid_url' }],
  ['http://[fe80::1%25eth0]/', { reason: 'invalid_url' }],
  ['http://[::1%lo]/', { reason: 'invalid_url' }],
  ['http://127.0.0.1%00.evil.example/', { reason: 'invalid_url' }],
  ['file:///etc/passwd', { reason: 'scheme' }],
  ['gopher://127.0.0.1:6379/_INFO', { reason: 'scheme' }],
];

async function refusal(promise: Promise<unknown>): Promise<DestinationBlockedError> {
  const err = await promise.then(
    () => assert.fail('expected the destination to be blocked'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof DestinationBlockedError, `expected DestinationBlockedError, got ${String(err)}`);
  return err;
}

function ownOrigin(spelling: string): string[] {
  try {
    const url = new URL(spelling);
    return url.protocol === 'http:' || url.protocol === 'https:' ? [url.origin] : [];
  } catch {
    return [];
  }
}

describe('URL host spellings', () => {
  test(`${URL_SPELLINGS.length} spellings are refused, at the normalised address`, async () => {
    for (const [spelling, expected] of URL_SPELLINGS) {
      // A resolver that answers a public address: any refusal below is not DNS's doing.
      const resolve: HostResolver = async () => [{ address: '93.184.216.34', family: 4 }];
      const err = await refusal(checkDestination(spelling, { allowOrigins: ownOrigin(spelling), resolve }));
      if ('address' in expected) {
        assert.equal(err.reason, 'address_blocked', `${spelling}: ${err.message}`);
        assert.equal(err.address, expected.address, spelling);
      } else {
        assert.equal(err.reason, expected.reason, `${spelling}: ${err.message}`);
      }
    }
  });

  test('an allowlist entry written in one spelling covers the others, and they are still refused by address', async () => {
    const err = await refusal(checkDestination('http://2130706433:8080/', { allowOrigins: ['http://127.0.0.1:8080'] }));
    assert.equal(err.reason, 'address_blocked');
    const v6 = await refusal(checkDestination('http://[::ffff:127.0.0.1]/', { allowOrigins: ['http://[::ffff:7f00:1]'] }));
    assert.equal(v6.reason, 'address_blocked');
    // With allow_private the same loopback passes: the refusal above was the address rule.
    const ok = await checkDestination('http://2130706433:8080/', { allowOrigins: ['http://127.0.0.1:8080'], allowPrivate: true });
    assert.deepEqual(ok.addresses, [{ address: '127.0.0.1', family: 4 }]);
  });
});

/** [what a name resolves to, the address that refuses it (null = allowed)]. */
const DNS_ANSWERS: [string, string[], string | null][] = [
  ['localhost', ['127.0.0.1', '::1'], '127.0.0.1'],
  ['v6-localhost', ['::1'], '::1'],
  ['mapped-metadata', ['::ffff:169.254.169.254'], '::ffff:169.254.169.254'],
  ['nat64-metadata', ['64:ff9b::a9fe:a9fe'], '64:ff9b::a9fe:a9fe'],
  ['mixed-public-first', ['93.184.216.34', '10.0.0.7'], '10.0.0.7'],
  ['mixed-v6-private', ['2606:4700:4700::1111', 'fd00::7'], 'fd00::7'],
  ['zoned', ['fe80::1%eth0'], 'fe80::1%eth0'],
  ['odd-answer', ['0x7f.1'], '0x7f.1'],
  ['public', ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'], null],
];

describe('names by what they resolve to', () => {
  test(`${DNS_ANSWERS.length} DNS answers: one blocked address refuses the name`, async () => {
    for (const [name, answers, blockedAt] of DNS_ANSWERS) {
      const resolve: HostResolver = async () => answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
      const policy = { allowOrigins: [`https://${name}.example`], resolve };
      if (blockedAt === null) {
        const ok = await checkDestination(`https://${name}.example/`, policy);
        assert.equal(ok.addresses.length, answers.length);
        continue;
      }
      const err = await refusal(checkDestination(`https://${name}.example/`, policy));
      assert.equal(err.reason, 'address_blocked', name);
      assert.equal(err.address, blockedAt, name);
    }
  });
});

describe('allowed origins', () => {
  test('entries are origins: scheme required, port defaults to the scheme, hosts normalised like request hosts', () => {
    const cases: [string, string][] = [
      ['https://api.example.com', 'https://api.example.com:443'],
      ['https://api.example.com:443', 'https://api.example.com:443'],
      ['https://api.example.com:8443', 'https://api.example.com:8443'],
      ['HTTPS://API.Example.COM/', 'https://api.example.com:443'],
      ['http://api.example.com', 'http://api.example.com:80'],
      ['https://*.example.com', 'https://*.example.com:443'],
      ['https://*.b\u00fccher.example:8443', 'https://*.xn--bcher-kva.example:8443'],
      ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
      ['http://2130706433:8080', 'http://127.0.0.1:8080'],
      ['https://[0:0::1]:8443', 'https://[::1]:8443'],
    ];
    for (const [entry, expected] of cases) assert.equal(formatOrigin(parseAllowedOrigin(entry)), expected, entry);
  });

  test('bare hosts, other schemes, paths, user info, wide wildcards and port 0 are refused with the expected form', () => {
    const bad: [string, RegExp][] = [
      ['api.example.com', /bare host.*https:\/\/api\.example\.com/],
      ['*.example.com', /bare host.*https:\/\/\*\.example\.com/],
      ['127.0.0.1:8080', /bare host/],
      ['ftp://files.example.com', /only http and https/],
      ['https://api.example.com/v1', /not an origin/],
      ['https://api.example.com?x=1', /not an origin/],
      ['https://user:pw@api.example.com', /not an origin/],
      ['https://', /not an origin/],
      ['https://*.com', /wildcard/],
      ['https://*', /wildcard|not a valid origin/],
      ['https://a.*.example.com', /wildcard/],
      ['https://*.*.example.com', /wildcard/],
      ['https://api.example.com:0', /port 0/],
      ['https://api.example.com:99999', /not a valid origin/],
    ];
    for (const [entry, message] of bad) {
      assert.throws(
        () => parseAllowedOrigin(entry),
        (e: unknown) => e instanceof InvalidOriginError && message.test(e.message),
        entry,
      );
    }
  });

  test('scheme, host and port must all match; a wildcard matches strict subdomains only', () => {
    const allowed = ['https://api.example.com', 'https://*.tools.example.org', 'http://127.0.0.1:8080'].map(parseAllowedOrigin);
    const cases: [string, boolean][] = [
      ['https://api.example.com/x', true],
      ['https://api.example.com:443/', true],
      ['https://API.Example.com./', true],
      ['http://api.example.com/', false], // scheme
      ['https://api.example.com:8443/', false], // port
      ['https://evil.api.example.com/', false],
      ['https://api.example.com.evil.net/', false],
      ['https://xapi.example.com/', false],
      ['https://a.tools.example.org/', true],
      ['https://a.b.tools.example.org/', true],
      ['https://tools.example.org/', false],
      ['https://eviltools.example.org/', false],
      ['https://a.tools.example.org:8443/', false],
      ['http://a.tools.example.org/', false],
      ['http://127.0.0.1:8080/', true],
      ['http://127.0.0.1:8081/', false], // same host, other port
      ['http://127.0.0.1/', false],
      ['https://127.0.0.1:8080/', false],
    ];
    for (const [url, expected] of cases) assert.equal(originAllowed(new URL(url), allowed), expected, url);
  });

  test('an invalid entry in a programmatic policy refuses the call instead of being ignored', async () => {
    const err = await refusal(checkDestination('https://api.example.com/', { allowOrigins: ['api.example.com'] }));
    assert.equal(err.reason, 'invalid_policy');
  });
});

describe('redirect rules', () => {
  const manifestHeaders = { 'X-Upstream-Creds': 'canary-custom', Authorization: 'Bearer canary-auth', 'X-Api-Key': 'canary-key' };
  const request = (url: string, method = 'POST', body: string | null = '{"a":1}'): HopRequest => ({
    url: new URL(url),
    method,
    body,
    headers: new Headers({
      ...manifestHeaders,
      cookie: 'sid=canary-cookie',
      'proxy-authorization': 'Basic canary-proxy',
      'x-auth-token': 'canary-auth-token',
      'x-service-secret': 'canary-secret',
      'x-tenant-key': 'canary-tenant-key',
      'content-type': 'application/json',
      accept: 'application/json',
      'idempotency-key': 'idem-1',
      'x-toolgate-request-id': 'req-1',
      'x-toolgate-tenant': 'acme',
    }),
  });
  const options = { firstOrigin: 'https://api.example.com', credentialHeaders: Object.keys(manifestHeaders), hop: 1 };
  const KEPT = ['accept', 'content-type', 'idempotency-key', 'x-toolgate-request-id', 'x-toolgate-tenant'];

  test('https to http is never followed, even to an origin the policy would allow', () => {
    for (const location of ['http://api.example.com/next', 'http://other.example.com/']) {
      assert.throws(
        () => redirectRequest(request('https://api.example.com/start'), 302, location, options),
        (e: unknown) => e instanceof DestinationBlockedError && e.reason === 'downgrade' && e.hop === 1,
      );
    }
    // http to https is an upgrade: followed (subject to the origin check of the next hop).
    const up = redirectRequest(request('http://api.example.com/start'), 302, 'https://api.example.com/', { ...options, firstOrigin: 'http://api.example.com' });
    assert.equal(up.url.protocol, 'https:');
  });

  test('a hop to another origin loses the manifest headers and anything auth-like; toolgate headers stay', () => {
    for (const location of ['https://other.example.com/x', 'https://api.example.com:8443/x', 'https://sub.api.example.com/x']) {
      const next = redirectRequest(request('https://api.example.com/start'), 307, location, options);
      assert.deepEqual([...next.headers.keys()].sort(), KEPT, location);
      assert.equal(next.method, 'POST');
      assert.equal(next.body, '{"a":1}');
    }
  });

  test('a same-origin hop keeps every header; a relative location resolves against the current URL', () => {
    const next = redirectRequest(request('https://api.example.com/start'), 308, '/moved', options);
    assert.equal(next.url.href, 'https://api.example.com/moved');
    assert.equal(next.headers.get('x-upstream-creds'), 'canary-custom');
    assert.equal(next.headers.get('authorization'), 'Bearer canary-auth');
    assert.equal(next.headers.get('cookie'), 'sid=canary-cookie');
    assert.equal(next.method, 'POST');
  });

  test('credentials stripped on the way out do not come back when a later hop returns to the first origin', () => {
    const away = redirectRequest(request('https://api.example.com/start'), 307, 'https://other.example.com/', options);
    const back = redirectRequest(away, 307, 'https://api.example.com/again', { ...options, hop: 2 });
    assert.deepEqual([...back.headers.keys()].sort(), KEPT);
  });

  test('303 becomes GET without body or body headers; 301/302 after POST too; 307/308 keep method and body', () => {
    const see = redirectRequest(request('https://api.example.com/start', 'PUT'), 303, '/result', options);
    assert.equal(see.method, 'GET');
    assert.equal(see.body, null);
    assert.equal(see.headers.get('content-type'), null);
    const head = redirectRequest(request('https://api.example.com/start', 'HEAD', null), 303, '/result', options);
    assert.equal(head.method, 'HEAD');
    assert.equal(redirectRequest(request('https://api.example.com/start'), 302, '/r', options).method, 'GET');
    assert.equal(redirectRequest(request('https://api.example.com/start', 'DELETE'), 301, '/r', options).method, 'DELETE');
    for (const status of [307, 308]) {
      const kept = redirectRequest(request('https://api.example.com/start', 'PATCH', '{"b":2}'), status, '/r', options);
      assert.equal(kept.method, 'PATCH');
      assert.equal(kept.body, '{"b":2}');
      assert.equal(kept.headers.get('content-type'), 'application/json');
    }
  });

  test('an unparsable location is refused', () => {
    assert.throws(
      () => redirectRequest(request('https://api.example.com/start'), 302, 'http://[::1%25lo]/', options),
      (e: unknown) => e instanceof DestinationBlockedError && e.reason === 'invalid_url',
    );
  });

  test('which header names count as credentials', () => {
    const cases: [string, boolean][] = [
      ['Authorization', true],
      ['Proxy-Authorization', true],
      ['Cookie', true],
      ['X-Api-Key', true],
      ['api-key', true],
      ['apikey', true],
      ['X-Auth-Token', true],
      ['X-Amz-Security-Token', true],
      ['X-Client-Secret', true],
      ['X-Tenant-Key', true],
      ['X-Authentication', true],
      ['X-Upstream-Creds', false], // not auth-like by name: stripped only because it is a manifest header
      ['Idempotency-Key', false],
      ['X-Toolgate-Request-Id', false],
      ['Content-Type', false],
      ['Accept', false],
      ['Keep-Alive', false],
      ['X-Keyboard-Layout', false],
    ];
    for (const [name, expected] of cases) assert.equal(isCredentialHeader(name), expected, name);
    assert.equal(isCredentialHeader('X-Upstream-Creds', ['x-upstream-creds']), true);
    // A manifest header wins over the toolgate exemption: the manifest may put anything there.
    assert.equal(isCredentialHeader('X-Toolgate-Upstream-Auth', ['X-Toolgate-Upstream-Auth']), true);
  });
});
