/**
 * The archival workflow the `toolgate-audit-archive` Schedule starts: one activity that appends
 * what closed since the archive's end. All state is in the archive itself (its last segment is
 * the cursor), so the workflow holds none; this file is the archiver's own bundle entry point,
 * apart from the request workflows' bundle.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { ArchiveActivities, ArchiveRunSummary, AuditArchiveInput } from '../activities/archive.js';

const { archiveClosedRequests } = proxyActivities<ArchiveActivities>({
  // A first run over a long history may take a while: it heartbeats per record, and a retry after a
  // timeout resumes after the last whole segment.
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 5 },
});

/** One archival run; its result (segments, records, gaps, the archive's head) is shown with the schedule's recent actions. */
export async function auditArchive(input: AuditArchiveInput = {}): Promise<ArchiveRunSummary> {
  return archiveClosedRequests(input);
}
