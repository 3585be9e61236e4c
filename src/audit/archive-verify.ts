/**
 * Verifying the audit archive: one chain file (an export or a segment) with the key its header
 * names, or the whole directory — every segment's chain, the numbering, the links between
 * segments' bytes, contiguous windows, and every entry in its window, in order, once.
 */
import { createReadStream } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { compareCandidates, listArchive, readHeader, segmentName, sha256OfFile, type ArchiveCandidate } from './archive-segments.js';
import { keysById } from './keys.js';
import { verifyChain, type ChainVerification } from './verify.js';

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
export async function verifySegmentChain(
  path: string,
  keys: Map<string, KeyObject>,
  onRecord?: (record: unknown, seq: number) => void,
): Promise<ChainVerification> {
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
