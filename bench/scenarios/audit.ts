/**
 * Scenario 6 — audit export and verify: records/s of `bench/audit-chain.ts`, against a loop that
 * only parses and hashes the same bytes. Twice: on synthetic records (any size, no server), and on
 * real records — built from the histories of the requests the earlier scenarios ran on this
 * server, as `toolgate audit export` builds them — because real records are larger and nested more
 * deeply than the synthetic ones, which changes what hashing and parsing cost.
 */
import type { Client } from '@temporalio/client';
import { runAuditChain, runAuditChainOn, type AuditChainTimings } from '../audit-chain.js';
import type { BenchServer } from '../lib/env.js';
import { status } from '../lib/progress.js';
import { ratio, round, since } from '../lib/stats.js';
import { goal, type BenchSizes, type GoalResult, type ResultRow, type ScenarioResult } from '../lib/types.js';
import { buildAuditRecordOfWorkflow } from '../../src/audit/record.js';
import { parseRequestWorkflowId } from '../../src/shared/index.js';

/** The audit records of up to `limit` closed toolgate requests on the server, built from their histories. */
async function realRecords(client: Client, limit: number): Promise<{ records: unknown[]; buildSeconds: number }> {
  const started = performance.now();
  const records: unknown[] = [];
  for await (const execution of client.workflow.list({ query: `ExecutionStatus != 'Running'`, pageSize: 500 })) {
    if (records.length >= limit) break;
    if (!parseRequestWorkflowId(execution.workflowId)) continue;
    records.push(await buildAuditRecordOfWorkflow(client, execution.workflowId, execution.runId, { linked: false }));
    if (records.length % 500 === 0) status(`audit: built ${records.length} real records from histories`);
  }
  return { records, buildSeconds: (performance.now() - started) / 1000 };
}

/** The rows and goal of one export/verify/baseline run. */
function rowsOf(t: AuditChainTimings, label: string): { rows: ResultRow[]; verifyRatio: number } {
  const rate = (seconds: number): number => round(t.records / seconds);
  const base = rate(t.baselineSeconds);
  const row = (system: string, seconds: number): ResultRow => ({
    system: `${system} (${label})`,
    throughput: rate(seconds),
    throughputUnit: 'records/s',
    ratio: ratio(rate(seconds), base),
    note: `${seconds.toFixed(2)} s`,
    extra: { seconds: round(seconds), records: t.records, bytes: t.bytes },
  });
  return {
    rows: [
      row('toolgate audit verify', t.verifySeconds),
      row('toolgate audit export', t.exportSeconds),
      row('baseline: JSON.parse + SHA-256 per line', t.baselineSeconds),
    ],
    verifyRatio: ratio(rate(t.verifySeconds), base),
  };
}

export async function auditScenario(bench: BenchServer | undefined, sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  status(`audit: ${sizes.audit.records} synthetic records`);
  const synthetic = await runAuditChain(sizes.audit.records);
  const syntheticRows = rowsOf(synthetic, 'synthetic');
  const rows = [...syntheticRows.rows];
  const goals: GoalResult[] = [goal('verify records/s / parse+hash records/s, synthetic records', syntheticRows.verifyRatio, '>=', 0.8)];
  const notes = [
    `Synthetic: ${synthetic.records.toLocaleString('en-US')} records, ${(synthetic.bytes / 2 ** 20).toFixed(1)} MiB, ${synthetic.lines} lines (records plus header and signed checkpoints).`,
  ];
  if (bench) {
    const real = await realRecords(bench.client, sizes.audit.realRecords);
    if (real.records.length === 0) throw new Error('no closed toolgate request on the server to build real audit records from');
    status(`audit: ${real.records.length} real records`);
    const t = await runAuditChainOn(real.records, real.records.length);
    const realRows = rowsOf(t, 'real');
    rows.push(...realRows.rows);
    goals.push(goal('verify records/s / parse+hash records/s, real records', realRows.verifyRatio, '>=', 0.8));
    notes.push(
      `Real: ${t.records.toLocaleString('en-US')} records (every closed request the earlier scenarios left on this server, at most ${sizes.audit.realRecords.toLocaleString('en-US')}), ${(t.bytes / 2 ** 20).toFixed(1)} MiB, built from their histories in ${real.buildSeconds.toFixed(1)} s (not part of the ratio).`,
    );
  } else notes.push('Real records: not measured (no server in this run: scenario 6 ran without the server scenarios).');
  return {
    id: 6,
    name: 'Audit export and verify',
    baseline: 'parse + SHA-256 of the same lines',
    ratioOf: 'records/s',
    rows,
    goals,
    notes,
    durationMs: since(started),
  };
}
