/**
 * The benchmark suite cannot rot: `npm run bench` at its tiny size runs every scenario once against
 * a real Temporal dev server and writes well-formed results. No timing is asserted here — benchmarks
 * measure speed, tests check that they still run and still measure the paths users take: toolgate
 * through the front door (agent token, signed request) and approvals through the API (signed
 * decisions), beside the baselines, every request ending as it should.
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

test('every benchmark scenario runs at tiny size and writes well-formed results', { timeout: 180_000 }, async () => {
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
      [1, 2, 3, 4, 5, 6, 7, 8],
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
    const scenario = (id: number) => {
      const found = report.scenarios.find((s) => s.id === id);
      assert.ok(found, `scenario ${id} reported`);
      return found;
    };
    const systems = (id: number) => scenario(id).rows.map((row) => row.system);
    // 1: the agent's path over HTTP, every baseline down to the engine floor, and the HTTP-less diagnostic.
    for (const system of [
      /^toolgate \(ToolGateway\.call over HTTP/,
      /^bare workflow, 1 activity$/,
      /1 local activity/,
      /engine floor/,
      /called directly/,
      /signed request, toolgate workflow via client\.execute/,
    ]) {
      assert.ok(
        systems(1).some((name) => system.test(name)),
        `scenario 1 measures ${system}: ${systems(1).join(' | ')}`,
      );
    }
    // 2: the HTTP decision, the bare Update, and signed decisions sent straight to the workflow (an unsigned one would be refused).
    assert.equal(scenario(2).rows.length, 4, `scenario 2 rows: ${systems(2).join(' | ')}`);
    assert.ok(systems(2).some((name) => /signed decision Update straight to it/.test(name)));
    // 3: no call failed (a refused or denied request throws in the SDK), at any rate tried.
    for (const row of scenario(3).rows) {
      const steps = (row.extra?.steps ?? []) as { failed: number; launched: number; completed: number }[];
      assert.ok(steps.length > 0, `${row.system} ran rate steps`);
      for (const step of steps) assert.deepEqual([step.failed, step.completed], [0, step.launched], `${row.system}: every call completed`);
    }
    // 5: every request waiting for approval completed after the worker restart (submitted and approved over HTTP).
    const resolved = scenario(5).goals.find((g) => g.goal.startsWith('requests resolved after the worker restart'));
    assert.equal(resolved?.value, 1, 'every pending request resolved after the restart');
    // 7: "waiting for me" over HTTP beside the direct visibility query, every page holding exactly the approver's requests, no workflow asked.
    assert.ok(/^toolgate \(GET \/v1\/approvals/.test(systems(7)[0] ?? ''), `scenario 7 measures the HTTP listing: ${systems(7).join(' | ')}`);
    assert.ok(
      systems(7).some((name) => /^direct visibility query/.test(name)),
      `scenario 7 has the direct baseline: ${systems(7).join(' | ')}`,
    );
    assert.equal(scenario(7).goals.find((g) => g.goal.startsWith('workflow queries while listing'))?.value, 0, 'listing asked no workflow');
    assert.equal(scenario(7).goals.find((g) => g.goal.startsWith('fewest items on a measured first page'))?.value, 1, 'every page held all eligible requests');
    // 6: verify measured on real records (built from the server's histories) as well as synthetic ones.
    assert.ok(
      systems(6).some((name) => /^toolgate audit verify \(real\)$/.test(name)),
      `scenario 6 rows: ${systems(6).join(' | ')}`,
    );
    // 8: the same call and the empty workflow on both dev servers.
    assert.equal(scenario(8).rows.length, 4, `scenario 8 rows: ${systems(8).join(' | ')}`);
    assert.ok(systems(8).some((name) => /SQLite file \(npm start\)$/.test(name)));

    const markdown = readFileSync(join(dir, 'tiny.md'), 'utf8');
    for (const scenario of report.scenarios) assert.match(markdown, new RegExp(`\\*\\*${scenario.id}\\. `));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
