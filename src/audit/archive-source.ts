/**
 * Where an archival run reads closed requests from: visibility lists them, and each one's audit
 * record is built from its history — or, for a history that is gone or not a request's, the gap
 * is said instead, so one such history cannot stop the archival.
 */
import { isGrpcServiceError, type Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { KeyNotInKeyring, PayloadDecryptionError } from '../codec/aes-gcm.js';
import { redactText } from '../egress/redact.js';
import { WORKFLOW_TYPE, parseRequestWorkflowId } from '../shared/index.js';
import { iso, type ArchiveCandidate, type ArchiveGapCode } from './archive-segments.js';
import { auditRecordFromHistory } from './record.js';
import { AuditRecordError, type AuditRecord } from './record-types.js';

/** Where a run reads closed requests from (Temporal in production, a fake in unit tests). */
export interface ArchiveSource {
  /** How many requests closed in `[fromMs, toMs)` (only to size segments). */
  count(fromMs: number, toMs: number): Promise<number>;
  /** The requests closed in `[fromMs, toMs)`, in any order. */
  list(fromMs: number, toMs: number): AsyncIterable<ArchiveCandidate>;
  /** The audit record of one, or why there is none; throws for what a retry may fix (Temporal unreachable, a missing codec key). */
  build(candidate: ArchiveCandidate): Promise<{ record: AuditRecord } | { gap: { code: ArchiveGapCode; message: string } }>;
}

/** The visibility query of the requests closed in `[from, to)`. */
export function closedRequestsQuery(fromMs: number, toMs: number): string {
  return `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus != 'Running' AND CloseTime >= '${iso(fromMs)}' AND CloseTime < '${iso(toMs)}'`;
}

/** gRPC status NOT_FOUND. */
const GRPC_NOT_FOUND = 5;

/** The archive source of a Temporal client that holds the codec keys. */
export function temporalArchiveSource(client: Client): ArchiveSource {
  return {
    async count(fromMs, toMs) {
      return (await client.workflow.count(closedRequestsQuery(fromMs, toMs))).count;
    },
    async *list(fromMs, toMs) {
      for await (const execution of client.workflow.list({ query: closedRequestsQuery(fromMs, toMs), pageSize: 1000 })) {
        // Only toolgate request ids (as `audit export`): a workflow of that type under another id is not a request.
        if (!parseRequestWorkflowId(execution.workflowId) || !execution.closeTime) continue;
        yield { workflowId: execution.workflowId, runId: execution.runId, closedAtMs: execution.closeTime.getTime(), execution: execution.status.name };
      }
    },
    async build(candidate) {
      let history: temporal.api.history.v1.IHistory;
      try {
        history = await client.workflow.getHandle(candidate.workflowId, candidate.runId).fetchHistory();
      } catch (err) {
        // fetchHistory passes the service's NOT_FOUND through as a gRPC error (other calls wrap it as WorkflowNotFoundError).
        if (err instanceof WorkflowNotFoundError || (isGrpcServiceError(err) && Number(err.code) === GRPC_NOT_FOUND)) {
          return { gap: { code: 'history_gone', message: `the history was deleted before it was archived: ${(err as Error).message}` } };
        }
        throw err;
      }
      try {
        return { record: await auditRecordFromHistory(history, client.options.loadedDataConverter, { workflowId: candidate.workflowId }) };
      } catch (err) {
        // A key missing from this archiver's keyring is its configuration, not the history: retry
        // (and alarm) rather than archive a permanent gap for a history that is still readable.
        if (err instanceof KeyNotInKeyring) throw err;
        // A history that is not a request's, or holds a payload that fails authentication, would
        // fail every time: archive the gap so one planted history cannot stop the archival.
        if (err instanceof AuditRecordError || err instanceof PayloadDecryptionError) return { gap: { code: 'unreadable', message: redactText(err.message) } };
        throw err;
      }
    },
  };
}
