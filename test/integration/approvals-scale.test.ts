/**
 * Many approvals at once, cross-wired on purpose: 1,000 requests, submitted through the front door,
 * wait together; the right approvers decide them concurrently over the approval API in shuffled
 * order, and one decision in ten is also sent to the wrong request. Every request must end as its
 * approver intended, every mis-sent decision must be refused (and, while its target still waits,
 * recorded in the target's history), and every executed argument set must hash to the digest that
 * was approved.
 *
 * The size is `APPROVAL_SCALE_REQUESTS` (default 1000).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalDigest } from '../../src/approvals/digest.js';
import type { Notifier } from '../../src/notify/notifier.js';
import type { RequestStatus, ToolOutcome } from '../../src/client/index.js';
import { FailureTypes } from '../../src/shared/index.js';
import { eventually, type TestRequestHandle } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { pool } from '../helpers/pool.js';
import { startToolService, type ToolService } from '../helpers/tool-service.js';
import { useGateway } from '../helpers/use-gateway.js';

const COUNT = Number(process.env.APPROVAL_SCALE_REQUESTS ?? 1000);
const CONCURRENCY = 32;

const policyFor = (url: string) =>
  policy()
    .plan('manager', { groups: ['manager'] })
    .tool('refund', { risk: 'high', approval: 'manager' })
    .httpTool('refund', `${url}/refund`, {
      runAs: 'svc-payments',
      args: argsOf({ amount: 'integer', customer: 'string' }, { required: ['amount', 'customer'] }),
    })
    .yaml();

/** A deterministic shuffle (mulberry32), so a failure can be replayed. */
function shuffled<T>(items: T[], seed = 20261121): T[] {
  const out = [...items];
  let a = seed;
  const random = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe(`${COUNT} approvals at once, with cross-wired decisions`, { timeout: 900_000 }, () => {
  let service: ToolService;
  const quiet: Notifier = { notify: async () => {} };
  const { gw } = useGateway(async ({ defer }) => {
    service = await startToolService('ok');
    defer(() => service.close());
    return { taskQueue: `scale-${process.pid}`, policy: policyFor(service.url), notifier: quiet };
  });

  test('every request ends as intended; every mis-sent decision is refused; executed args hash to the approved digest', async () => {
    const started = Date.now();
    const run = `${process.pid}-${Date.now()}`;
    const handles: TestRequestHandle[] = await pool(
      Array.from(
        { length: COUNT },
        (_, i) => () =>
          gw.gateway.start({
            requestId: `scale-${run}-${i}`,
            actor: { id: 'refund-bot', type: 'agent', roles: ['agent_runtime'] },
            tenant: 'acme',
            environment: 'production',
            tool: 'refund',
            args: { amount: i + 1, customer: `cus_${i}` },
          }),
      ),
      CONCURRENCY,
    );
    // The approvers' view (digest, plan) is the full status, which ops read through Temporal.
    const pending: RequestStatus[] = await pool(
      handles.map(
        (handle) => () =>
          eventually(
            async () => {
              const status = await gw.status(handle.requestId);
              return status.state === 'pending_approval' ? status : undefined;
            },
            `request ${handle.requestId} pending`,
            300_000,
          ),
      ),
      CONCURRENCY,
    );
    const startedAll = Date.now();

    // Intent: every fifth request is rejected, the others approved, each by one of 20 managers.
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, m) => gw.token({ sub: `manager-${m}`, tenant: 'acme', groups: ['manager'] })));
    const intent = pending.map((status, i) => ({
      requestId: status.requestId,
      digest: status.digest ?? '',
      decision: i % 5 === 0 ? ('reject' as const) : ('approve' as const),
      token: tokens[i % tokens.length] as string,
    }));
    // One in ten decisions is also sent to a different request, carrying its own request's digest.
    const misSent = intent
      .filter((_, i) => i % 10 === 3)
      .map((d, k) => ({ ...d, target: intent[(intent.indexOf(d) + 1 + (k % 7)) % intent.length]?.requestId as string }));
    const sends = shuffled([...intent.map((d) => ({ ...d, target: d.requestId, wrong: false })), ...misSent.map((d) => ({ ...d, wrong: true }))]);

    const answers = await pool(
      sends.map((send) => async () => {
        const res = await gw.api('POST', `/v1/approvals/${send.target}/decision`, {
          token: send.token,
          body: { decision: send.decision, digest: send.digest },
        });
        return { send, res };
      }),
      CONCURRENCY,
    );
    const decidedAll = Date.now();

    // A mis-sent decision meets either an open request (wrong digest) or one already decided.
    const wrongAnswers = answers.filter((a) => a.send.wrong);
    const refusedWrong = wrongAnswers.filter((a) => a.res.status === 409 && ['digest_mismatch', 'not_pending'].includes(a.res.body?.error?.code));
    assert.deepEqual(
      wrongAnswers.filter((a) => !refusedWrong.includes(a)).map((a) => [a.send.target, a.res.status, a.res.body]),
      [],
      'every mis-sent decision is refused',
    );
    const refusedForDigest = refusedWrong.filter((a) => a.res.body.error.code === 'digest_mismatch').length;
    const rightAnswers = answers.filter((a) => !a.send.wrong);
    const unexpected = rightAnswers.filter((a) => a.res.status !== 200);
    assert.deepEqual(
      unexpected.map((a) => [a.send.requestId, a.res.status, a.res.body]),
      [],
      'every right decision is accepted',
    );

    const outcomes: ToolOutcome[] = await pool(
      handles.map((h) => () => h.outcome()),
      CONCURRENCY,
    );
    outcomes.forEach((outcome, i) => {
      const wanted = intent[i]?.decision === 'approve' ? 'completed' : 'rejected';
      assert.equal(outcome.status, wanted, `request ${outcome.requestId}`);
      if (outcome.status === 'completed') {
        assert.ok(outcome.proposal, 'a completed approved request carries its proposal');
        assert.equal(outcome.digest, intent[i]?.digest);
        assert.equal(canonicalDigest(outcome.proposal), outcome.digest, 'the executed proposal hashes to the approved digest');
        assert.deepEqual(outcome.args, outcome.proposal.args);
        const effects = service.effects.filter((e) => e.key === `toolgate:${outcome.workflowId}`);
        assert.equal(effects.length, 1);
        assert.deepEqual((effects[0]?.body as { args: unknown }).args, outcome.proposal.args);
      }
    });
    const rejectedCount = outcomes.filter((o) => o.status === 'rejected').length;
    assert.equal(service.effects.filter((e) => e.key.includes(`scale-${run}-`)).length, COUNT - rejectedCount);

    const statuses = await pool(
      handles.map((h) => () => gw.status(h.requestId)),
      CONCURRENCY,
    );
    const recordedForDigest = statuses.reduce((sum, s) => sum + s.refusals.filter((r) => r.code === FailureTypes.DigestMismatch).length, 0);
    assert.equal(recordedForDigest, refusedForDigest, 'every digest refusal is in the record of the request it was sent to');
    // A refusal that met an already closed request can only be logged; the others are in its record,
    // under the approver who sent them.
    const recordedAll = statuses.reduce((sum, s) => sum + s.refusals.length, 0);
    assert.ok(recordedAll >= refusedForDigest && recordedAll <= misSent.length, `${recordedAll} refusals recorded`);
    const senders = new Set(misSent.map((d) => `manager-${tokens.indexOf(d.token)}`));
    assert.ok(
      statuses.every((s) => s.refusals.every((r) => senders.has(String(r.approverId)))),
      'each recorded refusal names a manager who mis-sent one',
    );
    assert.ok(
      statuses.every((s) => s.approvals.every((a) => a.digest === s.digest)),
      'no vote landed on a proposal other than its own',
    );

    process.stdout.write(
      `approvals at scale: ${COUNT} requests, ${sends.length} decisions (${misSent.length} mis-sent: ${refusedForDigest} refused for the digest, ` +
        `${refusedWrong.length - refusedForDigest} as already decided; ${recordedAll} recorded in request histories), ` +
        `${rejectedCount} rejected as intended; pending after ${((startedAll - started) / 1000).toFixed(1)} s, ` +
        `decided after ${((decidedAll - startedAll) / 1000).toFixed(1)} s, done after ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  });
});
