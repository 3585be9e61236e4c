/**
 * toolgate in its production topology, on loopback (test/cluster/cluster.ts): PostgreSQL, the
 * Temporal server built from the pinned Go module with its services on separate ports, two
 * `toolgate worker` and two `toolgate api` processes sharing exactly the keys each role needs.
 * Requests come in through the APIs' front doors with an agent token; decisions go through the
 * approval API with approver tokens; a loopback tool service counts every side effect.
 *
 * Run with `npm run test:cluster` (not part of `npm test`: the first run builds the Temporal
 * server from source, which takes minutes).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { writeFile } from 'node:fs/promises';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ToolGateway, type ToolOutcome } from '../../src/client/index.js';
import { EXECUTION_BOUNDS, statusQuery, workflowIdFor, type RequestStatus } from '../../src/shared/index.js';
import { startCrashToolService, type CrashToolService } from '../fixtures/crash/tool-service.js';
import { CRASH_AGENT, Figures, REPO_ROOT, callApi, crashRequest, startCrashGateway, until } from '../helpers/processes.js';
import { startCluster, type Cluster, type ClusterApi } from './cluster.js';

let cluster: Cluster;
let tools: CrashToolService;
let policyDir: string;

/** The agent's SDK at one API: it holds its agent token and nothing else. */
const agents = new Map<string, ToolGateway>();
function agentAt(api: ClusterApi): ToolGateway {
  const agent = agents.get(api.name);
  if (!agent) throw new Error(`no agent for ${api.name}`);
  return agent;
}

function apiA(): ClusterApi {
  return cluster.apis[0] as ClusterApi;
}
function apiB(): ClusterApi {
  return cluster.apis[1] as ClusterApi;
}

/** The ops view of a request (a Temporal query with the codec keys): for assertions only. */
function statusOf(requestId: string): Promise<RequestStatus> {
  return cluster.ops.workflow.getHandle(workflowIdFor(CRASH_AGENT.tenant, requestId)).query(statusQuery);
}

/** Waits until every request waits for approval; returns their digests in order. */
async function pendingDigests(ids: string[], timeoutMs = 90_000): Promise<string[]> {
  return until(
    `${ids.length} requests waiting for approval`,
    timeoutMs,
    async () => {
      const statuses = await Promise.all(ids.map(statusOf));
      return statuses.every((s) => s.state === 'pending_approval' && s.digest) ? statuses.map((s) => s.digest as string) : undefined;
    },
    250,
  );
}

/** The outcome of a request as the agent reads it through `api`'s front door. */
async function outcomeAt(api: ClusterApi, requestId: string): Promise<ToolOutcome> {
  return (await agentAt(api).get(requestId)).outcome();
}

async function approve(api: ClusterApi, requestId: string, digest: string, token: string, timeoutMs = 120_000): Promise<{ status: number; body: any }> {
  return callApi(api.url, 'POST', `/v1/approvals/${requestId}/decision`, {
    token,
    body: { decision: 'approve', digest, reason: 'cluster test' },
    timeoutMs,
  });
}

/** Every worker and API slot is running again (a test that killed one restores it). */
async function restoreAll(): Promise<void> {
  await Promise.all([...cluster.workers, ...cluster.apis].filter((m) => m.process === undefined).map((m) => m.start()));
}

/** The limit of the rate-limit test, on a tool no other test of this file calls. */
const RATE_LIMITED_TOOL = 'fragile_write';
const RATE_LIMIT = 10;
const RATE_LIMIT_POLICY = `
limits:
  cluster-fragile-writes:
    per: tool
    tools: [${RATE_LIMITED_TOOL}]
    rate: ${RATE_LIMIT}/1m
`;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

before(
  async () => {
    tools = await startCrashToolService();
    policyDir = mkdtempSync(join(tmpdir(), 'toolgate-cluster-policy-'));
    const template = readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'crash', 'policy.yaml'), 'utf8');
    await writeFile(join(policyDir, 'policy.yaml'), `${template.replaceAll('{{TOOLS_URL}}', tools.url)}${RATE_LIMIT_POLICY}`);
    cluster = await startCluster({ policy: join(policyDir, 'policy.yaml'), log: (line) => process.stdout.write(`cluster: ${line}\n`) });
    const token = await cluster.agentToken(CRASH_AGENT);
    for (const api of cluster.apis) agents.set(api.name, new ToolGateway({ url: api.url, token, pollSeconds: 10 }));
    const figures = new Figures('cluster start-up');
    for (const [name, ms] of Object.entries(cluster.timings)) figures.set(`${name}, ms`, ms);
    figures.print();
  },
  { timeout: 900_000 },
);

after(async () => {
  const started = Date.now();
  await cluster?.close();
  await tools?.close();
  rmSync(policyDir, { recursive: true, force: true });
  process.stdout.write(`cluster: stopped in ${Date.now() - started} ms\n`);
});

test('a request started through API A and decided through API B completes once; no process made a key of its own', { timeout: 180_000 }, async () => {
  const figures = new Figures('started through one API, decided through the other');
  const requestId = 'cross-api-1';
  const started = Date.now();
  const handle = await agentAt(apiA()).start(crashRequest(requestId, 'crash_write', 'cross the APIs'));
  assert.equal(handle.requestId, requestId);
  const [digest] = await pendingDigests([requestId]);
  figures.set('start (API A) to pending approval, ms', Date.now() - started);

  const maria = await cluster.approverToken({ sub: 'maria', tenant: CRASH_AGENT.tenant, groups: ['manager'] });
  // API B lists it among the waiting approvals too: both read the same cluster.
  const decided = Date.now();
  const answer = await approve(apiB(), requestId, digest as string, maria);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  figures.set('decision through API B, ms', Date.now() - decided);

  // The agent reads its outcome through API B: the request is the cluster's, not one API's.
  const outcome = await outcomeAt(apiB(), requestId);
  figures.set('start to outcome, ms', Date.now() - started);
  assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
  if (outcome.status === 'completed') {
    assert.deepEqual(outcome.result, { done: 'crash_write', args: { title: 'cross the APIs' }, runAs: 'svc-crash' });
    assert.deepEqual(
      outcome.approvals.map((a) => [a.approverId, a.decision]),
      [['maria', 'approve']],
    );
  }
  await sleep(1_000);
  const key = `toolgate:${workflowIdFor(CRASH_AGENT.tenant, requestId)}`;
  assert.equal(tools.callsByKey.get(key), 1, 'the tool was called once');
  assert.deepEqual(tools.effects.filter((e) => e.requestId === requestId).length, 1, 'one side effect');
  // Each process got its keys by variable; none created one in its own state directory.
  assert.deepEqual(cluster.createdKeyFiles(), []);
  figures.print();
});

test('50 requests pending, worker 1 SIGKILLed, decisions through both APIs: all 50 complete, each side effect once', { timeout: 300_000 }, async () => {
  await restoreAll();
  const figures = new Figures('worker SIGKILLed with 50 requests pending (two workers, two APIs)');
  const REQUESTS = 50;
  const ids = Array.from({ length: REQUESTS }, (_, i) => `fifty-${i}`);
  // Half enter through each API.
  await Promise.all(ids.map((id, i) => agentAt(i % 2 === 0 ? apiA() : apiB()).start(crashRequest(id, 'crash_write', `ticket ${i}`))));
  const digests = await pendingDigests(ids);
  figures.set('requests', REQUESTS);

  const worker1 = cluster.workers[0];
  assert.ok(worker1?.process, 'worker 1 runs');
  await worker1.kill();
  const killedAt = Date.now();
  figures.set('worker kills (SIGKILL)', 1);

  const maria = await cluster.approverToken({ sub: 'maria', tenant: CRASH_AGENT.tenant, groups: ['manager'] });
  const answers = await Promise.all(
    ids.map((id, i) => approve(i % 2 === 0 ? apiB() : apiA(), id, digests[i] as string, maria).then((a) => ({ ...a, at: Date.now() }))),
  );
  assert.deepEqual(
    answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${JSON.stringify(a.body)}`),
    [],
    'every decision is accepted by the surviving worker',
  );
  figures.set('all 50 decisions answered, ms after the kill', Math.max(...answers.map((a) => a.at)) - killedAt);

  const outcomes = await Promise.all(ids.map((id, i) => outcomeAt(i % 2 === 0 ? apiA() : apiB(), id)));
  figures.set('all 50 outcomes, ms after the kill', Date.now() - killedAt);
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ids.map(() => 'completed'),
  );
  for (const [i, outcome] of outcomes.entries()) {
    if (outcome.status !== 'completed') continue;
    assert.deepEqual(outcome.args, { title: `ticket ${i}` });
    assert.deepEqual(
      outcome.approvals.map((a) => [a.approverId, a.decision]),
      [['maria', 'approve']],
    );
  }
  await sleep(2_000);
  const effects = tools.effects.filter((e) => e.requestId.startsWith('fifty-'));
  assert.equal(effects.length, REQUESTS, 'one side effect per request');
  assert.deepEqual(new Set(effects.map((e) => e.requestId)), new Set(ids));
  assert.deepEqual(tools.duplicateEffects(), []);
  figures.set('side effects', effects.length);
  figures.set('duplicate side effects', tools.duplicateEffects().length);
  figures.set('worker 1 restart (spawn to polling), ms', await worker1.start());
  figures.print();
});

test(
  'a worker SIGKILLed in the middle of a tool call: the idempotent tool is retried on the other worker within the heartbeat bound and acts once',
  { timeout: 240_000 },
  async () => {
    await restoreAll();
    const figures = new Figures('worker SIGKILLed mid-execution (two workers)');
    // Heartbeat timeout, the first retry's backoff (1 s) and room for a loaded machine's timers.
    const RECOVERY_BOUND_MS = EXECUTION_BOUNDS.heartbeatTimeoutMs + 1_000 + 6_000;
    const requestId = 'mid-call-1';
    tools.behave('steady_write', 'hang-after-act');
    try {
      const handle = await agentAt(apiA()).start(crashRequest(requestId, 'steady_write', 'write once'));
      await until('the tool called by a worker', 60_000, () =>
        tools.callsByKey.get(`toolgate:${workflowIdFor(CRASH_AGENT.tenant, handle.requestId)}`) === 1 ? true : undefined,
      );
      // Which worker runs the attempt: its identity is `<pid>@<host>`.
      const description = await cluster.ops.workflow.getHandle(workflowIdFor(CRASH_AGENT.tenant, requestId)).describe();
      const identity = description.raw.pendingActivities?.[0]?.lastWorkerIdentity ?? '';
      const running = cluster.workerByPid(Number(identity.split('@')[0]));
      assert.ok(running, `the attempt runs on one of the cluster's workers (identity ${identity})`);
      figures.set('attempt ran on', running.name);
      await running.kill();
      const killedAt = Date.now();
      // The retry finds the first effect by its key: the service answers at once from now on.
      tools.behave('steady_write', 'ok');

      const outcome = await outcomeAt(apiB(), requestId);
      const recoveryMs = Date.now() - killedAt;
      figures.set('heartbeat timeout, ms', EXECUTION_BOUNDS.heartbeatTimeoutMs);
      figures.set('kill to completed (retried on the other worker), ms', recoveryMs);
      process.stdout.write(`cluster: ${running.name} SIGKILLed mid-call; the other worker completed the retry ${recoveryMs} ms later\n`);
      assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
      if (outcome.status === 'completed') {
        assert.equal(outcome.execution.attempts, 2, 'the second attempt completed it');
        assert.deepEqual(outcome.result, { done: 'steady_write', args: { title: 'write once' }, runAs: 'svc-steady' });
      }
      assert.ok(recoveryMs < RECOVERY_BOUND_MS, `recovery took ${recoveryMs} ms (bound ${RECOVERY_BOUND_MS} ms)`);
      await sleep(3_000);
      const key = `toolgate:${workflowIdFor(CRASH_AGENT.tenant, requestId)}`;
      assert.equal(tools.callsByKey.get(key), 2, 'called twice with one key');
      assert.equal(tools.effects.filter((e) => e.requestId === requestId).length, 1, 'one side effect');
      figures.set('tool calls (same key)', tools.callsByKey.get(key) ?? 0);
      figures.set('killed worker restart, ms', await running.start());
      figures.print();
    } finally {
      tools.behave('steady_write', 'ok');
    }
  },
);

test(
  'an API SIGKILLed mid-decision loses nothing: each decision is recorded or cleanly refused, re-sent through the other API, and every request completes once',
  { timeout: 420_000 },
  async () => {
    await restoreAll();
    const figures = new Figures('API SIGKILLed mid-decision');
    const maria = await cluster.approverToken({ sub: 'maria', tenant: CRASH_AGENT.tenant, groups: ['manager'] });
    const RESENT_OK = new Set(['200', '409 not_pending', '409 duplicate_vote']);
    const tally = (answers: string[]): string => [...new Set(answers)].map((code) => `${code} ×${answers.filter((a) => a === code).length}`).join(', ');
    const answerCode = (a: { status: number; body: any }): string =>
      a.status === 200 ? '200' : `${a.status} ${a.body?.error?.code ?? a.body?.code ?? JSON.stringify(a.body)}`;

    // 1. Certainly in flight: no worker runs, so API B's updates wait in the server when B dies.
    const heldIds = Array.from({ length: 10 }, (_, i) => `api-kill-held-${i}`);
    await Promise.all(heldIds.map((id, i) => agentAt(apiA()).start(crashRequest(id, 'crash_write', `held ${i}`))));
    const heldDigests = await pendingDigests(heldIds);
    for (const worker of cluster.workers) await worker.kill();
    const held = heldIds.map((id, i) =>
      approve(apiB(), id, heldDigests[i] as string, maria, 60_000).then(
        (a) => answerCode(a),
        (err: Error) => `error ${err.name}`,
      ),
    );
    await sleep(1_500);
    await apiB().kill();
    const heldAnswers = await Promise.all(held);
    figures.set('decisions in flight when API B died (no worker running)', heldIds.length);
    figures.set('answers API B gave before dying', heldAnswers.filter((a) => !a.startsWith('error')).length);
    const workersBack = Date.now();
    await Promise.all(cluster.workers.map((w) => w.start()));
    figures.set('both workers back, ms', Date.now() - workersBack);

    // 2. A race: workers run; 20 decisions go to API B 25 ms apart, and B is SIGKILLed the moment
    //    it answers the first: some are answered, some in flight, the last ones find no API.
    await apiB().start();
    const raceIds = Array.from({ length: 20 }, (_, i) => `api-kill-race-${i}`);
    await Promise.all(raceIds.map((id, i) => agentAt(apiA()).start(crashRequest(id, 'crash_write', `race ${i}`))));
    const raceDigests = await pendingDigests(raceIds);
    const sentAt = Date.now();
    const race = raceIds.map((id, i) =>
      sleep(i * 25).then(() =>
        approve(apiB(), id, raceDigests[i] as string, maria, 60_000).then(
          (a) => answerCode(a),
          // ECONNREFUSED: it never reached an API; a reset socket: B died with it in hand.
          (err: Error) => `error ${(err.cause as { code?: string } | undefined)?.code ?? err.name}`,
        ),
      ),
    );
    await Promise.race(race);
    await apiB().kill();
    figures.set('race: B SIGKILLed on its first answer, ms after the first send', Date.now() - sentAt);
    const raceAnswers = await Promise.all(race);
    const recordedAtKill = (await Promise.all(raceIds.map(statusOf))).filter((s) => s.state !== 'pending_approval').length;
    figures.set('race: decisions sent through API B', raceIds.length);
    figures.set('race: answered 200 before B died', raceAnswers.filter((a) => a === '200').length);
    figures.set('race: cut off by the kill', tally(raceAnswers.filter((a) => a.startsWith('error'))) || 0);
    figures.set('race: recorded in their workflows right after the kill', recordedAtKill);
    assert.deepEqual(
      raceAnswers.filter((a) => a !== '200' && !a.startsWith('error')),
      [],
      'an answer B gave is an acceptance',
    );
    assert.ok(
      raceAnswers.some((a) => a.startsWith('error')),
      'the kill cut off decisions in flight',
    );

    // The approver re-sends every decision through API A: recorded ones are refused cleanly, the rest accepted.
    const ids = [...heldIds, ...raceIds];
    const digests = [...heldDigests, ...raceDigests];
    const resent = Date.now();
    const resentAnswers = await Promise.all(ids.map((id, i) => approve(apiA(), id, digests[i] as string, maria).then(answerCode)));
    assert.deepEqual(
      resentAnswers.filter((a) => !RESENT_OK.has(a)),
      [],
      're-sent decisions are accepted or refused as already recorded',
    );
    figures.set('re-sent through API A', tally(resentAnswers));

    const outcomes = await Promise.all(ids.map((id) => outcomeAt(apiA(), id)));
    figures.set('re-send to all outcomes, ms', Date.now() - resent);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ids.map(() => 'completed'),
    );
    for (const outcome of outcomes) {
      // One approval per request: a decision recorded before the kill and its re-sending are one vote.
      if (outcome.status === 'completed')
        assert.deepEqual(
          outcome.approvals.map((a) => [a.approverId, a.decision]),
          [['maria', 'approve']],
        );
    }
    await sleep(2_000);
    const effects = tools.effects.filter((e) => e.requestId.startsWith('api-kill-'));
    assert.equal(effects.length, ids.length, 'one side effect per request');
    assert.deepEqual(tools.duplicateEffects(), []);
    figures.set('side effects', effects.length);
    figures.print();
  },
);

test('latency: p50 of an auto-allowed call through the cluster, and through the dev server for comparison', { timeout: 300_000 }, async () => {
  await restoreAll();
  const figures = new Figures('auto-allowed call latency (steady_write, no approval), sequential');
  // The comparison: 100 auto-allowed calls on PostgreSQL and on the dev server, one run.
  const CALLS = 100;
  const measure = async (agent: ToolGateway, prefix: string): Promise<number[]> => {
    const times: number[] = [];
    for (let i = 0; i < CALLS + 3; i++) {
      const started = Date.now();
      const result = await agent.call(crashRequest(`${prefix}-${i}`, 'steady_write', `p50 ${i}`));
      assert.deepEqual(result, { done: 'steady_write', args: { title: `p50 ${i}` }, runAs: 'svc-steady' });
      // The first calls warm caches and connections.
      if (i >= 3) times.push(Date.now() - started);
    }
    return times;
  };
  const clusterTimes = await measure(agentAt(apiA()), 'p50-cluster');
  figures.set('cluster p50, ms', percentile(clusterTimes, 50));
  figures.set('cluster p95, ms', percentile(clusterTimes, 95));

  const dev = await startCrashGateway('cluster-p50');
  try {
    const devTimes = await measure(dev.agent, 'p50-dev');
    figures.set('dev server p50, ms', percentile(devTimes, 50));
    figures.set('dev server p95, ms', percentile(devTimes, 95));
    figures.set('dev ÷ cluster, p50', Number((percentile(devTimes, 50) / percentile(clusterTimes, 50)).toFixed(2)));
    assert.equal(devTimes.length, CALLS);
  } finally {
    await dev.close();
  }
  figures.set('calls measured each', CALLS);
  figures.print();
  assert.equal(clusterTimes.length, CALLS);
});

test(
  'rate limits hold across both workers: 30 concurrent calls of a 10/1m limit through both APIs, exactly 10 allowed, both workers evaluated',
  { timeout: 120_000 },
  async () => {
    await restoreAll();
    const figures = new Figures('rate limit shared by both workers (PostgreSQL)');
    const hitLabels = { tool: RATE_LIMITED_TOOL, tenant: CRASH_AGENT.tenant, limit: 'cluster-fragile-writes' };
    const hitsBefore = await acrossWorkers('toolgate_rate_limit_hits_total', hitLabels);
    const CALLS = 30;
    const ids = Array.from({ length: CALLS }, (_, i) => `rate-limited-${i}`);
    const started = Date.now();
    const handles = await Promise.all(ids.map((id, i) => agentAt(i % 2 === 0 ? apiA() : apiB()).start(crashRequest(id, RATE_LIMITED_TOOL, `limited ${i}`))));
    const outcomes = await Promise.all(handles.map((handle) => handle.outcome()));
    figures.set('calls (concurrent, half through each API)', CALLS);
    figures.set('all outcomes, ms', Date.now() - started);

    const allowed = outcomes.filter((o) => o.status === 'completed');
    const limited = outcomes.filter((o) => o.status === 'denied' && o.code === 'rate_limited');
    figures.set(`allowed (limit ${RATE_LIMIT}/1m)`, allowed.length);
    figures.set('denied rate_limited', limited.length);
    assert.equal(
      allowed.length,
      RATE_LIMIT,
      JSON.stringify(outcomes.filter((o) => o.status !== 'completed' && !(o.status === 'denied' && o.code === 'rate_limited'))),
    );
    assert.equal(limited.length, CALLS - RATE_LIMIT);
    await until('the rate-limit hits counted by the workers', 30_000, async () =>
      (await acrossWorkers('toolgate_rate_limit_hits_total', hitLabels)) === hitsBefore + CALLS - RATE_LIMIT ? true : undefined,
    );
    for (const o of limited) {
      assert.ok(o.status === 'denied');
      assert.equal(o.rule, 'limit:cluster-fragile-writes');
      assert.match(o.reasons[0] ?? '', new RegExp(`exhausted for ${CRASH_AGENT.tenant}/${RATE_LIMITED_TOOL}; retry after \\d+ ms`));
    }

    // Which worker evaluated each request: the one that completed the workflow task recording the
    // evaluatePolicy local activity (the last local-activity marker; loadTrustAnchors is the first).
    const evaluators = await Promise.all(
      ids.map(async (id) => {
        const history = await cluster.ops.workflow.getHandle(workflowIdFor(CRASH_AGENT.tenant, id)).fetchHistory();
        let identity = '';
        let evaluator = '';
        for (const event of history.events ?? []) {
          if (event.workflowTaskCompletedEventAttributes) identity = event.workflowTaskCompletedEventAttributes.identity ?? '';
          if (event.markerRecordedEventAttributes?.markerName === 'core_local_activity') evaluator = identity;
        }
        return cluster.workerByPid(Number(evaluator.split('@')[0]))?.name ?? `unknown (${evaluator})`;
      }),
    );
    const byWorker = (name: string, which: 'all' | 'allowed') =>
      evaluators.filter((e, i) => e === name && (which === 'all' || outcomes[i]?.status === 'completed')).length;
    for (const worker of cluster.workers)
      figures.set(`evaluated by ${worker.name} (allowed)`, `${byWorker(worker.name, 'all')} (${byWorker(worker.name, 'allowed')})`);
    assert.deepEqual([...new Set(evaluators)].sort(), cluster.workers.map((w) => w.name).sort(), 'both workers evaluated some of the calls');

    await sleep(1_000);
    const effects = tools.effects.filter((e) => e.requestId.startsWith('rate-limited-'));
    assert.equal(effects.length, RATE_LIMIT, 'one side effect per allowed call, none for a limited one');
    figures.print();
  },
);

/** The sum of a metric's samples whose labels include `labels`, from one Prometheus text exposition. */
async function scraped(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A counter summed over both workers, as a Prometheus query over the deployment would. */
async function acrossWorkers(name: string, labels: Record<string, string> = {}): Promise<number> {
  const values = await Promise.all(cluster.workers.map((worker) => scraped(worker.metricsUrl, name, labels)));
  return values.reduce((sum, value) => sum + value, 0);
}

test(
  "metrics: each worker serves its counters and the Temporal SDK's, each API the pending gauge; an approved request moves them once",
  { timeout: 180_000 },
  async () => {
    await restoreAll();
    const labels = { tool: 'crash_write', tenant: CRASH_AGENT.tenant };
    const approveDecisions = await acrossWorkers('toolgate_requests_total', { ...labels, decision: 'approve' });
    const completed = await acrossWorkers('toolgate_request_outcomes_total', { ...labels, outcome: 'completed' });
    const waits = await acrossWorkers('toolgate_approval_wait_seconds_count', { tool: 'crash_write', end: 'approved' });
    const requestId = 'metrics-1';
    await agentAt(apiA()).start(crashRequest(requestId, 'crash_write', 'count me'));
    const [digest] = await pendingDigests([requestId]);
    await until('the first decision counted by a worker', 30_000, async () =>
      (await acrossWorkers('toolgate_requests_total', { ...labels, decision: 'approve' })) === approveDecisions + 1 ? true : undefined,
    );
    for (const api of cluster.apis) {
      await until(`${api.name}: toolgate_pending_approvals`, 30_000, async () =>
        (await scraped(`${api.url}/metrics`, 'toolgate_pending_approvals')) >= 1 ? true : undefined,
      );
    }
    const maria = await cluster.approverToken({ sub: 'maria', tenant: CRASH_AGENT.tenant, groups: ['manager'] });
    const answer = await approve(apiB(), requestId, digest as string, maria);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal((await outcomeAt(apiA(), requestId)).status, 'completed');
    await until('the outcome counted by a worker', 30_000, async () =>
      (await acrossWorkers('toolgate_request_outcomes_total', { ...labels, outcome: 'completed' })) === completed + 1 ? true : undefined,
    );
    assert.equal(await acrossWorkers('toolgate_approval_wait_seconds_count', { tool: 'crash_write', end: 'approved' }), waits + 1);
    assert.equal(await acrossWorkers('toolgate_requests_total', { ...labels, decision: 'approve' }), approveDecisions + 1, 'counted once over both workers');
    for (const worker of cluster.workers) assert.match(await (await fetch(worker.metricsUrl)).text(), /^temporal_num_pollers\{/m, worker.name);
    for (const api of cluster.apis) assert.doesNotMatch(await (await fetch(`${api.url}/metrics`)).text(), /^temporal_/m, api.name);
  },
);
