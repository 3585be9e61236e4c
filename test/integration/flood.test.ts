/**
 * A flood of mixed-risk requests from one agent: the rate limits in policy engage with a clear
 * refusal, low-risk calls keep flowing, approvers get a capped number of notifications, and
 * nothing is approved by timeout.
 *
 * Size: `FLOOD_REQUESTS` (default 1000 in `npm test`; `npm run test:flood` runs 10,000).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ApprovalNotification, Notifier } from '../../src/notify/notifier.js';
import type { ToolOutcome } from '../../src/client/index.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { pool } from '../helpers/pool.js';
import { useGateway } from '../helpers/use-gateway.js';

const COUNT = Number(process.env.FLOOD_REQUESTS ?? 1000);
const HIGH_RISK_BURST = 5;

const POLICY = policy()
  .plan('manager', { groups: ['manager'], expiresAfter: '3s' })
  .tool('lookup')
  .tool('refund', { risk: 'high', approval: 'manager' })
  .limit('high-risk-per-agent', { per: 'actor', risk: ['high', 'critical'], rate: `${HIGH_RISK_BURST}/1m` })
  .limit('all-per-agent', { per: 'actor', rate: '1000000/1m' })
  .codeTool('lookup', { runAs: 'svc-lookup', args: argsOf({ q: 'string' }) })
  .codeTool('refund', { runAs: 'svc-payments', args: argsOf({ amount: 'integer' }) })
  .yaml();

describe(`a flood of ${COUNT} mixed-risk requests from one agent`, { timeout: 1_800_000 }, () => {
  const notifications: ApprovalNotification[] = [];
  const refunds: unknown[] = [];
  const counting: Notifier = { notify: async (n) => void notifications.push(n) };
  const { gw } = useGateway({
    taskQueue: `flood-${process.pid}`,
    policy: POLICY,
    notifier: counting,
    tools: {
      lookup: async ({ args }) => ({ found: args.q }),
      refund: async ({ args }) => void refunds.push(args),
    },
  });

  test('limits engage with a clear refusal, low risk keeps flowing, notifications are capped, nothing is approved by timeout', async () => {
    const started = Date.now();
    const run = `${process.pid}-${Date.now()}`;
    const outcomes: ToolOutcome[] = await pool(
      Array.from({ length: COUNT }, (_, i) => async () => {
        const highRisk = i % 4 === 0;
        const handle = await gw.gateway.start({
          requestId: `flood-${run}-${i}`,
          actor: { id: 'runaway-agent', type: 'agent', roles: ['agent_runtime'] },
          tenant: 'acme',
          environment: 'production',
          tool: highRisk ? 'refund' : 'lookup',
          args: highRisk ? { amount: i } : { q: `q${i}` },
        });
        return handle.outcome();
      }),
      64,
    );
    const elapsedMs = Date.now() - started;

    const low = outcomes.filter((o) => o.tool === 'lookup');
    const high = outcomes.filter((o) => o.tool === 'refund');
    assert.ok(
      low.every((o) => o.status === 'completed'),
      'every low-risk call went through',
    );

    const limited = high.filter((o) => o.status === 'denied' && o.code === 'rate_limited');
    const waited = high.filter((o) => o.status !== 'denied');
    // The bucket holds the burst and refills at 5 a minute while the flood lasts.
    const allowance = HIGH_RISK_BURST + Math.ceil((elapsedMs / 60_000) * HIGH_RISK_BURST) + 1;
    assert.ok(waited.length >= HIGH_RISK_BURST && waited.length <= allowance, `${waited.length} high-risk requests reached approval (allowance ${allowance})`);
    assert.equal(limited.length + waited.length, high.length);
    for (const o of limited) {
      assert.ok(o.status === 'denied');
      assert.equal(o.rule, 'limit:high-risk-per-agent');
      assert.match(o.reasons[0] ?? '', /rate limit high-risk-per-agent .* exhausted for acme\/runaway-agent; retry after \d+ ms/);
    }

    assert.ok(
      waited.every((o) => o.status === 'expired'),
      'nobody approved: every waiting request expired',
    );
    assert.equal(refunds.length, 0, 'nothing was approved by timeout');
    const requested = notifications.filter((n) => n.kind === 'requested');
    assert.equal(requested.length, waited.length, 'approvers were notified once per request that reached them, no more');

    process.stdout.write(
      `flood: ${COUNT} requests in ${(elapsedMs / 1000).toFixed(1)} s — ${low.length} low-risk completed, ` +
        `${high.length} high-risk: ${limited.length} rate-limited, ${waited.length} waited and expired; ` +
        `${requested.length} approval notifications, 0 executed by timeout\n`,
    );
  });
});
