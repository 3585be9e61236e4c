/**
 * Where `toolgate policy replay` reads past requests from: visibility lists them and each one's
 * recorded request and decision is read from its history, a page at a time and a few at once.
 * Read-only: it lists workflows and reads histories, nothing else.
 */
import { type Client, WorkflowNotFoundError, isGrpcServiceError } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { recordedFromHistory, type ReplayEntry, type ReplaySource } from '../policy/replay.js';
import { parseRequestWorkflowId } from '../shared/index.js';
import { exportQuery } from './audit-commands.js';
import { HISTORY_PAGE_EVENTS, type ReplaySettings } from './policy-replay-settings.js';

/**
 * Maps `fn` over `source` with at most `concurrency` calls in flight, yielding results in source
 * order (so "the first examples" are the same on every run). Holds at most `concurrency` items;
 * pulls the next item only when there is room, so a slow consumer slows the listing too. The
 * first failure stops it (the calls still in flight are awaited, never left to reject unseen).
 */
export async function* mapOrdered<T, R>(source: AsyncIterable<T>, concurrency: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  type Settled = { ok: true; value: R } | { ok: false; error: unknown };
  const window: Promise<Settled>[] = [];
  const iterator = source[Symbol.asyncIterator]();
  let exhausted = false;
  try {
    for (;;) {
      while (!exhausted && window.length < concurrency) {
        const next = await iterator.next();
        if (next.done) exhausted = true;
        else
          window.push(
            fn(next.value).then(
              (value) => ({ ok: true, value }),
              (error: unknown) => ({ ok: false, error }),
            ),
          );
      }
      const head = window.shift();
      if (!head) return;
      const settled = await head;
      if (!settled.ok) throw settled.error;
      yield settled.value;
    }
  } finally {
    await Promise.all(window);
    if (!exhausted) await iterator.return?.();
  }
}

const GRPC_NOT_FOUND = 5;

/** Whether reading a history failed because the workflow (its history) no longer exists. */
function isGone(err: unknown): boolean {
  // Deleted by retention between the listing and the read: gRPC status NOT_FOUND (5; @grpc/grpc-js
  // is not a direct dependency, so its enum is not imported).
  return err instanceof WorkflowNotFoundError || (isGrpcServiceError(err) && (err.code as number) === GRPC_NOT_FOUND);
}

/**
 * The recorded request of one workflow: its history read page by page, only as far as the first
 * policy decision (see {@link HISTORY_PAGE_EVENTS}).
 */
export async function readRecordedRequest(client: Client, execution: { workflowId: string; runId?: string; startTime?: Date }): Promise<ReplayEntry> {
  const { workflowId, runId } = execution;
  const namespace = client.options.namespace;
  async function* events(): AsyncGenerator<temporal.api.history.v1.IHistoryEvent> {
    let nextPageToken: Uint8Array | undefined;
    do {
      const response = await client.workflowService.getWorkflowExecutionHistory({
        namespace,
        execution: { workflowId, ...(runId ? { runId } : {}) },
        maximumPageSize: HISTORY_PAGE_EVENTS,
        ...(nextPageToken ? { nextPageToken } : {}),
      });
      yield* response.history?.events ?? [];
      nextPageToken = response.nextPageToken && response.nextPageToken.length > 0 ? response.nextPageToken : undefined;
    } while (nextPageToken);
  }
  try {
    return await recordedFromHistory(events(), client.options.loadedDataConverter, { workflowId, ...(runId ? { runId } : {}) });
  } catch (err) {
    if (!isGone(err)) throw err;
    return {
      workflowId,
      ...(runId ? { runId } : {}),
      startedAt: execution.startTime?.toISOString() ?? '',
      unreadable: { code: 'history_gone', message: 'the history was deleted (retention) after the request was listed' },
    };
  }
}

/**
 * The requests of a time window (by start time) through visibility, running ones included: a
 * running request's first decision is already in its history (one still being evaluated counts as
 * `not_decided`). Histories are read `concurrency` at a time, in listing order. Needs a client
 * with the codec keys of the tenants replayed.
 */
export function temporalReplaySource(client: Client, settings: Pick<ReplaySettings, 'since' | 'until' | 'tenant' | 'concurrency'>): ReplaySource {
  const query = exportQuery(settings);
  async function* listed() {
    for await (const execution of client.workflow.list({ query, pageSize: 500 })) {
      const parsed = parseRequestWorkflowId(execution.workflowId);
      // Only toolgate request ids (as `audit export`); and a tenant's requests by their id too,
      // since the starter of an unverified workflow chose its search attributes.
      if (!parsed || (settings.tenant !== undefined && parsed.tenant !== undefined && parsed.tenant !== settings.tenant)) continue;
      yield { workflowId: execution.workflowId, runId: execution.runId, startTime: execution.startTime };
    }
  }
  return {
    count: async () => (await client.workflow.count(query)).count,
    entries: () => mapOrdered(listed(), settings.concurrency, (execution) => readRecordedRequest(client, execution)),
  };
}
