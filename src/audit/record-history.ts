/**
 * Reading a request's workflow history into what happened, event by event: the start input, the
 * trust anchors and evaluations the workflow recorded (markers of its local activities), each
 * decision it accepted and what came of it, the activities it scheduled (notifications, preview,
 * execution), signals, timers and how it ended — with a timeline line for each. What the record
 * then makes of it is src/audit/record.ts.
 */
import type { LoadedDataConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { redactText } from '../egress/redact.js';
import {
  decideUpdate,
  type Evaluation,
  type RefusalRecord,
  type RequestStatus,
  type ShadowDecision,
  type ToolOutcome,
  type ToolRequest,
  type TrustAnchors,
  type TrustedKey,
} from '../shared/index.js';
import { decodeOptionalFailureToOptionalError } from '../temporal/internals.js';
import { decodeFirstPayload, isObject, msOf, startInputOf, timeOf } from './history-payloads.js';
import { AUDITED_MESSAGES, LEGACY_REFUSAL_SIGNAL, activityRole } from './record-audited.js';
import { asTrustAnchors, decisionCheck } from './record-checks.js';
import { localExecutionOf, type ExecutedAnswer, type ExecutionRun } from './record-local-execution.js';
import { END_USER_VERBS, decisionOf, deciderOf, verbOf, type DecisionAttempt } from './record-decisions.js';
import { AuditRecordError, type AuditRecord } from './record-types.js';
import { PREVIEW_TIMELINE, describePreview, describeShadow, overrideOf, shadowOf } from './recorded-values.js';

/** What a request's history says happened (see {@link readRequestHistory}). */
export interface RequestHistory {
  /** The request the workflow was started with; undefined when the input is not a request's shape. */
  request: ToolRequest | undefined;
  /** The start input's shape: the request itself (before the trust boundary, undefined) or `{ request, admission }`. */
  admission: { token: unknown } | undefined;
  startedAt: string;
  startedAtMs: number;
  /** The run decisions are bound to (the latest, after a reset). */
  runId: string | undefined;
  /** Each time the workflow read its trust anchors. */
  anchorsRead: { at: string; anchors: TrustAnchors }[];
  /** The last evaluation (after an edit or a preview, the re-evaluation), with the worker's seal. */
  evaluation: (Evaluation & { seal?: unknown }) | undefined;
  /** The shadow policy's decision of the first evaluation. */
  shadow: ShadowDecision | undefined;
  /** The request's status as the last completed decision returned it (its votes and edits). */
  lastStatus: RequestStatus | undefined;
  outcome: ToolOutcome | undefined;
  /** How the workflow ended without an outcome (failed, terminated, timed out, canceled). */
  endedAs: string | undefined;
  endError: { type: string; message: string } | undefined;
  /** Every decision the workflow accepted, in order. */
  attempts: DecisionAttempt[];
  /** Refused attempts of histories from before the trust boundary (`attemptRefused` signals). */
  legacyRefusals: RefusalRecord[];
  execution: ExecutionRun | undefined;
  executed: ExecutedAnswer | undefined;
  executionError: { type: string; message: string } | undefined;
  timeline: AuditRecord['timeline'];
}

/**
 * Reads a request's history, decoding payloads with `converter` (give it `withWorkflowContext`'s).
 * Throws {@link AuditRecordError} for a history with no start input, or one that is not a request's.
 */
export async function readRequestHistory(
  history: temporal.api.history.v1.IHistory,
  converter: LoadedDataConverter,
  workflowId: string,
): Promise<RequestHistory> {
  const events = history.events ?? [];
  const timeline: AuditRecord['timeline'] = [];
  let started = false;
  let request: ToolRequest | undefined;
  /** The start input's shape: the request itself (before the trust boundary) or `{ request, admission }`. */
  let admission: { token: unknown } | undefined;
  let startedAt = '';
  let startedAtMs = 0;
  let runId: string | undefined;
  const anchorsRead: { at: string; anchors: TrustAnchors }[] = [];
  let evaluation: (Evaluation & { seal?: unknown }) | undefined;
  let shadow: ShadowDecision | undefined;
  let lastStatus: RequestStatus | undefined;
  let outcome: ToolOutcome | undefined;
  let endedAs: string | undefined;
  let endError: { type: string; message: string } | undefined;
  const attempts: DecisionAttempt[] = [];
  const attemptsByEvent = new Map<string, DecisionAttempt>();
  const attemptsByUpdate = new Map<string, DecisionAttempt>();
  const usedJtis = new Set<string>();
  const legacyRefusals: RefusalRecord[] = [];
  const scheduled = new Map<string, { type: string; role: ReturnType<typeof activityRole>; input: unknown }>();
  let execution: ExecutionRun | undefined;
  let executed: RequestHistory['executed'];
  let executionError: { type: string; message: string } | undefined;

  for (const event of events) {
    const at = timeOf(event);
    const id = String(event.eventId ?? '');
    if (event.workflowExecutionStartedEventAttributes) {
      const attrs = event.workflowExecutionStartedEventAttributes;
      const input = await decodeFirstPayload<unknown>(converter, attrs.input?.payloads);
      started = true;
      ({ request, admission } = startInputOf(input));
      runId = attrs.originalExecutionRunId ?? undefined;
      startedAt = at;
      startedAtMs = msOf(event) ?? 0;
      timeline.push({ at, event: `requested ${request?.tool ?? '?'} by ${request?.actor.id ?? '?'} for tenant ${request?.tenant ?? '?'}` });
    } else if (event.workflowTaskFailedEventAttributes?.newRunId) {
      // A reset continues the history under a new run id; decisions after it are bound to that run.
      runId = event.workflowTaskFailedEventAttributes.newRunId;
    } else if (event.markerRecordedEventAttributes) {
      const details = event.markerRecordedEventAttributes.details ?? {};
      const local = await localExecutionOf(event.markerRecordedEventAttributes, converter, { runAs: evaluation?.decision.runAs, workflowId, at });
      if (local) {
        ({ execution, executed, executionError } = local);
        timeline.push({ at, event: local.timelineEvent });
        continue;
      }
      const decoded = await decodeFirstPayload<unknown>(converter, details.result?.payloads).catch(() => undefined);
      const anchors = asTrustAnchors(decoded);
      if (anchors) {
        anchorsRead.push({ at, anchors });
        const kids = (keys: TrustedKey[]) => keys.map((k) => k.kid).join(', ') || 'none';
        timeline.push({ at, event: `trusted keys read: request keys ${kids(anchors.requestKeys)}; decision keys ${kids(anchors.decisionKeys)}` });
      } else if (isObject(decoded) && isObject(decoded.decision) && isObject(decoded.proposal) && decoded.proposal.preview !== undefined) {
        // A preview that gave no answer, sealed into the evaluation by the worker.
        evaluation = decoded as unknown as Evaluation & { seal?: unknown };
        timeline.push({ at, event: describePreview(decoded.proposal.preview) });
      } else if (isObject(decoded) && isObject(decoded.decision)) {
        const firstEvaluation = evaluation === undefined;
        evaluation = decoded as unknown as Evaluation & { seal?: unknown };
        const d = evaluation.decision;
        const shadowed = shadowOf(decoded.shadow);
        if (firstEvaluation && shadowed) shadow = shadowed;
        const granted = overrideOf(d.override);
        timeline.push({
          at,
          event:
            `policy decided ${d.outcome} (rule ${d.rule}, risk ${d.risk})` +
            `${granted ? `; BREAK-GLASS override of ${granted.deniedRule} (${granted.deniedCode})` : ''}` +
            `${shadowed ? `; shadow policy: ${describeShadow(shadowed)}` : ''}`,
        });
      }
    } else if (event.workflowExecutionUpdateAcceptedEventAttributes) {
      const attrs = event.workflowExecutionUpdateAcceptedEventAttributes;
      const name = attrs.acceptedRequest?.input?.name;
      if (name && name !== decideUpdate.name) continue;
      const input = await decodeFirstPayload<unknown>(converter, attrs.acceptedRequest?.input?.args?.payloads).catch(() => undefined);
      const parsed = decisionOf(input);
      if (!parsed) continue;
      // The keys in force when it arrived: the last set the workflow read before this event.
      const context = { requestId: request?.requestId ?? '', workflowId, runId: runId ?? '', nowMs: msOf(event) ?? 0 };
      const verification = decisionCheck(parsed.token, anchorsRead.at(-1)?.anchors, context, usedJtis);
      const decided = parsed.decided;
      const verb = decided.via === 'end_user' ? END_USER_VERBS[decided.decision] : verbOf(decided.decision);
      const entry = { at, event: `${deciderOf(decided)} ${verb} (via ${decided.via ?? 'api'})` };
      timeline.push(entry);
      const attempt: DecisionAttempt = { at, input: decided, check: verification, timelineEntry: entry };
      attempts.push(attempt);
      attemptsByEvent.set(id, attempt);
      const updateId = attrs.acceptedRequest?.meta?.updateId ?? attrs.protocolInstanceId;
      if (updateId) attemptsByUpdate.set(updateId, attempt);
    } else if (event.workflowExecutionUpdateCompletedEventAttributes) {
      const attrs = event.workflowExecutionUpdateCompletedEventAttributes;
      const attempt =
        attemptsByEvent.get(String(attrs.acceptedEventId ?? '')) ?? (attrs.meta?.updateId ? attemptsByUpdate.get(attrs.meta.updateId) : undefined);
      if (attrs.outcome?.failure) {
        // An accepted decision that completed with a failure is a refusal the workflow recorded.
        const err = await decodeOptionalFailureToOptionalError(converter, attrs.outcome.failure).catch(() => undefined);
        const type = (err as { type?: string } | undefined)?.type ?? err?.name ?? 'Failure';
        if (attempt) attempt.result = { ok: false, at, type, message: err?.message ?? '' };
      } else {
        const status = await decodeFirstPayload<RequestStatus>(converter, attrs.outcome?.success?.payloads).catch(() => undefined);
        if (status && typeof status === 'object' && 'approvals' in status) lastStatus = status;
        if (attempt) attempt.result = { ok: true, at };
      }
    } else if (event.workflowExecutionSignaledEventAttributes) {
      const attrs = event.workflowExecutionSignaledEventAttributes;
      if (attrs.signalName === LEGACY_REFUSAL_SIGNAL) {
        const refusal = await decodeFirstPayload<RefusalRecord>(converter, attrs.input?.payloads);
        if (refusal) {
          legacyRefusals.push(refusal);
          timeline.push({ at, event: `refused a decision by ${refusal.approverId ?? `unverified ${refusal.claimedId ?? 'caller'}`}: ${refusal.code}` });
        }
      } else {
        const known = attrs.signalName && Object.hasOwn(AUDITED_MESSAGES.signals, attrs.signalName) ? AUDITED_MESSAGES.signals[attrs.signalName] : undefined;
        timeline.push({ at, event: known ? `signal ${attrs.signalName}: ${known}` : `signal ${attrs.signalName ?? '?'}` });
      }
    } else if (event.activityTaskScheduledEventAttributes) {
      const attrs = event.activityTaskScheduledEventAttributes;
      const type = attrs.activityType?.name ?? '?';
      const input = await decodeFirstPayload<unknown>(converter, attrs.input?.payloads).catch(() => undefined);
      const role = activityRole(type);
      scheduled.set(id, { type, role, input });
      if (role === 'execution') {
        const i = input as { runAs: string; idempotencyKey: string };
        execution = { runAs: i.runAs, idempotencyKey: i.idempotencyKey, attempts: 0, startedAt: at };
        timeline.push({ at, event: `execution scheduled as ${i.runAs}` });
      } else if (role === 'notification') {
        const n = input as { kind?: string; groups?: string[] };
        timeline.push({ at, event: `notified ${n.groups?.join(', ') || 'nobody'} (${n.kind ?? '?'})` });
      } else if (role === 'preview') {
        const runAs = (input as { evaluation?: { decision?: { runAs?: unknown } } } | undefined)?.evaluation?.decision?.runAs;
        timeline.push({ at, event: `${PREVIEW_TIMELINE} called${typeof runAs === 'string' ? ` as ${runAs}` : ''}` });
      }
    } else if (event.activityTaskStartedEventAttributes) {
      const attrs = event.activityTaskStartedEventAttributes;
      if (scheduled.get(String(attrs.scheduledEventId ?? ''))?.role === 'execution' && execution) execution.attempts = attrs.attempt ?? 1;
    } else if (event.activityTaskCompletedEventAttributes) {
      const attrs = event.activityTaskCompletedEventAttributes;
      const role = scheduled.get(String(attrs.scheduledEventId ?? ''))?.role;
      if (role === 'execution') {
        executed = await decodeFirstPayload<typeof executed>(converter, attrs.result?.payloads);
        if (execution) execution.finishedAt = at;
        timeline.push({ at, event: `tool executed (${execution?.attempts ?? '?'} attempt(s))` });
      } else if (role === 'preview') {
        // The evaluation with the preview in its proposal: what approvers signed from here on.
        const decoded = await decodeFirstPayload<unknown>(converter, attrs.result?.payloads).catch(() => undefined);
        if (isObject(decoded) && isObject(decoded.decision)) evaluation = decoded as unknown as Evaluation & { seal?: unknown };
        timeline.push({ at, event: describePreview(isObject(decoded) && isObject(decoded.proposal) ? decoded.proposal.preview : undefined) });
      }
    } else if (event.activityTaskFailedEventAttributes) {
      const attrs = event.activityTaskFailedEventAttributes;
      if (scheduled.get(String(attrs.scheduledEventId ?? ''))?.role === 'preview') {
        const err = await decodeOptionalFailureToOptionalError(converter, attrs.failure).catch(() => undefined);
        timeline.push({ at, event: `${PREVIEW_TIMELINE} activity failed: ${(err as { type?: string } | undefined)?.type ?? err?.name ?? 'Failure'}` });
      } else if (scheduled.get(String(attrs.scheduledEventId ?? ''))?.role === 'execution') {
        const err = await decodeOptionalFailureToOptionalError(converter, attrs.failure);
        const type = (err as { type?: string } | undefined)?.type ?? err?.name ?? 'ActivityFailure';
        executionError = { type, message: redactText(err?.message ?? '') };
        if (execution) execution.finishedAt = at;
        timeline.push({ at, event: `tool failed: ${type}` });
      }
    } else if (event.timerFiredEventAttributes) {
      timeline.push({ at, event: 'timer fired (escalation, reminder or expiry)' });
    } else if (event.workflowExecutionCompletedEventAttributes) {
      outcome = await decodeFirstPayload<ToolOutcome>(converter, event.workflowExecutionCompletedEventAttributes.result?.payloads);
      timeline.push({ at, event: `ended ${outcome?.status ?? 'completed'}` });
    } else if (event.workflowExecutionFailedEventAttributes) {
      const err = await decodeOptionalFailureToOptionalError(converter, event.workflowExecutionFailedEventAttributes.failure);
      endedAs = 'workflow_failed';
      endError = { type: err?.name ?? 'Failure', message: redactText(err?.message ?? '') };
      timeline.push({ at, event: 'workflow failed' });
    } else if (event.workflowExecutionTerminatedEventAttributes) {
      endedAs = 'terminated';
      endError = { type: 'Terminated', message: redactText(event.workflowExecutionTerminatedEventAttributes.reason ?? '') };
      timeline.push({ at, event: `terminated by ${event.workflowExecutionTerminatedEventAttributes.identity ?? '?'}` });
    } else if (event.workflowExecutionTimedOutEventAttributes) {
      endedAs = 'timed_out';
      timeline.push({ at, event: 'workflow timed out' });
    } else if (event.workflowExecutionCanceledEventAttributes) {
      endedAs = 'canceled';
      timeline.push({ at, event: 'workflow canceled' });
    }
  }
  if (!started) throw new AuditRecordError(`${workflowId}: the history has no toolRequest input`);
  if (!request && !admission) throw new AuditRecordError(`${workflowId}: the history's input is not a tool request`);
  return {
    request,
    admission,
    startedAt,
    startedAtMs,
    runId,
    anchorsRead,
    evaluation,
    shadow,
    lastStatus,
    outcome,
    endedAs,
    endError,
    attempts,
    legacyRefusals,
    execution,
    executed,
    executionError,
    timeline,
  };
}
