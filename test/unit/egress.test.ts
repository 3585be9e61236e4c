/** Egress checks on tool results: tenant ownership at any depth, the size limit, and the combined filter. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  EgressConfigSchema,
  ResultTooLargeError,
  TenantMismatchError,
  assertResultSize,
  assertTenantOwnership,
  filterResult,
  findForeignTenant,
  resolveEgress,
} from '../../src/egress/index.js';
import { destinationPolicyFor } from '../../src/tools/http-adapter.js';

describe('tenant ownership', () => {
  test('a record of another tenant deep in the result is refused, naming the path', () => {
    const result = {
      page: 1,
      data: {
        rows: [
          { id: 1, tenant: 'acme' },
          { id: 2, owner: { tenant_id: 'globex' } },
        ],
      },
    };
    assert.throws(
      () => assertTenantOwnership(result, 'acme'),
      (e: unknown) => e instanceof TenantMismatchError && e.path === '$.data.rows[1].owner.tenant_id' && e.found === 'globex' && e.expected === 'acme',
    );
  });

  test('records of the requesting tenant, and results without tenant fields, pass', () => {
    assert.equal(findForeignTenant({ rows: [{ tenantId: 'acme' }, { tenant: 'acme', n: [1, 2] }] }, 'acme'), null);
    assert.equal(findForeignTenant(['a', 1, null, { x: { y: 'z' } }], 'acme'), null);
    assert.equal(findForeignTenant('plain text', 'acme'), null);
  });

  test('configured field names replace the defaults and odd keys are quoted in the path', () => {
    const result = { items: [{ 'org-id': 'globex', tenant: 'also-ignored' }] };
    assert.equal(findForeignTenant(result, 'acme', ['org-id'])?.path, '$.items[0]["org-id"]');
    assert.equal(findForeignTenant({ account: 7 }, 'acme', ['account'])?.found, '7');
  });
});

describe('result size', () => {
  test('a result over max_result_bytes is refused with its size; UTF-8 bytes count, not characters', () => {
    assert.equal(assertResultSize({ a: 'x' }, 100), 9);
    assert.throws(
      () => assertResultSize({ text: 'é'.repeat(60) }, 100),
      (e: unknown) => e instanceof ResultTooLargeError && e.bytes === 131 && e.limit === 100,
    );
  });
});

describe('filterResult', () => {
  test('size, then tenant, then redaction; the redaction counts are reported for the audit record', () => {
    const egress = EgressConfigSchema.parse({ redact: ['secrets'], max_result_bytes: 10_000, tenant_field: 'tenant' });
    const out = filterResult({ tenant: 'acme', note: 'key AKIAIOSFODNN7EXAMPLE, mail a@example.com' }, { tenant: 'acme', egress });
    assert.deepEqual(out.value, { tenant: 'acme', note: 'key [REDACTED:aws_access_key_id], mail a@example.com' });
    assert.deepEqual(out.redactions, { aws_access_key_id: 1 });
    assert.throws(() => filterResult({ tenant: 'globex' }, { tenant: 'acme', egress }), TenantMismatchError);
    assert.throws(() => filterResult({ blob: 'x'.repeat(20_000) }, { tenant: 'acme', egress }), ResultTooLargeError);
  });

  test('the egress block is validated: unknown rules and fields are refused with a message naming them', () => {
    const bad = EgressConfigSchema.safeParse({ redact: ['secretz'], max_result_bytes: -1, extra: 1 });
    assert.ok(!bad.success);
    const text = JSON.stringify(bad.error.issues);
    assert.match(text, /secretz/);
    assert.match(text, /max_result_bytes/);
    assert.match(text, /extra/);
  });
});

describe('allow_hosts: origins, not hosts', () => {
  test("origins are accepted and become the destination policy, after the adapter URL's own origin", () => {
    const egress = EgressConfigSchema.parse({
      allow_hosts: ['https://api.example.com', 'https://api.example.com:8443', 'https://*.example.org'],
      allow_private: true,
    });
    assert.deepEqual(resolveEgress(egress).destinations, {
      allowOrigins: ['https://api.example.com', 'https://api.example.com:8443', 'https://*.example.org'],
      allowPrivate: true,
      maxRedirects: undefined,
    });
    const adapter = { type: 'http' as const, url: 'http://127.0.0.1:8080/v1/call?x=1', method: 'POST' as const, timeoutMs: 1000, headers: {} };
    assert.deepEqual(destinationPolicyFor(adapter, egress).allowOrigins, [
      'http://127.0.0.1:8080',
      'https://api.example.com',
      'https://api.example.com:8443',
      'https://*.example.org',
    ]);
    assert.deepEqual(destinationPolicyFor({ ...adapter, url: 'https://tool.example.com/x' }).allowOrigins, ['https://tool.example.com']);
  });

  test('a legacy bare host is a load error naming the field and the expected form', () => {
    const bad = EgressConfigSchema.safeParse({ allow_hosts: ['https://ok.example.com', 'api.example.com'] });
    assert.ok(!bad.success);
    assert.equal(bad.error.issues.length, 1);
    const [issue] = bad.error.issues;
    assert.deepEqual(issue?.path, ['allow_hosts', 1]);
    assert.match(issue?.message ?? '', /"api\.example\.com" is a bare host, not an origin: write https:\/\/api\.example\.com /);
  });

  test('other schemes, paths and over-wide wildcards are load errors too', () => {
    for (const entry of ['ftp://files.example.com', 'https://api.example.com/v1', 'https://*.com', '*.example.com']) {
      assert.ok(!EgressConfigSchema.safeParse({ allow_hosts: [entry] }).success, entry);
    }
  });
});
