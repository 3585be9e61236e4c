/**
 * Writing one archive segment, atomically: a temporary file, fsynced, hard-linked to its final
 * name only if no file of that name exists, so a crash leaves at most an unfinished temporary
 * file (removed later) and two archivers never overwrite each other.
 */
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { link, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ArchiveIntegrityError, listArchive, segmentName, type ArchivedRequest } from './archive-segments.js';
import { ChainWriter, DEFAULT_CHECKPOINT_EVERY, type SegmentInfo } from './chain.js';

/** Removes unfinished temporary files no live writer can own any more (a writer touches its file at least every checkpoint). */
export async function removeStaleTemporaryFiles(dir: string, olderThanMs: number, nowMs: number): Promise<string[]> {
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
