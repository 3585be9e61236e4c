/**
 * Rate limits on a real PostgreSQL (test/cluster/cluster.ts starts a private instance): two
 * independent `RateLimits` on one database, as two workers have, enforce one limit between them —
 * exactly the limit under concurrent requests alternating between them — give back what a refused
 * request took from its other limits, and fail closed (reject, never allow) when PostgreSQL stops.
 *
 * Run with `npm run test:cluster`, or alone:
 * `node_modules/.bin/node --import tsx --test --test-reporter=spec test/cluster/rate-limits.cluster.ts`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { RATE_LIMIT_TABLE, RateLimitStoreError, RateLimits, parseRate, type RateLimitRule } from '../../src/policy/index.js';
import type { ToolRequest } from '../../src/shared/index.js';
import { PG_USER, ensurePostgres, startPostgres, type Postgres } from './cluster.js';

let dir: string;
let postgres: Postgres | undefined;
let url: string;
const open: RateLimits[] = [];

/** A limiter of its own, as each worker process has. */
function worker(): RateLimits {
  const limits = RateLimits.postgres(url, { timeoutMs: 2_000 });
  open.push(limits);
  return limits;
}

function request(actor: string, tool = 'refund', tenant = 'acme'): ToolRequest {
  return { requestId: `r-${actor}`, actor: { id: actor, type: 'agent', roles: ['agent_runtime'] }, tenant, environment: 'production', tool, args: {} };
}

function rule(name: string, rate: string, per: RateLimitRule['per']): RateLimitRule {
  const { count, windowMs } = parseRate(rate);
  return { name, per, count, windowMs, burst: count };
}

before(
  async () => {
    dir = await mkdtemp(join(tmpdir(), 'toolgate-rate-limits-'));
    postgres = await startPostgres(await ensurePostgres(), dir);
    url = `postgres://${PG_USER}@127.0.0.1:${postgres.port}/postgres`;
  },
  { timeout: 300_000 },
);

after(async () => {
  for (const limits of open) await limits.close().catch(() => undefined);
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('two limiters on one database share a limit: taken from one, refused by the other', async () => {
  const [a, b] = [worker(), worker()];
  const rules = [rule('shared', '5/1m', 'tool')];
  for (let i = 0; i < 3; i++) assert.equal(await a.take(rules, request(`bot-${i}`, 'sequential'), 'high'), undefined);
  const fromB = [];
  for (let i = 0; i < 4; i++) fromB.push(await b.take(rules, request(`bot-${i}`, 'sequential'), 'high'));
  assert.deepEqual(
    fromB.map((r) => (r ? `refused ${r.rule.name} ${r.key}` : 'allowed')),
    ['allowed', 'allowed', 'refused shared acme/sequential', 'refused shared acme/sequential'],
  );
  const refused = await a.take(rules, request('bot-9', 'sequential'), 'high');
  assert.ok(refused && refused.retryAfterMs > 50_000 && refused.retryAfterMs <= 60_000, `retry after ${refused?.retryAfterMs} ms`);
});

test('200 concurrent requests alternating between two limiters: exactly the limit is allowed', { timeout: 60_000 }, async () => {
  const [a, b] = [worker(), worker()];
  const LIMIT = 25;
  const rules = [rule('concurrent', `${LIMIT}/1m`, 'tool')];
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      (i % 2 === 0 ? a : b)
        .take(rules, request(`bot-${i % 13}`, 'concurrent'), 'high')
        .then((r) => ({ by: i % 2 === 0 ? 'a' : 'b', allowed: r === undefined })),
    ),
  );
  const allowed = results.filter((r) => r.allowed);
  process.stdout.write(
    `rate limits on PostgreSQL: 200 concurrent takes of a ${LIMIT}/1m limit in ${Date.now() - started} ms — ` +
      `${allowed.length} allowed (${allowed.filter((r) => r.by === 'a').length} by limiter A, ${allowed.filter((r) => r.by === 'b').length} by limiter B)\n`,
  );
  assert.equal(allowed.length, LIMIT);
  // The refused 175 left the counter where the allowed ones put it: still full, for either limiter.
  assert.ok(await a.take(rules, request('late', 'concurrent'), 'high'));
  assert.ok(await b.take(rules, request('late', 'concurrent'), 'high'));
});

test('a refusal by one limit gives back what it took from another, across limiters and under concurrency', { timeout: 60_000 }, async () => {
  const [a, b] = [worker(), worker()];
  const narrow = rule('per-agent', '2/1m', 'actor');
  const wide = rule('per-tenant', '20/1m', 'tenant');
  // Narrow first: it refuses before the tenant's counter is touched, so exactly 10 agents × 2 pass.
  const narrowFirst = await Promise.all(
    Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).take([narrow, wide], request(`agent-${i % 10}`, 'refund', 'narrow-first'), 'high')),
  );
  assert.equal(narrowFirst.filter((r) => r === undefined).length, 20);
  assert.ok(
    narrowFirst.filter((r) => r !== undefined).every((r) => r?.rule.name === 'per-agent'),
    "only the agents' own limit refused",
  );

  // Wide first: the refused requests took from the tenant's counter and gave it back. While they
  // were in flight a concurrent request could see it fuller than it ends up (refused, never
  // allowed beyond the limit); once all settle, the counter holds exactly the allowed ones.
  const wideFirst = await Promise.all(
    Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).take([wide, narrow], request(`agent-${i % 10}`, 'refund', 'wide-first'), 'high')),
  );
  const allowed = wideFirst.filter((r) => r === undefined).length;
  assert.ok(allowed > 0 && allowed <= 20, `${allowed} allowed`);
  let more = 0;
  for (let i = 0; i < 30; i++)
    if ((await (i % 2 === 0 ? b : a).take([wide, narrow], request(`fresh-${i}`, 'refund', 'wide-first'), 'high')) === undefined) more += 1;
  assert.equal(allowed + more, 20, `the tenant's counter was left at the ${allowed} allowed, so ${20 - allowed} more fit`);
  process.stdout.write(`rate limits on PostgreSQL: wide limit first, 50 concurrent: ${allowed} allowed, then ${more} more from fresh agents (20 in all)\n`);
});

test("the counters' keys: the tenant, then a digest (no actor or tool ids in the table), in toolgate's own table", async () => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ key: string; points: number }>(`SELECT key, points FROM ${RATE_LIMIT_TABLE} ORDER BY key`);
    assert.ok(rows.length > 0);
    for (const { key } of rows) assert.match(key, /^toolgate:(acme|narrow-first|wide-first):[A-Za-z0-9_-]{43}$/);
    assert.ok(!rows.some((row) => /agent-|bot-|refund|concurrent/.test(row.key)));
  } finally {
    await client.end();
  }
});

test(
  'PostgreSQL stops: every take rejects with RateLimitStoreError (fail closed), quickly; a limiter made while it is down too',
  { timeout: 90_000 },
  async () => {
    const a = worker();
    const rules = [rule('down', '1000/1m', 'tool')];
    assert.equal(await a.take(rules, request('before', 'down'), 'high'), undefined, 'it works while PostgreSQL runs');
    await postgres?.stop();
    for (const limits of [a, worker()]) {
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const outcome = await limits.take(rules, request(`during-${i}`, 'down'), 'high').then(
          (r) => (r === undefined ? 'allowed' : `refused ${r.rule.name}`),
          (err: unknown) => err,
        );
        assert.ok(outcome instanceof RateLimitStoreError, `not allowed, not a refusal: a store error (got ${String(outcome)})`);
        assert.ok(Date.now() - started < 10_000, `failed in ${Date.now() - started} ms`);
      }
    }
  },
);
