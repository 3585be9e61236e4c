/**
 * `npm run bench`: toolgate against its baselines, side by side, on one Temporal dev server started
 * here. Writes bench/results/<size>.json and .md.
 *
 *   npm run bench                          full size (about 40 minutes on 2 cores)
 *   BENCH_SIZE=tiny npm run bench          every scenario once at a tiny size (the smoke test)
 *   npm run bench -- --only 1,4            some scenarios
 *   BENCH_RESULTS_DIR=<dir>                where results go (default bench/results)
 */
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { machineInfo, startBenchServer, type BenchServer } from './lib/env.js';
import { clearStatus, log, startClock } from './lib/progress.js';
import { writeReport, type BenchReport } from './lib/report.js';
import type { BenchSizes, ResultRow, ScenarioResult } from './lib/types.js';
import { approvalScenario } from './scenarios/approval.js';
import { auditScenario } from './scenarios/audit.js';
import { listingScenario } from './scenarios/listing.js';
import { overheadScenario } from './scenarios/overhead.js';
import { pendingScenario } from './scenarios/pending.js';
import { persistenceScenario } from './scenarios/persistence.js';
import { policyScenario } from './scenarios/policy.js';
import { throughputScenario } from './scenarios/throughput.js';

const SIZES: Record<'full' | 'tiny', BenchSizes> = {
  full: {
    name: 'full',
    overhead: { warmup: 20, iterations: 200 },
    approval: { warmup: 10, iterations: 100 },
    throughput: { stepSeconds: 8, startRate: 8, factor: 1.5, maxSteps: 10, drainSeconds: 5, refineSteps: 2 },
    policy: { sizes: [10, 1_000, 10_000], decisions: 20_000, maxSecondsPerEngine: 4 },
    pending: { n: 10_000, maxCachedWorkflows: 250, checkpoints: 20, concurrency: 48, budgetSeconds: 900 },
    audit: { records: 100_000, realRecords: 100_000 },
    listing: { n: 10_000, eligible: 50, concurrency: 48, warmup: 10, iterations: 200, budgetSeconds: 900, oldIterations: 1, oldBudgetSeconds: 60 },
  },
  tiny: {
    name: 'tiny',
    overhead: { warmup: 1, iterations: 2 },
    approval: { warmup: 0, iterations: 2 },
    throughput: { stepSeconds: 1, startRate: 5, factor: 2, maxSteps: 1, drainSeconds: 5, refineSteps: 0 },
    policy: { sizes: [10, 100], decisions: 50, maxSecondsPerEngine: 1 },
    pending: { n: 10, maxCachedWorkflows: 4, checkpoints: 2, concurrency: 10, budgetSeconds: 120 },
    audit: { records: 200, realRecords: 50 },
    listing: { n: 20, eligible: 5, concurrency: 10, warmup: 2, iterations: 20, budgetSeconds: 60, oldIterations: 3, oldBudgetSeconds: 10 },
  },
};

function options(argv: string[]): { size: BenchSizes; only?: Set<number>; resultsDir: string } {
  let sizeName = process.env.BENCH_SIZE ?? 'full';
  let only: Set<number> | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--tiny') sizeName = 'tiny';
    else if (arg === '--size') sizeName = argv[++i] ?? '';
    else if (arg === '--only') only = new Set((argv[++i] ?? '').split(',').map(Number));
    else throw new Error(`unknown argument ${arg}; use --size full|tiny, --tiny or --only 1,2,...`);
  }
  if (sizeName !== 'full' && sizeName !== 'tiny') throw new Error(`BENCH_SIZE must be full or tiny, not ${sizeName}`);
  return { size: SIZES[sizeName], only, resultsDir: process.env.BENCH_RESULTS_DIR ?? fileURLToPath(new URL('./results/', import.meta.url)) };
}

const SCENARIOS: { id: number; name: string; needsServer: boolean; run: (bench: BenchServer | undefined, size: BenchSizes) => Promise<ScenarioResult> }[] = [
  { id: 1, name: 'auto-allowed call overhead', needsServer: true, run: (b, s) => overheadScenario(b as BenchServer, s) },
  { id: 2, name: 'approval round trip', needsServer: true, run: (b, s) => approvalScenario(b as BenchServer, s) },
  { id: 3, name: 'sustained throughput', needsServer: true, run: (b, s) => throughputScenario(b as BenchServer, s) },
  { id: 4, name: 'policy decision latency', needsServer: false, run: (_b, s) => policyScenario(s) },
  { id: 5, name: 'pending approvals at scale', needsServer: true, run: (b, s) => pendingScenario(b as BenchServer, s) },
  { id: 6, name: 'audit export and verify', needsServer: false, run: (b, s) => auditScenario(b, s) },
  { id: 7, name: 'waiting-for-me listing', needsServer: true, run: (b, s) => listingScenario(b as BenchServer, s) },
  { id: 8, name: 'dev persistence: file-backed vs in-memory server', needsServer: false, run: (_b, s) => persistenceScenario(s) },
];

/** One row as a line of the progress log: its latencies, rate and ratio to the scenario's baseline, then its note. */
function describeRow(row: ResultRow): string {
  const ms = (value: number | undefined) => (value === undefined ? undefined : value < 1 ? value.toPrecision(2) : value.toFixed(1));
  const parts = [
    row.p50 === undefined ? undefined : `p50 ${ms(row.p50)} ms`,
    row.p99 === undefined ? undefined : `p99 ${ms(row.p99)} ms`,
    row.throughput === undefined
      ? undefined
      : `${row.throughput >= 100 ? Math.round(row.throughput) : row.throughput.toFixed(1)} ${row.throughputUnit ?? ''}`.trim(),
    row.ratio === undefined ? undefined : `${row.ratio}× baseline`,
  ].filter((part) => part !== undefined);
  return `${row.system}: ${parts.join(', ')}${row.note ? ` — ${row.note}` : ''}`;
}

async function main(): Promise<void> {
  const { size, only, resultsDir } = options(process.argv.slice(2));
  startClock();
  const startedAt = new Date();
  const machine = machineInfo();
  log(
    `toolgate bench (${size.name}) on ${machine.nproc} cores, Node ${machine.node}, Temporal CLI ${machine.temporalCli}, load ${machine.loadAverage.join(' ')}`,
  );
  const selected = SCENARIOS.filter((s) => !only || only.has(s.id));
  let bench: BenchServer | undefined;
  const results: ScenarioResult[] = [];
  try {
    if (selected.some((s) => s.needsServer)) {
      log('starting the Temporal dev server and bundling workflows');
      bench = await startBenchServer();
    }
    for (const scenario of selected) {
      log(`scenario ${scenario.id}: ${scenario.name}`);
      const t0 = performance.now();
      let result: ScenarioResult;
      try {
        result = await scenario.run(bench, size);
      } catch (err) {
        // One broken scenario must not lose the others' results: record the failure and go on.
        log(`  scenario ${scenario.id} FAILED: ${(err as Error).stack ?? String(err)}`);
        process.exitCode = 1;
        result = {
          id: scenario.id,
          name: scenario.name,
          baseline: '',
          ratioOf: '',
          rows: [],
          goals: [],
          notes: [`failed: ${(err as Error).message}`],
          durationMs: performance.now() - t0,
        };
      }
      clearStatus();
      results.push(result);
      for (const row of result.rows) log(`  ${describeRow(row)}`);
      for (const g of result.goals) log(`  ${g.met ? 'met   ' : 'MISSED'} ${g.goal}: ${g.value}`);
    }
  } finally {
    clearStatus();
    await bench?.close();
  }
  const report: BenchReport = {
    size: size.name,
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    machine,
    loadAverageAtEnd: loadavg().map((value) => Math.round(value * 100) / 100),
    scenarios: results,
  };
  const files = writeReport(report, resultsDir);
  log(`wrote ${files.join(', ')}`);
}

await main();
