/**
 * The worker dies with 50 requests waiting for approval (SIGKILL: no shutdown, no goodbye), the
 * approvers decide while no worker is running, and a new worker comes up: every request runs its
 * side effect exactly once, counted by a real HTTP tool service. The agent submits and reads its
 * outcomes through the spawned API's front door with its agent token.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ToolOutcome } from '../../src/client/index.js';
import { Figures, callApi, crashRequest, startCrashGateway, until } from '../helpers/processes.js';

const REQUESTS = 50;

test(
  'worker SIGKILLed with 50 requests pending, approvals sent while it is down: all complete, each side effect exactly once',
  { timeout: 180_000 },
  async () => {
    const figures = new Figures('worker killed while 50 requests wait for approval');
    const gw = await startCrashGateway('crash-worker');
    try {
      const ids = Array.from({ length: REQUESTS }, (_, i) => `worker-kill-${i}`);
      const handles = await Promise.all(ids.map((id, i) => gw.start(crashRequest(id, 'crash_write', `ticket ${i}`))));
      const digests = await until('every request waiting for approval', 60_000, async () => {
        const statuses = await Promise.all(handles.map((handle) => handle.status()));
        return statuses.every((s) => s.state === 'pending_approval' && s.digest) ? statuses.map((s) => s.digest as string) : undefined;
      });
      figures.set('requests', REQUESTS);

      await gw.killWorker();
      const killedAt = Date.now();
      figures.set('worker kills (SIGKILL)', 1);

      // Approvals sent while no worker runs: each is in flight until a worker can run the update.
      const token = await gw.token('maria', ['manager']);
      const decisions = ids.map((id, i) =>
        callApi(gw.apiUrl, 'POST', `/v1/approvals/${id}/decision`, {
          token,
          body: { decision: 'approve', digest: digests[i], reason: 'approved while the worker was down' },
          timeoutMs: 120_000,
        }).then((answer) => ({ ...answer, at: Date.now() })),
      );
      let settledEarly = 0;
      for (const decision of decisions) void decision.then(() => (settledEarly += 1));
      await sleep(2_000);
      assert.equal(settledEarly, 0, 'no decision can be answered while no worker runs');
      assert.equal(gw.tools.effects.length, 0, 'nothing ran while the worker was down');

      const restartedAt = Date.now();
      const workerStartMs = await gw.startWorker();
      figures.set('worker restarts', 1);
      figures.set('worker down (kill to new worker ready), ms', Date.now() - killedAt);
      figures.set('new worker start (spawn to polling), ms', workerStartMs);

      const answers = await Promise.all(decisions);
      const refused = answers.filter((answer) => answer.status !== 200);
      assert.deepEqual(
        refused.map((a) => `${a.status} ${JSON.stringify(a.body)}`),
        [],
        'every decision sent while the worker was down is accepted',
      );
      figures.set('decisions accepted after restart', answers.length);
      figures.set('all decisions answered, ms after restart', Math.max(...answers.map((a) => a.at)) - restartedAt);

      const outcomes: ToolOutcome[] = await Promise.all(handles.map((handle) => handle.outcome()));
      figures.set('recovery (new worker spawned to all outcomes), ms', Date.now() - restartedAt);
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ids.map(() => 'completed'),
      );
      for (const [i, outcome] of outcomes.entries()) {
        assert.equal(outcome.status, 'completed');
        if (outcome.status !== 'completed') continue;
        assert.deepEqual(outcome.args, { title: `ticket ${i}` });
        assert.deepEqual(
          outcome.approvals.map((a) => [a.approverId, a.decision]),
          [['maria', 'approve']],
        );
      }

      // Exactly once: one effect per request, none twice, every one under the request's own key.
      assert.equal(gw.tools.effects.length, REQUESTS, 'one side effect per request');
      assert.deepEqual(gw.tools.duplicateEffects(), []);
      assert.deepEqual(new Set(gw.tools.effects.map((e) => e.requestId)), new Set(ids));
      for (const [i, outcome] of outcomes.entries()) {
        assert.equal(outcome.workflowId, handles[i]?.workflowId, 'the outcome is of the tenant-scoped workflow the front door started');
        if (outcome.status === 'completed') assert.equal(outcome.execution.idempotencyKey, `toolgate:${outcome.workflowId}`);
      }
      figures.set('side effects', gw.tools.effects.length);
      figures.set('tool calls (retries included)', gw.tools.calls());
      figures.set('duplicate side effects', gw.tools.duplicateEffects().length);
      figures.print();
    } finally {
      await gw.close();
    }
  },
);
