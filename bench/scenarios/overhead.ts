/**
 * Scenario 1 — auto-allowed call overhead: a low-risk toolgate call end to end (`ToolGateway.call`,
 * policy as a local activity, the code tool in the execution activity) against a bare workflow with
 * one regular activity, one with one local activity, and the tool function called directly. Closed
 * loop, one call at a time, the systems interleaved so drift hits them alike.
 */
import { BENCH_ACTOR, benchTools, startBaselineWorker, startBenchGateway, type BenchServer } from '../lib/env.js';
import { status } from '../lib/progress.js';
import { ratio, since, summarize } from '../lib/stats.js';
import { goal, type BenchSizes, type ResultRow, type ScenarioResult } from '../lib/types.js';
import { WORKFLOW_TYPE, workflowIdFor } from '../../src/shared/index.js';
import type { WorkInput } from '../work.js';

export async function overheadScenario(bench: BenchServer, sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  const run = `${Date.now().toString(36)}`;
  const tools = benchTools();
  const gw = await startBenchGateway(bench, { taskQueue: `bench-ovh-tg-${run}`, tools });
  const bareQueue = `bench-ovh-bare-${run}`;
  const bare = await startBaselineWorker(bench, bareQueue);
  const { client } = bench;
  const tool = tools.bench_work;
  if (!tool) throw new Error('bench tool missing');

  const args = (n: number): WorkInput => ({ n, text: 'auto-allowed call' });
  const request = (n: number) => ({ requestId: `ovh-${run}-${n}`, actor: BENCH_ACTOR, tenant: 'bench', environment: 'bench', tool: 'bench_echo', args: { ...args(n) } });
  const systems: { name: string; call: (n: number) => Promise<unknown> }[] = [
    { name: 'toolgate (ToolGateway.call)', call: (n) => gw.gateway.call(request(n)) },
    { name: 'bare workflow, 1 activity', call: (n) => client.workflow.execute('bareActivity', { taskQueue: bareQueue, workflowId: `ovh-bare-${run}-${n}`, args: [args(n)] }) },
    { name: 'bare workflow, 1 local activity', call: (n) => client.workflow.execute('bareLocalActivity', { taskQueue: bareQueue, workflowId: `ovh-local-${run}-${n}`, args: [args(n)] }) },
    { name: 'tool function called directly', call: (n) => tool({ args: { ...args(n) }, idempotencyKey: `k-${n}`, runAs: 'svc-bench', requestId: `d-${n}`, tenant: 'bench', tool: 'bench_echo', attempt: 1 }) },
    {
      // Diagnostic: the same toolgate workflow started with a plain client call, without the SDK's validation and describe().
      name: 'diagnostic: toolgate workflow via client.execute',
      call: (n) => {
        const requestId = `ovh-raw-${run}-${n}`;
        return client.workflow.execute(WORKFLOW_TYPE, { taskQueue: `bench-ovh-tg-${run}`, workflowId: workflowIdFor(requestId), args: [{ ...request(n), requestId }] });
      },
    },
  ];
  const samples = systems.map(() => [] as number[]);
  const wall = systems.map(() => 0);
  const total = sizes.overhead.warmup + sizes.overhead.iterations;
  try {
    for (let i = 0; i < total; i++) {
      status(`overhead: round ${i + 1}/${total}`);
      for (let s = 0; s < systems.length; s++) {
        // Rotate the order each round so no system always runs right after another.
        const index = (s + i) % systems.length;
        const system = systems[index];
        if (!system) continue;
        const t0 = performance.now();
        await system.call(i);
        const ms = since(t0);
        if (i >= sizes.overhead.warmup) {
          samples[index]?.push(ms);
          wall[index] = (wall[index] ?? 0) + ms;
        }
      }
    }
  } finally {
    await gw.close();
    await bare.close();
  }
  const summaries = systems.map((_, i) => summarize(samples[i] ?? [], wall[i] ?? 0));
  const base = summaries[1];
  const tg = summaries[0];
  if (!base || !tg) throw new Error('missing summaries');
  const rows: ResultRow[] = systems.map((system, i) => {
    const s = summaries[i] ?? base;
    return { system: system.name, p50: s.p50, p95: s.p95, p99: s.p99, throughput: s.throughput, throughputUnit: 'calls/s', ratio: ratio(s.p50, base.p50), note: `p99 ${ratio(s.p99, base.p99)}×`, extra: { ...s } };
  });
  return {
    id: 1,
    name: 'Auto-allowed call overhead',
    baseline: 'bare workflow, 1 activity',
    ratioOf: 'p50',
    rows,
    goals: [goal('toolgate p50 / bare 1-activity p50', ratio(tg.p50, base.p50), '<=', 1.15), goal('toolgate p99 / bare 1-activity p99', ratio(tg.p99, base.p99), '<=', 1.3)],
    notes: [`${sizes.overhead.iterations} calls per system after ${sizes.overhead.warmup} warm-up rounds, one at a time, systems interleaved.`],
    durationMs: since(started),
  };
}
