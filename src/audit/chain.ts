/**
 * Tamper-evident export of audit records: JSON Lines in a SHA-256 hash chain with Ed25519-signed
 * checkpoints.
 *
 * ```
 * {"format":"toolgate-audit-chain","version":1,"alg":"Ed25519","keyId":"...","checkpointEvery":1000,"createdAt":"..."}
 * {"seq":0,"prev":"000…0","hash":"<sha256(canonical {seq, prev, record})>","record":{...}}
 * ...
 * {"checkpoint":{"seq":999,"hash":"<hash of record 999>","count":1000,"at":"...","header":"<sha256 of header>"},"sig":"<base64 Ed25519 over canonical checkpoint>","keyId":"..."}
 * ...                          (a checkpoint every `checkpointEvery` records, and a last one with "final":true)
 * ```
 *
 * A segment of the audit archive (src/audit/archive-segments.ts) is the same format with version 2: its
 * header also carries `segment` — its index, the window of close times it covers and the name and
 * SHA-256 of the segment before it — so segments link into one chain of files. Plain exports stay
 * version 1, byte for byte as before, so older verifiers still read them; a version-1 verifier
 * refuses a segment rather than passing it without checking what it cannot understand.
 *
 * The chain catches a changed, deleted or reordered record at the line where it happens; the signed
 * checkpoints catch a suffix rewritten with recomputed hashes, and a missing final checkpoint or a
 * wrong count catches truncation. The writer streams: one record in memory at a time, backpressure
 * honoured.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { ToolgateError } from '../errors.js';
import { canonicalJson as canonicalJsonOf, canonicalSha256 } from '../shared/assertions.js';

/** Value of the header's `format` field. */
export const CHAIN_FORMAT = 'toolgate-audit-chain';
/** Version of the line format of a plain export (no `segment` in the header). */
export const CHAIN_VERSION = 1;
/**
 * Version of an archive segment: the header carries `segment` (see {@link SegmentInfo}), which a
 * reader must check against the neighbouring segments. A distinct version, so that a verifier that
 * knows only version 1 refuses a segment instead of reporting it verified without its links.
 */
export const SEGMENT_CHAIN_VERSION = 2;
/** The versions this module reads. */
export const CHAIN_VERSIONS_READ: readonly number[] = [CHAIN_VERSION, SEGMENT_CHAIN_VERSION];
/** The `prev` of the first record. */
export const GENESIS_HASH = '0'.repeat(64);
/** Records between two signed checkpoints. @default 1000 */
export const DEFAULT_CHECKPOINT_EVERY = 1000;

/**
 * Where a segment sits in the archive. Part of the header, so the checkpoints sign it (each signs
 * the header's hash): moving records between windows, renumbering, or relinking needs the key.
 */
export interface SegmentInfo {
  /** 0 for the first segment of an archive, then 1, 2, … with no hole. */
  index: number;
  /** The window of close times this segment covers, `[from, to)`, ISO 8601 with milliseconds. The next segment's `from` is this `to`. */
  from: string;
  to: string;
  /** The segment before this one: its file name and the SHA-256 (hex) of its bytes; null for index 0. */
  prev: { name: string; sha256: string } | null;
}

/** The first line of an export. */
export interface ChainHeader {
  format: typeof CHAIN_FORMAT;
  version: number;
  alg: 'Ed25519';
  keyId: string;
  checkpointEvery: number;
  createdAt: string;
  /** Present exactly when `version` is {@link SEGMENT_CHAIN_VERSION}: the header of an archive segment. */
  segment?: SegmentInfo;
}

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Why a header's `segment` is malformed, or undefined when it is a well-formed {@link SegmentInfo}. */
export function segmentInfoProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'segment is not an object';
  const v = value as Record<string, unknown>;
  if (typeof v.index !== 'number' || !Number.isInteger(v.index) || v.index < 0) return 'segment.index is not a whole number';
  if (typeof v.from !== 'string' || !ISO_MS.test(v.from) || typeof v.to !== 'string' || !ISO_MS.test(v.to)) return 'segment window is not two ISO 8601 times';
  if (Date.parse(v.from) >= Date.parse(v.to)) return 'segment window is empty or reversed';
  if (v.index === 0 ? v.prev !== null : !isPrevLink(v.prev))
    return v.index === 0 ? 'the first segment links to a previous one' : 'segment.prev is not { name, sha256 }';
  return undefined;
}

function isPrevLink(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.name === 'string' && v.name.length > 0 && typeof v.sha256 === 'string' && HEX64.test(v.sha256);
}

/**
 * What a checkpoint signs: the last record's position and hash, the number of records so far, the
 * hash of the header line (so the header cannot change either) and, on the last one, `final`.
 */
export interface Checkpoint {
  seq: number;
  hash: string;
  count: number;
  at: string;
  /** SHA-256 of the header's canonical JSON. */
  header: string;
  /** Present and true on the checkpoint that ends the export: cutting at a checkpoint is truncation too. */
  final?: true;
}

/** Thrown when a record cannot be put in the chain (not JSON-serialisable) or a key is unusable. */
export class AuditChainError extends ToolgateError {
  override readonly name = 'AuditChainError';
  /** The sequence number concerned, when there is one. */
  readonly seq?: number;
  constructor(message: string, options?: { seq?: number; cause?: unknown }) {
    super('audit_chain_invalid', message, { cause: options?.cause });
    this.seq = options?.seq;
  }
}

/**
 * SHA-256 of a string, hex: only for text that already is canonical JSON (a record's hash input,
 * see {@link recordHashInput}); a value is hashed with `canonicalSha256`.
 */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The hash input of a record, built from its canonical JSON so that writer and verifier agree:
 * RFC 8785 of `{ seq, prev, record }` (keys sorted: prev, record, seq), so its hash is
 * `canonicalSha256({ seq, prev, record })`. Built as text because the record's canonical JSON is
 * already at hand (it is the line's `record`): the record is canonicalized once, not twice.
 */
export function recordHashInput(seq: number, prev: string, canonicalRecord: string): string {
  return `{"prev":"${prev}","record":${canonicalRecord},"seq":${seq}}`;
}

/** RFC 8785 canonical JSON of a value (src/shared's); throws `AuditChainError` for values JSON cannot carry. */
export function canonicalJson(value: unknown, seq?: number): string {
  try {
    return canonicalJsonOf(value);
  } catch (err) {
    throw new AuditChainError(`record ${seq ?? ''} is not JSON-serialisable`, { seq, cause: err });
  }
}

/** Signs a checkpoint (canonical JSON) with an Ed25519 private key; base64. */
export function signCheckpoint(checkpoint: Checkpoint, privateKey: KeyObject): string {
  return sign(null, Buffer.from(canonicalJson(checkpoint)), privateKey).toString('base64');
}

/** A key id derived from a public key: the first 16 hex digits of the SHA-256 of its SPKI DER. */
export function keyIdOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

/** An Ed25519 key pair for signing exports, as PEM (PKCS#8 private, SPKI public), with its key id. */
export interface AuditKeyPair {
  privateKeyPem: string;
  publicKeyPem: string;
  keyId: string;
}

/** Generates an Ed25519 key pair for `toolgate audit export --key` / `verify --key`. */
export function generateAuditKeyPair(): AuditKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

/** Progress of an export, reported after each checkpoint. */
export interface ChainProgress {
  records: number;
  checkpoints: number;
  bytes: number;
}

/** Options of a `ChainWriter`. */
export interface ChainWriterOptions {
  /** Ed25519 private key, PEM or KeyObject. */
  privateKey: string | KeyObject;
  /** Key id written in the header and checkpoints. @default derived from the public key */
  keyId?: string;
  /** Records between checkpoints. @default 1000 */
  checkpointEvery?: number;
  /** Called after every checkpoint (e.g. to print progress on stderr). */
  onProgress?: (progress: ChainProgress) => void;
  /** Clock for `createdAt` and checkpoint `at`. @default () => new Date() */
  now?: () => Date;
  /** Write an archive segment: the header gets `segment` and version {@link SEGMENT_CHAIN_VERSION}. */
  segment?: SegmentInfo;
}

/** What an export wrote. */
export interface ChainSummary extends ChainProgress {
  /** Hash of the last record (the genesis hash for an empty export). */
  lastHash: string;
}

/** Bytes buffered before a write to the sink: fewer, larger writes, still bounded memory. */
const FLUSH_BYTES = 64 * 1024;

/** Writes records as a hash chain with signed checkpoints to a stream, without holding the export in memory. */
export class ChainWriter {
  readonly #key: KeyObject;
  readonly #keyId: string;
  readonly #every: number;
  readonly #onProgress?: (progress: ChainProgress) => void;
  readonly #now: () => Date;
  readonly #segment?: SegmentInfo;

  constructor(options: ChainWriterOptions) {
    try {
      this.#key = typeof options.privateKey === 'string' ? createPrivateKey(options.privateKey) : options.privateKey;
    } catch (err) {
      throw new AuditChainError('the signing key is not a PEM private key', { cause: err });
    }
    if (this.#key.asymmetricKeyType !== 'ed25519')
      throw new AuditChainError(`the signing key is ${this.#key.asymmetricKeyType ?? 'unknown'}, expected Ed25519`);
    this.#keyId = options.keyId ?? keyIdOf(createPublicKey(this.#key));
    this.#every = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    if (!Number.isInteger(this.#every) || this.#every < 1) throw new AuditChainError(`checkpointEvery must be a positive integer, got ${this.#every}`);
    this.#onProgress = options.onProgress;
    this.#now = options.now ?? (() => new Date());
    if (options.segment) {
      const problem = segmentInfoProblem(options.segment);
      if (problem) throw new AuditChainError(`invalid segment header: ${problem}`);
      this.#segment = options.segment;
    }
  }

  /** Writes the header, every record and the checkpoints to `out`; does not end `out`. */
  async write(records: AsyncIterable<unknown> | Iterable<unknown>, out: Writable): Promise<ChainSummary> {
    let buffer = '';
    let bytes = 0;
    const flush = async (): Promise<void> => {
      if (buffer === '') return;
      const chunk = buffer;
      buffer = '';
      bytes += Buffer.byteLength(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
    };
    const header: ChainHeader = {
      format: CHAIN_FORMAT,
      version: this.#segment ? SEGMENT_CHAIN_VERSION : CHAIN_VERSION,
      alg: 'Ed25519',
      keyId: this.#keyId,
      checkpointEvery: this.#every,
      createdAt: this.#now().toISOString(),
      // Only on segments: a plain export's header stays exactly what version 1 wrote.
      ...(this.#segment ? { segment: this.#segment } : {}),
    };
    buffer += `${JSON.stringify(header)}\n`;
    const headerHash = canonicalSha256(header);
    let seq = 0;
    let prev = GENESIS_HASH;
    let checkpoints = 0;
    const checkpoint = async (final: boolean): Promise<void> => {
      const cp: Checkpoint = { seq: seq - 1, hash: prev, count: seq, at: this.#now().toISOString(), header: headerHash };
      if (final) cp.final = true;
      buffer += `${JSON.stringify({ checkpoint: cp, sig: signCheckpoint(cp, this.#key), keyId: this.#keyId })}\n`;
      checkpoints += 1;
      await flush();
      this.#onProgress?.({ records: seq, checkpoints, bytes });
    };
    for await (const record of records) {
      const canonical = canonicalJson(record, seq);
      const hash = sha256Hex(recordHashInput(seq, prev, canonical));
      buffer += `{"seq":${seq},"prev":"${prev}","hash":"${hash}","record":${canonical}}\n`;
      prev = hash;
      seq += 1;
      if (seq % this.#every === 0) await checkpoint(false);
      else if (buffer.length >= FLUSH_BYTES) await flush();
    }
    // Always a final checkpoint (even right after a periodic one): the verifier requires it.
    await checkpoint(true);
    await flush();
    return { records: seq, checkpoints, bytes, lastHash: prev };
  }
}
