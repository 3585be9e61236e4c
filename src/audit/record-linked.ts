/**
 * The requests linked to a request (its break-glass overrides and rollbacks), from visibility: the
 * original's history is closed and never names them, so the record lists them from their
 * `ToolgateLink` search attribute when it is built with a client.
 */
import type { Client } from '@temporalio/client';
import { LINK_KINDS, linkedRequestsQuery, parseRequestWorkflowId, searchAttributes } from '../shared/index.js';
import type { AuditRecord } from './record-types.js';

/** The request states a request ends in (what its outcome's status says). */
const ENDED_STATES: ReadonlySet<string> = new Set(['completed', 'denied', 'rejected', 'expired', 'failed', 'outcome_unknown']);
/** How a record names a workflow that ended without an outcome (see `endedAs`). */
const CLOSED_AS: Readonly<Record<string, string>> = { FAILED: 'workflow_failed', TERMINATED: 'terminated', TIMED_OUT: 'timed_out', CANCELLED: 'canceled' };

/** Most linked requests a record lists (overrides and rollbacks of one request); visibility is asked for one page of this size. */
export const LINKED_REQUESTS_LIMIT = 100;

/**
 * The requests of `tenant` linked to `requestId` (its break-glass overrides and rollbacks), from
 * visibility: the original's history is closed and never names them, each linked request carries
 * `ToolgateLink=<kind>:<requestId>`. Newest first as visibility lists them, at most
 * `LINKED_REQUESTS_LIMIT`, each with its `ToolgateStatus` (or how its workflow ended).
 */
export async function listLinkedRequests(client: Client, tenant: string, requestId: string): Promise<NonNullable<AuditRecord['linked']>> {
  const linked: NonNullable<AuditRecord['linked']> = [];
  const seen = new Set<string>();
  for await (const execution of client.workflow.list({ query: linkedRequestsQuery(tenant, requestId), pageSize: LINKED_REQUESTS_LIMIT })) {
    const ids = parseRequestWorkflowId(execution.workflowId);
    // The query names the tenant; a workflow id of another form or tenant is not one of its requests.
    if (!ids || ids.tenant !== tenant || seen.has(ids.requestId)) continue;
    const value = execution.typedSearchAttributes.get(searchAttributes.link);
    const kind = LINK_KINDS.find((k) => value === `${k}:${requestId}`);
    if (!kind) continue;
    seen.add(ids.requestId);
    const state = execution.typedSearchAttributes.get(searchAttributes.status);
    let status: string;
    if (execution.status.name === 'RUNNING') status = state ?? 'running';
    // A closed workflow's last state, unless it was ended from outside while waiting (then how it ended, as records name it).
    else if (state && ENDED_STATES.has(state)) status = state;
    else status = CLOSED_AS[execution.status.name] ?? execution.status.name.toLowerCase();
    linked.push({ kind, requestId: ids.requestId, status });
    if (linked.length >= LINKED_REQUESTS_LIMIT) break;
  }
  return linked;
}
