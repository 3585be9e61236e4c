/**
 * Export and verify throughput of the audit chain for 100,000 records, against a baseline that only
 * parses and hashes the same bytes (so verify's own overhead shows as a ratio).
 *
 * Run alone: npx tsx bench/audit-chain.ts [records]; `npm run bench` runs it as scenario 6.
 */
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { ChainWriter, generateAuditKeyPair } from '../src/audit/chain.js';
import { verifyChain } from '../src/audit/verify.js';

/** Timings of one export/verify/baseline run. */
export interface AuditChainTimings {
  records: number;
  bytes: number;
  lines: number;
  exportSeconds: number;
  verifySeconds: number;
  baselineSeconds: number;
  /** Seconds of each extra verifier given to `runAuditChain`, by name. */
  experiments: Record<string, number>;
}

/** An alternative verifier to time on the same export (bench experiments). */
export type ExperimentalVerifier = (input: Readable, publicKeyPem: string) => Promise<unknown>;

function* records(count: number): Generator<Record<string, unknown>> {
  for (let i = 0; i < count; i++) {
    yield {
      requestId: `req-${i}`,
      tenant: 'acme',
      actor: { id: 'support-triage-agent', type: 'agent' },
      tool: 'create_ticket',
      decision: { effect: 'allow', rule: 'tickets', policyDigest: 'a'.repeat(64) },
      outcome: { status: 'succeeded', summary: `ticket T-${i}` },
    };
  }
}

/** Exports `count` synthetic records into a signed chain, verifies it, and times a parse + SHA-256 loop over the same bytes. */
export async function runAuditChain(count: number, extraVerifiers: Record<string, ExperimentalVerifier> = {}): Promise<AuditChainTimings> {
  return runAuditChainOn(records(count), count, extraVerifiers);
}

/** As {@link runAuditChain}, on the given records (e.g. real ones built from a server's histories). */
export async function runAuditChainOn(
  source: Iterable<unknown> | AsyncIterable<unknown>,
  count: number,
  extraVerifiers: Record<string, ExperimentalVerifier> = {},
): Promise<AuditChainTimings> {
  const keys = generateAuditKeyPair();
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });

  let started = performance.now();
  const written = await new ChainWriter({ privateKey: keys.privateKeyPem }).write(source, sink);
  if (written.records !== count) throw new Error(`exported ${written.records} records, expected ${count}`);
  const exportSeconds = (performance.now() - started) / 1000;
  const bytes = chunks.reduce((n, c) => n + c.length, 0);

  started = performance.now();
  const result = await verifyChain(Readable.from(chunks), keys.publicKeyPem);
  const verifySeconds = (performance.now() - started) / 1000;
  if (!result.ok) throw new Error(`verify failed: ${JSON.stringify(result.firstBad)}`);

  // Baseline: read the same lines, JSON.parse each and SHA-256 it; no canonicalisation, no chain, no signatures.
  started = performance.now();
  let lines = 0;
  for await (const line of createInterface({ input: Readable.from(chunks), crlfDelay: Infinity })) {
    JSON.parse(line);
    createHash('sha256').update(line).digest('hex');
    lines += 1;
  }
  const baselineSeconds = (performance.now() - started) / 1000;

  const experiments: Record<string, number> = {};
  for (const [name, verifyWith] of Object.entries(extraVerifiers)) {
    started = performance.now();
    await verifyWith(Readable.from(chunks), keys.publicKeyPem);
    experiments[name] = (performance.now() - started) / 1000;
  }
  return { records: count, bytes, lines, exportSeconds, verifySeconds, baselineSeconds, experiments };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const COUNT = Number(process.argv[2] ?? 100_000);
  const { bytes, lines, exportSeconds, verifySeconds, baselineSeconds } = await runAuditChain(COUNT);
  const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString('en-US')} records/s`;
  process.stdout.write(
    [
      `audit chain: ${COUNT.toLocaleString('en-US')} records, ${(bytes / 1048576).toFixed(1)} MiB, ${lines} lines`,
      `  export   ${exportSeconds.toFixed(2)} s  ${rate(COUNT, exportSeconds)}`,
      `  verify   ${verifySeconds.toFixed(2)} s  ${rate(COUNT, verifySeconds)}`,
      `  baseline ${baselineSeconds.toFixed(2)} s  ${rate(COUNT, baselineSeconds)} (parse + sha256 only)`,
      `  verify/baseline time ratio: ${(verifySeconds / baselineSeconds).toFixed(2)}`,
      '',
    ].join('\n'),
  );
}
