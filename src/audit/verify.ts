/**
 * Verifies an audit export (see chain.ts) line by line with bounded memory and names the first bad
 * line: the record where the chain breaks, or the checkpoint whose signature or content does not
 * match.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import {
  CHAIN_FORMAT,
  CHAIN_VERSION,
  GENESIS_HASH,
  SEGMENT_CHAIN_VERSION,
  canonicalJson,
  recordHashInput,
  segmentInfoProblem,
  sha256Hex,
  type ChainHeader,
  type Checkpoint,
} from './chain.js';
import { ToolgateError } from '../errors.js';
import { canonicalSha256 } from '../shared/assertions.js';

/** Where verification failed. */
export interface ChainFault {
  /** 1-based line number in the file. */
  line: number;
  /**
   * The record sequence number concerned: the record on that line, the one expected there (deleted,
   * swapped), the checkpoint's seq, or for truncation the first record not covered by a checkpoint.
   */
  seq: number;
  reason: string;
  /**
   * For faults found by a checkpoint (rewritten suffix, truncation): the seq of the last record
   * covered by a valid checkpoint, or -1; the tampering lies after it.
   */
  lastVerifiedSeq?: number;
}

/** The outcome of verifying an export. */
export interface ChainVerification {
  ok: boolean;
  /** Records read whose chain links were valid up to the first fault. */
  records: number;
  /** Checkpoints whose signature and content were valid. */
  checkpoints: number;
  keyId?: string;
  /**
   * The header as read (version 1: an export; version 2: an archive segment, with `segment`).
   * Trust it only when `ok`: the header is authenticated by the checkpoints' signed hash of it.
   */
  header?: ChainHeader;
  firstBad?: ChainFault;
}

/** Options of {@link verifyChain}. */
export interface VerifyChainOptions {
  /**
   * Called with each record whose chain link is valid, in order (e.g. the archive checks each
   * record's window); streaming, nothing is kept. Not a verdict on the chain: that is the result.
   * These are the only authenticated entries: a reader that wants a record takes it from here,
   * never from its own parse of the file's lines.
   */
  onRecord?: (record: unknown, seq: number) => void;
}

const HEX64 = /^[0-9a-f]{64}$/;
const SIG = /^[A-Za-z0-9+/]{86}==$/;
/**
 * The exact fields of a record line and of a checkpoint line. Only some of a line is authenticated
 * (a record's hash covers seq, prev and record; a signature covers the checkpoint object), so a
 * field beyond these would be unauthenticated bytes a reader might take for content (a forged
 * `record` on a checkpoint line): any other field makes the line a fault.
 */
const RECORD_LINE_KEYS: readonly string[] = ['hash', 'prev', 'record', 'seq'];
const CHECKPOINT_LINE_KEYS: readonly string[] = ['checkpoint', 'keyId', 'sig'];

/** The fields of `value` beyond `allowed`, or undefined when it has exactly those. */
function unexpectedKeys(value: Record<string, unknown>, allowed: readonly string[]): string | undefined {
  const keys = Object.keys(value);
  const extra = keys.filter((k) => !allowed.includes(k));
  if (extra.length > 0)
    return `unexpected field${extra.length === 1 ? '' : 's'} ${extra
      .slice(0, 5)
      .map((k) => JSON.stringify(k))
      .join(', ')}`;
  // Missing fields are reported by the per-field checks below with their own reasons.
  return undefined;
}

class Fault extends ToolgateError {
  constructor(
    readonly seq: number,
    readonly reason: string,
    readonly lastVerifiedSeq?: number,
  ) {
    super('audit_export_invalid', reason);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A record line exactly as the writer lays it out (chain.ts): `seq`, `prev`, `hash`, then the
 * record's canonical JSON to the end of the line.
 */
const WRITTEN_RECORD_LINE = /^\{"seq":(0|[1-9]\d*),"prev":"([0-9a-f]{64})","hash":"([0-9a-f]{64})","record":(.*)\}$/s;

/**
 * The fast path for a record line as the writer wrote it: hash the record's bytes as they stand
 * instead of parsing and re-canonicalising them (RFC 8785 is the costliest step of verifying). This
 * is no looser: the writer hashes exactly these canonical bytes, so a line verifies here only if
 * its bytes are the writer's, while a JSON-equivalent rewrite of them fails the hash. Anything else
 * — another layout, a broken link, a hash that does not match — returns undefined, and the line
 * goes through the full check, which gives the exact reason or accepts a reformatted but faithful
 * line as it always has.
 */
function verifyAsWritten(line: string, seq: number, prev: string): { hash: string; record: string } | undefined {
  const match = WRITTEN_RECORD_LINE.exec(line);
  if (!match) return undefined;
  const [, s, p, h, record] = match as unknown as [string, string, string, string, string];
  if (Number(s) !== seq || p !== prev) return undefined;
  if (sha256Hex(recordHashInput(seq, p, record)) !== h) return undefined;
  return { hash: h, record };
}

/** Verifies an export read from `input` against the Ed25519 public key (PEM or KeyObject). */
export async function verifyChain(input: Readable, publicKey: string | KeyObject, options: VerifyChainOptions = {}): Promise<ChainVerification> {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  let seq = 0; // next expected record seq
  let prev = GENESIS_HASH;
  let checkpoints = 0;
  let lastVerifiedSeq = -1;
  let finalSeen = false;
  let keyId: string | undefined;
  let headerHash = '';
  let header: ChainHeader | undefined;
  try {
    for await (const line of lines) {
      lineNo += 1;
      if (lineNo > 1 && !finalSeen) {
        const fast = verifyAsWritten(line, seq, prev);
        if (fast) {
          prev = fast.hash;
          options.onRecord?.(JSON.parse(fast.record), seq);
          seq += 1;
          continue;
        }
      }
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new Fault(seq, 'not valid JSON');
      }
      if (!isObject(value)) throw new Fault(seq, 'not a JSON object');
      if (lineNo === 1) {
        if (
          value.format !== CHAIN_FORMAT ||
          (value.version !== CHAIN_VERSION && value.version !== SEGMENT_CHAIN_VERSION) ||
          value.alg !== 'Ed25519' ||
          typeof value.keyId !== 'string'
        ) {
          throw new Fault(-1, `not a ${CHAIN_FORMAT} v${CHAIN_VERSION} or v${SEGMENT_CHAIN_VERSION} header`);
        }
        // The version says whether there is a segment to check: one without the other is not honest.
        if (value.version === CHAIN_VERSION && 'segment' in value) throw new Fault(-1, `a v${CHAIN_VERSION} header carries a segment`);
        if (value.version === SEGMENT_CHAIN_VERSION) {
          const problem = segmentInfoProblem(value.segment);
          if (problem) throw new Fault(-1, `not a valid segment header: ${problem}`);
        }
        keyId = value.keyId;
        header = value as unknown as ChainHeader;
        headerHash = canonicalSha256(value);
        continue;
      }
      if (finalSeen) throw new Fault(seq, 'content after the final checkpoint');
      if ('checkpoint' in value) {
        const cp = value.checkpoint;
        const extra = unexpectedKeys(value, CHECKPOINT_LINE_KEYS);
        if (extra) throw new Fault(seq - 1, `malformed checkpoint line: ${extra} (a checkpoint line holds only checkpoint, sig and keyId)`);
        if (!isObject(cp) || typeof value.sig !== 'string' || !SIG.test(value.sig)) throw new Fault(seq - 1, 'malformed checkpoint');
        if (value.keyId !== keyId) throw new Fault(seq - 1, `checkpoint key id ${String(value.keyId)} differs from the header's ${keyId}`);
        const signed = verify(null, Buffer.from(canonicalJson(cp)), key, Buffer.from(value.sig, 'base64'));
        const cpSeq = typeof cp.seq === 'number' ? cp.seq : seq - 1;
        if (!signed) throw new Fault(cpSeq, 'checkpoint signature is not valid for this key');
        const checkpoint = cp as unknown as Checkpoint;
        if (checkpoint.header !== headerHash) throw new Fault(checkpoint.seq, 'the header was changed (its hash differs from the signed one)');
        if (checkpoint.seq !== seq - 1 || checkpoint.count !== seq || checkpoint.hash !== prev) {
          throw new Fault(
            checkpoint.seq,
            checkpoint.count !== seq
              ? `signed checkpoint counts ${checkpoint.count} records but ${seq} precede it`
              : `signed checkpoint does not match the chain: records after seq ${lastVerifiedSeq} were changed`,
            lastVerifiedSeq,
          );
        }
        checkpoints += 1;
        lastVerifiedSeq = seq - 1;
        finalSeen = checkpoint.final === true;
        continue;
      }
      const extra = unexpectedKeys(value, RECORD_LINE_KEYS);
      if (extra) throw new Fault(seq, `malformed record line: ${extra} (a record line holds only seq, prev, hash and record)`);
      const { seq: s, prev: p, hash: h, record } = value;
      if (typeof s !== 'number' || typeof p !== 'string' || typeof h !== 'string' || !('record' in value)) throw new Fault(seq, 'malformed record line');
      if (s !== seq) throw new Fault(seq, s > seq ? `record ${seq} is missing (found ${s})` : `record out of order (found ${s}, expected ${seq})`);
      if (p !== prev) throw new Fault(seq, 'prev does not match the hash of the previous record');
      if (!HEX64.test(h) || sha256Hex(recordHashInput(s, p, canonicalJson(record, s))) !== h) throw new Fault(seq, 'hash does not match the record');
      prev = h;
      options.onRecord?.(record, s);
      seq += 1;
    }
    if (lineNo === 0) throw new Fault(-1, 'empty file');
    if (!finalSeen) {
      lineNo += 1;
      throw new Fault(lastVerifiedSeq + 1, 'truncated: the export does not end with its final signed checkpoint', lastVerifiedSeq);
    }
    return { ok: true, records: seq, checkpoints, keyId, ...(header ? { header } : {}) };
  } catch (err) {
    if (!(err instanceof Fault)) throw err;
    lines.close();
    const firstBad: ChainFault = { line: lineNo, seq: err.seq, reason: err.reason };
    if (err.lastVerifiedSeq !== undefined) firstBad.lastVerifiedSeq = err.lastVerifiedSeq;
    return { ok: false, records: seq, checkpoints, keyId, ...(header ? { header } : {}), firstBad };
  }
}
