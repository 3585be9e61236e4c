/**
 * The archival's place in Temporal: the Schedule that runs it, the task queue only the archiver
 * polls, the workflow type, and the retention the namespace needs for nothing to be lost.
 */
import { ARCHIVE_LAG_MS } from './archive.js';

/** Id of the Temporal Schedule that runs the archival. */
export const ARCHIVE_SCHEDULE_ID = 'toolgate-audit-archive';
/** Task queue of the archival workflow and activity (only the archiver, which holds the audit key, polls it). */
export const ARCHIVE_TASK_QUEUE = 'toolgate-audit';
/** Workflow type the schedule starts (workflows/audit-archive.ts). */
export const ARCHIVE_WORKFLOW_TYPE = 'auditArchive';

/**
 * The warning the archiver logs at start when the namespace may delete a closed request's history
 * before a run archives it: a request that closes right after a run's window must survive until
 * the run after next (two intervals, plus the lag behind now each window keeps).
 */
export function retentionWarning(options: { retentionMs: number; intervalMs: number; lagMs?: number }): string | undefined {
  const needed = 2 * options.intervalMs + (options.lagMs ?? ARCHIVE_LAG_MS);
  if (options.retentionMs >= needed) return undefined;
  const minutes = (ms: number) => `${Math.round(ms / 60_000)} min`;
  return `the namespace retention (${minutes(options.retentionMs)}) is shorter than twice the archive interval plus the lag (${minutes(needed)}): closed requests may be deleted before they are archived`;
}
