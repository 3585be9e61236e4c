/**
 * The archival activity: one run of `archiveClosedRequests` (src/audit/archive.ts) against the
 * archive directory of the process that holds the audit-signing key. Only the archiver registers
 * it, on its own task queue, so no other worker ever needs that key or that directory.
 */
import type { KeyObject } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { ARCHIVE_LAG_MS, SEGMENT_MAX_RECORDS, archiveClosedRequests, type ArchiveRunSummary } from '../src/audit/archive.js';
import { ArchiveIntegrityError } from '../src/audit/archive-segments.js';
import { temporalArchiveSource, type ArchiveSource } from '../src/audit/archive-source.js';

export type { ArchiveRunSummary };

/**
 * Input of the archival workflow and activity (what the schedule's action passes). Anyone with
 * Temporal access can start the workflow with any input, so the activity checks it against
 * {@link auditArchiveInputProblem} before anything runs.
 */
export interface AuditArchiveInput {
  /** How far behind now a run stops (visibility delay): at least the archiver's floor (ARCHIVE_LAG_MS), at most ARCHIVE_MAX_LAG_MS. @default ARCHIVE_LAG_MS */
  lagMs?: number;
  /** 1 to SEGMENT_MAX_RECORDS (the bound the archiver's memory is sized for). @default SEGMENT_MAX_RECORDS */
  maxRecordsPerSegment?: number;
}

/**
 * The longest lag an input may ask for: a longer one only delays archival towards the
 * namespace's retention (histories deleted before their window is archived). @default 1 hour
 */
export const ARCHIVE_MAX_LAG_MS = 3600_000;

/** The failure type of a run refused because its input is out of bounds (non-retryable: a retry has the same input). */
export const ARCHIVE_INPUT_FAILURE = 'AuditArchiveInvalidInput';

/**
 * Why an archival input is refused (naming the field), or undefined when it is acceptable. The
 * lag may not be below `minLagMs`: a shorter one (or a negative one, which ends a segment in the
 * future) leaves requests that close in the rest of the window, or become visible late, never
 * archived. The segment size is capped: the run holds one segment's listing in memory.
 */
export function auditArchiveInputProblem(input: unknown, minLagMs: number = ARCHIVE_LAG_MS): string | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== 'object' || Array.isArray(input)) return 'the input must be an object { lagMs?, maxRecordsPerSegment? }';
  const fields = input as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => k !== 'lagMs' && k !== 'maxRecordsPerSegment');
  if (unknown.length > 0) return `unknown input field ${unknown.slice(0, 5).join(', ')} (only lagMs and maxRecordsPerSegment)`;
  const { lagMs, maxRecordsPerSegment } = fields;
  if (lagMs !== undefined && (typeof lagMs !== 'number' || !Number.isSafeInteger(lagMs) || lagMs < minLagMs || lagMs > ARCHIVE_MAX_LAG_MS)) {
    return `lagMs must be a whole number of ms from ${minLagMs} to ${ARCHIVE_MAX_LAG_MS}, got ${JSON.stringify(lagMs)}`;
  }
  if (
    maxRecordsPerSegment !== undefined &&
    (typeof maxRecordsPerSegment !== 'number' ||
      !Number.isSafeInteger(maxRecordsPerSegment) ||
      maxRecordsPerSegment < 1 ||
      maxRecordsPerSegment > SEGMENT_MAX_RECORDS)
  ) {
    return `maxRecordsPerSegment must be a whole number from 1 to ${SEGMENT_MAX_RECORDS}, got ${JSON.stringify(maxRecordsPerSegment)}`;
  }
  return undefined;
}

/** What the archival activity needs: the process's Temporal client (with the codec keys), the archive and the key. */
export interface ArchiveActivityDeps {
  client: Client;
  archiveDir: string;
  privateKey: KeyObject;
  logger: Logger;
  /** Where closed requests are read from. @default temporalArchiveSource(client) */
  source?: ArchiveSource;
  /**
   * Public keys the archive's last segment may be signed with besides `privateKey`'s own (the
   * previous key after a rotation); a last segment of any other key fails the run. @default none
   */
  trustedPublicKeys?: readonly (string | KeyObject)[];
  /**
   * The least lag an input may ask for: this process's configuration, not the input's (whoever
   * starts the workflow chooses the input). @default ARCHIVE_LAG_MS
   */
  minLagMs?: number;
}

/** The failure type of a run refused because the archive cannot safely be extended (see ArchiveIntegrityError). */
export const ARCHIVE_INTEGRITY_FAILURE = 'AuditArchiveIntegrity';

/** The activities of the archiver's task queue. */
export function createArchiveActivities(deps: ArchiveActivityDeps) {
  const source = deps.source ?? temporalArchiveSource(deps.client);
  return {
    /** Archives every request closed since the archive's end; heartbeats per record, stops on cancellation. */
    async archiveClosedRequests(input: AuditArchiveInput = {}): Promise<ArchiveRunSummary> {
      // Checked here, not only in the workflow: the activity is where the archive is written, and
      // it is reached with whatever input a workflow was started with.
      const problem = auditArchiveInputProblem(input, deps.minLagMs ?? ARCHIVE_LAG_MS);
      if (problem) {
        deps.logger.error({ err: problem, input }, 'audit archive: refused the run input');
        throw ApplicationFailure.nonRetryable(`audit archive input refused: ${problem}`, ARCHIVE_INPUT_FAILURE);
      }
      input ??= {};
      const context = Context.current();
      try {
        const summary = await archiveClosedRequests({
          dir: deps.archiveDir,
          source,
          privateKey: deps.privateKey,
          ...(deps.trustedPublicKeys ? { trustedPublicKeys: deps.trustedPublicKeys } : {}),
          ...(input.lagMs !== undefined ? { lagMs: input.lagMs } : {}),
          ...(input.maxRecordsPerSegment !== undefined ? { maxRecordsPerSegment: input.maxRecordsPerSegment } : {}),
          heartbeat: (progress) => context.heartbeat(progress),
          signal: context.cancellationSignal,
          logger: deps.logger,
        });
        // The head hash in the logs is the external copy that shows a deleted tail of the archive.
        deps.logger.info({ ...summary, gapIds: undefined }, summary.segments.length > 0 ? 'audit archive: run done' : 'audit archive: nothing new to archive');
        return summary;
      } catch (err) {
        if (err instanceof ArchiveIntegrityError) {
          // An alarm, not a routine error: someone or something altered the archive (alert on `alarm`).
          deps.logger.error({ alarm: 'audit_archive_integrity', err: err.message, dir: deps.archiveDir }, 'audit archive: refused to extend the archive');
          // A retry would find the same archive: fail the run now; the schedule tries again next interval.
          throw ApplicationFailure.nonRetryable(err.message, ARCHIVE_INTEGRITY_FAILURE);
        }
        throw err;
      }
    },
  };
}

/** The archiver's activities, as the workflow proxies them. */
export type ArchiveActivities = ReturnType<typeof createArchiveActivities>;
