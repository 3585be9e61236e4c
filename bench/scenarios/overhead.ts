/**
 * Scenario 1 — auto-allowed call overhead: a low-risk toolgate call end to end as an agent makes it
 * (`ToolGateway.call` over HTTP to the front door with the agent's token; the front door signs the
 * request and starts the workflow, which loads its trust anchors and evaluates policy as local
 * activities, verifies the assertion and runs the code tool, low risk and idempotent, as a local
 * activity in the same workflow task) against the engine's floor (an empty workflow), a bare
 * workflow with one regular activity, one with one local activity, and the tool function called
 * directly. Closed loop, one call at a time, the
 * systems interleaved so drift hits them alike. Two diagnostic rows split toolgate's time: the
 * front door's `admit()` called in process (no HTTP, no token), and a signed request started with
 * a plain client (no HTTP, no front door).
 */
import { FrontDoor } from '../../src/api/front-door.js';
import type { AgentIdentity } from '../../src/auth/agent-tokens.js';
import { ToolRequestSchema, WORKFLOW_TYPE, workflowIdFor, type ToolOutcome, type ToolRequest, type ToolRequestStart } from '../../src/shared/index.js';
import { BENCH_ACTOR, BENCH_ENVIRONMENT, BENCH_TENANT, benchTools, startBaselineWorker, startBenchGateway, type BenchServer } from '../lib/env.js';
import { log } from '../lib/progress.js';
import { latencyColumns, summariesOf, timedRounds } from '../lib/rounds.js';
import { ratio, since, type LatencySummary } from '../lib/stats.js';
import { goal, type BenchSizes, type ResultRow, type ScenarioResult } from '../lib/types.js';
import type { WorkInput } from '../work.js';

/** The systems every row's ratios are given against, by index in `systems` below. */
const BASELINES = [
  { index: 1, short: 'bare 1 activity' },
  { index: 2, short: 'bare 1 local activity' },
  { index: 3, short: 'empty workflow' },
  { index: 4, short: 'direct call' },
] as const;

/** A toolgate outcome that is not `completed` means the call measured something else (a denial is fast): stop the run. */
function completed(outcome: ToolOutcome, what: string): ToolOutcome {
  if (outcome.status !== 'completed') throw new Error(`${what} ended ${outcome.status}: ${JSON.stringify(outcome).slice(0, 300)}`);
  return outcome;
}

export async function overheadScenario(bench: BenchServer, sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  const run = `${Date.now().toString(36)}`;
  const tools = benchTools();
  const taskQueue = `bench-ovh-tg-${run}`;
  const gw = await startBenchGateway(bench, { taskQueue, tools });
  const bareQueue = `bench-ovh-bare-${run}`;
  const bare = await startBaselineWorker(bench, bareQueue);
  const { client } = bench;
  const tool = tools.bench_work;
  if (!tool) throw new Error('bench tool missing');
  // The identity the front door reads from the bench agent's token, for the in-process diagnostic.
  const agent: AgentIdentity = { id: BENCH_ACTOR.id, type: 'agent', tenant: BENCH_TENANT, environment: BENCH_ENVIRONMENT, roles: BENCH_ACTOR.roles };
  const frontDoor = new FrontDoor(client, bench.keys.requests, taskQueue);

  const args = (n: number): WorkInput => ({ n, text: 'auto-allowed call' });
  // Built as the front door builds it (schema, then a JSON round trip), so the signed digest is that of the workflow's input.
  const signedStart = async (requestId: string, n: number): Promise<{ workflowId: string; start: ToolRequestStart }> => {
    const request = JSON.parse(
      JSON.stringify(
        ToolRequestSchema.parse({
          requestId,
          actor: BENCH_ACTOR,
          tenant: BENCH_TENANT,
          environment: BENCH_ENVIRONMENT,
          tool: 'bench_echo',
          args: { ...args(n) },
        }),
      ),
    ) as ToolRequest;
    const workflowId = workflowIdFor(BENCH_TENANT, requestId);
    return { workflowId, start: { request, admission: await bench.keys.requests.sign(request, workflowId) } };
  };
  const systems: { name: string; call: (n: number) => Promise<unknown> }[] = [
    {
      name: 'toolgate (ToolGateway.call over HTTP → front door)',
      call: (n) => gw.gateway.call({ requestId: `ovh-${run}-${n}`, tool: 'bench_echo', args: { ...args(n) } }),
    },
    {
      name: 'bare workflow, 1 activity',
      call: (n) => client.workflow.execute('bareActivity', { taskQueue: bareQueue, workflowId: `ovh-bare-${run}-${n}`, args: [args(n)] }),
    },
    {
      name: 'bare workflow, 1 local activity',
      call: (n) => client.workflow.execute('bareLocalActivity', { taskQueue: bareQueue, workflowId: `ovh-local-${run}-${n}`, args: [args(n)] }),
    },
    {
      name: 'empty workflow, no activity (engine floor)',
      call: (n) => client.workflow.execute('bareEmpty', { taskQueue: bareQueue, workflowId: `ovh-empty-${run}-${n}`, args: [args(n)] }),
    },
    {
      name: 'tool function called directly',
      call: (n) =>
        tool({
          args: { ...args(n) },
          idempotencyKey: `k-${n}`,
          runAs: 'svc-bench',
          requestId: `d-${n}`,
          tenant: BENCH_TENANT,
          tool: 'bench_echo',
          attempt: 1,
          signal: new AbortController().signal,
          deadline: new Date(Date.now() + 60_000),
        }),
    },
    {
      // The front door without HTTP: no fetch, no express, no token check; admit() still signs, starts with search attributes and describes.
      name: 'diagnostic: front door admit() in process, no HTTP',
      call: async (n) => {
        const { handle } = await frontDoor.admit(agent, { requestId: `ovh-fd-${run}-${n}`, tool: 'bench_echo', args: { ...args(n) } });
        return completed((await handle.result()) as ToolOutcome, `ovh-fd-${run}-${n}`);
      },
    },
    {
      // The same workflow started by a client holding the front door's signer: sign, start, wait (no describe, no search attributes at start).
      name: 'diagnostic: signed request, toolgate workflow via client.execute',
      call: async (n) => {
        const { workflowId, start } = await signedStart(`ovh-raw-${run}-${n}`, n);
        return completed((await client.workflow.execute(WORKFLOW_TYPE, { taskQueue, workflowId, args: [start] })) as ToolOutcome, workflowId);
      },
    },
  ];
  let samples: number[][];
  try {
    samples = await timedRounds('overhead', systems, sizes.overhead);
  } finally {
    await gw.close();
    await bare.close();
  }
  const summaries = summariesOf(samples);
  const base = summaries[1];
  const tg = summaries[0];
  if (!base || !tg) throw new Error('missing summaries');
  const ratiosOf = (s: LatencySummary) =>
    BASELINES.map(({ index, short }) => {
      const b = summaries[index] ?? base;
      return { baseline: short, p50: ratio(s.p50, b.p50), p99: ratio(s.p99, b.p99) };
    });
  const rows: ResultRow[] = systems.map((system, i) => {
    const s = summaries[i] ?? base;
    const ratios = ratiosOf(s).filter((r) => r.baseline !== BASELINES.find((b) => b.index === i)?.short);
    return {
      system: system.name,
      ...latencyColumns(s, 'calls/s'),
      ratio: ratio(s.p50, base.p50),
      note: `p50/p99 vs ${ratios.map((r) => `${r.baseline} ${r.p50}×/${r.p99}×`).join(', ')}`,
      extra: { ...s, ratios },
    };
  });
  const floor = summaries[3];
  const viaClient = summaries[6];
  const inProcess = summaries[5];
  const ms = (value: number | undefined): string => (value === undefined ? '?' : value.toFixed(1));
  log(
    `  toolgate p50 ${ms(tg.p50)} ms (p99 ${ms(tg.p99)}): ${ratiosOf(tg)
      .map((r) => `${r.p50}× ${r.baseline}`)
      .join(
        ', ',
      )}; HTTP + token ${ms(tg.p50 - (inProcess?.p50 ?? Number.NaN))} ms, front door's describe() and search attributes ${ms((inProcess?.p50 ?? Number.NaN) - (viaClient?.p50 ?? Number.NaN))} ms (p50 differences)`,
  );
  return {
    id: 1,
    name: 'Auto-allowed call overhead',
    baseline: 'bare workflow, 1 activity',
    ratioOf: 'p50',
    rows,
    goals: [
      goal('toolgate p50 / empty workflow p50', ratio(tg.p50, floor?.p50 ?? Number.NaN), '<=', 1.25),
      goal('toolgate p99 / empty workflow p99', ratio(tg.p99, floor?.p99 ?? Number.NaN), '<=', 1.5),
      goal('toolgate p50 / bare 1-activity p50', ratio(tg.p50, base.p50), '<=', 1.15),
    ],
    notes: [
      `${sizes.overhead.iterations} calls per system after ${sizes.overhead.warmup} warm-up rounds, one at a time, systems interleaved.`,
      'toolgate is measured as an agent calls it: one HTTP POST with the agent token (waiting for the outcome) to the front door, which signs the request assertion and starts the workflow; the workflow loads its trust anchors (local activity), verifies the assertion, evaluates policy (local activity) and runs the tool (low risk, allowed, idempotent: a local activity in the same workflow task).',
      `Engine floor (empty workflow started and awaited by a plain client): p50 ${ms(floor?.p50)} ms, p99 ${ms(floor?.p99)} ms. Diagnostics: the front door in process (no HTTP) p50 ${ms(inProcess?.p50)} ms; a signed request started by a plain client p50 ${ms(viaClient?.p50)} ms.`,
    ],
    durationMs: since(started),
  };
}
