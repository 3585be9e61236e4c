/**
 * Rate limits on the memory store (rate-limiter-flexible): counts per window, burst, every scope,
 * tenant isolation, the tools and risk filters, retry-after, nothing taken from one limit when
 * another refuses, the bound on remembered scopes; a store that cannot be reached fails closed;
 * and the policy activity's handling of both (denial, retry, denial after the last retry).
 * The same store on a real PostgreSQL shared by two limiters: test/cluster/rate-limits.cluster.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { pino } from 'pino';
import type { SealedEvaluation } from '../../activities/deps.js';
import { RATE_LIMIT_STORE_ATTEMPTS } from '../../activities/evaluate.js';
import { createActivities } from '../../activities/index.js';
import { RateLimitStoreError, RateLimits, libraryWindow, parseRate, type RateLimitRule, type RateLimitStore } from '../../src/policy/index.js';
import { DEFAULT_STORE_TIMEOUT_MS, refundMarginMs } from '../../src/policy/limits.js';
import { PolicyStore } from '../../src/policy/store.js';
import { workflowIdFor, type Risk, type ToolRequest } from '../../src/shared/index.js';
import { RequestSigner } from '../../src/trust/signers.js';
import { workerTrustOf } from '../../src/trust/store.js';
import { freshSigningKey } from '../helpers/gateway-env.js';
import { policy } from '../helpers/policy-builder.js';

function request(overrides: { tenant?: string; actor?: string; tool?: string; requestId?: string } = {}): ToolRequest {
  return {
    requestId: overrides.requestId ?? 'req-1',
    actor: { id: overrides.actor ?? 'bot-1', type: 'agent', roles: ['agent_runtime'] },
    tenant: overrides.tenant ?? 'acme',
    environment: 'production',
    tool: overrides.tool ?? 'refund',
    args: {},
  };
}

function rule(name: string, rate: string, fields: Partial<RateLimitRule> = {}): RateLimitRule {
  const { count, windowMs } = parseRate(rate);
  return { name, per: 'actor', count, windowMs, burst: count, ...fields };
}

/** Takes `n` times in sequence; returns how many were allowed. */
async function allowedOf(limits: RateLimitStore, rules: RateLimitRule[], n: number, req: ToolRequest = request(), risk: Risk = 'high'): Promise<number> {
  let allowed = 0;
  for (let i = 0; i < n; i++) if ((await limits.take(rules, req, risk)) === undefined) allowed += 1;
  return allowed;
}

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('rate limits on the memory store', () => {
  test('count per window: the next one is refused with the limit, the readable scope and when the window ends', async () => {
    const limits = RateLimits.memory();
    const rules = [rule('per-agent', '3/1m')];
    assert.equal(await allowedOf(limits, rules, 3), 3);
    const refused = await limits.take(rules, request(), 'high');
    assert.ok(refused);
    assert.equal(refused.rule.name, 'per-agent');
    assert.equal(refused.key, 'acme/bot-1');
    assert.ok(refused.retryAfterMs > 55_000 && refused.retryAfterMs <= 60_000, `retry after ${refused.retryAfterMs} ms`);
    assert.equal(await allowedOf(limits, rules, 5), 0, 'still refused within the window');
  });

  test('a window ends and the scope gets its allowance again', async () => {
    const limits = RateLimits.memory();
    const rules = [rule('short', '2/300ms')];
    assert.equal(await allowedOf(limits, rules, 3), 2);
    const refused = await limits.take(rules, request(), 'high');
    assert.ok(refused && refused.retryAfterMs <= 300);
    await sleep(refused.retryAfterMs + 50);
    assert.equal(await allowedOf(limits, rules, 3), 2);
  });

  test('burst above count: that many at once, in a window stretched so the sustained rate stays count per window', async () => {
    assert.deepEqual(libraryWindow({ count: 2, windowMs: 60_000, burst: 4 }), { points: 4, windowMs: 120_000 });
    assert.deepEqual(libraryWindow({ count: 10, windowMs: 60_000, burst: 10 }), { points: 10, windowMs: 60_000 });
    const limits = RateLimits.memory();
    const rules = [rule('bursty', '2/1m', { burst: 4 })];
    assert.equal(await allowedOf(limits, rules, 10), 4);
    const refused = await limits.take(rules, request(), 'high');
    assert.ok(refused && refused.retryAfterMs > 115_000 && refused.retryAfterMs <= 120_000, `retry after ${refused?.retryAfterMs} ms`);
  });

  test('burst below count spreads the requests: 10/1m with burst 2 is 2 per 12 s', async () => {
    assert.deepEqual(libraryWindow({ count: 10, windowMs: 60_000, burst: 2 }), { points: 2, windowMs: 12_000 });
    const limits = RateLimits.memory();
    const rules = [rule('spread', '10/1m', { burst: 2 })];
    assert.equal(await allowedOf(limits, rules, 5), 2);
    const refused = await limits.take(rules, request(), 'high');
    assert.ok(refused && refused.retryAfterMs > 10_000 && refused.retryAfterMs <= 12_000, `retry after ${refused?.retryAfterMs} ms`);
  });

  test('windows the library cannot express exactly are rounded to whole milliseconds it keeps whole', () => {
    for (const windowMs of [1, 7, 1001, 1003, 59_999, 86_400_000]) {
      const { windowMs: ms } = libraryWindow({ count: 3, windowMs, burst: 3 });
      assert.ok(ms >= windowMs && ms - windowMs < 10, `${windowMs} → ${ms}`);
      assert.ok(Number.isInteger((ms / 1000) * 1000), `${ms} survives the library's seconds`);
    }
  });

  test('per actor, tenant, tool and actor_tool: who shares a counter', async () => {
    const cases: [RateLimitRule['per'], ToolRequest, ToolRequest, boolean][] = [
      ['actor', request({ tool: 'refund' }), request({ tool: 'lookup' }), true],
      ['actor', request({ actor: 'bot-1' }), request({ actor: 'bot-2' }), false],
      ['tenant', request({ actor: 'bot-1', tool: 'refund' }), request({ actor: 'bot-2', tool: 'lookup' }), true],
      ['tool', request({ actor: 'bot-1' }), request({ actor: 'bot-2' }), true],
      ['tool', request({ tool: 'refund' }), request({ tool: 'lookup' }), false],
      ['actor_tool', request({ tool: 'refund' }), request({ tool: 'lookup' }), false],
      ['actor_tool', request({ actor: 'bot-1' }), request({ actor: 'bot-2' }), false],
      ['actor_tool', request({ requestId: 'a' }), request({ requestId: 'b' }), true],
    ];
    for (const [per, first, second, shared] of cases) {
      const limits = RateLimits.memory();
      const rules = [rule(`one-${per}`, '1/1m', { per })];
      assert.equal(await limits.take(rules, first, 'high'), undefined);
      const next = await limits.take(rules, second, 'high');
      assert.equal(
        next !== undefined,
        shared,
        `per ${per}: ${JSON.stringify([first.actor.id, first.tool])} then ${JSON.stringify([second.actor.id, second.tool])}`,
      );
    }
  });

  test("one tenant's requests never consume another tenant's counter, whatever the scope", async () => {
    for (const per of ['actor', 'tenant', 'tool', 'actor_tool'] as const) {
      const limits = RateLimits.memory();
      const rules = [rule('two', '2/1m', { per })];
      assert.equal(await allowedOf(limits, rules, 5, request({ tenant: 'acme' })), 2);
      assert.equal(await allowedOf(limits, rules, 5, request({ tenant: 'globex' })), 2, `per ${per}: globex has its own allowance`);
      const refused = await limits.take(rules, request({ tenant: 'globex' }), 'high');
      assert.ok(refused?.key.startsWith('globex'), `per ${per}: ${refused?.key}`);
    }
  });

  test('tools and risk filters: only matching requests count', async () => {
    const limits = RateLimits.memory();
    const rules = [rule('refunds', '1/1m', { tools: ['refund'] }), rule('risky', '2/1m', { risk: ['high', 'critical'], per: 'tenant' })];
    // lookup at low risk: neither applies.
    assert.equal(await allowedOf(limits, rules, 20, request({ tool: 'lookup' }), 'low'), 20);
    // lookup at high risk: only `risky` (2).
    assert.equal(await allowedOf(limits, rules, 5, request({ tool: 'lookup' }), 'high'), 2);
    // refund at low risk: only `refunds` (1).
    assert.equal(await allowedOf(limits, rules, 5, request({ tool: 'refund' }), 'low'), 1);
    const refused = await limits.take(rules, request({ tool: 'refund' }), 'critical');
    assert.equal(refused?.rule.name, 'refunds');
  });

  test('a refusal by one limit takes nothing from the others (either order)', async () => {
    for (const order of ['wide first', 'narrow first'] as const) {
      const limits = RateLimits.memory();
      const wide = rule('wide', '5/1m', { per: 'tenant' });
      const narrow = rule('narrow', '1/1m', { per: 'actor' });
      const rules = order === 'wide first' ? [wide, narrow] : [narrow, wide];
      assert.equal(await allowedOf(limits, rules, 1, request({ actor: 'bot-1' })), 1);
      // bot-1's next tries are refused by `narrow`: the tenant-wide counter keeps its 4.
      for (let i = 0; i < 10; i++) assert.equal((await limits.take(rules, request({ actor: 'bot-1' }), 'high'))?.rule.name, 'narrow', order);
      for (const actor of ['bot-2', 'bot-3', 'bot-4', 'bot-5'])
        assert.equal(await limits.take(rules, request({ actor }), 'high'), undefined, `${order}: ${actor}`);
      // Now the tenant is full; bot-6's own counter is untouched by that refusal.
      assert.equal((await limits.take(rules, request({ actor: 'bot-6' }), 'high'))?.rule.name, 'wide', order);
      assert.equal((await limits.take(rules, request({ actor: 'bot-6' }), 'high'))?.rule.name, 'wide', `${order}: still the tenant, not bot-6's own limit`);
    }
  });

  test('concurrent takes: exactly the limit is allowed', async () => {
    const limits = RateLimits.memory();
    const rules = [rule('wide', '50/1m', { per: 'tenant' }), rule('per-tool', '10/1m', { per: 'tool' })];
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => limits.take(rules, request({ actor: `bot-${i % 7}` }), 'high')));
    assert.equal(results.filter((r) => r === undefined).length, 10);
    // The refused 190 gave back what they took from `wide`: 40 left of it for another tool.
    assert.equal(await allowedOf(limits, [rules[0] as RateLimitRule], 100, request({ tool: 'lookup' })), 40);
  });

  test('the memory store remembers a bounded number of scopes (the least recently used is forgotten)', async () => {
    const limits = RateLimits.memory({ maxKeys: 2 });
    const rules = [rule('one', '1/1m')];
    for (const actor of ['a', 'b']) assert.equal(await limits.take(rules, request({ actor }), 'high'), undefined);
    assert.ok(await limits.take(rules, request({ actor: 'a' }), 'high'), 'a is remembered (and now the most recent)');
    assert.equal(await limits.take(rules, request({ actor: 'c' }), 'high'), undefined);
    // c pushed out b (least recently used); a is still counted.
    assert.ok(await limits.take(rules, request({ actor: 'a' }), 'high'));
    assert.equal(await limits.take(rules, request({ actor: 'b' }), 'high'), undefined, 'b was forgotten: a fresh allowance');
  });

  test('a give-back is skipped when the window ends within the margin (it would credit the next window)', async () => {
    const limits = RateLimits.memory();
    const margin = limits.refundMarginMs;
    assert.ok(margin >= 1_000 && margin < 2_000, `memory margin ${margin}`);
    const windowMs = margin + 1_000;
    const rules = [rule('short', `2/${windowMs}ms`), rule('tenant-full', '1/1h', { per: 'tenant' })];
    // Exhaust the tenant-wide limit: every take of both limits is now refused by it.
    assert.equal(await limits.take([rules[1] as RateLimitRule], request({ actor: 'other' }), 'high'), undefined);

    // Early in the window: what `short` took is given back.
    assert.equal(await limits.take([rules[0] as RateLimitRule], request({ actor: 'early' }), 'high'), undefined);
    assert.equal((await limits.take(rules, request({ actor: 'early' }), 'high'))?.rule.name, 'tenant-full');
    assert.equal(await limits.take([rules[0] as RateLimitRule], request({ actor: 'early' }), 'high'), undefined, 'given back: room for one more');

    // Within the margin of the window's end: kept (it only ever refuses more).
    assert.equal(await limits.take([rules[0] as RateLimitRule], request({ actor: 'late' }), 'high'), undefined);
    await sleep(windowMs - margin + 300);
    assert.equal((await limits.take(rules, request({ actor: 'late' }), 'high'))?.rule.name, 'tenant-full');
    assert.equal(
      (await limits.take([rules[0] as RateLimitRule], request({ actor: 'late' }), 'high'))?.rule.name,
      'short',
      'not given back so close to the end',
    );
  });

  test("the PostgreSQL store's give-back margin outlasts a pool wait plus a query (derived from their timeout)", () => {
    const url = 'postgresql://toolgate:s3cret@db.internal:5432/toolgate';
    for (const timeoutMs of [undefined, 500, DEFAULT_STORE_TIMEOUT_MS, 10_000]) {
      const bound = timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
      const store = RateLimits.postgres(url, timeoutMs === undefined ? {} : { timeoutMs });
      assert.equal(store.refundMarginMs, refundMarginMs(bound), `timeout ${timeoutMs}`);
      // A give-back may wait `bound` for a connection and `bound` for its query after the library read the clock.
      assert.ok(store.refundMarginMs > 2 * bound, `margin ${store.refundMarginMs} for timeout ${bound}`);
      assert.equal(RateLimits.fromStore(url, timeoutMs === undefined ? {} : { timeoutMs }).refundMarginMs, store.refundMarginMs);
    }
    assert.equal(DEFAULT_STORE_TIMEOUT_MS, 2_000);
  });

  test('fromStore: memory, a PostgreSQL URL, nothing else', () => {
    assert.equal(RateLimits.fromStore('memory').description, 'memory');
    const pg = RateLimits.fromStore('postgresql://toolgate:s3cret@db.internal:5432/toolgate');
    assert.equal(pg.description, 'postgresql db.internal:5432/toolgate');
    assert.throws(() => RateLimits.fromStore('redis://localhost'), RangeError);
  });
});

describe('an unreachable store fails closed', () => {
  test('take rejects with RateLimitStoreError (never allows), without the password; requests no limit applies to do not need the store', async () => {
    const port = await closedPort();
    const limits = RateLimits.postgres(`postgres://toolgate:s3cret@127.0.0.1:${port}/toolgate`, { timeoutMs: 1_000 });
    try {
      const rules = [rule('refunds', '100/1m', { tools: ['refund'] })];
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        await assert.rejects(limits.take(rules, request(), 'high'), (err: unknown) => {
          assert.ok(err instanceof RateLimitStoreError, String(err));
          assert.match(err.message, /rate-limit store \(postgresql 127\.0\.0\.1:\d+\/toolgate\) did not answer: .*ECONNREFUSED/);
          assert.ok(!err.message.includes('s3cret'));
          return true;
        });
        assert.ok(Date.now() - started < 5_000, 'it fails quickly');
      }
      assert.equal(await limits.take(rules, request({ tool: 'lookup' }), 'high'), undefined, 'no applicable limit: nothing to count');
    } finally {
      await limits.close();
    }
    await assert.rejects(limits.take([rule('x', '1/1m')], request(), 'high'), RateLimitStoreError, 'a closed store refuses too');
  });
});

describe('the policy activity with rate limits', () => {
  const POLICY = policy()
    .tool('refund', { risk: 'high' })
    .limit('refunds-per-agent', { per: 'actor', rate: '2/1m' })
    .codeTool('refund', { runAs: 'svc-payments' })
    .yaml();
  const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

  async function setup(rateLimits: RateLimitStore) {
    const key = await freshSigningKey();
    const signer = new RequestSigner(key);
    const trust = workerTrustOf({ requestKeys: [key.trusted], decisionKeys: [key.trusted] }, randomBytes(32));
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        done();
      },
    });
    const activities = createActivities({
      policy: PolicyStore.fromSources([{ file: 'limits.yaml', text: POLICY }]),
      tools: {},
      notifier: { notify: async () => undefined },
      logger: pino({ level: 'info' }, sink),
      trust,
      rateLimits,
    });
    const evaluate = async (requestId: string, attempt = 1): Promise<SealedEvaluation> => {
      const req = request({ requestId });
      const workflowId = workflowIdFor(req.tenant, requestId);
      const admission = await signer.sign(req, workflowId);
      const env = new MockActivityEnvironment(
        { isLocal: true, attempt, workflowExecution: { workflowId, runId: `run-${requestId}` }, retryPolicy: { maximumAttempts: RATE_LIMIT_STORE_ATTEMPTS } },
        { logger: quiet },
      );
      return env.run<[], SealedEvaluation, () => Promise<SealedEvaluation>>(() => activities.evaluatePolicy({ request: req, workflowId, admission }));
    };
    return { evaluate, lines };
  }

  test('requests beyond the limit are denied rate_limited with the limit and a retry-after', async () => {
    const { evaluate } = await setup(RateLimits.memory());
    assert.equal((await evaluate('r-1')).decision.outcome, 'allow');
    assert.equal((await evaluate('r-2')).decision.outcome, 'allow');
    const { decision } = await evaluate('r-3');
    assert.equal(decision.outcome, 'deny');
    assert.equal(decision.code, 'rate_limited');
    assert.equal(decision.rule, 'limit:refunds-per-agent');
    assert.match(decision.reasons[0] ?? '', /^rate limit refunds-per-agent \(2 per 60000 ms per actor\) is exhausted for acme\/bot-1; retry after \d+ ms$/);
  });

  test('an unreachable store: the evaluation is retried, and the last attempt denies policy_unavailable; logged without the URL', async () => {
    const port = await closedPort();
    const store = RateLimits.postgres(`postgres://toolgate:s3cret@127.0.0.1:${port}/toolgate`, { timeoutMs: 1_000 });
    try {
      const { evaluate, lines } = await setup(store);
      for (let attempt = 1; attempt < RATE_LIMIT_STORE_ATTEMPTS; attempt++) {
        await assert.rejects(evaluate('down-1', attempt), (err: unknown) => {
          assert.ok(err instanceof ApplicationFailure, String(err));
          assert.equal(err.type, 'RateLimitStoreUnavailable');
          assert.equal(err.nonRetryable, false);
          return true;
        });
      }
      const { decision } = await evaluate('down-1', RATE_LIMIT_STORE_ATTEMPTS);
      assert.equal(decision.outcome, 'deny');
      assert.equal(decision.code, 'policy_unavailable');
      assert.equal(decision.rule, 'check:rate_limits_unavailable');
      assert.match(decision.reasons[0] ?? '', /could not be checked .* denied rather than let through uncounted/);
      assert.ok(!(decision.reasons[0] ?? '').includes('127.0.0.1'), 'where the store is stays out of what the agent reads');
      const errors = lines.filter((line) => line.level === 50);
      assert.equal(errors.length, RATE_LIMIT_STORE_ATTEMPTS);
      assert.deepEqual(
        errors.map((line) => line.msg),
        [
          ...Array.from({ length: RATE_LIMIT_STORE_ATTEMPTS - 1 }, () => 'rate-limit store unreachable: the policy evaluation will be retried'),
          'rate-limit store unreachable: request denied',
        ],
      );
      assert.ok(!JSON.stringify(lines).includes('s3cret'), 'the password is never logged');
    } finally {
      await store.close();
    }
  });
});
