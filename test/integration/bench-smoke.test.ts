/**
 * The benchmark suite cannot rot: `npm run bench` at its tiny size runs every scenario once against
 * a real Temporal dev server and writes well-formed results. No timing is asserted here — benchmarks
 * measure speed, tests check that they still run.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BenchReport } from '../../bench/lib/report.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

test('every benchmark scenario runs at tiny size and writes well-formed results', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'toolgate-bench-smoke-'));
  try {
    await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--tiny'], {
      cwd: root,
      env: { ...process.env, BENCH_RESULTS_DIR: dir },
      maxBuffer: 16 * 1024 * 1024,
    });
    const report = JSON.parse(readFileSync(join(dir, 'tiny.json'), 'utf8')) as BenchReport;
    assert.equal(report.size, 'tiny');
    assert.ok(report.machine.nproc > 0 && report.machine.loadAverage.length === 3, 'machine and load recorded');
    assert.deepEqual(
      report.scenarios.map((s) => s.id),
      [1, 2, 3, 4, 5, 6],
    );
    for (const scenario of report.scenarios) {
      assert.ok(scenario.rows.length >= 2, `scenario ${scenario.id} compares at least two systems`);
      assert.ok(scenario.goals.length >= 1, `scenario ${scenario.id} states its goals`);
      for (const row of scenario.rows) {
        const numbers = [row.p50, row.p95, row.p99, row.throughput].filter((v) => v !== undefined);
        assert.ok(numbers.length > 0, `${scenario.id}/${row.system} has measurements`);
        for (const value of numbers) assert.ok(Number.isFinite(value) && value >= 0, `${scenario.id}/${row.system}: ${value} is a measurement`);
        assert.ok(row.ratio === undefined || Number.isFinite(row.ratio), `${scenario.id}/${row.system} ratio is a number`);
      }
      for (const g of scenario.goals) {
        assert.equal(typeof g.met, 'boolean');
        assert.ok(Number.isFinite(g.value), `${scenario.id}: goal "${g.goal}" was measured`);
      }
    }
    const markdown = readFileSync(join(dir, 'tiny.md'), 'utf8');
    for (const scenario of report.scenarios) assert.match(markdown, new RegExp(`\\*\\*${scenario.id}\\. `));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
