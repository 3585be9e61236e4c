/**
 * The Temporal dev server is SIGKILLed (its SQLite file left as the crash left it) and started
 * again on the same file and port, three times: (a) while requests wait for approval, (b) right
 * after the API answered 200 to decisions, (c) while a side effect is being retried (the tool
 * answers 503 for a while). The worker and API processes keep running through it. Every accepted
 * decision applies, no request is lost, each side effect happens exactly once, and the outcomes
 * (as the agent reads them from the front door) equal those of the same requests run without
 * crashes on the same gateway.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ToolOutcome } from '../../src/client/index.js';
import { Figures, callApi, crashRequest, startCrashGateway, until, type CrashGateway, type CrashRequest } from '../helpers/processes.js';

/** The requests of one run: name → tool, arguments' title and the decision an approver sends. */
const PLAN = {
  phaseA: [
    ['a-approve-0', 'crash_write', 'approve'],
    ['a-approve-1', 'crash_write', 'approve'],
    ['a-approve-2', 'crash_write', 'approve'],
    ['a-approve-3', 'crash_write', 'approve'],
    ['a-reject-0', 'crash_write', 'reject'],
    ['a-reject-1', 'crash_write', 'reject'],
  ],
  phaseB: [
    ['b-approve', 'crash_write', 'approve'],
    ['b-reject', 'crash_write', 'reject'],
  ],
  phaseC: [['c-retrying', 'flaky_write', 'approve']],
} as const;
const ALL = [...PLAN.phaseA, ...PLAN.phaseB, ...PLAN.phaseC];

/** What must be the same with and without crashes. */
function comparable(outcome: ToolOutcome): Record<string, unknown> {
  const base = { status: outcome.status, tool: outcome.tool, approvals: outcome.approvals.map((a) => `${a.approverId}:${a.decision}`) };
  switch (outcome.status) {
    case 'completed':
      return { ...base, args: outcome.args, result: outcome.result, runAs: outcome.execution.runAs };
    case 'rejected':
      return { ...base, rejectedBy: outcome.rejectedBy, reason: outcome.reason };
    default:
      return { ...base, outcome };
  }
}

interface RunResult {
  outcomes: Record<string, Record<string, unknown>>;
  effects: number;
  duplicates: string[];
  /** Calls the tool got for the request whose side effect was being retried. */
  retryingCalls: number;
  /** When every outcome was known. */
  doneAt: number;
}

/**
 * Runs the plan under `prefix`; `crash` (when given) kills and restarts Temporal at the three
 * moments and returns how long the restart took.
 */
async function runPlan(gw: CrashGateway, prefix: string, crash?: (moment: string) => Promise<void>): Promise<RunResult> {
  const id = (name: string) => `${prefix}${name}`;
  const token = await gw.token('maria', ['manager']);
  const handles = new Map<string, CrashRequest>();
  for (const [name, tool] of ALL) handles.set(name, await gw.start(crashRequest(id(name), tool, name)));
  const digests = await until(`${prefix}: every request waiting for approval`, 60_000, async () => {
    const statuses = await Promise.all(ALL.map(([name]) => handles.get(name)!.status()));
    return statuses.every((s) => s.state === 'pending_approval' && s.digest)
      ? new Map<string, string>(ALL.map(([name], i) => [name, statuses[i]!.digest!]))
      : undefined;
  });
  const decide = async (name: string, decision: string): Promise<void> => {
    const answer = await callApi(gw.apiUrl, 'POST', `/v1/approvals/${id(name)}/decision`, {
      token,
      body: { decision, digest: digests.get(name), reason: decision === 'reject' ? 'not now' : 'fine' },
    });
    assert.equal(answer.status, 200, `${id(name)} ${decision}: ${JSON.stringify(answer.body)}`);
  };

  // (a) requests wait for approval when the server dies; the decisions come after it is back.
  await crash?.('(a) while requests wait for approval');
  for (const [name, , decision] of PLAN.phaseA) await decide(name, decision);

  // (b) the API answered 200, then the server dies at once.
  for (const [name, , decision] of PLAN.phaseB) await decide(name, decision);
  await crash?.('(b) just after decisions were accepted');

  // (c) the tool is down and the side effect is being retried with backoff when the server dies.
  gw.tools.behave('flaky_write', 'unavailable');
  const retryingKey = `toolgate:${handles.get('c-retrying')!.workflowId}`;
  for (const [name, , decision] of PLAN.phaseC) await decide(name, decision);
  await until(`${prefix}: the side effect retried`, 30_000, () => ((gw.tools.callsByKey.get(retryingKey) ?? 0) >= 2 ? true : undefined), 50);
  await sleep(300); // let the worker report the failed attempt: the server now holds the retry timer
  await crash?.('(c) while a side effect is being retried');
  gw.tools.behave('flaky_write', 'ok');

  const outcomes: Record<string, Record<string, unknown>> = {};
  for (const [name] of ALL) outcomes[name] = comparable(await handles.get(name)!.outcome());
  const keys = new Set([...handles.values()].map((h) => `toolgate:${h.workflowId}`));
  const effects = gw.tools.effects.filter((e) => keys.has(e.key));
  const duplicates = gw.tools.duplicateEffects().filter((key) => keys.has(key));
  return { outcomes, effects: effects.length, duplicates, retryingCalls: gw.tools.callsByKey.get(retryingKey) ?? 0, doneAt: Date.now() };
}

test(
  'Temporal SIGKILLed while requests wait, after accepted decisions and during retries: nothing lost, nothing doubled, outcomes as without crashes',
  { timeout: 240_000 },
  async () => {
    const figures = new Figures('Temporal dev server killed (SIGKILL) and restarted on the same SQLite file');
    const gw = await startCrashGateway('crash-temporal');
    try {
      const controlStarted = Date.now();
      const control = await runPlan(gw, 'control-');
      figures.set('control run (no crash), ms', Date.now() - controlStarted);

      let kills = 0;
      let lastRestartAt = 0;
      const crash = async (moment: string): Promise<void> => {
        await gw.temporal.kill();
        kills += 1;
        const restartMs = await gw.temporal.restart();
        lastRestartAt = Date.now();
        figures.set(`${moment}: server restart (spawn to serving), ms`, restartMs);
        // The worker and the API ride out the outage: they are the same processes afterwards.
        assert.equal(gw.worker?.child.exitCode, null, `the worker died with the server:\n${gw.worker?.output().slice(-3000)}`);
        assert.equal(gw.api?.child.exitCode, null, `the API died with the server:\n${gw.api?.output().slice(-3000)}`);
      };
      const crashStarted = Date.now();
      const crashed = await runPlan(gw, 'crash-', crash);
      figures.set('crash run (3 kills), ms', Date.now() - crashStarted);
      figures.set('(c) server serving again to every outcome known (retry resumed), ms', crashed.doneAt - lastRestartAt);
      // The retry schedule survived the crash: attempts before it (2) and after it.
      assert.ok(crashed.retryingCalls >= 3, `the retried side effect was attempted again after the restart (${crashed.retryingCalls} calls)`);
      figures.set('(c) tool calls of the retried request (2 before the kill)', crashed.retryingCalls);

      assert.deepEqual(crashed.outcomes, control.outcomes, 'the outcomes with crashes equal those without');
      const approved = ALL.filter(([, , decision]) => decision === 'approve').length;
      assert.equal(control.effects, approved);
      assert.equal(crashed.effects, approved, 'one side effect per approved request, none for rejected ones');
      assert.deepEqual(crashed.duplicates, []);
      assert.deepEqual(
        Object.values(crashed.outcomes).map((o) => o.status),
        ALL.map(([, , decision]) => (decision === 'approve' ? 'completed' : 'rejected')),
      );

      figures.set('requests per run', ALL.length);
      figures.set('server kills (SIGKILL)', kills);
      figures.set('server restarts (same file, same port)', kills);
      figures.set('accepted decisions applied', ALL.length);
      figures.set('side effects (crash run)', crashed.effects);
      figures.set('duplicate side effects', crashed.duplicates.length);
      figures.set('tool calls in all (both runs, retries included)', gw.tools.calls());
      figures.print();
    } finally {
      await gw.close();
    }
  },
);
