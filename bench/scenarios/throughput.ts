/**
 * Scenario 3 — sustained throughput: an open-loop load (calls launched on a fixed schedule whether or
 * not earlier ones finished) at rising rates, for toolgate (`ToolGateway.call` over HTTP to the
 * front door, as agents submit) and the bare one-activity workflow (a client's execute). A rate
 * is sustained when every call of the step finished within the drain window, p99 ≤ 1 s, and the
 * backlog did not grow (calls in flight at the end of the step ≤ one second's worth of launches).
 */
import { benchTools, startBaselineWorker, startBenchGateway, type BenchServer } from '../lib/env.js';
import { log, status } from '../lib/progress.js';
import { ratio, since, summarize, type LatencySummary } from '../lib/stats.js';
import { goal, type BenchSizes, type ScenarioResult } from '../lib/types.js';

/** One rate step. */
interface Step {
  rate: number;
  launched: number;
  completed: number;
  failed: number;
  inFlightAtEnd: number;
  latency: LatencySummary;
  sustained: boolean;
}

async function runStep(rate: number, sizes: BenchSizes, call: (n: number) => Promise<unknown>, label: string, offset: number): Promise<Step> {
  const { stepSeconds, drainSeconds } = sizes.throughput;
  const target = Math.max(1, Math.round(rate * stepSeconds));
  const latencies: number[] = [];
  let launched = 0;
  let completed = 0;
  let failed = 0;
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  while (launched < target) {
    const due = Math.min(target, Math.floor((since(t0) / 1000) * rate) + 1);
    while (launched < due) {
      const n = offset + launched;
      launched += 1;
      const start = performance.now();
      pending.push(
        call(n).then(
          () => {
            latencies.push(since(start));
            completed += 1;
          },
          () => {
            failed += 1;
          },
        ),
      );
    }
    status(`throughput ${label}: ${rate}/s, ${launched}/${target} launched, ${launched - completed - failed} in flight`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const stepMs = since(t0);
  const inFlightAtEnd = launched - completed - failed;
  const drained = await Promise.race([
    Promise.all(pending).then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), drainSeconds * 1000)),
  ]);
  // Calls that did not finish in the drain window count as over the limit.
  const unfinished = launched - completed - failed;
  const all = [...latencies, ...Array.from({ length: unfinished }, () => Number.POSITIVE_INFINITY)];
  const latency = summarize(all, stepMs);
  latency.throughput = Math.round((completed * 1000 * 100) / Math.max(stepMs, since(t0))) / 100;
  const sustained = drained && failed === 0 && latency.p99 <= 1000 && inFlightAtEnd <= Math.max(2, rate);
  if (!drained) await Promise.all(pending); // never leave calls behind into the next step
  return { rate, launched, completed, failed, inFlightAtEnd, latency, sustained };
}

async function ramp(label: string, sizes: BenchSizes, call: (n: number) => Promise<unknown>): Promise<Step[]> {
  const steps: Step[] = [];
  let rate = sizes.throughput.startRate;
  for (let i = 0; i < sizes.throughput.maxSteps; i++) {
    const step = await runStep(rate, sizes, call, label, i * 100_000);
    steps.push(step);
    log(
      `  ${label}: ${rate}/s → p50 ${step.latency.p50.toFixed(1)} ms, p99 ${step.latency.p99.toFixed(1)} ms, ${step.inFlightAtEnd} in flight at end: ${step.sustained ? 'sustained' : 'NOT sustained'}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (!step.sustained) break;
    rate = Math.round(rate * sizes.throughput.factor);
  }
  // Narrow the bracket between the last sustained rate and the first that was not.
  for (let i = 0; i < sizes.throughput.refineSteps; i++) {
    const low = Math.max(0, ...steps.filter((s) => s.sustained).map((s) => s.rate));
    const high = Math.min(...steps.filter((s) => !s.sustained).map((s) => s.rate));
    const mid = Math.round((low + high) / 2);
    if (!Number.isFinite(high) || low === 0 || mid <= low || mid >= high) break;
    const step = await runStep(mid, sizes, call, label, (steps.length + 1) * 100_000);
    steps.push(step);
    log(
      `  ${label}: ${mid}/s → p50 ${step.latency.p50.toFixed(1)} ms, p99 ${step.latency.p99.toFixed(1)} ms, ${step.inFlightAtEnd} in flight at end: ${step.sustained ? 'sustained' : 'NOT sustained'} (refining)`,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return steps;
}

const maxSustained = (steps: Step[]): number => Math.max(0, ...steps.filter((s) => s.sustained).map((s) => s.rate));

export async function throughputScenario(bench: BenchServer, sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  const run = Date.now().toString(36);
  const gw = await startBenchGateway(bench, { taskQueue: `bench-tput-tg-${run}`, tools: benchTools() });
  const bareQueue = `bench-tput-bare-${run}`;
  const bare = await startBaselineWorker(bench, bareQueue);
  let bareSteps: Step[];
  let tgSteps: Step[];
  try {
    bareSteps = await ramp('bare', sizes, (n) =>
      bench.client.workflow.execute('bareActivity', { taskQueue: bareQueue, workflowId: `tput-bare-${run}-${n}`, args: [{ n, text: 'open loop' }] }),
    );
    tgSteps = await ramp('toolgate', sizes, (n) => gw.gateway.call({ requestId: `tput-${run}-${n}`, tool: 'bench_echo', args: { n, text: 'open loop' } }));
  } finally {
    await gw.close();
    await bare.close();
  }
  const bareMax = maxSustained(bareSteps);
  const tgMax = maxSustained(tgSteps);
  const best = (steps: Step[]): Step | undefined =>
    steps
      .filter((s) => s.sustained)
      .sort((a, b) => a.rate - b.rate)
      .at(-1) ?? steps[0];
  const row = (system: string, steps: Step[], max: number) => {
    const at = best(steps);
    return {
      system,
      p50: at?.latency.p50,
      p95: at?.latency.p95,
      p99: at?.latency.p99,
      throughput: max,
      throughputUnit: 'calls/s sustained',
      ratio: ratio(max, bareMax),
      note: `lowest rate not sustained: ${Math.min(...steps.filter((s) => !s.sustained).map((s) => s.rate))}/s`,
      extra: { steps },
    };
  };
  return {
    id: 3,
    name: 'Sustained throughput (open loop)',
    baseline: 'bare workflow, 1 activity',
    ratioOf: 'max sustained rate',
    rows: [row('toolgate (ToolGateway.call over HTTP → front door)', tgSteps, tgMax), row('bare workflow, 1 activity', bareSteps, bareMax)],
    goals: [goal('toolgate max sustained rate / bare', ratio(tgMax, bareMax), '>=', 0.8)],
    notes: [
      `Steps of ${sizes.throughput.stepSeconds} s from ${sizes.throughput.startRate}/s, ×${sizes.throughput.factor} per step, then ${sizes.throughput.refineSteps} bisection steps; latencies shown at the highest sustained rate.`,
      'Sustained = all calls done within the drain window, p99 ≤ 1 s, in flight at step end ≤ one second of launches.',
    ],
    durationMs: since(started),
  };
}
