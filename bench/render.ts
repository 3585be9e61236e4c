/**
 * Renders bench/results/<size>.md again from <size>.json (after a change to the table's format).
 *
 * Run: npx tsx bench/render.ts [full|tiny]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toMarkdown, type BenchReport } from './lib/report.js';

const size = process.argv[2] ?? 'full';
const dir = process.env.BENCH_RESULTS_DIR ?? fileURLToPath(new URL('./results/', import.meta.url));
const report = JSON.parse(readFileSync(`${dir}/${size}.json`, 'utf8')) as BenchReport;
writeFileSync(`${dir}/${size}.md`, `${toMarkdown(report)}\n`);
