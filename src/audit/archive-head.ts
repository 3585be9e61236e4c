/**
 * Where the audit archive ends: its last segment, authenticated before a run links the next one to
 * it — its window's end is the run's cursor, so a planted or future-dated segment must stop the
 * run rather than make it archive nothing.
 */
import type { KeyObject } from 'node:crypto';
import { ArchiveIntegrityError, iso, listArchive, readHeader, sha256OfFile } from './archive-segments.js';
import { verifySegmentChain } from './archive-verify.js';
import { keysById } from './keys.js';

/**
 * How far past this archiver's now the archive's last window may end (another archiver's clock
 * may run a little ahead; its windows end a lag behind its own now). A window ending later than
 * that would make every run archive nothing, so it is refused. @default 5 minutes
 */
export const ARCHIVE_CLOCK_SKEW_MS = 5 * 60_000;

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
