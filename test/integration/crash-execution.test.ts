/**
 * A worker SIGKILLed in the middle of a tool call, with a second worker running: the execution
 * activity heartbeats, so the server notices the dead attempt within the heartbeat timeout, not
 * at the end of the attempt's two-minute limit. An idempotent tool is retried on the other worker
 * with the same key and acts once; a non-idempotent tool ends `outcome_unknown` and is never
 * called again. A low-risk, allowed, idempotent tool runs as a local activity inside the workflow
 * task: when its worker dies, the task times out and the other worker runs the call again under
 * the same key. Real processes: Temporal (SQLite), `toolgate worker` ×2, `toolgate api`, and a
 * loopback tool service that counts effects per key.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EXECUTION_BOUNDS } from '../../src/shared/index.js';
import { Figures, crashRequest, startCrashGateway, until } from '../helpers/processes.js';

/** Heartbeat timeout, the first retry's backoff (1 s) and room for a loaded machine's timer processing. */
const RECOVERY_BOUND_MS = EXECUTION_BOUNDS.heartbeatTimeoutMs + 1_000 + 6_000;
/** A local execution's worker is noticed when its workflow task times out (the server's default, 10 s), plus the same room. */
const LOCAL_RECOVERY_BOUND_MS = 10_000 + 6_000;

test(
  'worker SIGKILLed mid-call: the idempotent tool is retried on the other worker within the heartbeat bound and acts once; the non-idempotent one ends outcome_unknown',
  { timeout: 240_000 },
  async () => {
    const figures = new Figures('worker SIGKILLed in the middle of a tool call');
    const gw = await startCrashGateway('crash-execution');
    try {
      // Both tools act, then hang: the answer never comes while the first worker waits for it.
      gw.tools.behave('steady_write', 'hang-after-act');
      gw.tools.behave('slow_payment', 'hang-after-act');
      const steady = await gw.start(crashRequest('mid-call-steady', 'steady_write', 'write once'));
      const payment = await gw.start(crashRequest('mid-call-payment', 'slow_payment', 'pay once'));
      await until('both tools called by the first worker', 60_000, () =>
        gw.tools.callsOf('steady_write') === 1 && gw.tools.callsOf('slow_payment') === 1 ? true : undefined,
      );
      const first = gw.worker;
      assert.ok(first);

      // A second worker is up before the first dies: recovery is the server noticing, not a restart.
      figures.set('second worker start, ms', await gw.startWorker());
      await first.kill();
      const killedAt = Date.now();
      // The retry finds the first effect by key: the service answers at once from then on.
      gw.tools.behave('steady_write', 'ok');

      const [steadyOutcome, paymentOutcome] = await Promise.all([
        steady.outcome().then((outcome) => ({ outcome, ms: Date.now() - killedAt })),
        payment.outcome().then((outcome) => ({ outcome, ms: Date.now() - killedAt })),
      ]);
      figures.set('heartbeat timeout, ms', EXECUTION_BOUNDS.heartbeatTimeoutMs);
      figures.set('idempotent tool: kill to completed, ms', steadyOutcome.ms);
      figures.set('non-idempotent tool: kill to outcome_unknown, ms', paymentOutcome.ms);

      assert.equal(steadyOutcome.outcome.status, 'completed', JSON.stringify(steadyOutcome.outcome));
      if (steadyOutcome.outcome.status === 'completed') {
        assert.equal(steadyOutcome.outcome.execution.attempts, 2, 'the second attempt completed it');
        assert.deepEqual(steadyOutcome.outcome.result, { done: 'steady_write', args: { title: 'write once' }, runAs: 'svc-steady' });
      }
      assert.equal(paymentOutcome.outcome.status, 'outcome_unknown', JSON.stringify(paymentOutcome.outcome));
      if (paymentOutcome.outcome.status === 'outcome_unknown') {
        assert.equal(paymentOutcome.outcome.error.type, 'OutcomeUnknown');
        assert.match(paymentOutcome.outcome.error.message, /may have acted/);
      }
      assert.ok(steadyOutcome.ms < RECOVERY_BOUND_MS, `idempotent recovery took ${steadyOutcome.ms} ms (bound ${RECOVERY_BOUND_MS} ms)`);
      assert.ok(paymentOutcome.ms < RECOVERY_BOUND_MS, `non-idempotent outcome took ${paymentOutcome.ms} ms (bound ${RECOVERY_BOUND_MS} ms)`);

      await sleep(3_000); // any further retry would have come by now
      assert.equal(gw.tools.callsByKey.get(`toolgate:${steady.workflowId}`), 2, 'the idempotent tool was called twice with one key');
      assert.equal(gw.tools.callsByKey.get(`toolgate:${payment.workflowId}`), 1, 'the non-idempotent tool was called once and never again');
      assert.deepEqual(gw.tools.duplicateEffects(), []);
      assert.equal(gw.tools.effects.length, 2, 'one side effect per request');
      figures.set('tool calls (idempotent, same key)', gw.tools.callsByKey.get(`toolgate:${steady.workflowId}`) ?? 0);
      figures.set('tool calls (non-idempotent)', gw.tools.callsByKey.get(`toolgate:${payment.workflowId}`) ?? 0);
      figures.set('side effects', gw.tools.effects.length);
      figures.print();
    } finally {
      await gw.close();
    }
  },
);

test(
  'worker SIGKILLed mid local execution: the other worker runs the call again under the same key when the workflow task times out, and it acts once',
  { timeout: 240_000 },
  async () => {
    const figures = new Figures('worker SIGKILLed in the middle of a local execution');
    const gw = await startCrashGateway('crash-local-execution');
    try {
      gw.tools.behave('local_write', 'hang-after-act');
      const local = await gw.start(crashRequest('mid-call-local', 'local_write', 'write once, locally'));
      await until('the tool called by the first worker', 60_000, () => (gw.tools.callsOf('local_write') === 1 ? true : undefined));
      const first = gw.worker;
      assert.ok(first);
      figures.set('second worker start, ms', await gw.startWorker());
      await first.kill();
      const killedAt = Date.now();
      gw.tools.behave('local_write', 'ok');
      const outcome = await local.outcome();
      const ms = Date.now() - killedAt;
      figures.set('kill to completed, ms', ms);

      assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
      if (outcome.status === 'completed') {
        assert.deepEqual(outcome.result, { done: 'local_write', args: { title: 'write once, locally' }, runAs: 'svc-local' });
        assert.equal(outcome.execution.idempotencyKey, `toolgate:${local.workflowId}`);
      }
      assert.ok(ms < LOCAL_RECOVERY_BOUND_MS, `local recovery took ${ms} ms (bound ${LOCAL_RECOVERY_BOUND_MS} ms)`);
      await sleep(3_000);
      assert.equal(gw.tools.callsByKey.get(`toolgate:${local.workflowId}`), 2, 'called again with one key after the worker died');
      assert.deepEqual(gw.tools.duplicateEffects(), []);
      assert.equal(gw.tools.effects.length, 1, 'one side effect');

      // It ran in the workflow task: a local activity's marker, never a scheduled execution activity,
      // and the task the dead worker held timed out.
      const { events } = await gw.ops.workflow.getHandle(local.workflowId).fetchHistory();
      const scheduled = (events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'executeTool');
      const markers = (events ?? []).filter((e) =>
        Buffer.from(e.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data ?? [])
          .toString()
          .includes('"executeTool"'),
      );
      assert.equal(scheduled.length, 0, 'no execution activity was scheduled');
      assert.equal(markers.length, 1, 'one local execution marker');
      assert.ok(
        (events ?? []).some((e) => e.workflowTaskTimedOutEventAttributes),
        "the dead worker's workflow task timed out",
      );
      figures.print();
    } finally {
      await gw.close();
    }
  },
);
