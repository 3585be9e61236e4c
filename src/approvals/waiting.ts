/**
 * "Waiting for me": the requests an approver may decide now, answered from Temporal visibility
 * alone. Each waiting request keeps its eligible groups, tier, expiry and voters in search
 * attributes (see `searchAttributes` in src/shared/messages.ts), so listing asks no workflow and
 * needs no worker: one visibility call per page, paginated with the server's page token.
 *
 * What visibility cannot know is left to the request page, which asks the workflow once: the
 * digest, the arguments and whether a principal the agent acts for is this approver.
 */
import type { Client } from '@temporalio/client';
import { decodeTypedSearchAttributes } from '../temporal/internals.js';
import { parseRequestWorkflowId, searchAttributes } from '../shared/index.js';
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';
import { isTemporalUnavailable } from '../temporal/errors.js';

/** One request waiting for the approver, as visibility knows it. */
export interface WaitingItem {
  requestId: string;
  workflowId: string;
  tenant: string;
  tool: string;
  /** The agent that asked. */
  actor: string;
  risk?: string;
  tier: number;
  eligibleGroups: string[];
  expiresAt?: string;
  startedAt?: string;
  /** Approvers who already voted on the current proposal. */
  voters: string[];
}

/** A page of {@link WaitingItem}s and the token of the next page, if any. */
export interface WaitingPage {
  items: WaitingItem[];
  nextPageToken?: string;
}

/** Who is asking: an authenticated approver. */
export interface WaitingApprover {
  id: string;
  tenant: string;
  groups: readonly string[];
}

/** How long one listing may take before it fails. */
const LIST_DEADLINE_MS = 5_000;

/** Largest page; a page token must come from an earlier answer. */
export const MAX_WAITING_PAGE_SIZE = 500;

/** Thrown for a page token that is not one this endpoint handed out (a 400 naming `pageToken`). */
export class InvalidPageTokenError extends ToolgateError {
  override readonly name = 'InvalidPageTokenError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('invalid_query', message, { fields: ['pageToken'], ...options });
  }
}

/** A visibility-query string literal: single quotes and backslashes escaped. */
function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The visibility query of what `approver` may decide now; undefined when they are in no group. */
export function waitingQuery(approver: WaitingApprover): string | undefined {
  if (approver.groups.length === 0) return undefined;
  return [
    `${searchAttributes.status.name} = 'pending_approval'`,
    `${searchAttributes.tenant.name} = ${literal(approver.tenant)}`,
    `ExecutionStatus = 'Running'`,
    `${searchAttributes.eligibleGroups.name} IN (${approver.groups.map(literal).join(', ')})`,
    // Nobody approves their own agent's request.
    `${searchAttributes.actor.name} != ${literal(approver.id)}`,
  ].join(' AND ');
}

/**
 * One page of the requests `approver` may decide now. Requests they already voted on are left
 * out, so a page may hold fewer than `pageSize` items while a next page exists.
 */
export async function listWaitingFor(
  client: Client,
  approver: WaitingApprover,
  options: { pageSize?: number; pageToken?: string; namespace?: string } = {},
): Promise<WaitingPage> {
  const query = waitingQuery(approver);
  if (!query) return { items: [] };
  let nextPageToken: Uint8Array | undefined;
  if (options.pageToken !== undefined) {
    if (!/^[A-Za-z0-9_-]{1,4096}$/.test(options.pageToken)) throw new InvalidPageTokenError('pageToken must be a token from an earlier page');
    nextPageToken = Buffer.from(options.pageToken, 'base64url');
    // Visibility's page tokens are JSON objects: anything else is refused here, before the server
    // spends retries on it (it answers a malformed token with an error the client retries).
    let decoded: unknown;
    try {
      decoded = JSON.parse(Buffer.from(nextPageToken).toString('utf8'));
    } catch {
      decoded = undefined;
    }
    if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded))
      throw new InvalidPageTokenError('pageToken must be a token from an earlier page');
  }
  const pageSize = Math.min(Math.max(1, options.pageSize ?? 50), MAX_WAITING_PAGE_SIZE);
  let response;
  try {
    // Bounded: a listing is one quick visibility call, or an error, never minutes of retries.
    response = await client.connection.withDeadline(Date.now() + LIST_DEADLINE_MS, () =>
      client.workflowService.listWorkflowExecutions({
        namespace: options.namespace ?? client.options.namespace,
        query,
        pageSize,
        ...(nextPageToken ? { nextPageToken } : {}),
      }),
    );
  } catch (err) {
    // A token the server did not issue (or one for another query) fails; a server out of reach or out of time is not the token's fault.
    if (nextPageToken && !isTemporalUnavailable(err)) throw new InvalidPageTokenError('pageToken must be a token from an earlier page', { cause: err });
    throw err;
  }
  const items: WaitingItem[] = [];
  for (const execution of response.executions ?? []) {
    const workflowId = execution.execution?.workflowId ?? '';
    const parsed = parseRequestWorkflowId(workflowId);
    if (!parsed) continue;
    const attributes = decodeTypedSearchAttributes(execution.searchAttributes?.indexedFields);
    const voters = attributes.get(searchAttributes.voters) ?? [];
    if (voters.includes(approver.id)) continue;
    const expiresAt = attributes.get(searchAttributes.expiresAt);
    const risk = attributes.get(searchAttributes.risk);
    const started = execution.startTime?.seconds;
    items.push({
      requestId: parsed.requestId,
      workflowId,
      tenant: attributes.get(searchAttributes.tenant) ?? parsed.tenant ?? approver.tenant,
      tool: attributes.get(searchAttributes.tool) ?? '',
      actor: attributes.get(searchAttributes.actor) ?? '',
      ...(risk ? { risk } : {}),
      tier: Number(attributes.get(searchAttributes.tier) ?? 0),
      eligibleGroups: [...(attributes.get(searchAttributes.eligibleGroups) ?? [])],
      ...(expiresAt ? { expiresAt: expiresAt.toISOString() } : {}),
      ...(started !== undefined && started !== null ? { startedAt: new Date(Number(started) * 1000).toISOString() } : {}),
      voters: [...voters],
    });
  }
  const token = response.nextPageToken && response.nextPageToken.length > 0 ? Buffer.from(response.nextPageToken).toString('base64url') : undefined;
  return { items, ...(token ? { nextPageToken: token } : {}) };
}
