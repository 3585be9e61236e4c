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
 * The chain catches a changed, deleted or reordered record at the line where it happens; the signed
 * checkpoints catch a suffix rewritten with recomputed hashes, and a missing final checkpoint or a
 * wrong count catches truncation. The writer streams: one record in memory at a time, backpressure
 * honoured.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import canonicalize from 'canonicalize';

/** Value of the header's `format` field. */
export const CHAIN_FORMAT = 'toolgate-audit-chain';
/** Version of the line format this module writes and reads. */
export const CHAIN_VERSION = 1;
/** The `prev` of the first record. */
export const GENESIS_HASH = '0'.repeat(64);
/** Records between two signed checkpoints. @default 1000 */
export const DEFAULT_CHECKPOINT_EVERY = 1000;

/** The first line of an export. */
export interface ChainHeader {
  format: typeof CHAIN_FORMAT;
  version: number;
  alg: 'Ed25519';
  keyId: string;
  checkpointEvery: number;
  createdAt: string;
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
export class AuditChainError extends Error {
  override readonly name = 'AuditChainError';
  /** The sequence number concerned, when there is one. */
  readonly seq?: number;
  constructor(message: string, options?: { seq?: number; cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.seq = options?.seq;
  }
}

/** SHA-256 of a string, hex. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The hash input of a record, built from its canonical JSON so that writer and verifier agree:
 * RFC 8785 of `{ seq, prev, record }` (keys sorted: prev, record, seq).
 */
export function recordHashInput(seq: number, prev: string, canonicalRecord: string): string {
  return `{"prev":"${prev}","record":${canonicalRecord},"seq":${seq}}`;
}

/** RFC 8785 canonical JSON of a value; throws `AuditChainError` for values JSON cannot carry. */
export function canonicalJson(value: unknown, seq?: number): string {
  const out = canonicalize(value);
  if (out === undefined) throw new AuditChainError(`record ${seq ?? ''} is not JSON-serialisable`, { seq });
  return out;
}

/** Signs a checkpoint (canonical JSON) with an Ed25519 private key; base64. */
export function signCheckpoint(checkpoint: Checkpoint, privateKey: KeyObject): string {
  return sign(null, Buffer.from(canonicalJson(checkpoint)), privateKey).toString('base64');
}

/** A key id derived from a public key: the first 16 hex digits of the SHA-256 of its SPKI DER. */
export function keyIdOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
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

  constructor(options: ChainWriterOptions) {
    try {
      this.#key = typeof options.privateKey === 'string' ? createPrivateKey(options.privateKey) : options.privateKey;
    } catch (err) {
      throw new AuditChainError('the signing key is not a PEM private key', { cause: err });
    }
    if (this.#key.asymmetricKeyType !== 'ed25519') throw new AuditChainError(`the signing key is ${this.#key.asymmetricKeyType ?? 'unknown'}, expected Ed25519`);
    this.#keyId = options.keyId ?? keyIdOf(createPublicKey(this.#key));
    this.#every = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    if (!Number.isInteger(this.#every) || this.#every < 1) throw new AuditChainError(`checkpointEvery must be a positive integer, got ${this.#every}`);
    this.#onProgress = options.onProgress;
    this.#now = options.now ?? (() => new Date());
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
      version: CHAIN_VERSION,
      alg: 'Ed25519',
      keyId: this.#keyId,
      checkpointEvery: this.#every,
      createdAt: this.#now().toISOString(),
    };
    buffer += `${JSON.stringify(header)}\n`;
    const headerHash = sha256Hex(canonicalJson(header));
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
