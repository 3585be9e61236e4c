/**
 * The audit archive's on-disk format: a directory of signed hash-chain segments, each holding the
 * audit records of the requests closed in its window (src/audit/archive.ts appends them).
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
 * Also here: the entry a segment line holds, the order of entries, and reading the directory.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';
import type { ChainHeader } from './chain.js';
import type { AuditRecord } from './record-types.js';

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

/** Orders entries the way a segment holds them: by close time, then workflow id, then run id. */
export function compareCandidates(a: ArchiveCandidate, b: ArchiveCandidate): number {
  if (a.closedAtMs !== b.closedAtMs) return a.closedAtMs - b.closedAtMs;
  if (a.workflowId !== b.workflowId) return a.workflowId < b.workflowId ? -1 : 1;
  return a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0;
}

/** Thrown when the archive cannot safely be extended: its last segment does not verify, is signed by an untrusted key or ends in the future, or another writer took the next index. */
export class ArchiveIntegrityError extends ToolgateError {
  override readonly name = 'ArchiveIntegrityError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('archive_integrity', message, options);
  }
}

/** A time in ms as ISO 8601, as segment headers and entries write it. */
export const iso = (ms: number): string => new Date(ms).toISOString();

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
export async function readHeader(path: string): Promise<ChainHeader | undefined> {
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
