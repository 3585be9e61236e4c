/**
 * The execution of a tool that ran as a local activity (policy's `localExecution`: allowed, low
 * risk, idempotent), read from its marker. A regular execution leaves scheduled, started and
 * completed events with its input; a local one leaves one marker with its attempts and its answer,
 * so its identity and key are taken from the evaluation and the workflow, as the workflow built them.
 */
import type { LoadedDataConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { redactText } from '../egress/redact.js';
import { idempotencyKeyFor } from '../shared/messages.js';
import { decodeOptionalFailureToOptionalError } from '../temporal/internals.js';
import { decodeFirstPayload, isObject } from './history-payloads.js';
import { activityRole } from './record-audited.js';

/** The tool's execution as the history shows it: as whom, under which key, how many attempts, when. */
export interface ExecutionRun {
  runAs: string;
  idempotencyKey: string;
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
}

/** The execution activity's answer as the history holds it. */
export interface ExecutedAnswer {
  result: unknown;
  egress?: { bytes: number; redactions: Record<string, number> };
}

/** What a local execution's marker says: the run, its answer or its failure, and its timeline line. */
export interface LocalExecution {
  execution: ExecutionRun;
  executed: ExecutedAnswer | undefined;
  executionError: { type: string; message: string } | undefined;
  timelineEvent: string;
}

/**
 * The activity type and attempt of a local activity's marker. The SDK writes them as plain JSON in
 * the marker's `data` (never through the data converter or the codec); anything else is not a
 * local activity's marker and gives undefined.
 */
export function localActivityOf(payloads: readonly { data?: Uint8Array | null }[] | null | undefined): { type: string; attempt: number } | undefined {
  const bytes = payloads?.[0]?.data;
  if (!bytes) return undefined;
  try {
    const data: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    if (!isObject(data)) return undefined;
    const type = data.activity_type ?? data.activityType;
    if (typeof type !== 'string') return undefined;
    const attempt = data.attempt;
    return { type, attempt: typeof attempt === 'number' && attempt > 0 ? attempt : 1 };
  } catch {
    return undefined;
  }
}

/** The execution a marker records, or undefined when the marker is another local activity's (or none). */
export async function localExecutionOf(
  marker: temporal.api.history.v1.IMarkerRecordedEventAttributes,
  converter: LoadedDataConverter,
  context: { runAs: string | undefined; workflowId: string; at: string },
): Promise<LocalExecution | undefined> {
  const local = localActivityOf(marker.details?.data?.payloads);
  if (!local || activityRole(local.type) !== 'execution') return undefined;
  const runAs = context.runAs ?? 'unknown';
  const execution: ExecutionRun = {
    runAs,
    idempotencyKey: idempotencyKeyFor(context.workflowId),
    attempts: local.attempt,
    startedAt: context.at,
    finishedAt: context.at,
  };
  if (marker.failure) {
    const err = await decodeOptionalFailureToOptionalError(converter, marker.failure);
    const type = (err as { type?: string } | undefined)?.type ?? err?.name ?? 'ActivityFailure';
    return {
      execution,
      executed: undefined,
      executionError: { type, message: redactText(err?.message ?? '') },
      timelineEvent: `tool failed in the workflow task as ${runAs}: ${type}`,
    };
  }
  const executed = await decodeFirstPayload<ExecutedAnswer>(converter, marker.details?.result?.payloads);
  return { execution, executed, executionError: undefined, timelineEvent: `tool executed in the workflow task as ${runAs} (${local.attempt} attempt(s))` };
}
