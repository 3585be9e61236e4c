/**
 * A proposed faster audit verifier, measured beside the real one (scenario 6) — not product code.
 * The writer emits each record as RFC 8785 canonical JSON and hashes exactly those bytes, so the
 * verifier can hash the record's bytes as written instead of parsing and re-canonicalising them.
 * It is stricter, not looser: any byte change (even a JSON-equivalent one) breaks the hash.
 * Checkpoints and the header are checked as `verifyChain` does.
 */
import { createPublicKey, verify } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { GENESIS_HASH, canonicalJson, recordHashInput, sha256Hex } from '../../src/audit/chain.js';

const RECORD_LINE = /^\{"seq":(\d+),"prev":"([0-9a-f]{64})","hash":"([0-9a-f]{64})","record":(.*)\}$/s;

/** Verifies an export; returns the records verified or throws at the first bad line. */
export async function verifyRawBytes(input: Readable, publicKeyPem: string): Promise<number> {
  const key = createPublicKey(publicKeyPem);
  let lineNo = 0;
  let seq = 0;
  let prev = GENESIS_HASH;
  let headerHash = '';
  let finalSeen = false;
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    lineNo += 1;
    if (lineNo === 1) {
      headerHash = sha256Hex(canonicalJson(JSON.parse(line)));
      continue;
    }
    if (finalSeen) throw new Error(`line ${lineNo}: content after the final checkpoint`);
    const m = RECORD_LINE.exec(line);
    if (m) {
      const [, s, p, h, record] = m as unknown as [string, string, string, string, string];
      if (Number(s) !== seq || p !== prev) throw new Error(`line ${lineNo}: out of order or broken chain`);
      if (sha256Hex(recordHashInput(seq, p, record)) !== h) throw new Error(`line ${lineNo}: hash does not match the record`);
      prev = h;
      seq += 1;
      continue;
    }
    const value = JSON.parse(line) as { checkpoint: { seq: number; count: number; hash: string; header: string; final?: boolean }; sig: string };
    const cp = value.checkpoint;
    if (!verify(null, Buffer.from(canonicalJson(cp)), key, Buffer.from(value.sig, 'base64'))) throw new Error(`line ${lineNo}: bad checkpoint signature`);
    if (cp.header !== headerHash || cp.count !== seq || cp.hash !== prev) throw new Error(`line ${lineNo}: checkpoint does not match the chain`);
    finalSeen = cp.final === true;
  }
  if (!finalSeen) throw new Error('truncated');
  return seq;
}
