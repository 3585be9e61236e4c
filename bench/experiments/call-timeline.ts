/**
 * Where an auto-allowed call's time goes, step by step (scenario 1's toolgate row taken apart):
 * the history's event times (server clock) and each local activity's start and end (an activity
 * interceptor, this process's clock: server and worker share the machine). One call at a time on
 * the bench's in-memory dev server; the empty workflow's own dispatch is measured alongside, since
 * every workflow pays it.
 *
 *   npx tsx bench/experiments/call-timeline.ts [calls]
 */
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { Context } from '@temporalio/activity';
import { workflowIdFor } from '../../src/shared/index.js';
import { BENCH_TENANT, benchTools, startBaselineWorker, startBenchGateway, startBenchServer } from '../lib/env.js';

const CALLS = Number(process.argv[2] ?? 100);
const WARMUP = 10;
/** Start and duration of each activity of the call in flight, by activity type. */
let spans: Record<string, { at: number; ms: number }> = {};
class Timing implements ActivityInboundCallsInterceptor {
  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const at = Date.now();
    try {
      return await next(input);
    } finally {
      spans[Context.current().info.activityType] = { at, ms: Date.now() - at };
    }
  }
}

const bench = await startBenchServer();
const gw = await startBenchGateway(bench, { taskQueue: 'timeline', tools: benchTools(), activityInterceptors: [() => ({ inbound: new Timing() })] });
const bare = await startBaselineWorker(bench, 'timeline-bare');
const eventMs = (event: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }): number =>
  Number(event.eventTime?.seconds ?? 0) * 1000 + (event.eventTime?.nanos ?? 0) / 1e6;
const steps: Record<string, number[]> = {};
const add = (step: string, ms: number): void => void (steps[step] ??= []).push(ms);
try {
  for (let i = 0; i < CALLS + WARMUP; i++) {
    spans = {};
    const began = Date.now();
    await gw.gateway.call({ requestId: `timeline-${i}`, tool: 'bench_echo', args: { n: i, text: 'timeline' } });
    const ended = Date.now();
    const emptyBegan = Date.now();
    const empty = await bench.client.workflow.start('bareEmpty', {
      taskQueue: 'timeline-bare',
      workflowId: `timeline-empty-${i}`,
      args: [{ n: i, text: 'x' }],
    });
    await empty.result();
    const emptyEnded = Date.now();
    if (i < WARMUP) continue;
    const events = (await bench.client.workflow.getHandle(workflowIdFor(BENCH_TENANT, `timeline-${i}`)).fetchHistory()).events ?? [];
    const emptyEvents = (await empty.fetchHistory()).events ?? [];
    const [started, scheduled, taskStarted, taskCompleted] = events.map(eventMs);
    const { loadTrustAnchors: anchors, evaluatePolicy: policy, executeTool: tool } = spans;
    if (!started || !scheduled || !taskStarted || !taskCompleted || !anchors || !policy || !tool)
      throw new Error(`call ${i}: not one workflow task with three local activities`);
    add('HTTP, token, signing, start', started - began);
    add('first workflow task dispatched (server → worker)', taskStarted - scheduled);
    add('workflow set up until the trust anchors are read', anchors.at - taskStarted);
    add('trust anchors (local activity)', anchors.ms);
    add("admission verified in the workflow (Ed25519), to policy's start", policy.at - anchors.at - anchors.ms);
    add('policy (local activity)', policy.ms);
    add("decision handled, to the tool's start", tool.at - policy.at - policy.ms);
    add('tool (local activity: checks, run guard, tool, egress)', tool.ms);
    add('outcome, commands, task completed', taskCompleted - tool.at - tool.ms);
    add('result back to the agent over HTTP', ended - taskCompleted);
    add('total', ended - began);
    const [, emptyScheduled, emptyTaskStarted] = emptyEvents.map(eventMs);
    add('empty workflow: first task dispatched', (emptyTaskStarted ?? Number.NaN) - (emptyScheduled ?? Number.NaN));
    add('empty workflow: total (client start → result)', emptyEnded - emptyBegan);
  }
} finally {
  await gw.close();
  await bare.close();
  await bench.close();
}
const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
const median = (values: number[]) => sorted(values)[Math.floor(values.length / 2)] ?? Number.NaN;
const totalMedian = median(steps.total ?? []);
process.stdout.write(`auto-allowed call, ${CALLS} calls after ${WARMUP} warm-up (median ms, share of the total's median):\n`);
for (const [step, values] of Object.entries(steps)) {
  const m = median(values);
  process.stdout.write(
    `${m.toFixed(1).padStart(7)} ms ${step.startsWith('empty') || step === 'total' ? '     ' : `${((100 * m) / totalMedian).toFixed(0).padStart(3)}% `} ${step}\n`,
  );
}
