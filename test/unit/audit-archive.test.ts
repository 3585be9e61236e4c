/**
 * The audit archive on its own (a fake source of closed requests, no Temporal): segments link into
 * one chain of files with contiguous windows; `verifyArchive` catches a deleted, reordered, edited
 * or replaced segment, a gap between windows and an entry outside its window; a second run of the
 * same window writes nothing; a run SIGKILLed in the middle of a segment leaves only a temporary
 * file, and the next run produces the archive, byte for byte, that an uninterrupted run produces.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Logger } from 'pino';
import {
  ARCHIVE_INPUT_FAILURE,
  ARCHIVE_INTEGRITY_FAILURE,
  createArchiveActivities,
  type ArchiveRunSummary,
  type AuditArchiveInput,
} from '../../activities/archive.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ARCHIVE_EPOCH, ARCHIVE_LAG_MS, SEGMENT_MAX_RECORDS, archiveClosedRequests } from '../../src/audit/archive.js';
import { findInArchive } from '../../src/audit/archive-find.js';
import { retentionWarning } from '../../src/audit/archive-schedule.js';
import { ArchiveIntegrityError, listArchive, segmentName, type ArchiveCandidate, type ArchivedRequest } from '../../src/audit/archive-segments.js';
import type { ArchiveSource } from '../../src/audit/archive-source.js';
import { verifyArchive } from '../../src/audit/archive-verify.js';
import { writeSegment } from '../../src/audit/archive-writer.js';
import { CHAIN_VERSION, ChainWriter, SEGMENT_CHAIN_VERSION, generateAuditKeyPair, type ChainHeader } from '../../src/audit/chain.js';
import type { AuditRecord } from '../../src/audit/record-types.js';
import { verifyChain } from '../../src/audit/verify.js';
import { showRequest } from '../../src/cli/audit-show.js';

const keys = generateAuditKeyPair();
const privateKey = createPrivateKey(keys.privateKeyPem);
const T0 = Date.parse('2026-03-01T10:00:00.000Z');
/** The fixed clock of every run here: the same inputs then give the same bytes (Ed25519 signatures are deterministic). */
const NOW = T0 + 3600_000;
const now = () => new Date(NOW);
const MAX = 10;
const EVERY = 2;

/** A closed request of the fake source, and the record it archives as. */
interface FakeRequest {
  workflowId: string;
  runId: string;
  closedAtMs: number;
  execution: string;
  record: Record<string, unknown>;
  /** Built as a gap instead (the history is gone). */
  gone?: boolean;
}

/** 30 requests closed over half an hour; three pairs close in the same millisecond (ordered by workflow id). */
function dataset(count = 30, startMs = T0): FakeRequest[] {
  const out: FakeRequest[] = [];
  for (let i = 0; i < count; i++) {
    // Every tenth-and-second request closes in the same millisecond as the one before it.
    const closedAtMs = startMs + (i % 10 === 2 ? i - 1 : i) * 60_000;
    const requestId = `req-${String(count - i).padStart(3, '0')}`;
    out.push({
      workflowId: `toolreq/acme/${requestId}`,
      runId: `run-${i}`,
      closedAtMs,
      execution: 'COMPLETED',
      record: { requestId, workflowId: `toolreq/acme/${requestId}`, status: 'completed', answers: { whatItProduced: `ticket T-${i} créé` } },
    });
  }
  return out;
}

/** A source over a fixed dataset, counting its calls; `onBuild` may delay or fail a build. */
function fakeSource(requests: FakeRequest[], onBuild?: (n: number) => Promise<void>): ArchiveSource & { builds: number; lists: number } {
  const inWindow = (from: number, to: number) => requests.filter((r) => r.closedAtMs >= from && r.closedAtMs < to);
  const byKey = new Map(requests.map((r) => [`${r.workflowId} ${r.runId}`, r]));
  const source = {
    builds: 0,
    lists: 0,
    async count(from: number, to: number) {
      return inWindow(from, to).length;
    },
    async *list(from: number, to: number): AsyncGenerator<ArchiveCandidate> {
      source.lists += 1;
      // Visibility returns no particular order: newest first here.
      for (const r of inWindow(from, to).reverse()) yield { workflowId: r.workflowId, runId: r.runId, closedAtMs: r.closedAtMs, execution: r.execution };
    },
    async build(candidate: ArchiveCandidate) {
      source.builds += 1;
      await onBuild?.(source.builds);
      const r = byKey.get(`${candidate.workflowId} ${candidate.runId}`);
      assert.ok(r, `build of an unknown ${candidate.workflowId}`);
      if (r.gone) return { gap: { code: 'history_gone' as const, message: 'the history was deleted before it was archived' } };
      return { record: r.record as unknown as AuditRecord };
    },
  };
  return source;
}

const run = (dir: string, source: ArchiveSource, extra: { nowMs?: number } = {}) =>
  archiveClosedRequests({ dir, source, privateKey, maxRecordsPerSegment: MAX, checkpointEvery: EVERY, now: () => new Date(extra.nowMs ?? NOW) });

async function snapshot(dir: string): Promise<Record<string, string>> {
  const { segments } = await listArchive(dir);
  const out: Record<string, string> = {};
  for (const s of segments) out[s.name] = (await readFile(s.path)).toString('utf8');
  return out;
}

const headerOf = (text: string) => JSON.parse(text.slice(0, text.indexOf('\n'))) as ChainHeader;
const entriesOf = (text: string): ArchivedRequest[] =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { seq?: number; record?: ArchivedRequest })
    .filter((v) => typeof v.seq === 'number')
    .map((v) => v.record as ArchivedRequest);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'toolgate-archive-unit-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
let dirs = 0;
const freshDir = () => join(root, `archive-${++dirs}`);

describe('audit archive: segments', () => {
  test('a window larger than a segment is split; segments link by name and hash, windows are contiguous, entries sorted', async () => {
    const dir = freshDir();
    const requests = dataset();
    const summary = await run(dir, fakeSource(requests));
    const files = await snapshot(dir);
    const names = Object.keys(files);
    assert.ok(names.length >= 3, `30 requests at most ${MAX} a segment: ${names.join(', ')}`);
    assert.deepEqual(
      names,
      names.map((_, i) => segmentName(i)),
    );
    assert.deepEqual(summary.segments, names);
    assert.equal(summary.records, 30);
    assert.equal(summary.window.from, ARCHIVE_EPOCH);
    assert.equal(summary.window.to, new Date(NOW - 60_000).toISOString(), 'up to now minus the lag');
    let previous: { name: string; text: string; to: string } | undefined;
    const all: ArchivedRequest[] = [];
    for (const name of names) {
      const text = files[name]!;
      const header = headerOf(text);
      assert.equal(header.version, SEGMENT_CHAIN_VERSION);
      const segment = header.segment!;
      assert.equal(segmentName(segment.index), name);
      assert.equal(segment.from, previous?.to ?? ARCHIVE_EPOCH, `${name} starts where the previous ends`);
      assert.deepEqual(segment.prev, previous ? { name: previous.name, sha256: sha256(previous.text) } : null);
      const entries = entriesOf(text);
      assert.ok(entries.length >= 1 && entries.length <= MAX, `${name}: ${entries.length} entries`);
      for (const e of entries)
        assert.ok(e.closedAt >= segment.from && e.closedAt < segment.to, `${e.workflowId} at ${e.closedAt} in [${segment.from}, ${segment.to})`);
      all.push(...entries);
      previous = { name, text, to: segment.to };
    }
    assert.equal(summary.head?.sha256, sha256(previous!.text));
    // Every request once, ordered by (close time, workflow id): same-millisecond closes by id.
    const expected = [...requests].sort((a, b) => a.closedAtMs - b.closedAtMs || (a.workflowId < b.workflowId ? -1 : 1)).map((r) => r.workflowId);
    assert.deepEqual(
      all.map((e) => e.workflowId),
      expected,
    );
    assert.ok(
      requests.some((r, i) => requests.findIndex((x) => x.closedAtMs === r.closedAtMs) !== i),
      'the dataset has closes in the same millisecond',
    );
    const verified = await verifyArchive(dir, [keys.publicKeyPem]);
    assert.deepEqual(verified.faults, []);
    assert.equal(verified.ok, true);
    assert.equal(verified.records, 30);
    assert.equal(verified.segments, names.length);
    assert.deepEqual(verified.head, { name: names.at(-1), sha256: sha256(previous!.text) });
  });

  test('a plain export stays version 1 without a segment; the verifier holds each version to its shape', async () => {
    const text = async (options: { segment?: ChainHeader['segment'] }) => {
      const chunks: Buffer[] = [];
      const sink = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
      await new ChainWriter({ privateKey, ...(options.segment ? { segment: options.segment } : {}) }).write([{ a: 1 }], sink);
      return Buffer.concat(chunks).toString('utf8');
    };
    const plain = await text({});
    assert.equal(headerOf(plain).version, CHAIN_VERSION);
    assert.ok(!('segment' in headerOf(plain)));
    assert.equal((await verifyChain(Readable.from([plain]), keys.publicKeyPem)).ok, true);
    const segment = { index: 0, from: ARCHIVE_EPOCH, to: new Date(T0).toISOString(), prev: null };
    const seg = await text({ segment });
    const ok = await verifyChain(Readable.from([seg]), keys.publicKeyPem);
    assert.equal(ok.ok, true);
    assert.deepEqual(ok.header?.segment, segment);
    // A header that claims one version with the other's shape is refused on line 1, before anything is trusted.
    const forge = (t: string, edit: (h: Record<string, unknown>) => void) => {
      const h = JSON.parse(t.slice(0, t.indexOf('\n'))) as Record<string, unknown>;
      edit(h);
      return `${JSON.stringify(h)}${t.slice(t.indexOf('\n'))}`;
    };
    const v1WithSegment = await verifyChain(Readable.from([forge(seg, (h) => (h.version = 1))]), keys.publicKeyPem);
    assert.deepEqual([v1WithSegment.ok, v1WithSegment.firstBad?.line], [false, 1]);
    assert.match(v1WithSegment.firstBad!.reason, /v1 header carries a segment/);
    const v2Without = await verifyChain(Readable.from([forge(plain, (h) => (h.version = 2))]), keys.publicKeyPem);
    assert.deepEqual([v2Without.ok, v2Without.firstBad?.line], [false, 1]);
    assert.throws(() => new ChainWriter({ privateKey, segment: { ...segment, index: 1 } }), /segment\.prev/);
  });

  test('idempotent: a second run of the same window writes nothing and changes no byte', async () => {
    const dir = freshDir();
    await run(dir, fakeSource(dataset()));
    const first = await snapshot(dir);
    const source = fakeSource(dataset());
    const again = await run(dir, source);
    assert.deepEqual(again.segments, []);
    assert.equal(again.records, 0);
    assert.equal(source.builds, 0, 'no history is read again');
    assert.equal(again.window.from, again.window.to);
    assert.deepEqual(await snapshot(dir), first);
  });

  test('resumable: requests closed later go into the next segment, linked to the last one; nothing is archived twice', async () => {
    const dir = freshDir();
    const early = dataset(12);
    await run(dir, fakeSource(early), { nowMs: T0 + 20 * 60_000 });
    const before = await snapshot(dir);
    const later = dataset(12, T0 + 25 * 60_000).map((r, i) => ({ ...r, workflowId: `toolreq/acme/later-${i}`, runId: `later-run-${i}` }));
    const summary = await run(dir, fakeSource([...early, ...later]), { nowMs: NOW + 600_000 });
    const afterRun = await snapshot(dir);
    for (const [name, text] of Object.entries(before)) assert.equal(afterRun[name], text, `${name} is never rewritten`);
    assert.equal(summary.records, 12);
    const firstNew = headerOf(afterRun[summary.segments[0]!]!).segment!;
    const lastOld = Object.keys(before).at(-1)!;
    assert.deepEqual(firstNew.prev, { name: lastOld, sha256: sha256(before[lastOld]!) });
    const ids = Object.values(afterRun).flatMap((t) => entriesOf(t).map((e) => e.workflowId));
    assert.equal(ids.length, 24);
    assert.equal(new Set(ids).size, 24);
    assert.equal((await verifyArchive(dir, [keys.publicKeyPem])).ok, true);
  });

  test('a request whose history is gone is archived as a gap, counted, and found as such', async () => {
    const dir = freshDir();
    const requests = dataset(5);
    requests[2]!.gone = true;
    const summary = await run(dir, fakeSource(requests));
    assert.equal(summary.gaps, 1);
    assert.deepEqual(summary.gapIds, [{ workflowId: requests[2]!.workflowId, runId: requests[2]!.runId, code: 'history_gone' }]);
    const verified = await verifyArchive(dir, [keys.publicKeyPem]);
    assert.deepEqual([verified.ok, verified.records, verified.gaps], [true, 5, 1]);
    const hit = await findInArchive(dir, requests[2]!.workflowId, [keys.publicKeyPem]);
    assert.equal(hit?.entry.gap?.code, 'history_gone');
    assert.equal(hit?.entry.record, undefined);
    const found = await findInArchive(dir, requests[3]!.workflowId, [keys.publicKeyPem]);
    assert.deepEqual(found?.entry.record, requests[3]!.record);
    assert.equal(found?.verification.ok, true);
  });

  test('two writers of one index: the second refuses instead of replacing the segment', async () => {
    const dir = freshDir();
    await run(dir, fakeSource(dataset(3)));
    const before = await snapshot(dir);
    const info = { index: 0, from: ARCHIVE_EPOCH, to: new Date(T0 + 1).toISOString(), prev: null };
    await assert.rejects(writeSegment(dir, info, [], { privateKey }), ArchiveIntegrityError);
    assert.deepEqual(await snapshot(dir), before);
    assert.deepEqual((await listArchive(dir)).temporaryFiles, [], 'the refused temporary file is removed');
  });

  test('bounded memory: 30,000 requests in one window are written as segments of at most 10,000; throughput is printed', async (t) => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const COUNT = 30_000;
    // Closes 50 ms apart over 25 minutes, with a record of about 500 bytes each.
    const requests = Array.from({ length: COUNT }, (_, i): FakeRequest => ({
      workflowId: `toolreq/acme/bulk-${i}`,
      runId: `run-${i}`,
      closedAtMs: T0 + i * 50,
      execution: 'COMPLETED',
      record: {
        requestId: `bulk-${i}`,
        status: 'completed',
        answers: { whoInitiated: 'agent support-bot (tenant acme, production)', whatItProduced: `completed: {"ticket":"T-${i}"}` },
        timeline: [{ at: new Date(T0 + i * 50).toISOString(), event: 'completed' }],
      },
    }));
    const dir = freshDir();
    let peak = 0;
    let gcMs = 0;
    gc();
    const before = process.memoryUsage().heapUsed;
    const started = performance.now();
    const summary = await archiveClosedRequests({
      dir,
      source: fakeSource(requests),
      privateKey,
      now,
      heartbeat: ({ records }) => {
        if (records % 2500 === 0) {
          const gcStarted = performance.now();
          gc();
          peak = Math.max(peak, process.memoryUsage().heapUsed - before);
          gcMs += performance.now() - gcStarted;
        }
      },
    });
    // Throughput without the collections the measurement itself forces.
    const seconds = (performance.now() - started - gcMs) / 1000;
    t.diagnostic(
      `archive: ${COUNT} records in ${summary.segments.length} segments, ${seconds.toFixed(2)} s = ${Math.round(COUNT / seconds)} records/s; live heap growth at most ${(peak / 1048576).toFixed(1)} MiB`,
    );
    assert.equal(summary.records, COUNT);
    assert.ok(summary.segments.length >= 3);
    const sizes = await Promise.all((await listArchive(dir)).segments.map(async (s) => entriesOf(await readFile(s.path, 'utf8')).length));
    assert.ok(
      sizes.every((n) => n <= SEGMENT_MAX_RECORDS),
      `segment sizes ${sizes.join(', ')}`,
    );
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      COUNT,
    );
    // What is held is one segment's listing, not the records: far below the 15 MB the records take on disk.
    assert.ok(peak < 48 * 1048576, `heap grew by ${(peak / 1048576).toFixed(1)} MiB`);
    const verifyStarted = performance.now();
    const verified = await verifyArchive(dir, [keys.publicKeyPem]);
    t.diagnostic(`verify: ${COUNT} records in ${((performance.now() - verifyStarted) / 1000).toFixed(2)} s`);
    assert.deepEqual([verified.ok, verified.records], [true, COUNT]);
  });

  test('the retention warning: retention shorter than two intervals plus the lag', () => {
    assert.equal(retentionWarning({ retentionMs: 30 * 86_400_000, intervalMs: 15 * 60_000 }), undefined);
    assert.equal(retentionWarning({ retentionMs: 31 * 60_000, intervalMs: 15 * 60_000 }), undefined);
    assert.match(
      retentionWarning({ retentionMs: 30 * 60_000, intervalMs: 15 * 60_000 }) ?? '',
      /shorter than twice the archive interval plus the lag \(31 min\)/,
    );
  });
});

describe('audit archive: verify catches tampering', () => {
  let pristine: string;
  let names: string[];
  before(async () => {
    pristine = freshDir();
    await run(pristine, fakeSource(dataset()));
    names = Object.keys(await snapshot(pristine));
    assert.ok(names.length >= 4, `enough segments to tamper with: ${names.length}`);
  });
  /** A copy of the pristine archive, changed by `tamper`, verified. */
  async function tampered(tamper: (dir: string) => Promise<void>) {
    const dir = await mk(freshDir());
    for (const [name, text] of Object.entries(await snapshot(pristine))) await writeFile(join(dir, name), text);
    await tamper(dir);
    return verifyArchive(dir, [keys.publicKeyPem]);
  }
  const reasons = (v: Awaited<ReturnType<typeof verifyArchive>>) => v.faults.map((f) => `${f.segment}: ${f.reason}`).join('\n');

  test('a deleted segment in the middle, and the first one', async () => {
    const middle = await tampered((dir) => unlink(join(dir, names[1]!)));
    assert.equal(middle.ok, false);
    assert.match(reasons(middle), new RegExp(`${names[1]}: segment 1 is missing`));
    const first = await tampered((dir) => unlink(join(dir, names[0]!)));
    assert.equal(first.ok, false);
    assert.match(reasons(first), /segment 0 is missing/);
  });

  test('reordered segments (two files swapped)', async () => {
    const result = await tampered(async (dir) => {
      await rename(join(dir, names[1]!), join(dir, 'swap'));
      await rename(join(dir, names[2]!), join(dir, names[1]!));
      await rename(join(dir, 'swap'), join(dir, names[2]!));
    });
    assert.equal(result.ok, false);
    assert.match(reasons(result), new RegExp(`${names[1]}: the file holds segment 2 \\(renamed or reordered\\)`));
    assert.match(reasons(result), new RegExp(`${names[2]}: the file holds segment 1`));
  });

  test("an edited record: its chain fails, and so does the next segment's link to it", async () => {
    const result = await tampered(async (dir) => {
      const path = join(dir, names[1]!);
      const text = await readFile(path, 'utf8');
      await writeFile(path, text.replace(/ticket T-(\d+) créé/, 'ticket T-$1 effacé'));
    });
    assert.equal(result.ok, false);
    const [chain, link] = result.faults;
    assert.equal(chain?.segment, names[1]);
    assert.match(chain!.reason, /hash does not match the record/);
    assert.equal(link?.segment, names[2]);
    assert.match(link!.reason, /broken link/);
  });

  test('a segment replaced by a validly signed one (one request dropped): only the link shows it', async () => {
    const result = await tampered(async (dir) => {
      const path = join(dir, names[1]!);
      const text = await readFile(path, 'utf8');
      const header = headerOf(text);
      // Someone with the signing key rewrites segment 1 without one of its requests.
      await unlink(path);
      await writeSegment(dir, header.segment!, entriesOf(text).slice(1), { privateKey, checkpointEvery: EVERY, now });
    });
    assert.equal(result.ok, false);
    assert.equal(result.faults.length, 1, reasons(result));
    assert.equal(result.faults[0]?.segment, names[2]);
    assert.match(result.faults[0]!.reason, /broken link/);
  });

  test('a gap between windows, and an entry outside its window, even when validly signed', async () => {
    const gap = freshDir();
    const first = await writeSegment(await mk(gap), { index: 0, from: ARCHIVE_EPOCH, to: new Date(T0).toISOString(), prev: null }, [], { privateKey });
    await writeSegment(
      gap,
      { index: 1, from: new Date(T0 + 1000).toISOString(), to: new Date(T0 + 2000).toISOString(), prev: { name: first.name, sha256: first.sha256 } },
      [],
      { privateKey },
    );
    const gapResult = await verifyArchive(gap, [keys.publicKeyPem]);
    assert.equal(gapResult.ok, false);
    assert.match(reasons(gapResult), /starts at 2026-03-01T10:00:01\.000Z, but segment-00000000\.jsonl's ends at 2026-03-01T10:00:00\.000Z \(a gap\)/);

    const outside = freshDir();
    const stray: ArchivedRequest = {
      closedAt: new Date(T0 + 5000).toISOString(),
      workflowId: 'toolreq/acme/x',
      runId: 'r',
      execution: 'COMPLETED',
      record: {} as AuditRecord,
    };
    await writeSegment(await mk(outside), { index: 0, from: ARCHIVE_EPOCH, to: new Date(T0).toISOString(), prev: null }, [stray], { privateKey });
    const outsideResult = await verifyArchive(outside, [keys.publicKeyPem]);
    assert.equal(outsideResult.ok, false);
    assert.match(reasons(outsideResult), /closed at 2026-03-01T10:00:05\.000Z, outside the segment's window/);
  });

  test('another key, and a header whose window was moved', async () => {
    const other = generateAuditKeyPair();
    const wrongKey = await verifyArchive(pristine, [other.publicKeyPem]);
    assert.equal(wrongKey.ok, false);
    assert.match(reasons(wrongKey), /not among the keys given/);
    const moved = await tampered(async (dir) => {
      const path = join(dir, names[2]!);
      const text = await readFile(path, 'utf8');
      const header = headerOf(text);
      header.segment!.to = new Date(Date.parse(header.segment!.to) + 1).toISOString();
      await writeFile(path, `${JSON.stringify(header)}${text.slice(text.indexOf('\n'))}`);
    });
    assert.equal(moved.ok, false);
    assert.match(reasons(moved), /header was changed/);
  });
});

async function mk(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

describe('audit archive: a crash in the middle of a segment', () => {
  test('SIGKILL mid-write leaves a temporary file only; the next run makes the archive an uninterrupted run makes', { timeout: 60_000 }, async () => {
    const requests = dataset();
    const reference = freshDir();
    await run(reference, fakeSource(requests));
    const expected = await snapshot(reference);

    const dir = freshDir();
    const dataFile = join(root, `data-${dirs}.json`);
    await writeFile(dataFile, JSON.stringify(requests));
    // The child archives the same data with the same key and clock, and hangs building the 5th
    // record of segment 1 (after a checkpoint went to the disk); then it is killed, as in a crash.
    const archiveModule = fileURLToPath(new URL('../../src/audit/archive.ts', import.meta.url));
    const script = `
      import { readFileSync } from 'node:fs';
      import { archiveClosedRequests } from ${JSON.stringify(archiveModule)};
      const requests = JSON.parse(readFileSync(${JSON.stringify(dataFile)}, 'utf8'));
      const inWindow = (from, to) => requests.filter((r) => r.closedAtMs >= from && r.closedAtMs < to);
      let hang = false;
      const source = {
        count: async (from, to) => inWindow(from, to).length,
        list: async function* (from, to) {
          for (const r of inWindow(from, to).reverse()) yield { workflowId: r.workflowId, runId: r.runId, closedAtMs: r.closedAtMs, execution: r.execution };
        },
        build: async (c) => {
          // A timer keeps the process alive while it hangs (a bare pending promise would let it exit).
          if (hang) await new Promise((resolve) => setTimeout(resolve, 3_600_000));
          return { record: requests.find((r) => r.workflowId === c.workflowId && r.runId === c.runId).record };
        },
      };
      await archiveClosedRequests({
        dir: ${JSON.stringify(dir)}, source, privateKey: process.env.KEY, maxRecordsPerSegment: ${MAX}, checkpointEvery: ${EVERY}, now: () => new Date(${NOW}),
        // One history at a time, so the hang starts exactly at the 5th record (the reference run reads ahead: same bytes).
        readAhead: 1,
        heartbeat: ({ segment, records }) => {
          if (segment === 1 && records === 4 && !hang) { hang = true; process.stdout.write('MID\\n'); }
        },
      });
      process.stdout.write('DONE\\n');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, KEY: keys.privateKeyPem },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    const deadline = Date.now() + 30_000;
    while (!out.includes('MID')) {
      assert.ok(child.exitCode === null, `the child exited early: ${out}${err}`);
      assert.ok(Date.now() < deadline, `the child never reached segment 1: ${out}${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Wait until the checkpoint's bytes are in the temporary file, then kill.
    let listing = await listArchive(dir);
    while (listing.temporaryFiles.length === 0 || (await readFile(join(dir, listing.temporaryFiles[0]!), 'utf8')).length === 0) {
      assert.ok(Date.now() < deadline, 'no temporary file with content appeared');
      await new Promise((r) => setTimeout(r, 50));
      listing = await listArchive(dir);
    }
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    assert.ok(!out.includes('DONE'));

    listing = await listArchive(dir);
    assert.deepEqual(
      listing.segments.map((s) => s.name),
      [segmentName(0)],
      'only the whole segment is in place',
    );
    assert.equal(listing.temporaryFiles.length, 1);
    const partial = await readFile(join(dir, listing.temporaryFiles[0]!), 'utf8');
    assert.ok(partial.includes('"checkpoint"') && !partial.includes('"final":true'), 'the temporary file holds half a segment');
    const afterCrash = await verifyArchive(dir, [keys.publicKeyPem]);
    assert.deepEqual([afterCrash.ok, afterCrash.segments, afterCrash.temporaryFiles.length], [true, 1, 1], 'a crash leaves a verifiable archive');

    // The next run resumes after segment 0 and produces exactly the reference archive.
    await run(dir, fakeSource(requests));
    assert.deepEqual(await snapshot(dir), expected);
    assert.equal((await verifyArchive(dir, [keys.publicKeyPem])).ok, true);

    // The leftover is removed once it is old enough to belong to no live writer.
    const leftover = join(dir, listing.temporaryFiles[0]!);
    await utimes(leftover, new Date(NOW - 3600_000), new Date(NOW - 3600_000));
    await run(dir, fakeSource(requests));
    assert.deepEqual((await readdir(dir)).sort(), Object.keys(expected).sort());
  });
});

/** A copy of an archive directory's segments in a fresh directory. */
async function copyArchive(from: string): Promise<string> {
  const dir = await mk(freshDir());
  for (const [name, text] of Object.entries(await snapshot(from))) await writeFile(join(dir, name), text);
  return dir;
}

/** A Temporal client for which every workflow is gone (retention deleted it): `audit show` then reads the archive. */
const goneClient = {
  workflow: {
    getHandle: (workflowId: string) => ({
      fetchHistory: async () => {
        throw new WorkflowNotFoundError('workflow not found', workflowId, undefined);
      },
      describe: async () => {
        throw new WorkflowNotFoundError('workflow not found', workflowId, undefined);
      },
    }),
  },
} as unknown as Client;

async function show(dir: string, workflowId: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await showRequest(
    goneClient,
    workflowId,
    { json: true, archiveDir: dir, publicKeys: async () => [createPublicKey(keys.publicKeyPem)] },
    { out: (t) => (out += t), err: (t) => (err += t) },
  );
  return { code, out, err };
}

describe('audit archive: security review', () => {
  let pristine: string;
  let names: string[];
  before(async () => {
    pristine = freshDir();
    await run(pristine, fakeSource(dataset()));
    names = Object.keys(await snapshot(pristine));
  });

  /** Adds `fields` to the final checkpoint line of `name` (the last line). */
  async function forgeOnFinalCheckpoint(dir: string, name: string, fields: string): Promise<void> {
    const path = join(dir, name);
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    const last = lines.at(-1)!;
    assert.match(last, /^\{"checkpoint":.*"final":true/);
    lines[lines.length - 1] = `${last.slice(0, -1)},${fields}}`;
    await writeFile(path, `${lines.join('\n')}\n`);
  }

  test('a record planted on a checkpoint line is refused by the verifier and never shown as verified', async () => {
    const newest = names.at(-1)!;
    const real = entriesOf((await snapshot(pristine))[newest]!).at(-1)!;
    const forged = { ...real, record: { ...real.record, status: 'forged', answers: { whatItProduced: 'nothing happened' } } };
    const dir = await copyArchive(pristine);
    await forgeOnFinalCheckpoint(dir, newest, `"seq":99,"record":${JSON.stringify(forged)}`);

    // The verifier names the line: only checkpoint, sig and keyId belong on it.
    const verified = await verifyArchive(dir, [keys.publicKeyPem]);
    assert.equal(verified.ok, false);
    assert.equal(verified.faults[0]?.segment, newest);
    assert.match(verified.faults[0]?.reason ?? '', /malformed checkpoint line: unexpected fields "seq", "record"/);

    // `audit show` takes the entry from the authenticated record line, not the planted one, and says it does not verify.
    const hit = await findInArchive(dir, real.workflowId, [keys.publicKeyPem]);
    assert.deepEqual(hit?.entry, real);
    assert.equal(hit?.verification.ok, false);
    const shown = await show(dir, real.workflowId);
    assert.equal(shown.code, 1);
    assert.deepEqual(JSON.parse(shown.out), real.record);
    assert.match(shown.err, /SEGMENT DOES NOT VERIFY \(line \d+: malformed checkpoint line/);
    assert.doesNotMatch(shown.err, /segment chain verified/);

    // A planted request that no record line holds is not found as an entry: the segment is refused.
    const planted = await copyArchive(pristine);
    await forgeOnFinalCheckpoint(planted, newest, `"seq":99,"record":${JSON.stringify({ ...forged, workflowId: 'toolreq/acme/planted' })}`);
    await assert.rejects(
      findInArchive(planted, 'toolreq/acme/planted', [keys.publicKeyPem]),
      (err: unknown) => err instanceof ArchiveIntegrityError && /mentions toolreq\/acme\/planted but does not verify/.test(err.message),
    );

    // An extra field on a record line is refused too (its hash covers only seq, prev and record).
    const onRecord = await copyArchive(pristine);
    const path = join(onRecord, newest);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace(/\n\{"seq":0,/, '\n{"note":"x","seq":0,'));
    const recordLine = await verifyArchive(onRecord, [keys.publicKeyPem]);
    assert.match(recordLine.faults[0]?.reason ?? '', /malformed record line: unexpected field "note"/);

    // The next run does not link to the edited bytes either.
    await assert.rejects(run(dir, fakeSource(dataset())), (err: unknown) => err instanceof ArchiveIntegrityError && /does not verify/.test(err.message));
  });

  test("audit show verifies from the segment to the head: a validly re-signed segment is caught by the next one's link", async () => {
    const target = names[1]!;
    const dir = await copyArchive(pristine);
    const original = await readFile(join(dir, target), 'utf8');
    const entries = entriesOf(original);
    const real = entries[0]!;
    // Someone with the signing key rewrites the segment with one record changed: its own chain verifies.
    await unlink(join(dir, target));
    await writeSegment(dir, headerOf(original).segment!, [{ ...real, record: { ...real.record, status: 'forged' } as AuditRecord }, ...entries.slice(1)], {
      privateKey,
      checkpointEvery: EVERY,
      now,
    });

    const hit = await findInArchive(dir, real.workflowId, [keys.publicKeyPem]);
    assert.equal(hit?.verification.ok, true, 'the re-signed segment is a valid chain on its own');
    assert.equal(hit?.links.ok, false);
    assert.match((hit?.links.faults ?? []).map((f) => `${f.segment}: ${f.reason}`).join('\n'), new RegExp(`${names[2]}: broken link`));
    const shown = await show(dir, real.workflowId);
    assert.equal(shown.code, 1);
    assert.match(
      shown.err,
      /segment chain verified .*; THE ARCHIVE FROM segment-00000001\.jsonl TO ITS HEAD DOES NOT VERIFY \(1 fault\(s\), first segment-00000002\.jsonl: broken link/,
    );

    // The pristine archive: verified to the head, whose hash is printed to compare with the archiver's logs.
    const ok = await show(pristine, real.workflowId);
    assert.equal(ok.code, 0, ok.err);
    const head = (await verifyArchive(pristine, [keys.publicKeyPem])).head!;
    assert.match(
      ok.err,
      new RegExp(`archive verified from ${target} to its head ${head.name} \\(${names.length - 1} segment\\(s\\)\\); head sha256 ${head.sha256}`),
    );
  });

  test('a planted newest segment of an unknown key, or ending in the future, stops the run with an integrity error', async () => {
    const other = generateAuditKeyPair();
    const lastName = names.at(-1)!;
    const lastText = (await snapshot(pristine))[lastName]!;
    const lastTo = headerOf(lastText).segment!.to;
    const next = { index: names.length, from: lastTo, to: '9999-01-01T00:00:00.000Z', prev: { name: lastName, sha256: sha256(lastText) } };

    // A header-only file naming another key.
    const headerOnly = await copyArchive(pristine);
    const header = { ...headerOf(lastText), keyId: 'f00dfeedf00dfeed', segment: next };
    await writeFile(join(headerOnly, segmentName(next.index)), `${JSON.stringify(header)}\n`);
    const source = fakeSource(dataset(40));
    await assert.rejects(
      run(headerOnly, source),
      (err: unknown) => err instanceof ArchiveIntegrityError && /signed with key f00dfeedf00dfeed, which this archiver does not trust/.test(err.message),
    );
    assert.equal(source.lists, 0, 'nothing is archived after it');

    // A validly signed segment of another key that is not configured as trusted.
    const signedByOther = await copyArchive(pristine);
    await writeSegment(signedByOther, next, [], { privateKey: createPrivateKey(other.privateKeyPem) });
    await assert.rejects(
      run(signedByOther, fakeSource(dataset())),
      (err: unknown) =>
        err instanceof ArchiveIntegrityError && new RegExp(`signed with key ${other.keyId}, which this archiver does not trust`).test(err.message),
    );

    // Signed with a trusted key but ending far in the future: no run would ever archive after it.
    const future = await copyArchive(pristine);
    await writeSegment(future, next, [], { privateKey });
    await assert.rejects(
      run(future, fakeSource(dataset())),
      (err: unknown) => err instanceof ArchiveIntegrityError && /ends at 9999-01-01T00:00:00\.000Z, later than now/.test(err.message),
    );

    // A rotated key, configured as trusted, is continued from (its window ends in the past).
    const rotated = await copyArchive(pristine);
    const oldSegment = { ...next, to: new Date(NOW - 30_000).toISOString() };
    await writeSegment(rotated, oldSegment, [], { privateKey: createPrivateKey(other.privateKeyPem) });
    const later = [{ ...dataset(1)[0]!, workflowId: 'toolreq/acme/after-rotation', closedAtMs: NOW + 10_000 }];
    const summary = await archiveClosedRequests({
      dir: rotated,
      source: fakeSource(later),
      privateKey,
      trustedPublicKeys: [other.publicKeyPem],
      now: () => new Date(NOW + 120_000),
    });
    assert.deepEqual(summary.segments, [segmentName(next.index + 1)]);
    assert.equal((await verifyArchive(rotated, [keys.publicKeyPem, other.publicKeyPem])).ok, true);
    // …and the same archive without that configuration is refused.
    await assert.rejects(
      archiveClosedRequests({ dir: rotated, source: fakeSource(later), privateKey: createPrivateKey(other.privateKeyPem), now: () => new Date(NOW + 120_000) }),
      /which this archiver does not trust/,
    );
  });

  /** Runs the archival activity as the worker would, with a logger that keeps its lines. */
  async function activity(dir: string, input: unknown, deps: { minLagMs?: number } = {}) {
    const logged: { level: string; obj: Record<string, unknown>; message: string }[] = [];
    const logger = {
      info: (obj: Record<string, unknown>, message: string) => logged.push({ level: 'info', obj, message }),
      warn: (obj: Record<string, unknown>, message: string) => logged.push({ level: 'warn', obj, message }),
      error: (obj: Record<string, unknown>, message: string) => logged.push({ level: 'error', obj, message }),
    } as unknown as Logger;
    const source = fakeSource(dataset());
    const activities = createArchiveActivities({ client: {} as Client, archiveDir: dir, privateKey, logger, source, ...deps });
    const env = new MockActivityEnvironment({}, { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
    const result: { summary?: ArchiveRunSummary; err?: unknown } = await env
      .run<[], ArchiveRunSummary, () => Promise<ArchiveRunSummary>>(() => activities.archiveClosedRequests(input as AuditArchiveInput))
      .then(
        (summary) => ({ summary }),
        (err: unknown) => ({ err }),
      );
    return { ...result, logged, source };
  }

  test('the activity refuses an integrity problem non-retryably, logged as an alarm', async () => {
    const dir = await copyArchive(pristine);
    const lastText = (await snapshot(pristine))[names.at(-1)!]!;
    const next = {
      index: names.length,
      from: headerOf(lastText).segment!.to,
      to: '9999-01-01T00:00:00.000Z',
      prev: { name: names.at(-1)!, sha256: sha256(lastText) },
    };
    await writeSegment(dir, next, [], { privateKey: createPrivateKey(generateAuditKeyPair().privateKeyPem) });
    const { err, logged } = await activity(dir, {});
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, ARCHIVE_INTEGRITY_FAILURE);
    assert.equal(err.nonRetryable, true);
    assert.ok(
      logged.some((l) => l.level === 'error' && l.obj.alarm === 'audit_archive_integrity'),
      JSON.stringify(logged),
    );
  });

  test('the activity refuses an input out of bounds non-retryably, naming the field, before reading anything', async () => {
    const refused: [unknown, RegExp][] = [
      [{ lagMs: -3600_000 }, /lagMs must be a whole number of ms from 60000/],
      [{ lagMs: 0 }, /lagMs must be/],
      [{ lagMs: ARCHIVE_LAG_MS - 1 }, /lagMs must be/],
      [{ lagMs: 30 * 86_400_000 }, /lagMs must be/],
      [{ lagMs: '60000' }, /lagMs must be/],
      [{ maxRecordsPerSegment: 1e9 }, /maxRecordsPerSegment must be a whole number from 1 to 10000/],
      [{ maxRecordsPerSegment: 0 }, /maxRecordsPerSegment must be/],
      [{ maxRecordsPerSegment: 2.5 }, /maxRecordsPerSegment must be/],
      [{ lagMs: ARCHIVE_LAG_MS, extra: 1 }, /unknown input field extra/],
      [[1], /must be an object/],
    ];
    for (const [input, reason] of refused) {
      const dir = freshDir();
      const { err, source, logged } = await activity(dir, input);
      assert.ok(err instanceof ApplicationFailure, `${JSON.stringify(input)}: ${String(err)}`);
      assert.equal(err.type, ARCHIVE_INPUT_FAILURE);
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, reason, JSON.stringify(input));
      assert.equal(source.lists + source.builds, 0, 'nothing was read');
      assert.deepEqual((await listArchive(dir)).segments, [], 'nothing was written');
      assert.ok(logged.some((l) => l.level === 'error'));
    }
    // The bounds themselves, the defaults, and a floor this process configured itself.
    const ok = await activity(freshDir(), { lagMs: ARCHIVE_LAG_MS, maxRecordsPerSegment: SEGMENT_MAX_RECORDS });
    assert.equal(ok.summary?.records, 30, String(ok.err));
    assert.equal((await activity(freshDir(), undefined)).summary?.records, 30);
    assert.equal((await activity(freshDir(), { lagMs: 0 }, { minLagMs: 0 })).summary?.records, 30);
  });
});
