/**
 * The audit archive: the audit record of every closed request, appended before its history can
 * leave the namespace's retention, in a directory of signed hash-chain segments.
 *
 * ```
 * <archive dir>/segment-00000000.jsonl   header { …, version 2, segment: { index 0, from, to, prev: null } }
 * <archive dir>/segment-00000001.jsonl   header { …, segment: { index 1, from = previous to, to, prev: { name, sha256 } } }
 * …
 * ```
 *
 * Each segment is a complete chain (chain.ts: header, records, signed checkpoints, final
 * checkpoint) holding the requests whose workflow closed in its window `[from, to)`, sorted by
 * (close time, workflow id, run id). Segments link: a header names the previous segment's file and
 * the SHA-256 of its bytes, and its window starts where the previous one ended. The header is
 * signed through every checkpoint, so `verifyArchive` catches an edited, deleted, renamed or
 * reordered segment, a broken link and a gap or overlap between windows.
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
import { createHash, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { isGrpcServiceError, type Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { KeyNotInKeyring, PayloadDecryptionError } from '../codec/aes-gcm.js';
import { redactText } from '../egress/redact.js';
import { WORKFLOW_TYPE, parseRequestWorkflowId } from '../shared/index.js';
import { ChainWriter, DEFAULT_CHECKPOINT_EVERY, generateAuditKeyPair, keyIdOf, type ChainHeader, type SegmentInfo } from './chain.js';
import { AuditRecordError, auditRecordFromHistory, type AuditRecord } from './record.js';
import { verifyChain, type ChainVerification } from './verify.js';
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';

/** Id of the Temporal Schedule that runs the archival. */
export const ARCHIVE_SCHEDULE_ID = 'toolgate-audit-archive';
/** Task queue of the archival workflow and activity (only the archiver, which holds the audit key, polls it). */
export const ARCHIVE_TASK_QUEUE = 'toolgate-audit';
/** Workflow type the schedule starts (workflows/audit-archive.ts). */
export const ARCHIVE_WORKFLOW_TYPE = 'auditArchive';
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
/**
 * How far past this archiver's now the archive's last window may end (another archiver's clock
 * may run a little ahead; its windows end a lag behind its own now). A window ending later than
 * that would make every run archive nothing, so it is refused. @default 5 minutes
 */
export const ARCHIVE_CLOCK_SKEW_MS = 5 * 60_000;

const SEGMENT_FILE = /^segment-(\d{8})\.jsonl$/;
const TEMP_FILE = /^\.segment-\d{8}\.jsonl\.[0-9a-f]+\.tmp$/;

/** The file name of segment `index`: zero-padded, so names sort in archive order. */
export function segmentName(index: number): string {
  return `segment-${String(index).padStart(8, '0')}.jsonl`;
}

/** The index a segment file name stands for, or undefined for any other file. */
export function segmentIndexOf(name: string): number | undefined {
  const match = SEGMENT_FILE.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** One archived request: a line of a segment (the chain's `record`). */
export interface ArchivedRequest {
  /** When the workflow closed (visibility's CloseTime, ms), ISO 8601. Inside the segment's window. */
  closedAt: string;
  workflowId: string;
  runId: string;
  /** How the workflow execution ended, as visibility says (`COMPLETED`, `FAILED`, `TERMINATED`, `TIMED_OUT`, …). */
  execution: string;
  /** The audit record derived from the history; absent exactly when `gap` is set. */
  record?: AuditRecord;
  /** Why there is no record: the history was gone when read, or could not be read as a request. */
  gap?: { code: ArchiveGapCode; message: string };
}

/** `history_gone`: deleted (retention) before it was read; `unreadable`: not a request's history, or a payload failed authentication. */
export type ArchiveGapCode = 'history_gone' | 'unreadable';

/** A closed request as visibility lists it. */
export interface ArchiveCandidate {
  workflowId: string;
  runId: string;
  closedAtMs: number;
  execution: string;
}

/** Where a run reads closed requests from (Temporal in production, a fake in unit tests). */
export interface ArchiveSource {
  /** How many requests closed in `[fromMs, toMs)` (only to size segments). */
  count(fromMs: number, toMs: number): Promise<number>;
  /** The requests closed in `[fromMs, toMs)`, in any order. */
  list(fromMs: number, toMs: number): AsyncIterable<ArchiveCandidate>;
  /** The audit record of one, or why there is none; throws for what a retry may fix (Temporal unreachable, a missing codec key). */
  build(candidate: ArchiveCandidate): Promise<{ record: AuditRecord } | { gap: { code: ArchiveGapCode; message: string } }>;
}

/** Thrown when the archive cannot safely be extended: its last segment does not verify, is signed by an untrusted key or ends in the future, or another writer took the next index. */
export class ArchiveIntegrityError extends ToolgateError {
  override readonly name = 'ArchiveIntegrityError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('archive_integrity', message, options);
  }
}

/** The visibility query of the requests closed in `[from, to)`. */
export function closedRequestsQuery(fromMs: number, toMs: number): string {
  return `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus != 'Running' AND CloseTime >= '${iso(fromMs)}' AND CloseTime < '${iso(toMs)}'`;
}

const iso = (ms: number): string => new Date(ms).toISOString();
/** gRPC status NOT_FOUND. */
const GRPC_NOT_FOUND = 5;

/** The archive source of a Temporal client that holds the codec keys. */
export function temporalArchiveSource(client: Client): ArchiveSource {
  return {
    async count(fromMs, toMs) {
      return (await client.workflow.count(closedRequestsQuery(fromMs, toMs))).count;
    },
    async *list(fromMs, toMs) {
      for await (const execution of client.workflow.list({ query: closedRequestsQuery(fromMs, toMs), pageSize: 1000 })) {
        // Only toolgate request ids (as `audit export`): a workflow of that type under another id is not a request.
        if (!parseRequestWorkflowId(execution.workflowId) || !execution.closeTime) continue;
        yield { workflowId: execution.workflowId, runId: execution.runId, closedAtMs: execution.closeTime.getTime(), execution: execution.status.name };
      }
    },
    async build(candidate) {
      let history: temporal.api.history.v1.IHistory;
      try {
        history = await client.workflow.getHandle(candidate.workflowId, candidate.runId).fetchHistory();
      } catch (err) {
        // fetchHistory passes the service's NOT_FOUND through as a gRPC error (other calls wrap it as WorkflowNotFoundError).
        if (err instanceof WorkflowNotFoundError || (isGrpcServiceError(err) && Number(err.code) === GRPC_NOT_FOUND)) {
          return { gap: { code: 'history_gone', message: `the history was deleted before it was archived: ${(err as Error).message}` } };
        }
        throw err;
      }
      try {
        return { record: await auditRecordFromHistory(history, client.options.loadedDataConverter, { workflowId: candidate.workflowId }) };
      } catch (err) {
        // A key missing from this archiver's keyring is its configuration, not the history: retry
        // (and alarm) rather than archive a permanent gap for a history that is still readable.
        if (err instanceof KeyNotInKeyring) throw err;
        // A history that is not a request's, or holds a payload that fails authentication, would
        // fail every time: archive the gap so one planted history cannot stop the archival.
        if (err instanceof AuditRecordError || err instanceof PayloadDecryptionError) return { gap: { code: 'unreadable', message: redactText(err.message) } };
        throw err;
      }
    },
  };
}

/** A segment file found in the archive directory. */
export interface SegmentFile {
  index: number;
  name: string;
  path: string;
}

/** What is in the archive directory: segments in index order, unfinished temporary files, anything else. */
export async function listArchive(dir: string): Promise<{ segments: SegmentFile[]; temporaryFiles: string[]; otherFiles: string[] }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { segments: [], temporaryFiles: [], otherFiles: [] };
    throw err;
  }
  const segments: SegmentFile[] = [];
  const temporaryFiles: string[] = [];
  const otherFiles: string[] = [];
  for (const name of names.sort()) {
    const index = segmentIndexOf(name);
    if (index !== undefined) segments.push({ index, name, path: join(dir, name) });
    else if (TEMP_FILE.test(name)) temporaryFiles.push(name);
    else otherFiles.push(name);
  }
  segments.sort((a, b) => a.index - b.index);
  return { segments, temporaryFiles, otherFiles };
}

/** The first line of a file, parsed as a chain header (undefined when it is not JSON). */
async function readHeader(path: string): Promise<ChainHeader | undefined> {
  const lines = createInterface({ input: createReadStream(path, { end: 1024 * 1024 }), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      try {
        return JSON.parse(line) as ChainHeader;
      } catch {
        return undefined;
      }
    }
    return undefined;
  } finally {
    lines.close();
  }
}

/** SHA-256 (hex) of a file's bytes, streamed. */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Public keys by key id (the id chain.ts writes in every header). */
function keysById(publicKeys: readonly (string | KeyObject)[]): Map<string, KeyObject> {
  const map = new Map<string, KeyObject>();
  for (const key of publicKeys) {
    const object = typeof key === 'string' ? createPublicKey(key) : key.type === 'private' ? createPublicKey(key) : key;
    map.set(keyIdOf(object), object);
  }
  return map;
}

/**
 * Verifies a chain file (an export or a segment) with the key its header names, among
 * `publicKeys` (one key: that one, whatever the header says — the verification then names the
 * mismatch at the first checkpoint).
 */
export async function verifyChainFile(path: string, publicKeys: readonly (string | KeyObject)[]): Promise<ChainVerification> {
  const keys = keysById(publicKeys);
  if (keys.size === 1) {
    const input = createReadStream(path);
    try {
      return await verifyChain(input, [...keys.values()][0] as KeyObject);
    } finally {
      input.destroy();
    }
  }
  return verifySegmentChain(path, keys);
}

/**
 * Verifies one segment's chain with the key its header names (among `keys`), calling `onRecord`
 * for each record whose link is valid.
 */
async function verifySegmentChain(path: string, keys: Map<string, KeyObject>, onRecord?: (record: unknown, seq: number) => void): Promise<ChainVerification> {
  const header = await readHeader(path);
  const keyId = typeof header?.keyId === 'string' ? header.keyId : undefined;
  const key = keyId === undefined ? [...keys.values()][0] : keys.get(keyId);
  if (!key) {
    return {
      ok: false,
      records: 0,
      checkpoints: 0,
      ...(keyId ? { keyId } : {}),
      firstBad: { line: 1, seq: -1, reason: `signed with key ${keyId ?? '?'}, which is not among the keys given (${[...keys.keys()].join(', ') || 'none'})` },
    };
  }
  const input = createReadStream(path);
  try {
    return await verifyChain(input, key, onRecord ? { onRecord } : {});
  } finally {
    input.destroy();
  }
}

/** The end of the archive: its last segment, which a run links the next one to. */
export interface ArchiveHead {
  index: number;
  name: string;
  sha256: string;
  from: string;
  to: string;
}

/** Options of {@link readArchiveHead}. */
export interface ReadArchiveHeadOptions {
  /** This archiver's now, in ms: the last window may not end later than it (plus `skewMs`). */
  nowMs: number;
  /** @default ARCHIVE_CLOCK_SKEW_MS */
  skewMs?: number;
}

/**
 * Reads the archive's last segment as the place to continue from. Its window end is the cursor,
 * so it is trusted only once authenticated: it must be signed by one of `trustedKeys` (the
 * archiver's own key, and earlier keys only when configured after a rotation) and verify, its
 * signed header must hold the segment its file name says, and its window may not end later than
 * now (+ skew). Anything else is an {@link ArchiveIntegrityError}: a planted segment of an
 * unknown key, or one whose window reaches into the future, would otherwise make every run
 * archive nothing, silently.
 */
export async function readArchiveHead(
  dir: string,
  trustedKeys: readonly (string | KeyObject)[],
  options: ReadArchiveHeadOptions,
): Promise<ArchiveHead | undefined> {
  const { segments } = await listArchive(dir);
  const last = segments.at(-1);
  if (!last) return undefined;
  const keys = keysById(trustedKeys);
  const header = await readHeader(last.path).catch(() => undefined);
  const keyId = typeof header?.keyId === 'string' ? header.keyId : undefined;
  // Checked here (not only by the verification) so that a single trusted key is never used to
  // "verify" a segment naming another one, and the message says what to configure.
  if (keyId === undefined || !keys.has(keyId)) {
    throw new ArchiveIntegrityError(
      `the archive's last segment ${last.name} is signed with key ${keyId ?? '(none)'}, which this archiver does not trust (trusted: ${[...keys.keys()].join(', ')}); ` +
        `nothing is linked to it (after a key rotation, configure the previous public key as trusted): run toolgate audit verify ${dir}`,
    );
  }
  const verification = await verifySegmentChain(last.path, keys);
  if (!verification.ok) {
    throw new ArchiveIntegrityError(
      `the archive's last segment ${last.name} does not verify (line ${verification.firstBad?.line}: ${verification.firstBad?.reason}); nothing is linked to it: run toolgate audit verify ${dir}`,
    );
  }
  // The header as the verification authenticated it, not a second read of the file.
  const segment = verification.header?.segment;
  if (!segment || segment.index !== last.index) {
    throw new ArchiveIntegrityError(
      `the archive's last segment ${last.name} has no valid segment header for index ${last.index}: run toolgate audit verify ${dir}`,
    );
  }
  const skewMs = options.skewMs ?? ARCHIVE_CLOCK_SKEW_MS;
  if (Date.parse(segment.to) > options.nowMs + skewMs) {
    throw new ArchiveIntegrityError(
      `the archive's last segment ${last.name} ends at ${segment.to}, later than now (${iso(options.nowMs)}); no run would archive anything after it, so nothing is linked to it: run toolgate audit verify ${dir}`,
    );
  }
  return { index: last.index, name: last.name, sha256: await sha256OfFile(last.path), from: segment.from, to: segment.to };
}

/** Removes unfinished temporary files no live writer can own any more (a writer touches its file at least every checkpoint). */
async function removeStaleTemporaryFiles(dir: string, olderThanMs: number, nowMs: number): Promise<string[]> {
  const { temporaryFiles } = await listArchive(dir);
  const removed: string[] = [];
  for (const name of temporaryFiles) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info && nowMs - info.mtimeMs >= olderThanMs) {
      await rm(path, { force: true });
      removed.push(name);
    }
  }
  return removed;
}

/** What one segment write produced. */
export interface WrittenSegment {
  name: string;
  sha256: string;
  records: number;
  bytes: number;
}

/**
 * Writes a segment atomically: a temporary file in the same directory, fsynced, then hard-linked
 * to its final name, which fails if that name exists (`rename` would silently replace a segment
 * another archiver wrote meanwhile), then the directory fsynced. On any failure the temporary
 * file is removed; a crash leaves it behind, and it is ignored by readers and removed later.
 */
export async function writeSegment(
  dir: string,
  segment: SegmentInfo,
  entries: AsyncIterable<ArchivedRequest> | Iterable<ArchivedRequest>,
  options: { privateKey: KeyObject; checkpointEvery?: number; now?: () => Date },
): Promise<WrittenSegment> {
  const name = segmentName(segment.index);
  const finalPath = join(dir, name);
  const tempPath = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(tempPath, 'wx', 0o640);
  const hash = createHash('sha256');
  let open_ = true;
  try {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        file.write(chunk).then(() => callback(), callback);
      },
    });
    const summary = await new ChainWriter({
      privateKey: options.privateKey,
      checkpointEvery: options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY,
      ...(options.now ? { now: options.now } : {}),
      segment,
    }).write(entries, sink);
    sink.end();
    await finished(sink);
    await file.sync();
    await file.close();
    open_ = false;
    try {
      await link(tempPath, finalPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new ArchiveIntegrityError(`${name} was written by another archiver meanwhile; this run stops, the next one continues after it`);
      }
      throw err;
    }
    await rm(tempPath, { force: true });
    await syncDirectory(dir);
    return { name, sha256: hash.digest('hex'), records: summary.records, bytes: summary.bytes };
  } finally {
    if (open_) await file.close().catch(() => undefined);
    await rm(tempPath, { force: true });
  }
}

/** fsync of a directory, so a rename or link in it survives a power loss (where the platform allows it). */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    // Some platforms and file systems refuse fsync on a directory; the file itself was synced.
    if (!['EINVAL', 'EPERM', 'EISDIR', 'EBADF'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await handle.close();
  }
}

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

/** Orders entries the way a segment holds them: by close time, then workflow id, then run id. */
export function compareCandidates(a: ArchiveCandidate, b: ArchiveCandidate): number {
  if (a.closedAtMs !== b.closedAtMs) return a.closedAtMs - b.closedAtMs;
  if (a.workflowId !== b.workflowId) return a.workflowId < b.workflowId ? -1 : 1;
  return a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0;
}

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

/** One problem `verifyArchive` found. */
export interface ArchiveFault {
  /** The segment file concerned (for a missing segment, the name it should have). */
  segment: string;
  reason: string;
  /** 1-based line in the segment, for a fault inside its chain. */
  line?: number;
  /** Record seq in the segment, when there is one. */
  seq?: number;
}

/** The outcome of verifying an archive directory. */
export interface ArchiveVerification {
  ok: boolean;
  segments: number;
  /** Entries read (records and gaps) in segments whose chain verified. */
  records: number;
  gaps: number;
  checkpoints: number;
  /** The window the archive covers, from its first segment's `from` to its last one's `to`. */
  window?: { from: string; to: string };
  /** The last segment and the SHA-256 of its bytes (a deleted tail can only be seen against a copy of this). */
  head?: { name: string; sha256: string };
  keyIds: string[];
  /** Every fault, in archive order; empty when ok. */
  faults: ArchiveFault[];
  /** Unfinished segment files of an interrupted run (ignored: not part of the archive). */
  temporaryFiles: string[];
  /** Other files in the directory (ignored). */
  otherFiles: string[];
}

/** Why an archived entry does not belong where it is, or undefined. */
function entryProblem(
  value: unknown,
  window: { fromMs: number; toMs: number },
  previous: ArchiveCandidate | undefined,
): { problem?: string; key?: ArchiveCandidate; gap?: boolean } {
  if (typeof value !== 'object' || value === null) return { problem: 'not an archived request' };
  const v = value as Record<string, unknown>;
  if (typeof v.closedAt !== 'string' || typeof v.workflowId !== 'string' || typeof v.runId !== 'string' || typeof v.execution !== 'string')
    return { problem: 'not an archived request (closedAt, workflowId, runId, execution)' };
  if ('record' in v === 'gap' in v) return { problem: 'an archived request has either a record or a gap' };
  const closedAtMs = Date.parse(v.closedAt);
  if (Number.isNaN(closedAtMs) || closedAtMs < window.fromMs || closedAtMs >= window.toMs)
    return { problem: `closed at ${v.closedAt}, outside the segment's window` };
  const key: ArchiveCandidate = { workflowId: v.workflowId, runId: v.runId, closedAtMs, execution: v.execution };
  if (previous && compareCandidates(previous, key) >= 0) return { problem: `out of order or repeated (${v.workflowId} after ${previous.workflowId})` };
  return { key, gap: 'gap' in v };
}

/** Options of {@link verifyArchive}. */
export interface VerifyArchiveOptions {
  /**
   * Verify only from segment `fromIndex` to the head (what vouches for that segment's bytes: its
   * own chain, and each later segment's signed link to the one before). @default 0, the whole archive
   */
  fromIndex?: number;
}

/**
 * Verifies an archive directory: every segment's chain and signatures (with the key its header
 * names, among `publicKeys`), that segments are numbered 0, 1, 2, … with none missing, that each
 * file holds the segment its name says, that each links to the bytes of the one before, that
 * windows are contiguous, and that every entry lies in its segment's window in order, once.
 * Memory stays flat: each segment is streamed.
 */
export async function verifyArchive(
  dir: string,
  publicKeys: readonly (string | KeyObject)[],
  options: VerifyArchiveOptions = {},
): Promise<ArchiveVerification> {
  const keys = keysById(publicKeys);
  const fromIndex = options.fromIndex ?? 0;
  const listing = await listArchive(dir);
  const { temporaryFiles, otherFiles } = listing;
  const segments = listing.segments.filter((s) => s.index >= fromIndex);
  const result: ArchiveVerification = {
    ok: true,
    segments: segments.length,
    records: 0,
    gaps: 0,
    checkpoints: 0,
    keyIds: [],
    faults: [],
    temporaryFiles,
    otherFiles,
  };
  let previous: { index: number; name: string; sha256: string; to?: string } | undefined;
  let expected = fromIndex;
  for (const file of segments) {
    if (file.index !== expected) {
      for (let missing = expected; missing < Math.min(file.index, expected + 10); missing++) {
        result.faults.push({ segment: segmentName(missing), reason: `segment ${missing} is missing (deleted or renamed)` });
      }
      if (file.index - expected > 10)
        result.faults.push({ segment: segmentName(file.index - 1), reason: `segments ${expected}…${file.index - 1} are missing` });
      previous = undefined;
    }
    expected = file.index + 1;
    const sha256 = await sha256OfFile(file.path);
    // The window the records are checked against: the header's, which the chain then authenticates
    // (a changed window fails the checkpoints' signed header hash; entry faults count only when the chain is ok).
    const declared = (await readHeader(file.path).catch(() => undefined))?.segment;
    const window = declared ? { fromMs: Date.parse(declared.from), toMs: Date.parse(declared.to) } : undefined;
    let last: ArchiveCandidate | undefined;
    let entryFault: ArchiveFault | undefined;
    let entries = 0;
    let gaps = 0;
    const verification = await verifySegmentChain(file.path, keys, (record, seq) => {
      if (entryFault || !window) return;
      const checked = entryProblem(record, window, last);
      if (checked.problem) {
        entryFault = { segment: file.name, seq, reason: checked.problem };
        return;
      }
      last = checked.key;
      entries += 1;
      if (checked.gap) gaps += 1;
    }).catch((err: unknown): ChainVerification => ({
      ok: false,
      records: 0,
      checkpoints: 0,
      firstBad: { line: 0, seq: -1, reason: `unreadable: ${(err as Error).message}` },
    }));
    const segment = verification.header?.segment;
    if (!verification.ok) {
      const bad = verification.firstBad;
      result.faults.push({ segment: file.name, reason: bad?.reason ?? 'does not verify', ...(bad ? { line: bad.line, seq: bad.seq } : {}) });
    }
    if (verification.keyId && !result.keyIds.includes(verification.keyId)) result.keyIds.push(verification.keyId);
    if (!segment) {
      if (verification.ok) result.faults.push({ segment: file.name, reason: 'not an archive segment (no segment header)' });
      previous = { index: file.index, name: file.name, sha256 };
      continue;
    }
    if (segment.index !== file.index) result.faults.push({ segment: file.name, reason: `the file holds segment ${segment.index} (renamed or reordered)` });
    if (previous) {
      if (segment.prev?.name !== previous.name || segment.prev.sha256 !== previous.sha256) {
        result.faults.push({
          segment: file.name,
          reason: `broken link: it names ${segment.prev ? `${segment.prev.name} with SHA-256 ${segment.prev.sha256.slice(0, 16)}…` : 'no previous segment'}, but ${previous.name} hashes to ${previous.sha256.slice(0, 16)}… (edited or replaced)`,
        });
      }
      if (previous.to !== undefined && segment.from !== previous.to) {
        result.faults.push({
          segment: file.name,
          reason: `its window starts at ${segment.from}, but ${previous.name}'s ends at ${previous.to} (${segment.from > previous.to ? 'a gap' : 'an overlap'})`,
        });
      }
    } else if (file.index === 0 && segment.prev !== null) {
      result.faults.push({ segment: file.name, reason: 'the first segment links to a previous one' });
    }
    if (verification.ok) {
      if (entryFault) result.faults.push(entryFault);
      result.records += entries;
      result.gaps += gaps;
      result.checkpoints += verification.checkpoints;
    }
    result.window = { from: result.window?.from ?? segment.from, to: segment.to };
    previous = { index: file.index, name: file.name, sha256, to: segment.to };
  }
  if (previous) result.head = { name: previous.name, sha256: previous.sha256 };
  result.ok = result.faults.length === 0;
  return result;
}

/** Where a request was found in the archive. */
export interface ArchiveHit {
  /** The entry as the segment's verifier read it from an authenticated record line. */
  entry: ArchivedRequest;
  segment: string;
  /** The entry's record seq in its segment. */
  seq: number;
  /** The verification of that segment's chain (signatures and hashes), done before the entry is returned. */
  verification: ChainVerification;
  /**
   * The archive verified from that segment to its head (`verifyArchive` with `fromIndex`): the
   * chains, the links and windows of every later segment. A validly signed replacement of the
   * segment is caught only by the next segment's link to its bytes; the head itself only against
   * a copy of its hash (`links.head`).
   */
  links: ArchiveVerification;
}

/**
 * Finds a workflow's entry in the archive (its latest run: segments are read newest first, and
 * the last matching entry of a segment wins). The entry is taken only from the record lines the
 * chain verifier authenticates, never from a line read on the side; the segment that holds it is
 * then verified up to the head (see {@link ArchiveHit.links}). Reads every segment in the worst
 * case, one line at a time. Throws {@link ArchiveIntegrityError} when a segment names the
 * workflow but no authenticated entry of it can be read there (the segment does not verify before
 * it): an older run from an older segment would not be the truth either.
 */
export async function findInArchive(dir: string, workflowId: string, publicKeys: readonly (string | KeyObject)[]): Promise<ArchiveHit | undefined> {
  const { segments } = await listArchive(dir);
  const keys = keysById(publicKeys);
  // A cheap test before verifying a segment: canonical JSON writes the field exactly like this.
  const needle = `"workflowId":${JSON.stringify(workflowId)}`;
  for (const file of [...segments].reverse()) {
    if (!(await fileHasLine(file.path, needle))) continue;
    let found: { entry: ArchivedRequest; seq: number } | undefined;
    const verification = await verifySegmentChain(file.path, keys, (record, seq) => {
      if (typeof record === 'object' && record !== null && (record as { workflowId?: unknown }).workflowId === workflowId)
        found = { entry: record as ArchivedRequest, seq };
    });
    if (!found) {
      if (verification.ok) continue; // the id only appears inside another entry
      throw new ArchiveIntegrityError(
        `${file.name} mentions ${workflowId} but does not verify (line ${verification.firstBad?.line}: ${verification.firstBad?.reason}), and no authenticated entry of it could be read: run toolgate audit verify ${dir}`,
      );
    }
    const links = await verifyArchive(dir, publicKeys, { fromIndex: file.index });
    return { ...found, segment: file.name, verification, links };
  }
  return undefined;
}

/** Whether some line of a file contains `needle` (streamed, one line at a time). */
async function fileHasLine(path: string, needle: string): Promise<boolean> {
  const input = createReadStream(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) if (line.includes(needle)) return true;
    return false;
  } finally {
    lines.close();
    // Returning early leaves the stream open: close its file now, not at garbage collection.
    input.destroy();
  }
}

/**
 * The warning the archiver logs at start when the namespace may delete a closed request's history
 * before a run archives it: a request that closes right after a run's window must survive until
 * the run after next (two intervals, plus the lag behind now each window keeps).
 */
export function retentionWarning(options: { retentionMs: number; intervalMs: number; lagMs?: number }): string | undefined {
  const needed = 2 * options.intervalMs + (options.lagMs ?? ARCHIVE_LAG_MS);
  if (options.retentionMs >= needed) return undefined;
  const minutes = (ms: number) => `${Math.round(ms / 60_000)} min`;
  return `the namespace retention (${minutes(options.retentionMs)}) is shorter than twice the archive interval plus the lag (${minutes(needed)}): closed requests may be deleted before they are archived`;
}

/** The audit key files of a state directory (or of `toolgate audit keygen --out`). */
export interface AuditKeyFiles {
  privateKeyFile: string;
  publicKeyFile: string;
}

/**
 * Makes sure the audit-signing key pair exists (what `toolgate dev` does at start, like `audit
 * keygen`): never overwrites, writes the public half if only it is missing. Returns its key id.
 */
export async function ensureAuditKeyPair(files: AuditKeyFiles): Promise<{ keyId: string; created: boolean }> {
  let pem: string | undefined;
  try {
    pem = await readFile(files.privateKeyFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (pem === undefined) {
    const pair = generateAuditKeyPair();
    await mkdir(dirname(files.privateKeyFile), { recursive: true, mode: 0o700 });
    try {
      await writeFile(files.privateKeyFile, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process created it first: use theirs.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return ensureAuditKeyPair(files);
      throw err;
    }
    await writeFile(files.publicKeyFile, pair.publicKeyPem, { mode: 0o644, flag: 'w' });
    return { keyId: pair.keyId, created: true };
  }
  const publicKey = createPublicKey(createPrivateKey(pem));
  try {
    await writeFile(files.publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }).toString(), { mode: 0o644, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return { keyId: keyIdOf(publicKey), created: false };
}

/** Reads public keys for verification: each file a public key (SPKI PEM), or a private key whose public half is taken. */
export async function loadAuditPublicKeys(files: readonly string[]): Promise<KeyObject[]> {
  const keys: KeyObject[] = [];
  for (const file of files) {
    const pem = await readFile(file, 'utf8');
    keys.push(pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem));
  }
  return keys;
}
