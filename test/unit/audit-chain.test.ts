/**
 * The tamper-evident export: every kind of tampering on a 10,000-record export is caught at the
 * right place, memory stays flat while exporting 100,000 records, and throughput is printed.
 */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { before, describe, test } from 'node:test';
import { ChainWriter, canonicalJson, generateAuditKeyPair, recordHashInput, sha256Hex, type ChainProgress } from '../../src/audit/chain.js';
import { verifyChain } from '../../src/audit/verify.js';
import { canonicalSha256 } from '../../src/shared/index.js';

const keys = generateAuditKeyPair();
const N = 10_000;
const EVERY = 1000;

function* syntheticRecords(count: number): Generator<Record<string, unknown>> {
  for (let i = 0; i < count; i++) {
    yield {
      requestId: `req-${i}`,
      tenant: i % 3 === 0 ? 'acme' : 'globex',
      actor: { id: 'support-triage-agent', type: 'agent' },
      tool: 'create_ticket',
      decision: { effect: i % 5 === 0 ? 'approve' : 'allow', rule: 'tickets-urgent', policyDigest: 'a'.repeat(64) },
      approvals: i % 5 === 0 ? [{ approverId: 'maria', decision: 'approve', at: '2026-01-01T00:00:00.000Z', tier: 0 }] : [],
      outcome: { status: 'succeeded', summary: `ticket T-${i} créé` },
    };
  }
}

/** 1-based line number of record `seq` (header first, a checkpoint after every EVERY records). */
const lineOf = (seq: number) => 2 + seq + Math.floor(seq / EVERY);
/** 1-based line number of the periodic checkpoint that covers record `seq`. */
const checkpointLineAfter = (seq: number) => lineOf(Math.floor(seq / EVERY) * EVERY + EVERY - 1) + 1;

async function exportToString(count: number, onProgress?: (p: ChainProgress) => void): Promise<string> {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  await new ChainWriter({ privateKey: keys.privateKeyPem, checkpointEvery: EVERY, onProgress }).write(syntheticRecords(count), sink);
  return chunks.join('');
}

const verifyText = (text: string, publicKey = keys.publicKeyPem) => verifyChain(Readable.from([Buffer.from(text, 'utf8')]), publicKey);

/** Rewrites the record chain from `fromSeq` on with valid hashes, as a forger without the signing key would. */
function rehash(lines: string[], fromSeq: number): string[] {
  let prev = '';
  return lines.map((line) => {
    const v = JSON.parse(line);
    if (typeof v.seq !== 'number') return line;
    if (v.seq === fromSeq - 1) prev = v.hash;
    if (v.seq < fromSeq) return line;
    const hash = sha256Hex(recordHashInput(v.seq, prev, canonicalJson(v.record)));
    const out = `{"seq":${v.seq},"prev":"${prev}","hash":"${hash}","record":${canonicalJson(v.record)}}`;
    prev = hash;
    return out;
  });
}

describe('audit chain: hashes', () => {
  test("a record's hash input, built as text, hashes like the canonical JSON of { seq, prev, record }", () => {
    const record = { requestId: 'r-1', n: 1e21, text: 'é\u2028"', nested: { z: null, a: [true, 0.5] } };
    const prev = 'ab'.repeat(32);
    assert.equal(sha256Hex(recordHashInput(7, prev, canonicalJson(record))), canonicalSha256({ seq: 7, prev, record }));
  });
});

describe('audit chain: tamper matrix on a 10,000-record export', () => {
  let text = '';
  let lines: string[] = [];
  before(async () => {
    text = await exportToString(N);
    lines = text.trimEnd().split('\n');
  });
  const join = (ls: string[]) => `${ls.join('\n')}\n`;

  test('the untouched export verifies: every record and checkpoint', async () => {
    assert.equal(lines.length, 1 + N + N / EVERY + 1);
    const result = await verifyText(text);
    assert.deepEqual(result.firstBad, undefined);
    assert.equal(result.ok, true);
    assert.equal(result.records, N);
    assert.equal(result.checkpoints, N / EVERY + 1);
  });

  test('a flipped byte in a record, its hash, its prev, a checkpoint, the header or a newline is found on its line', async () => {
    const bytes = Buffer.from(text, 'utf8');
    const lineStart = (line: number) => {
      let offset = 0;
      for (let i = 1; i < line; i++) offset += Buffer.byteLength(lines[i - 1]!, 'utf8') + 1;
      return offset;
    };
    const cases: { name: string; line: number; offset: number; seq: number }[] = [
      { name: 'record body', line: lineOf(4321), offset: lineStart(lineOf(4321)) + lines[lineOf(4321) - 1]!.indexOf('T-4321') + 2, seq: 4321 },
      { name: 'hash field', line: lineOf(7), offset: lineStart(lineOf(7)) + lines[lineOf(7) - 1]!.indexOf('"hash":"') + 10, seq: 7 },
      { name: 'prev field', line: lineOf(8000), offset: lineStart(lineOf(8000)) + lines[lineOf(8000) - 1]!.indexOf('"prev":"') + 9, seq: 8000 },
      { name: 'seq digit', line: lineOf(9999), offset: lineStart(lineOf(9999)) + 7, seq: 9999 },
      {
        name: 'checkpoint signature',
        line: checkpointLineAfter(2500),
        offset: lineStart(checkpointLineAfter(2500)) + lines[checkpointLineAfter(2500) - 1]!.indexOf('"sig":"') + 20,
        seq: 2999,
      },
      {
        name: 'checkpoint time',
        line: checkpointLineAfter(500),
        offset: lineStart(checkpointLineAfter(500)) + lines[checkpointLineAfter(500) - 1]!.indexOf('"at":"') + 8,
        seq: 999,
      },
      { name: 'header', line: 1, offset: lines[0]!.indexOf('createdAt') + 14, seq: -1 },
      { name: 'newline', line: lineOf(5000), offset: lineStart(lineOf(5000) + 1) - 1, seq: 5000 },
      {
        name: 'multi-byte character',
        line: lineOf(6001),
        offset: lineStart(lineOf(6001)) + Buffer.from(lines[lineOf(6001) - 1]!).indexOf(Buffer.from('é')) + 1,
        seq: 6001,
      },
    ];
    for (const c of cases) {
      const copy = Buffer.from(bytes);
      copy[c.offset]! ^= 0x01;
      const result = await verifyChain(Readable.from([copy]), keys.publicKeyPem);
      assert.equal(result.ok, false, c.name);
      // The header is only covered by the checkpoints' signed header hash: found at the first checkpoint.
      const expectedLine = c.name === 'header' ? checkpointLineAfter(0) : c.line;
      const expectedSeq = c.name === 'header' ? EVERY - 1 : c.seq;
      assert.equal(result.firstBad?.line, expectedLine, `${c.name}: ${JSON.stringify(result.firstBad)}`);
      assert.equal(result.firstBad?.seq, expectedSeq, `${c.name}: ${JSON.stringify(result.firstBad)}`);
    }
    // And 60 flips at pseudo-random offsets anywhere: each is detected, on the flipped line or (header) at the first checkpoint.
    let x = 12345;
    for (let i = 0; i < 60; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const offset = x % bytes.length;
      const copy = Buffer.from(bytes);
      copy[offset]! ^= 1 << (x % 7);
      const result = await verifyChain(Readable.from([copy]), keys.publicKeyPem);
      assert.equal(result.ok, false, `flip at ${offset}`);
      const line = bytes.subarray(0, offset).toString('latin1').split('\n').length;
      assert.ok(
        result.firstBad!.line === line || (line === 1 && result.firstBad!.line === checkpointLineAfter(0)),
        `flip at ${offset} (line ${line}): ${JSON.stringify(result.firstBad)}`,
      );
    }
  });

  test('lines as written take the byte-hashing path; a faithful reformatting still verifies through the full check, and both hand onRecord the same records', async () => {
    // Reorder one record line's fields and the record's keys: JSON-equivalent, not the writer's bytes.
    const seq = 1234;
    const original = JSON.parse(lines[lineOf(seq) - 1]!) as { seq: number; prev: string; hash: string; record: Record<string, unknown> };
    const reversed = Object.fromEntries(Object.entries(original.record).reverse());
    const reformatted = [...lines];
    reformatted[lineOf(seq) - 1] = JSON.stringify({ record: reversed, hash: original.hash, prev: original.prev, seq: original.seq }, null, 0);
    const seen = async (t: string) => {
      const records: unknown[] = [];
      const result = await verifyChain(Readable.from([Buffer.from(t, 'utf8')]), keys.publicKeyPem, { onRecord: (r, s) => records.push([s, r]) });
      return { result, records };
    };
    const asWritten = await seen(text);
    const faithful = await seen(join(reformatted));
    assert.equal(asWritten.result.ok, true);
    assert.equal(faithful.result.ok, true, JSON.stringify(faithful.result.firstBad));
    assert.equal(faithful.records.length, N);
    assert.deepEqual(faithful.records, asWritten.records);
    assert.deepEqual(asWritten.records[seq], [seq, original.record]);
    // A field added after the record on a line otherwise as written: not the writer's bytes, and the full check names it.
    const extra = [...lines];
    extra[lineOf(seq) - 1] = `${lines[lineOf(seq) - 1]!.slice(0, -1)},"note":"unsigned"}`;
    const result = await verifyText(join(extra));
    assert.equal(result.ok, false);
    assert.equal(result.firstBad?.line, lineOf(seq));
    assert.match(result.firstBad?.reason ?? '', /unexpected field "note"/);
  });

  test('a deleted record is reported at its seq', async () => {
    const result = await verifyText(join(lines.filter((_, i) => i !== lineOf(5555) - 1)));
    assert.equal(result.ok, false);
    assert.deepEqual({ line: result.firstBad?.line, seq: result.firstBad?.seq }, { line: lineOf(5555), seq: 5555 });
    assert.match(result.firstBad!.reason, /record 5555 is missing/);
  });

  test('swapped records are reported at the first swapped seq', async () => {
    const swapped = [...lines];
    [swapped[lineOf(1234) - 1], swapped[lineOf(1235) - 1]] = [swapped[lineOf(1235) - 1]!, swapped[lineOf(1234) - 1]!];
    const result = await verifyText(join(swapped));
    assert.deepEqual({ line: result.firstBad?.line, seq: result.firstBad?.seq }, { line: lineOf(1234), seq: 1234 });
  });

  test('truncation: mid-block, exactly at a checkpoint, and a dropped final checkpoint', async () => {
    const midBlock = await verifyText(join(lines.slice(0, lineOf(9500))));
    assert.equal(midBlock.ok, false);
    assert.equal(midBlock.firstBad?.seq, 9000);
    assert.equal(midBlock.firstBad?.lastVerifiedSeq, 8999);
    assert.match(midBlock.firstBad.reason, /truncated/);
    const atCheckpoint = await verifyText(join(lines.slice(0, checkpointLineAfter(8500))));
    assert.equal(atCheckpoint.ok, false);
    assert.equal(atCheckpoint.firstBad?.seq, 9000);
    assert.equal(atCheckpoint.firstBad?.line, checkpointLineAfter(8500) + 1);
    const noFinal = await verifyText(join(lines.slice(0, -1)));
    assert.equal(noFinal.ok, false);
    assert.match(noFinal.firstBad!.reason, /final signed checkpoint/);
  });

  test('a rewritten suffix with recomputed hashes is caught by the next signed checkpoint, naming the window', async () => {
    const forged = [...lines];
    const target = lineOf(6500) - 1;
    forged[target] = forged[target]!.replace('"summary":"ticket T-6500', '"summary":"ticket T-6501');
    const result = await verifyText(join(rehash(forged, 6500)));
    assert.equal(result.ok, false);
    assert.equal(result.firstBad?.line, checkpointLineAfter(6500));
    assert.equal(result.firstBad?.seq, 6999);
    assert.equal(result.firstBad?.lastVerifiedSeq, 5999);
    assert.ok(result.firstBad.lastVerifiedSeq < 6500 && 6500 <= result.firstBad.seq, 'the tampered record lies in the reported window');
    assert.equal(result.records, 7000); // the chain itself is consistent; only the signature catches it

    // The forger also drops every later checkpoint: then it is an unsigned tail.
    const stripped = rehash(forged, 6500).filter((l, i) => i <= checkpointLineAfter(5999) - 1 || !l.startsWith('{"checkpoint"'));
    const tail = await verifyText(join(stripped));
    assert.equal(tail.ok, false);
    assert.equal(tail.firstBad?.lastVerifiedSeq, 5999);
    assert.match(tail.firstBad.reason, /truncated/);
  });

  test('a different public key refuses the first checkpoint', async () => {
    const other = generateAuditKeyPair();
    const result = await verifyText(text, other.publicKeyPem);
    assert.equal(result.ok, false);
    assert.equal(result.firstBad?.seq, EVERY - 1);
    assert.match(result.firstBad.reason, /signature/);
  });
});

describe('audit chain: streaming', () => {
  test('memory stays flat exporting 100,000 records to a slow counting sink; throughput is printed', async (t) => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const COUNT = 100_000;
    let bytes = 0;
    let lineCount = 0;
    let writes = 0;
    const sink = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        for (const b of chunk) if (b === 10) lineCount += 1;
        writes += 1;
        // A consumer slower than the producer: the writer must wait for 'drain', not buffer.
        if (writes % 8 === 0) setImmediate(cb);
        else cb();
      },
    });
    const progress: ChainProgress[] = [];
    gc();
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    const started = performance.now();
    const summary = await new ChainWriter({
      privateKey: keys.privateKeyPem,
      onProgress: (p) => {
        progress.push(p);
        // Live heap mid-export (after a collection), every 10 checkpoints: what the writer retains.
        if (progress.length % 10 === 0) {
          gc();
          peak = Math.max(peak, process.memoryUsage().heapUsed);
        }
      },
    }).write(syntheticRecords(COUNT), sink);
    const seconds = (performance.now() - started) / 1000;
    gc();
    const after = process.memoryUsage().heapUsed;
    t.diagnostic(`export: ${COUNT} records, ${(bytes / 1024 / 1024).toFixed(1)} MiB in ${seconds.toFixed(2)} s = ${Math.round(COUNT / seconds)} records/s`);
    t.diagnostic(
      `heap: before ${(before / 1048576).toFixed(1)} MiB, live peak during ${(peak / 1048576).toFixed(1)} MiB, after ${(after / 1048576).toFixed(1)} MiB`,
    );
    assert.equal(summary.records, COUNT);
    assert.equal(lineCount, 1 + COUNT + COUNT / 1000 + 1);
    assert.equal(progress.length, COUNT / 1000 + 1);
    assert.ok(peak - before < 64 * 1024 * 1024, `heap grew by ${((peak - before) / 1048576).toFixed(1)} MiB during the export`);
    assert.ok(after - before < 64 * 1024 * 1024, `heap grew by ${((after - before) / 1048576).toFixed(1)} MiB`);
  });

  test('verify streams 100,000 records and prints its throughput', async (t) => {
    const COUNT = 100_000;
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    await new ChainWriter({ privateKey: keys.privateKeyPem }).write(syntheticRecords(COUNT), sink);
    const started = performance.now();
    const result = await verifyChain(Readable.from(chunks), keys.publicKeyPem);
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`verify: ${COUNT} records in ${seconds.toFixed(2)} s = ${Math.round(COUNT / seconds)} records/s`);
    assert.equal(result.ok, true);
    assert.equal(result.records, COUNT);
  });
});
