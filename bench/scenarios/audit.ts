/** Scenario 6 — audit export and verify: records/s of `bench/audit-chain.ts`, against a loop that only parses and hashes the same bytes. */
import { runAuditChain } from '../audit-chain.js';
import { verifyRawBytes } from '../experiments/raw-bytes-verify.js';
import { status } from '../lib/progress.js';
import { ratio, round, since } from '../lib/stats.js';
import { goal, type BenchSizes, type ScenarioResult } from '../lib/types.js';

export async function auditScenario(sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  status(`audit: ${sizes.audit.records} records`);
  const proposed = 'diagnostic: verify hashing record bytes as written (proposed, bench/experiments)';
  const t = await runAuditChain(sizes.audit.records, { [proposed]: verifyRawBytes });
  const rate = (seconds: number): number => round(t.records / seconds);
  const base = rate(t.baselineSeconds);
  const row = (system: string, seconds: number) => ({
    system,
    throughput: rate(seconds),
    throughputUnit: 'records/s',
    ratio: ratio(rate(seconds), base),
    note: `${seconds.toFixed(2)} s`,
    extra: { seconds: round(seconds) },
  });
  return {
    id: 6,
    name: 'Audit export and verify',
    baseline: 'parse + SHA-256 of the same lines',
    ratioOf: 'records/s',
    rows: [
      row('toolgate audit verify', t.verifySeconds),
      row('toolgate audit export', t.exportSeconds),
      row('baseline: JSON.parse + SHA-256 per line', t.baselineSeconds),
      row(proposed, t.experiments[proposed] ?? Number.NaN),
    ],
    goals: [goal('verify records/s / parse+hash records/s', ratio(rate(t.verifySeconds), base), '>=', 0.5)],
    notes: [
      `${t.records.toLocaleString('en-US')} records, ${(t.bytes / 2 ** 20).toFixed(1)} MiB, ${t.lines} lines (records plus header and signed checkpoints).`,
    ],
    durationMs: since(started),
  };
}
