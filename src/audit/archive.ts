/**
 * The audit archive: the audit record of every closed request, appended before its history can
 * leave the namespace's retention, in a directory of signed hash-chain segments (their format:
 * ./archive-segments.ts; verification: ./archive-verify.ts; lookup: ./archive-find.ts).
 *
 * **The cursor is the archive.** A run reads where the archive ends (the last segment's `to`; the
 * epoch for an empty archive), lists the requests closed in `[cursor, now − lag)` through
 * visibility and writes segments; writing a segment is what moves the cursor. A segment is written
 * to a temporary file, fsynced, and linked into place only if no file of that name exists (an
 * atomic create: a crash leaves at most an unfinished temporary file, never half a segment, and two
 * archivers never overwrite each other). So a run is idempotent (a second run for the same window
 * finds it archived) and resumable (after a crash the next run starts from the last whole segment).
 *
 * **Bounded memory.** A window with more than `maxRecordsPerSegment` closed requests (counted
 * first) is halved until each part fits; a segment's listing (ids and close times only) is held
 * and sorted, and its records are built one at a time as the chain writer pulls them.
 *
 * **Gaps.** A request listed as closed whose history is already gone (deleted by retention between
 * the listing and the read), or whose history cannot be read as a request, is archived as an entry
 * with `gap` instead of `record`: the gap itself is on the signed record, logged at error level,
 * counted in the run's summary (the schedule's workflow result) and in `audit verify`'s output.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { readArchiveHead } from './archive-head.js';
import { compareCandidates, iso, type ArchiveCandidate, type ArchiveGapCode, type ArchivedRequest } from './archive-segments.js';
import type { ArchiveSource } from './archive-source.js';
import { removeStaleTemporaryFiles, writeSegment } from './archive-writer.js';
import type { SegmentInfo } from './chain.js';

/**
 * How far behind now a run stops: visibility records a close shortly after it happens, and a
 * request that becomes visible after its window was archived would never be archived. @default 1 minute
 */
export const ARCHIVE_LAG_MS = 60_000;
/** Most requests in one segment before a window is split. @default 10,000 */
export const SEGMENT_MAX_RECORDS = 10_000;
/** Where an empty archive starts: everything closed before the first segment's `to` is in it. */
export const ARCHIVE_EPOCH = new Date(0).toISOString();
/** Histories read in parallel ahead of the segment writer. @default 8 */
export const ARCHIVE_READ_AHEAD = 8;
/** An unfinished temporary file older than this belongs to no live writer and is removed. @default 10 minutes */
export const STALE_TEMP_MS = 10 * 60_000;

/** Progress reported while a run works (an activity heartbeats it). */
export interface ArchiveProgress {
  segment: number;
  records: number;
}

/** Receives the run's log lines (pino's `(object, message)` shape). */
export interface ArchiveLogger {
  info(obj: object, message: string): void;
  warn(obj: object, message: string): void;
  error(obj: object, message: string): void;
}

/** Options of {@link archiveClosedRequests}. */
export interface ArchiveRunOptions {
  dir: string;
  source: ArchiveSource;
  /** The audit-signing private key (PEM or KeyObject). */
  privateKey: string | KeyObject;
  /**
   * Public keys besides the signing key's own that the archive's last segment may be signed with
   * (the previous key after a rotation). Only these: a last segment of any other key stops the run
   * (see {@link readArchiveHead}). @default none
   */
  trustedPublicKeys?: readonly (string | KeyObject)[];
  /** @default ARCHIVE_LAG_MS */
  lagMs?: number;
  /** @default SEGMENT_MAX_RECORDS */
  maxRecordsPerSegment?: number;
  /** @default DEFAULT_CHECKPOINT_EVERY */
  checkpointEvery?: number;
  /** Histories read ahead of the writer, in parallel. @default ARCHIVE_READ_AHEAD */
  readAhead?: number;
  /** Clock of the window's end and of the segments' times. @default () => new Date() */
  now?: () => Date;
  heartbeat?: (progress: ArchiveProgress) => void;
  /** Stops the run between records; the segment being written is discarded. */
  signal?: AbortSignal;
  logger?: ArchiveLogger;
}

/** What a run did. */
export interface ArchiveRunSummary {
  /** The window this run archived, `[from, to)` (`from` = `to` when there was nothing new). */
  window: { from: string; to: string };
  /** The segments written, in order. */
  segments: string[];
  /** Entries written, gaps included. */
  records: number;
  /** Entries archived without a record (see {@link ArchivedRequest.gap}). */
  gaps: number;
  /** The first 100 gaps, named. */
  gapIds: { workflowId: string; runId: string; code: ArchiveGapCode }[];
  /** The archive's last segment after the run: compare with an external copy to detect a deleted tail. */
  head: { name: string; sha256: string; to: string } | null;
  /** Wall time of the run, in seconds. */
  seconds: number;
}

const NO_LOGGER: ArchiveLogger = { info() {}, warn() {}, error() {} };

/**
 * One archival run: appends every request closed between the archive's end and `now − lag` in
 * segments of at most `maxRecordsPerSegment` (a window with more is halved until each part fits;
 * a part of one millisecond is written whatever its size). Idempotent and resumable (see the
 * module comment).
 */
export async function archiveClosedRequests(options: ArchiveRunOptions): Promise<ArchiveRunSummary> {
  const started = performance.now();
  const { dir, source } = options;
  const now = options.now ?? (() => new Date());
  const logger = options.logger ?? NO_LOGGER;
  const lagMs = options.lagMs ?? ARCHIVE_LAG_MS;
  // A negative lag would end a segment in the future: requests closing in its rest would never be archived.
  if (!Number.isFinite(lagMs) || lagMs < 0) throw new RangeError(`lagMs must be 0 or more, got ${lagMs}`);
  const max = options.maxRecordsPerSegment ?? SEGMENT_MAX_RECORDS;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxRecordsPerSegment must be a positive whole number, got ${max}`);
  const privateKey = typeof options.privateKey === 'string' ? createPrivateKey(options.privateKey) : options.privateKey;
  await mkdir(dir, { recursive: true, mode: 0o750 });
  const removed = await removeStaleTemporaryFiles(dir, STALE_TEMP_MS, now().getTime());
  if (removed.length > 0) logger.warn({ dir, files: removed }, 'audit archive: removed unfinished segment files of an interrupted run');

  let head = await readArchiveHead(dir, [createPublicKey(privateKey), ...(options.trustedPublicKeys ?? [])], { nowMs: now().getTime() });
  const startMs = head ? Date.parse(head.to) : 0;
  const endMs = now().getTime() - lagMs;
  const summary: ArchiveRunSummary = {
    window: { from: iso(startMs), to: iso(startMs) },
    segments: [],
    records: 0,
    gaps: 0,
    gapIds: [],
    head: head ? { name: head.name, sha256: head.sha256, to: head.to } : null,
    seconds: 0,
  };
  let cursor = startMs;
  // Parts of the window still to look at, the earliest on top: each is counted, halved while too
  // big, and a segment is written up to the end of each non-empty part.
  const parts: [number, number][] = endMs > startMs ? [[startMs, endMs]] : [];
  while (parts.length > 0) {
    options.signal?.throwIfAborted();
    const [from, partTo] = parts.pop() as [number, number];
    const count = await source.count(from, partTo);
    options.heartbeat?.({ segment: head ? head.index + 1 : 0, records: 0 });
    if (count > max && partTo - from > 1) {
      const middle = from + Math.floor((partTo - from) / 2);
      parts.push([middle, partTo], [from, middle]);
      continue;
    }
    // An empty part is not a segment of its own: the next segment's window starts at the cursor
    // and covers it (windows stay contiguous; there are no empty files every interval).
    if (count === 0) continue;
    // When everything left up to the end fits as well, this segment takes it all: the run then
    // ends its last segment at now − lag rather than at the last split point.
    let to = partTo;
    if (parts.length > 0 && (await source.count(cursor, endMs)) <= max) {
      to = endMs;
      parts.length = 0;
    }
    // List from the cursor (not `from`): the segment holds exactly what visibility has in its window.
    const candidates: ArchiveCandidate[] = [];
    for await (const candidate of source.list(cursor, to)) {
      if (candidate.closedAtMs < cursor || candidate.closedAtMs >= to) {
        logger.warn(
          { workflowId: candidate.workflowId, closedAt: iso(candidate.closedAtMs) },
          'audit archive: listed outside its window; left to its own window',
        );
        continue;
      }
      candidates.push(candidate);
    }
    if (candidates.length === 0) continue;
    candidates.sort(compareCandidates);
    const index = head ? head.index + 1 : 0;
    const segment: SegmentInfo = { index, from: iso(cursor), to: iso(to), prev: head ? { name: head.name, sha256: head.sha256 } : null };
    let written = 0;
    const signal = options.signal;
    const entries = async function* (): AsyncGenerator<ArchivedRequest> {
      // Histories are read a few at a time ahead of the writer (each read is a round trip to
      // Temporal), and written in order: at most `ahead` records are held.
      const ahead = Math.max(1, options.readAhead ?? ARCHIVE_READ_AHEAD);
      const pending: Promise<Awaited<ReturnType<ArchiveSource['build']>>>[] = [];
      let next = 0;
      const fill = () => {
        while (pending.length < ahead && next < candidates.length) {
          const reading = source.build(candidates[next] as ArchiveCandidate);
          // Awaited in order below; a read left behind by an abort must not be an unhandled rejection.
          reading.catch(() => undefined);
          pending.push(reading);
          next += 1;
        }
      };
      for (const candidate of candidates) {
        signal?.throwIfAborted();
        fill();
        const built = await (pending.shift() as Promise<Awaited<ReturnType<ArchiveSource['build']>>>);
        const entry: ArchivedRequest = {
          closedAt: iso(candidate.closedAtMs),
          workflowId: candidate.workflowId,
          runId: candidate.runId,
          execution: candidate.execution,
          ...('record' in built ? { record: built.record } : { gap: built.gap }),
        };
        if (entry.gap) {
          summary.gaps += 1;
          if (summary.gapIds.length < 100) summary.gapIds.push({ workflowId: candidate.workflowId, runId: candidate.runId, code: entry.gap.code });
          logger.error(
            { workflowId: candidate.workflowId, runId: candidate.runId, closedAt: entry.closedAt, code: entry.gap.code, reason: entry.gap.message },
            'audit archive gap: a closed request is archived without its record',
          );
        }
        written += 1;
        options.heartbeat?.({ segment: index, records: written });
        yield entry;
      }
    };
    const result = await writeSegment(dir, segment, entries(), {
      privateKey,
      ...(options.checkpointEvery ? { checkpointEvery: options.checkpointEvery } : {}),
      now,
    });
    head = { index, name: result.name, sha256: result.sha256, from: segment.from, to: segment.to };
    cursor = to;
    summary.segments.push(result.name);
    summary.records += result.records;
    summary.window.to = segment.to;
    summary.head = { name: head.name, sha256: head.sha256, to: head.to };
    logger.info(
      { segment: result.name, from: segment.from, to: segment.to, records: result.records, bytes: result.bytes, sha256: result.sha256 },
      'audit archive: segment written',
    );
  }
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
