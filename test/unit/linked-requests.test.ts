/**
 * The pure parts of linked requests (src/api/linked.ts, src/cli/request-commands.ts): the new
 * request's id (shortened with a hash past 128 characters), the override and rollback requests as
 * built from the original, which earlier linked request blocks another, the `{ reason }` body, and
 * the CLI's call of the approval API and its one-line answer.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LinkBodySchema, blocksAnother, linkedRequestId, overrideRequest, rollbackRequest } from '../../src/api/linked.js';
import { describeLinkedAnswer, requestLinked } from '../../src/cli/request-commands.js';
import { IDENTIFIER_PATTERN, ToolRequestSchema, formatIssues, type RequestLink, type ToolRequest } from '../../src/shared/index.js';

const original: ToolRequest = {
  requestId: 'deploy-42',
  actor: { id: 'deploy-bot', type: 'agent', roles: ['deployer'] },
  onBehalfOf: [{ id: 'maria', type: 'human' }],
  tenant: 'acme',
  environment: 'prod',
  tool: 'deploy_service',
  args: { service: 'web', frozen: true },
  reason: 'ship the fix',
  provenance: { untrusted: { 'args.service': ['web_page'] } },
};

const link = (kind: 'override' | 'rollback'): RequestLink => ({
  kind,
  requestId: 'deploy-42',
  tool: 'deploy_service',
  by: { id: 'sam', groups: ['sre-oncall'] },
  reason: 'outage',
});

describe('linked request ids', () => {
  test('are <original>.<kind>-<n>', () => {
    assert.equal(linkedRequestId('deploy-42', 'override', 1), 'deploy-42.override-1');
    assert.equal(linkedRequestId('deploy-42', 'rollback', 3), 'deploy-42.rollback-3');
  });

  test('past 128 characters, shorten the original and keep it distinct with a hash', () => {
    const long = `a${'b'.repeat(126)}`; // 127 characters: a valid request id
    const id = linkedRequestId(long, 'override', 12);
    assert.equal(id.length, 128);
    assert.match(id, IDENTIFIER_PATTERN);
    assert.match(id, /^ab+-[0-9a-f]{8}\.override-12$/);
    // Two originals that share the kept prefix still get different ids.
    const other = `a${'b'.repeat(125)}c`;
    assert.notEqual(linkedRequestId(other, 'override', 12), id);
    assert.equal(linkedRequestId(long, 'override', 12), id, 'the same original and n give the same id');
    // Exactly 128 is not shortened.
    const fits = 'x'.repeat(128 - '.override-1'.length);
    assert.equal(linkedRequestId(fits, 'override', 1), `${fits}.override-1`);
  });
});

describe('the requests an override and a rollback start', () => {
  test('an override is the original call (actor, chain, args, reason, provenance) with a new id and the link', () => {
    const built = overrideRequest(original, 'deploy-42.override-1', link('override'));
    assert.deepEqual(built, { ...original, requestId: 'deploy-42.override-1', link: link('override') });
    assert.equal(ToolRequestSchema.safeParse(built).success, true);
  });

  test("an override of an override links to the request it overrides, not to the original's link", () => {
    const earlier = overrideRequest(original, 'deploy-42.override-1', link('override'));
    const again = overrideRequest(earlier, 'deploy-42.override-1.override-1', { ...link('override'), requestId: 'deploy-42.override-1' });
    assert.equal(again.link?.requestId, 'deploy-42.override-1');
  });

  test('a rollback is asked by the person (human, roles = groups) for the undo tool, in the original tenant and environment', () => {
    const built = rollbackRequest(
      original,
      'deploy-42.rollback-1',
      { id: 'sam', tenant: 'acme', groups: ['sre-oncall', 'ops'] },
      { tool: 'rollback_service', args: { service: 'web' } },
      link('rollback'),
    );
    assert.deepEqual(built, {
      requestId: 'deploy-42.rollback-1',
      actor: { id: 'sam', type: 'human', roles: ['sre-oncall', 'ops'] },
      tenant: 'acme',
      environment: 'prod',
      tool: 'rollback_service',
      args: { service: 'web' },
      link: link('rollback'),
    });
    assert.equal(built.onBehalfOf, undefined, 'nobody else is behind a rollback');
    assert.equal(ToolRequestSchema.safeParse(built).success, true);
  });
});

describe('one linked request of a kind at a time', () => {
  test('a running or completed one blocks another; one that ended otherwise does not', () => {
    const of = (running: boolean, state?: string) => ({ requestId: 'x', kind: 'override' as const, running, ...(state ? { state } : {}) });
    assert.equal(blocksAnother(of(true, 'pending_approval')), true);
    assert.equal(blocksAnother(of(true)), true);
    assert.equal(blocksAnother(of(false, 'completed')), true);
    for (const ended of ['denied', 'rejected', 'expired', 'failed']) assert.equal(blocksAnother(of(false, ended)), false, ended);
  });
});

describe('the { reason } body', () => {
  const fieldsOf = (body: unknown) => {
    const parsed = LinkBodySchema.safeParse(body);
    return parsed.success ? [] : formatIssues(parsed.error).map((issue) => issue.split(':')[0]);
  };
  test('needs a reason of 1-2000 characters and nothing else', () => {
    assert.deepEqual(fieldsOf({ reason: 'outage' }), []);
    assert.deepEqual(fieldsOf({}), ['reason']);
    assert.deepEqual(fieldsOf({ reason: '   ' }), ['reason']);
    assert.deepEqual(fieldsOf({ reason: 'x'.repeat(2001) }), ['reason']);
    assert.deepEqual(fieldsOf({ reason: 42 }), ['reason']);
    assert.deepEqual(fieldsOf({ reason: 'ok', by: 'someone-else' }), ['(root)']);
    assert.equal(LinkBodySchema.parse({ reason: '  trimmed  ' }).reason, 'trimmed');
  });
});

describe('toolgate request override|rollback', () => {
  test('posts the reason with the bearer token and reads the 202', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const fetch = (async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      return new Response(
        JSON.stringify({ requestId: 'r1.override-1', state: 'evaluating', statusUrl: '/v1/approvals/r1.override-1', link: { kind: 'override' } }),
        {
          status: 202,
        },
      );
    }) as typeof globalThis.fetch;
    const answer = await requestLinked('override', 'r1', { reason: 'outage', url: 'http://api.test/', token: 'tok', fetch });
    assert.equal(calls[0]?.url, 'http://api.test/v1/approvals/r1/override');
    assert.equal(calls[0]?.init.method, 'POST');
    assert.equal((calls[0]?.init.headers as Record<string, string>).authorization, 'Bearer tok');
    assert.equal(typeof calls[0]?.init.body, 'string');
    assert.deepEqual(JSON.parse(calls[0]?.init.body as string), { reason: 'outage' });
    assert.deepEqual(answer, {
      ok: true,
      requestId: 'r1.override-1',
      state: 'evaluating',
      statusUrl: '/v1/approvals/r1.override-1',
      link: { kind: 'override' },
    });
    assert.equal(
      describeLinkedAnswer('override', 'r1', answer, 'http://api.test/'),
      'override of r1 requested: r1.override-1 (evaluating); follow it at http://api.test/v1/approvals/r1.override-1',
    );
  });

  test('an error answer keeps status, code and the blocking request id', async () => {
    const fetch = (async () =>
      new Response(JSON.stringify({ error: { code: 'already_linked', message: 'already has one', requestId: 'r1.rollback-1' } }), {
        status: 409,
      })) as typeof globalThis.fetch;
    const answer = await requestLinked('rollback', 'r1', { reason: 'x', url: 'http://api.test', token: 't', fetch });
    assert.deepEqual(answer, { ok: false, status: 409, code: 'already_linked', message: 'already has one', requestId: 'r1.rollback-1' });
    assert.equal(describeLinkedAnswer('rollback', 'r1', answer, 'http://api.test'), 'rollback refused (409 already_linked): already has one');
  });

  test('an unreachable API is said so', async () => {
    const fetch = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof globalThis.fetch;
    const answer = await requestLinked('override', 'r1', { reason: 'x', url: 'http://127.0.0.1:1', token: 't', fetch });
    assert.equal(answer.ok, false);
    assert.equal(!answer.ok && answer.code, 'unreachable');
  });
});
