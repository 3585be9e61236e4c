/** Writes results as JSON and as the Markdown tables bench/README.md shows. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineInfo } from './env.js';
import type { ScenarioResult } from './types.js';

/** Everything one `npm run bench` produced. */
export interface BenchReport {
  size: string;
  startedAt: string;
  durationSeconds: number;
  machine: MachineInfo;
  /** `uptime` load averages at the end of the run (the start is in `machine`). */
  loadAverageAtEnd: number[];
  scenarios: ScenarioResult[];
}

const fmt = (value: number | undefined, digits = 2): string => {
  if (value === undefined) return '';
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) < 0.01 && value !== 0) return value.toPrecision(2);
  return value.toFixed(digits);
};

/** The Markdown table: one section per scenario, then the goals. */
export function toMarkdown(report: BenchReport): string {
  const m = report.machine;
  const out: string[] = [
    `Run of ${report.startedAt} (size \`${report.size}\`, ${Math.round(report.durationSeconds)} s) on ${m.nproc} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, Temporal CLI ${m.temporalCli}; load average at start ${m.loadAverage.join(' / ')}, at end ${report.loadAverageAtEnd.join(' / ')}.`,
    '',
  ];
  out.push(summaryTable(report), '');
  for (const scenario of report.scenarios) {
    out.push(`**${scenario.id}. ${scenario.name}** — ratio: ${scenario.ratioOf} vs ${scenario.baseline}`, '');
    out.push('| system | p50 ms | p95 ms | p99 ms | throughput | ratio | notes |', '|---|---:|---:|---:|---:|---:|---|');
    for (const row of scenario.rows) {
      out.push(
        `| ${row.system} | ${fmt(row.p50, 3)} | ${fmt(row.p95, 3)} | ${fmt(row.p99, 3)} | ${row.throughput === undefined ? '' : `${fmt(row.throughput, 1)} ${row.throughputUnit ?? ''}`} | ${row.ratio === undefined ? '' : `${fmt(row.ratio)}×`} | ${row.note ?? ''} |`,
      );
    }
    out.push('');
    for (const g of scenario.goals) out.push(`- ${g.met ? '✅ met' : '❌ missed'}: ${g.goal} — measured ${fmt(g.value, 3)}`);
    for (const note of scenario.notes) out.push(`- ${note}`);
    out.push('');
  }
  return out.join('\n');
}

/** One line per goal: the scenario, the goal, the measured value and the verdict. */
export function summaryTable(report: BenchReport): string {
  const out = ['| # | scenario | goal | measured | met |', '|---|---|---|---:|---|'];
  for (const scenario of report.scenarios) {
    for (const g of scenario.goals) out.push(`| ${scenario.id} | ${scenario.name} | ${g.goal} | ${fmt(g.value, 3)} | ${g.met ? '✅' : '❌'} |`);
  }
  return out.join('\n');
}

/** Writes `<dir>/<size>.json` and `<dir>/<size>.md` (the latest run of that size); returns their paths. */
export function writeReport(report: BenchReport, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${report.size}.json`);
  const md = join(dir, `${report.size}.md`);
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(md, `${toMarkdown(report)}\n`);
  return [json, md];
}
