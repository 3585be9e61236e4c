/**
 * Scenario 2 — approval round trip: from the approver's HTTP decision (POST to the real approval
 * API) to the side-effect activity starting, against a bare workflow blocked on `condition()` and
 * resumed by a client Update. The clock starts just before the decision is sent and stops when the
 * activity's code starts (both in this process, so one monotonic clock).
 */
import { approveUpdate, benchStateKey } from '../baseline-workflows.js';
import { BENCH_ACTOR, approveOverHttp, benchTools, startBaselineWorker, startBenchGateway, type BenchServer } from '../lib/env.js';
import { status } from '../lib/progress.js';
import { ratio, since, summarize } from '../lib/stats.js';
import { goal, type BenchSizes, type ScenarioResult } from '../lib/types.js';
import { decideUpdate, statusQuery } from '../../src/shared/index.js';
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

export async function approvalScenario(bench: BenchServer, sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  const run = Date.now().toString(36);
  const signals = new Signals();
  const onStart = (input: WorkInput): void => signals.fire(`start:${input.text}`);
  const gw = await startBenchGateway(bench, {
    taskQueue: `bench-appr-tg-${run}`,
    tools: benchTools(onStart),
    notifier: { notify: async (n) => { if (n.kind === 'requested') signals.fire(`pending:${n.requestId}`); } },
  });
  const bareQueue = `bench-appr-bare-${run}`;
  const bare = await startBaselineWorker(bench, bareQueue, onStart);
  const { client } = bench;

  const toolgateRound = async (i: number): Promise<{ ms: number; httpMs: number }> => {
    const requestId = `appr-${run}-${i}`;
    const handle = await gw.gateway.start({ requestId, actor: BENCH_ACTOR, tenant: 'bench', environment: 'bench', tool: 'bench_change', args: { n: i, text: requestId } });
    await signals.wait(`pending:${requestId}`);
    const { digest } = await handle.status();
    const t0 = performance.now();
    await approveOverHttp(gw.api, requestId, digest);
    const httpMs = since(t0);
    const startedAt = await signals.wait(`start:${requestId}`);
    await handle.outcome();
    return { ms: startedAt - t0, httpMs };
  };

  const bareRound = async (i: number): Promise<{ ms: number; httpMs: number }> => {
    const key = `appr-bare-${run}-${i}`;
    const handle = await client.workflow.start('bareAwaitUpdate', { taskQueue: bareQueue, workflowId: key, args: [{ n: i, text: key }] });
    // Wait until the workflow is blocked on condition() (it sets BenchState once it waits).
    for (let tries = 0; ; tries++) {
      const description = await handle.describe();
      if (description.typedSearchAttributes.get(benchStateKey) === 'waiting') break;
      if (tries > 3000) throw new Error(`${key} never started waiting`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const t0 = performance.now();
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'bench-approver' }] });
    const httpMs = since(t0);
    const startedAt = await signals.wait(`start:${key}`);
    await handle.result();
    return { ms: startedAt - t0, httpMs };
  };

  // Diagnostic: the same toolgate workflow approved by a client Update straight to it (no HTTP, no token, no status query).
  const directRound = (withQuery: boolean) => async (i: number): Promise<{ ms: number; httpMs: number }> => {
    const requestId = `appr-direct${withQuery ? '-q' : ''}-${run}-${i}`;
    const handle = await gw.gateway.start({ requestId, actor: BENCH_ACTOR, tenant: 'bench', environment: 'bench', tool: 'bench_change', args: { n: i, text: requestId } });
    await signals.wait(`pending:${requestId}`);
    const { digest } = await handle.status();
    const t0 = performance.now();
    if (withQuery) await client.workflow.getHandle(handle.workflowId).query(statusQuery);
    await client.workflow.getHandle(handle.workflowId).executeUpdate(decideUpdate, {
      args: [{ decision: 'approve', digest: digest ?? '', approver: { id: 'bench-approver', tenant: 'bench', groups: ['approvers'] }, via: 'api' }],
    });
    const httpMs = since(t0);
    const startedAt = await signals.wait(`start:${requestId}`);
    await handle.outcome();
    return { ms: startedAt - t0, httpMs };
  };

  const systems = [
    { name: 'toolgate (HTTP decision → tool activity starts)', round: toolgateRound },
    { name: 'bare workflow (client Update → activity starts)', round: bareRound },
    { name: 'diagnostic: toolgate workflow, client Update straight to it', round: directRound(false) },
    { name: 'diagnostic: toolgate workflow, status query + Update (a worker round trip first)', round: directRound(true) },
  ];
  const samples = systems.map(() => [] as number[]);
  const replies = systems.map(() => [] as number[]);
  const total = sizes.approval.warmup + sizes.approval.iterations;
  try {
    for (let i = 0; i < total; i++) {
      status(`approval: round ${i + 1}/${total}`);
      for (let s = 0; s < systems.length; s++) {
        const index = (s + i) % systems.length;
        const system = systems[index];
        if (!system) continue;
        const { ms, httpMs } = await system.round(i);
        if (i >= sizes.approval.warmup) {
          samples[index]?.push(ms);
          replies[index]?.push(httpMs);
        }
      }
    }
  } finally {
    await gw.close();
    await bare.close();
  }
  const summaries = samples.map((s) => summarize(s, s.reduce((a, b) => a + b, 0)));
  const replySummaries = replies.map((s) => summarize(s, s.reduce((a, b) => a + b, 0)));
  const [tg, base] = summaries;
  if (!tg || !base) throw new Error('missing summaries');
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
        p50: s.p50,
        p95: s.p95,
        p99: s.p99,
        throughput: s.throughput,
        throughputUnit: 'decisions/s',
        ratio: ratio(s.p50, base.p50),
        note: `decision answered in p50 ${reply?.p50} ms`,
        extra: { ...s, decisionReply: reply },
      };
    }),
    goals: [goal('toolgate p50 / bare Update p50', ratio(tg.p50, base.p50), '<=', 1.2)],
    notes: [`${sizes.approval.iterations} decisions per system after ${sizes.approval.warmup} warm-up rounds, one at a time, interleaved.`],
    durationMs: since(started),
  };
}
