/**
 * Scenario 2 — approval round trip: from the approver's HTTP decision (POST to the real API, which
 * checks the approver's token, signs a decision assertion and sends it as the `decide` Update whose
 * validator verifies it) to the side-effect activity starting, against a bare workflow blocked on
 * `condition()` and resumed by a client Update. The clock starts just before the decision is sent
 * and stops when the activity's code starts (both in this process, so one monotonic clock).
 * Requests are submitted through the front door (HTTP, agent token) outside the clock; the digest
 * comes from the approval notification, as an approver's link carries it. Every system's clock
 * starts on a settled workflow — waiting, no activity or workflow task in flight — as a person's
 * decision finds it: a decision that lands while the workflow still digests its notification
 * activity would wait for that task and measure the collision, not the round trip.
 */
import { approveUpdate, benchStateKey } from '../baseline-workflows.js';
import { BENCH_APPROVER, BENCH_TENANT, approveOverHttp, benchTools, startBaselineWorker, startBenchGateway, type BenchServer } from '../lib/env.js';
import { log } from '../lib/progress.js';
import { interleavedRounds, latencyColumns, summariesOf } from '../lib/rounds.js';
import { ratio, since } from '../lib/stats.js';
import { goal, type BenchSizes, type ScenarioResult } from '../lib/types.js';
import type { WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import { decideUpdate, searchAttributes, workflowIdFor } from '../../src/shared/index.js';
import type { WorkInput } from '../work.js';
/** Resolves waiters by key; a hook fires once per key. */
class Signals {
  private readonly waiting = new Map<string, (at: number) => void>();
  private readonly early = new Map<string, number>();
  fire(key: string): void {
    const at = performance.now();
    const resolve = this.waiting.get(key);
    if (resolve) {
      this.waiting.delete(key);
      resolve(at);
    } else this.early.set(key, at);
  }
  wait(key: string, timeoutMs = 30_000): Promise<number> {
    const at = this.early.get(key);
    if (at !== undefined) {
      this.early.delete(key);
      return Promise.resolve(at);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${key}`)), timeoutMs);
      this.waiting.set(key, (t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });
  }
}

/** Polls `describe()` until the workflow is `ready` and has no activity or workflow task in flight. */
async function settled(handle: WorkflowHandle, ready: (description: WorkflowExecutionDescription) => boolean, what: string): Promise<void> {
  for (let tries = 0; ; tries++) {
    const description = await handle.describe();
    const { pendingActivities, pendingWorkflowTask } = description.raw;
    if (ready(description) && (pendingActivities ?? []).length === 0 && !pendingWorkflowTask) return;
    if (tries > 3000) throw new Error(`${what} never settled waiting`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export async function approvalScenario(bench: BenchServer, sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  const run = Date.now().toString(36);
  const signals = new Signals();
  const digests = new Map<string, string>();
  const onStart = (input: WorkInput): void => signals.fire(`start:${input.text}`);
  const gw = await startBenchGateway(bench, {
    taskQueue: `bench-appr-tg-${run}`,
    tools: benchTools(onStart),
    notifier: {
      notify: async (n) => {
        if (n.kind !== 'requested') return;
        digests.set(n.requestId, n.digest);
        signals.fire(`pending:${n.requestId}`);
      },
    },
  });
  const bareQueue = `bench-appr-bare-${run}`;
  const bare = await startBaselineWorker(bench, bareQueue, onStart);
  const { client } = bench;

  /**
   * Submits a request needing approval through the front door, waits for its approval
   * notification (the digest) and for the workflow to settle waiting.
   */
  const submitPending = async (requestId: string, i: number) => {
    const handle = await gw.gateway.start({ requestId, tool: 'bench_change', args: { n: i, text: requestId } });
    await signals.wait(`pending:${requestId}`);
    const digest = digests.get(requestId);
    if (!digest) throw new Error(`no digest was notified for ${requestId}`);
    const workflow = client.workflow.getHandle(workflowIdFor(BENCH_TENANT, requestId));
    await settled(workflow, (d) => d.typedSearchAttributes.get(searchAttributes.status) === 'pending_approval', requestId);
    return { handle, digest, workflow };
  };
  /** Waits for the outcome over HTTP; anything but completed means the round measured something else. */
  const completedOutcome = async (handle: { outcome(): Promise<{ status: string }> }, requestId: string): Promise<void> => {
    const outcome = await handle.outcome();
    if (outcome.status !== 'completed') throw new Error(`${requestId} ended ${outcome.status} after its approval`);
  };

  const toolgateRound = async (i: number): Promise<{ ms: number; httpMs: number }> => {
    const requestId = `appr-${run}-${i}`;
    const { handle, digest } = await submitPending(requestId, i);
    const t0 = performance.now();
    await approveOverHttp(gw.api, requestId, digest);
    const httpMs = since(t0);
    const startedAt = await signals.wait(`start:${requestId}`);
    await completedOutcome(handle, requestId);
    return { ms: startedAt - t0, httpMs };
  };

  const bareRound = async (i: number): Promise<{ ms: number; httpMs: number }> => {
    const key = `appr-bare-${run}-${i}`;
    const handle = await client.workflow.start('bareAwaitUpdate', { taskQueue: bareQueue, workflowId: key, args: [{ n: i, text: key }] });
    // Wait until the workflow is blocked on condition() (it sets BenchState once it waits).
    await settled(handle, (d) => d.typedSearchAttributes.get(benchStateKey) === 'waiting', key);
    const t0 = performance.now();
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'bench-approver' }] });
    const httpMs = since(t0);
    const startedAt = await signals.wait(`start:${key}`);
    await handle.result();
    return { ms: startedAt - t0, httpMs };
  };

  /**
   * Diagnostic: the toolgate workflow approved by a client Update straight to it, carrying a
   * decision assertion signed with the API's decision signer (an unsigned decision is refused by
   * design). `asApi` adds what the API does besides HTTP and the token check: a describe() of the
   * workflow (tenant scope and run id) and signing, inside the clock; otherwise the run id is read
   * and the assertion signed before the clock starts.
   */
  const directRound =
    (asApi: boolean) =>
    async (i: number): Promise<{ ms: number; httpMs: number }> => {
      const requestId = `appr-direct${asApi ? '-api' : ''}-${run}-${i}`;
      const { handle, digest, workflow } = await submitPending(requestId, i);
      const sign = async (runId: string) =>
        bench.keys.decisions.sign({
          sub: BENCH_APPROVER.id,
          tenant: BENCH_APPROVER.tenant,
          groups: BENCH_APPROVER.groups,
          request_id: requestId,
          workflow_id: workflow.workflowId,
          run_id: runId,
          digest,
          decision: 'approve',
          channel: 'api',
        });
      const early = asApi ? undefined : await sign((await workflow.describe()).runId);
      const t0 = performance.now();
      const assertion = early ?? (await sign((await workflow.describe()).runId));
      await workflow.executeUpdate(decideUpdate, { args: [{ assertion }] });
      const httpMs = since(t0);
      const startedAt = await signals.wait(`start:${requestId}`);
      await completedOutcome(handle, requestId);
      return { ms: startedAt - t0, httpMs };
    };

  const systems = [
    { name: 'toolgate (HTTP decision → tool activity starts)', round: toolgateRound },
    { name: 'bare workflow (client Update → activity starts)', round: bareRound },
    { name: 'diagnostic: toolgate workflow, signed decision Update straight to it', round: directRound(false) },
    { name: 'diagnostic: toolgate workflow, describe + sign + Update (the API without HTTP and token)', round: directRound(true) },
  ];
  let rounds: { ms: number; httpMs: number }[][];
  try {
    rounds = await interleavedRounds('approval', systems, sizes.approval, (system, round) => system.round(round));
  } finally {
    await gw.close();
    await bare.close();
  }
  const samples = rounds.map((kept) => kept.map((r) => r.ms));
  const replies = rounds.map((kept) => kept.map((r) => r.httpMs));
  const summaries = summariesOf(samples);
  const replySummaries = summariesOf(replies);
  const [tg, base, direct, asApi] = summaries;
  if (!tg || !base) throw new Error('missing summaries');
  log(
    `  toolgate p50 ${tg.p50.toFixed(1)} ms (p99 ${tg.p99.toFixed(1)}) vs bare ${base.p50.toFixed(1)} ms (p99 ${base.p99.toFixed(1)}): ${ratio(tg.p50, base.p50)}× / ${ratio(tg.p99, base.p99)}×; signed Update straight to the workflow ${direct?.p50.toFixed(1)} ms, describe + sign + Update ${asApi?.p50.toFixed(1)} ms (p50)`,
  );
  return {
    id: 2,
    name: 'Approval round trip',
    baseline: 'bare workflow (client Update → activity starts)',
    ratioOf: 'p50',
    rows: systems.map((system, i) => {
      const s = summaries[i] ?? base;
      const reply = replySummaries[i];
      return {
        system: system.name,
        ...latencyColumns(s, 'decisions/s'),
        ratio: ratio(s.p50, base.p50),
        note: `p99 ${ratio(s.p99, base.p99)}× bare; decision answered in p50 ${reply?.p50.toFixed(1)} ms`,
        extra: { ...s, decisionReply: reply },
      };
    }),
    goals: [goal('toolgate p50 / bare Update p50', ratio(tg.p50, base.p50), '<=', 1.3)],
    notes: [
      `${sizes.approval.iterations} decisions per system after ${sizes.approval.warmup} warm-up rounds, one at a time, interleaved.`,
      'toolgate: the approver POSTs the decision with a bearer token; the API checks the token, describes the workflow (tenant scope, run id), signs a decision assertion and sends the decide Update, whose validator verifies the assertion. Requests were submitted through the front door (HTTP, agent token) before the clock started.',
      'Diagnostic rows send the Update with a decision assertion signed by the same decision signer the API uses: the workflow refuses unsigned decisions.',
    ],
    durationMs: since(started),
  };
}
