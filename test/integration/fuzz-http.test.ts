/**
 * Fuzzing the HTTP edges on a real Temporal dev server: thousands of mutated bodies (JSON values,
 * raw and bit-flipped bytes, wrong content types, oversize) and odd path parameters against
 * `POST /v1/approvals/:id/decision` and the front door, `POST /v1/tool-requests` (whose valid body
 * restates the agent token's identity, so mutations also change who the body claims to be). No
 * 5xx, no unhandled rejection, every 4xx is `{ error: { code, message } }`, a 400 names the field
 * at fault, and so does a 403 for an identity the token does not carry.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import fc from 'fast-check';
import { startGateway, startTemporal, type GatewayEnv } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';

const POLICY = policy()
  .tool('read_kb')
  .codeTool('read_kb', { runAs: 'svc-kb', args: argsOf({ query: 'string' }, { required: ['query'] }) })
  .yaml();
const RUNS_PER_ENDPOINT = 1_500;
const CONCURRENCY = 32;

let env: TestWorkflowEnvironment;
let gw: GatewayEnv;
let agentToken: string;
let approverToken: string;
const unhandled: unknown[] = [];
const trap = (reason: unknown) => void unhandled.push(reason);

before(async () => {
  process.on('unhandledRejection', trap);
  env = await startTemporal();
  gw = await startGateway(env, {
    taskQueue: `fuzz-http-${randomUUID()}`,
    policy: POLICY,
    tools: { read_kb: async () => ({ articles: [] }) },
  });
  agentToken = await gw.agentToken({ sub: 'triage-bot', tenant: 'acme', roles: ['agent_runtime'], environment: 'production' });
  approverToken = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
});

after(async () => {
  process.off('unhandledRejection', trap);
  await gw?.close();
  await env?.teardown();
});

type Body = { contentType?: string; body?: string | Buffer };

const json = (value: unknown): Body => ({ contentType: 'application/json', body: JSON.stringify(value) });

/** Mutations of a valid body: wrong values, missing and extra fields, odd JSON text, raw bytes, other content types, oversize. */
function mutatedBody(valid: Record<string, unknown>): fc.Arbitrary<Body> {
  const keys = Object.keys(valid);
  const odd = fc.oneof(
    fc.constantFrom<unknown>(null, true, 0, -1, 1e308, '', 'NaN', '1', [], {}, { __proto__: { isAdmin: true } }, 'x'.repeat(3000)),
    fc.jsonValue({ maxDepth: 3 }),
    fc.string({ unit: 'grapheme', maxLength: 30 }),
    fc.integer({ min: 60, max: 2_000 }).map((depth) => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`) as unknown),
  );
  return fc.oneof(
    fc.tuple(fc.constantFrom(...keys), odd).map(([key, value]) => json({ ...valid, [key]: value })),
    fc.constantFrom(...keys).map((key) => json(Object.fromEntries(Object.entries(valid).filter(([k]) => k !== key)))),
    fc.tuple(fc.constantFrom('__proto__', 'constructor', 'prototype', 'extra', 'isAdmin'), odd).map(([key, value]) => ({
      contentType: 'application/json',
      body: `{"${key}":${JSON.stringify(value) ?? 'null'},${JSON.stringify(valid).slice(1)}`,
    })),
    fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e999', 'undefined', "'x'", '0x10').map((token) => ({
      contentType: 'application/json',
      body: JSON.stringify(valid).replace(/:[^,}]+/, `:${token}`),
    })),
    fc.nat().map((cut) => {
      const text = JSON.stringify(valid);
      return { contentType: 'application/json', body: text.slice(0, cut % text.length) };
    }),
    fc.array(fc.nat(), { minLength: 1, maxLength: 6 }).map((flips) => {
      const bytes = Buffer.from(JSON.stringify(valid));
      for (const flip of flips) bytes[flip % bytes.length] = (bytes[flip % bytes.length] as number) ^ (1 << (flip % 8));
      return { contentType: 'application/json', body: bytes };
    }),
    fc.tuple(fc.constantFrom(...keys), fc.integer({ min: 1_000, max: 140_000 })).map(([key, depth]) => ({
      contentType: 'application/json',
      body: `{"${key}":${'['.repeat(depth)}${']'.repeat(depth)},${JSON.stringify(valid).slice(1)}`,
    })),
    fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ contentType: 'application/json', body: Buffer.from(bytes) })),
    fc
      .constantFrom(
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/xml',
        'application/json; charset=latin1',
        'application/json; charset=utf-16',
        undefined,
      )
      .map((contentType) => ({ ...(contentType ? { contentType } : {}), body: JSON.stringify(valid) })),
    fc.constantFrom('[]', '"string"', '42', 'null', 'true', '{}', '[{}]').map((body) => ({ contentType: 'application/json', body })),
    fc.integer({ min: 300_000, max: 2_000_000 }).map((size) => json({ ...valid, reason: 'A'.repeat(size) })),
    fc.constant(json(valid)),
  );
}

/** The fields a 403 identity_mismatch may name: the identity a body can only restate. */
const IDENTITY_FIELDS = ['actor.id', 'actor.type', 'actor.roles', 'tenant', 'environment', 'onBehalfOf'];

const PATH_IDS = [
  'missing-request',
  '%00',
  '..%2F..%2Fetc',
  '%E0%A4%A',
  'a'.repeat(5000),
  '%F0%9F%92%A9',
  'a%20b',
  '__proto__',
  'constructor',
  '%2e%2e',
  '-leading',
];

type Shot = { path: string; contentType?: string; body?: string | Buffer; token: string };

async function fire(shot: Shot): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${shot.token}` };
  if (shot.contentType) headers['content-type'] = shot.contentType;
  const response = await fetch(`${gw.apiUrl}${shot.path}`, { method: 'POST', headers, body: shot.body });
  return { status: response.status, text: await response.text() };
}

test('thousands of mutated HTTP bodies: no 5xx, no unhandled rejection, every error is { error: { code, message } } and a 400 names the field', async () => {
  const decisionBody = { decision: 'approve', digest: 'a'.repeat(64), reason: 'looks fine' };
  const agentBody = {
    requestId: 'fuzz-1',
    actor: { id: 'triage-bot', type: 'agent', roles: ['agent_runtime'] },
    tenant: 'acme',
    environment: 'production',
    tool: 'read_kb',
    args: { query: 'refunds' },
    wait: 0,
  };
  const shots: Shot[] = [];
  const decisionIds = fc.oneof(fc.constantFrom(...PATH_IDS), fc.stringMatching(/^[A-Za-z0-9._:@-]{1,20}$/));
  for (const [id, body] of fc.sample(fc.tuple(decisionIds, mutatedBody(decisionBody)), { numRuns: RUNS_PER_ENDPOINT, seed: 11 })) {
    shots.push({ path: `/v1/approvals/${id}/decision`, token: approverToken, ...body });
  }
  const agentPaths = fc.oneof({ weight: 8, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom(...PATH_IDS).map((id) => `/${id}`) });
  for (const [suffix, body] of fc.sample(fc.tuple(agentPaths, mutatedBody(agentBody)), { numRuns: RUNS_PER_ENDPOINT, seed: 12 })) {
    shots.push({ path: `/v1/tool-requests${suffix}`, token: agentToken, ...body });
  }

  const byStatus = new Map<number, number>();
  let identityMismatches = 0;
  const failures: string[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < shots.length) {
        const shot = shots[next++] as Shot;
        const { status, text } = await fire(shot);
        byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
        const what = `${status} ${shot.path.slice(0, 60)} ${String(shot.contentType)} ${String(shot.body).slice(0, 80)} -> ${text.slice(0, 200)}`;
        if (status >= 500) failures.push(`5xx: ${what}`);
        if (status < 400) continue;
        let body: { error?: { code?: unknown; message?: unknown; fields?: unknown } };
        try {
          body = JSON.parse(text) as typeof body;
        } catch {
          failures.push(`not JSON: ${what}`);
          continue;
        }
        if (typeof body.error?.code !== 'string' || typeof body.error.message !== 'string') failures.push(`shape: ${what}`);
        const fields = body.error?.fields;
        const named = Array.isArray(fields) && fields.length > 0 && fields.every((f) => typeof f === 'string' && f.length > 0);
        if (status === 400 && !named) failures.push(`400 without fields: ${what}`);
        if (body.error?.code === 'identity_mismatch') {
          identityMismatches += 1;
          if (!(named && fields.every((f) => IDENTITY_FIELDS.includes(f as string)))) failures.push(`identity_mismatch without identity fields: ${what}`);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `fuzz-http: ${shots.length} requests in ${seconds.toFixed(1)} s (${CONCURRENCY} concurrent): ` +
      `${[...byStatus]
        .sort(([a], [b]) => a - b)
        .map(([s, n]) => `${s}=${n}`)
        .join(', ')}; ${identityMismatches} identity mismatches refused; ${failures.length} failures; ${unhandled.length} unhandled rejections`,
  );
  const kinds = new Map<string, number>();
  for (const failure of failures) kinds.set(failure.split(':')[0] as string, (kinds.get(failure.split(':')[0] as string) ?? 0) + 1);
  if (failures.length > 0) console.log(`fuzz-http failures by kind: ${[...kinds].map(([k, n]) => `${k}=${n}`).join(', ')}`);
  assert.deepEqual(failures.slice(0, 20), []);
  assert.deepEqual(unhandled, []);
  assert.ok(identityMismatches > 0, 'some mutations changed the identity the body claims, and were refused for it');
});
