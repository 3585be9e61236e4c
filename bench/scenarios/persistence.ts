/**
 * Scenario 8 — dev persistence: the same auto-allowed toolgate call (as scenario 1: over HTTP to
 * the front door) and the empty workflow on the in-memory dev server and on the file-backed one
 * `npm start` runs (SQLite with `journal_mode=wal`, `synchronous=normal`), interleaved call by
 * call so drift hits both alike, each server started fresh for this scenario. The empty workflow's
 * ratio is the persistence's own cost; the toolgate ratio is what a developer pays for keeping
 * requests across restarts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchTools, startBaselineWorker, startBenchGateway, startBenchServer } from '../lib/env.js';
import { status } from '../lib/progress.js';
import { latencyColumns, summariesOf, timedRounds } from '../lib/rounds.js';
import { ratio, since } from '../lib/stats.js';
import { goal, type BenchSizes, type ResultRow, type ScenarioResult } from '../lib/types.js';

export async function persistenceScenario(sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  const run = Date.now().toString(36);
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-bench-db-'));
  // Two fresh servers: the bench's own has the earlier scenarios' requests (thousands still waiting), which would weigh on one side only.
  status('persistence: starting an in-memory and a file-backed dev server');
  const memory = await startBenchServer();
  const file = await startBenchServer({ dbFile: join(dir, 'temporal.db') });
  const servers = [
    { label: 'in memory', bench: memory },
    { label: 'SQLite file (npm start)', bench: file },
  ];
  const sides = await Promise.all(
    servers.map(async ({ label, bench }, i) => ({
      label,
      bench,
      gw: await startBenchGateway(bench, { taskQueue: `bench-pers-tg-${i}-${run}`, tools: benchTools() }),
      bareQueue: `bench-pers-bare-${i}-${run}`,
      bare: await startBaselineWorker(bench, `bench-pers-bare-${i}-${run}`),
    })),
  );
  const systems = sides.flatMap(({ label, bench, gw, bareQueue }, i) => [
    {
      name: `toolgate auto-allowed call, ${label}`,
      call: async (n: number) => gw.gateway.call({ requestId: `pers-${i}-${run}-${n}`, tool: 'bench_echo', args: { n, text: 'persistence' } }),
    },
    {
      name: `empty workflow, ${label}`,
      call: async (n: number): Promise<unknown> =>
        bench.client.workflow.execute<(input: { n: number; text: string }) => Promise<{ n: number }>>('bareEmpty', {
          taskQueue: bareQueue,
          workflowId: `pers-empty-${i}-${run}-${n}`,
          args: [{ n, text: 'persistence' }],
        }),
    },
  ]);
  let samples: number[][];
  try {
    samples = await timedRounds('persistence', systems, sizes.overhead);
  } finally {
    for (const s of sides) {
      await s.gw.close();
      await s.bare.close();
    }
    await memory.close();
    await file.close();
    await rm(dir, { recursive: true, force: true });
  }
  const summaries = summariesOf(samples);
  const [tgMemory, emptyMemory, tgFile, emptyFile] = summaries;
  if (!tgMemory || !emptyMemory || !tgFile || !emptyFile) throw new Error('missing summaries');
  const rows: ResultRow[] = systems.map((system, i) => {
    const s = summaries[i] ?? tgMemory;
    const sameOnMemory = summaries[i % 2] ?? s;
    return {
      system: system.name,
      ...latencyColumns(s, 'calls/s'),
      ratio: ratio(s.p50, sameOnMemory.p50),
      note: `p99 ${ratio(s.p99, sameOnMemory.p99)}× the same on the in-memory server`,
      extra: { ...s },
    };
  });
  return {
    id: 8,
    name: 'Dev persistence: file-backed vs in-memory dev server',
    baseline: 'the same system on the in-memory dev server',
    ratioOf: 'p50',
    rows,
    goals: [goal('toolgate p50 on the file-backed server / on the in-memory server', ratio(tgFile.p50, tgMemory.p50), '<=', 1.1)],
    notes: [
      `The persistence's own cost: the empty workflow's p50 on the file-backed server is ${ratio(emptyFile.p50, emptyMemory.p50)}× the in-memory one's (p99 ${ratio(emptyFile.p99, emptyMemory.p99)}×).`,
      `${sizes.overhead.iterations} calls per system after ${sizes.overhead.warmup} warm-up rounds, one at a time, the four systems interleaved.`,
      'The file-backed server is the one `npm start` runs: `temporal server start-dev --db-filename` with `--sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal`, its file in a temporary directory on the same disk.',
    ],
    durationMs: since(started),
  };
}
