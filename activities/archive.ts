/**
 * The archival activity: one run of `archiveClosedRequests` (src/audit/archive.ts) against the
 * archive directory of the process that holds the audit-signing key. Only the archiver registers
 * it, on its own task queue, so no other worker ever needs that key or that directory.
 */
import type { KeyObject } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { ArchiveIntegrityError, archiveClosedRequests, temporalArchiveSource, type ArchiveRunSummary, type ArchiveSource } from '../src/audit/archive.js';

export type { ArchiveRunSummary };

/** Input of the archival workflow and activity (what the schedule's action passes). */
export interface AuditArchiveInput {
  /** How far behind now a run stops (visibility delay). @default ARCHIVE_LAG_MS */
  lagMs?: number;
  /** @default SEGMENT_MAX_RECORDS */
  maxRecordsPerSegment?: number;
}

/** What the archival activity needs: the process's Temporal client (with the codec keys), the archive and the key. */
export interface ArchiveActivityDeps {
  client: Client;
  archiveDir: string;
  privateKey: KeyObject;
  logger: Logger;
  /** Where closed requests are read from. @default temporalArchiveSource(client) */
  source?: ArchiveSource;
}

/** The failure type of a run refused because the archive cannot safely be extended (see ArchiveIntegrityError). */
export const ARCHIVE_INTEGRITY_FAILURE = 'AuditArchiveIntegrity';

/** The activities of the archiver's task queue. */
export function createArchiveActivities(deps: ArchiveActivityDeps) {
  const source = deps.source ?? temporalArchiveSource(deps.client);
  return {
    /** Archives every request closed since the archive's end; heartbeats per record, stops on cancellation. */
    async archiveClosedRequests(input: AuditArchiveInput = {}): Promise<ArchiveRunSummary> {
      const context = Context.current();
      try {
        const summary = await archiveClosedRequests({
          dir: deps.archiveDir,
          source,
          privateKey: deps.privateKey,
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
          deps.logger.error({ err: err.message, dir: deps.archiveDir }, 'audit archive: refused to extend the archive');
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
