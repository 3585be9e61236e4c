/**
 * Durable timers fall due while no worker runs: the worker is SIGKILLed before escalation (6 s)
 * and expiry (8 s, test/fixtures/crash/policy.yaml) are due and comes back after both. Each escalation fires once (one webhook
 * delivery per request at a real loopback receiver) and the escalated group can then approve;
 * each expiry ends the request `expired` and never executes the tool.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ToolOutcome } from '../../src/client/index.js';
import { Figures, callApi, crashRequest, startCrashGateway, until } from '../helpers/processes.js';
import { startWebhookReceiver } from '../helpers/tool-service.js';

const EACH = 5;
const ESCALATION_MS = 6_000;

test('escalation and expiry due while the worker is down fire once when it returns; expiry never executes', { timeout: 150_000 }, async () => {
  const figures = new Figures('escalation and expiry timers due while the worker is down');
  const hooks = await startWebhookReceiver();
  const gw = await startCrashGateway('crash-timers', { env: { TOOLGATE_WEBHOOKS: `json=${hooks.url}` } });
  try {
    // Warm the worker up (first workflow task, bundle loaded) so the requests reach their timers fast.
    const warmUp = await gw.start(crashRequest('timer-warm-up', 'crash_write', 'warm up'));
    await until('the warm-up request to wait for approval', 30_000, async () => ((await warmUp.status()).state === 'pending_approval' ? true : undefined), 50);

    const escalating = Array.from({ length: EACH }, (_, i) => `timer-escalate-${i}`);
    const expiring = Array.from({ length: EACH }, (_, i) => `timer-expire-${i}`);
    const handles = await Promise.all([
      ...escalating.map((id, i) => gw.start(crashRequest(id, 'escalating_write', `escalate ${i}`))),
      ...expiring.map((id, i) => gw.start(crashRequest(id, 'expiring_write', `expire ${i}`))),
    ]);
    const statuses = await until(
      'every request waiting for approval',
      20_000,
      async () => {
        const all = await Promise.all(handles.map((handle) => handle.status()));
        return all.every((s) => s.state === 'pending_approval') ? all : undefined;
      },
      50,
    );
    await gw.killWorker();
    const killedAt = Date.now();
    // When each timer falls due, from the workflows' own clocks (expiresAt = approval start + expires_after).
    const escalationDue = Math.min(...statuses.slice(0, EACH).map((s) => Date.parse(s.expiresAt ?? '') - 3_600_000 + ESCALATION_MS));
    const expiryDue = Math.max(...statuses.slice(EACH).map((s) => Date.parse(s.expiresAt ?? '')));
    assert.ok(Number.isFinite(escalationDue) && Number.isFinite(expiryDue));
    // The scenario holds only if no timer was due yet when the worker died.
    assert.ok(killedAt < escalationDue, `the worker died ${killedAt - escalationDue} ms after the first escalation was due`);
    figures.set('worker killed before the first escalation was due by, ms', escalationDue - killedAt);
    figures.set('requests (escalating + expiring)', `${EACH} + ${EACH}`);
    figures.set('worker kills (SIGKILL)', 1);
    const kinds = (kind: string) => hooks.received.filter((event) => event.kind === kind);
    assert.equal(kinds('escalated').length, 0);

    // Stay down until both timers are due, with a margin.
    await sleep(Math.max(0, expiryDue + 1_000 - Date.now()));
    const restartedAt = Date.now();
    const workerStartMs = await gw.startWorker();
    figures.set('worker restarts', 1);
    figures.set('worker down, ms', Date.now() - killedAt);
    figures.set('new worker start (spawn to polling), ms', workerStartMs);

    await until(`${EACH} escalation notifications`, 60_000, () => (kinds('escalated').length >= EACH ? true : undefined));
    figures.set('escalations delivered after restart, ms', Date.now() - restartedAt);
    const expiredHandles = handles.slice(EACH);
    const expired: ToolOutcome[] = await Promise.all(expiredHandles.map((handle) => handle.outcome()));
    figures.set('expiries recorded after restart, ms', Date.now() - restartedAt);
    assert.deepEqual(
      expired.map((o) => o.status),
      expiring.map(() => 'expired'),
    );

    // Fired once: wait past when a duplicate would have come, then count per request.
    await sleep(3_000);
    const escalations = kinds('escalated').map((event) => event.requestId);
    assert.deepEqual([...escalations].sort(), [...escalating].sort(), 'exactly one escalation notification per request');
    for (const event of kinds('escalated')) assert.deepEqual(event.groups, ['director']);
    for (const handle of handles.slice(0, EACH)) {
      const status = await handle.status();
      assert.equal(status.state, 'pending_approval');
      assert.equal(status.tier, 1);
      assert.deepEqual(status.notifications.filter((n) => n.kind === 'escalated').length, 1);
    }

    // The escalation took effect: a director (not eligible before) approves, and the tool runs once.
    const token = await gw.token('dana', ['director']);
    for (const id of escalating) {
      const { body } = await callApi(gw.apiUrl, 'GET', `/v1/approvals/${id}`, { token });
      const answer = await callApi(gw.apiUrl, 'POST', `/v1/approvals/${id}/decision`, { token, body: { decision: 'approve', digest: body.digest } });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
    }
    const approved: ToolOutcome[] = await Promise.all(handles.slice(0, EACH).map((handle) => handle.outcome()));
    assert.deepEqual(
      approved.map((o) => o.status),
      escalating.map(() => 'completed'),
    );

    // Expiry never executes; the escalated requests executed once each.
    assert.equal(gw.tools.callsOf('expiring_write'), 0, 'an expired request never reaches the tool');
    assert.equal(gw.tools.effects.filter((e) => e.tool === 'escalating_write').length, EACH);
    assert.deepEqual(gw.tools.duplicateEffects(), []);
    figures.set('escalation notifications', escalations.length);
    figures.set('expired outcomes', expired.length);
    figures.set('side effects of expired requests', gw.tools.callsOf('expiring_write'));
    figures.set('side effects of escalated requests (approved by director)', gw.tools.effects.length);
    figures.print();
  } finally {
    await gw.close();
    await hooks.close();
  }
});
