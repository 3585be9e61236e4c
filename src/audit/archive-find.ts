/**
 * Finding one request in the audit archive, once its history is gone: its entry is taken only from
 * record lines the chain verifier authenticates, and the archive is verified from that segment on.
 */
import { createReadStream } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { createInterface } from 'node:readline';
import { ArchiveIntegrityError, listArchive, type ArchivedRequest } from './archive-segments.js';
import { verifyArchive, verifySegmentChain, type ArchiveVerification } from './archive-verify.js';
import { keysById } from './keys.js';
import type { ChainVerification } from './verify.js';

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
