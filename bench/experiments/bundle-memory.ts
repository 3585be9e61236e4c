/**
 * Why a pending toolgate request costs more worker memory than a bare workflow (scenario 5): runs
 * the pending phase for four bundles on one dev server and prints the worker's RSS per cached
 * workflow — bare, bare plus one import of toolgate's shared module, toolgate as shipped, and
 * toolgate bundled without zod (bench/experiments/lean-workflow.ts).
 *
 * Run: npx tsx bench/experiments/bundle-memory.ts [n=300] [cache=100]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startBenchApi, startBenchServer } from '../lib/env.js';
import type { BenchSizes } from '../lib/types.js';
import { phase } from '../scenarios/pending.js';
import { bundleLeanToolgateWorkflow } from './lean-workflow.js';

const n = Number(process.argv[2] ?? 300);
const cache = Number(process.argv[3] ?? 100);
const bench = await startBenchServer();
const api = await startBenchApi(bench);
const dir = mkdtempSync(join(tmpdir(), 'toolgate-bundle-memory-'));
try {
  const silent = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
  const shared = await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./bare-with-shared-workflows.ts', import.meta.url)), logger: silent });
  const lean = await bundleLeanToolgateWorkflow();
  const bundles = [
    { name: 'bare', kind: 'bare' as const, code: bench.baselineBundle.code },
    { name: 'bare + import of src/shared/index', kind: 'bare' as const, code: shared.code },
    { name: 'toolgate as shipped', kind: 'toolgate' as const, code: bench.toolgateBundle.code },
    { name: 'toolgate without zod in the bundle', kind: 'toolgate' as const, code: lean.code },
  ];
  const sizes = { pending: { n, maxCachedWorkflows: cache, checkpoints: 2, concurrency: 24, budgetSeconds: 3600 } } as BenchSizes;
  const lines: string[] = [];
  for (const [i, bundle] of bundles.entries()) {
    const path = join(dir, `${i}.js`);
    writeFileSync(path, bundle.code);
    const r = await phase(bench, api, bundle.kind, path, sizes, `mem${i}-${Date.now().toString(36)}`);
    const atCache = r.samples.find((s) => s.pending >= cache) ?? r.samples[0];
    const perCached = atCache ? (atCache.worker.rss - r.before.worker.rss) / Math.min(cache, atCache.pending) / 1024 : Number.NaN;
    lines.push(`${bundle.name.padEnd(38)} bundle ${(bundle.code.length / 1024).toFixed(0)} KiB, worker RSS per cached workflow ${perCached.toFixed(0)} KiB, start ${(r.startMs / 1000).toFixed(1)} s, resolve ${(r.resolveMs / 1000).toFixed(1)} s`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
  await api.close();
  await bench.close();
}
