/**
 * The audit record of one request, derived from its workflow history — the history is the only
 * source of truth; this module reads it, decodes its payloads with the gateway's data converter
 * and answers the four questions: who initiated it, who allowed it, under which identity it left,
 * what it produced. Arguments, results and messages in the record are redacted.
 */
import type { Client } from '@temporalio/client';
import type { LoadedDataConverter, Payload } from '@temporalio/common';
import { decodeFromPayloadsAtIndex, decodeOptionalFailureToOptionalError } from '@temporalio/common/lib/internal-non-workflow/index.js';
import type { temporal } from '@temporalio/proto';
import { redactText, redactValue } from '../egress/redact.js';
import {
  requestIdFromWorkflowId,
  workflowIdFor,
  type ApprovalRecord,
  type DecideInput,
  type EditRecord,
  type Evaluation,
  type RefusalRecord,
  type RequestStatus,
  type ToolOutcome,
  type ToolRequest,
} from '../shared/index.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Longest result summary kept in a record, in characters of JSON. @default 2000 */
export const RESULT_SUMMARY_CHARS = 2000;

/** The audit record of one request. */
export interface AuditRecord {
  requestId: string;
  workflowId: string;
  runId?: string;
  traceId?: string;
  /** `running` while the workflow is open; otherwise the outcome's status (or how the workflow ended). */
  status: string;
  /** Who initiated it. */
  initiatedBy: {
    actor: ToolRequest['actor'];
    onBehalfOf: NonNullable<ToolRequest['onBehalfOf']>;
    tenant: string;
    environment: string;
    reason?: string;
    at: string;
  };
  /** What was asked, with arguments redacted. */
  proposal: { tool: string; toolDigest?: string; digest?: string; args: Record<string, unknown> };
  /** What policy decided (the last evaluation; after an edit, the re-evaluation). */
  decision: { outcome: string; rule: string; reasons: string[]; risk: string; policyDigest: string; code?: string } | null;
  /** Every accepted vote: who, when, at which tier, on which digest, through which channel. */
  approvals: { who: string; decision: 'approve' | 'reject'; groups: string[]; at: string; tier: number; digest: string; via: string; reason?: string }[];
  /** Every refused decision attempt recorded on the request. */
  refusals: { who: string | null; claimed?: string; at: string; code: string; message: string; via: string }[];
  /** Approvers' edits of the arguments before approval (arguments redacted). */
  edits: { editor: string; at: string; fromDigest: string; toDigest?: string; args: Record<string, unknown>; reason?: string }[];
  /** Under which identity it ran, when it ran. */
  ranAs: { runAs: string; idempotencyKey: string; attempts: number; startedAt?: string; finishedAt?: string } | null;
  /** What it produced. */
  outcome: {
    status: string;
    /** Redacted, truncated JSON of the result. */
    result?: string;
    error?: { type: string; message: string };
    egress?: { bytes: number; redactions: Record<string, number> };
  } | null;
  /** The four questions, answered in a sentence each. */
  answers: { whoInitiated: string; whoAllowed: string; underWhichIdentity: string; whatItProduced: string };
  timeline: { at: string; event: string }[];
}

/** Thrown when a request has no workflow, or its history cannot be read as a toolgate request. */
export class AuditRecordError extends Error {
  override readonly name = 'AuditRecordError';
}

const redact = <T>(value: T): T => redactValue(value).value;

function timeOf(event: HistoryEvent): string {
  const t = event.eventTime;
  if (!t) return '';
  const ms = Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
  return new Date(ms).toISOString();
}

async function first<T>(converter: LoadedDataConverter, payloads: Payload[] | null | undefined): Promise<T | undefined> {
  if (!payloads || payloads.length === 0) return undefined;
  return decodeFromPayloadsAtIndex<T>(converter, 0, payloads);
}

function summarise(result: unknown): string {
  const json = JSON.stringify(redact(result)) ?? 'null';
  return json.length > RESULT_SUMMARY_CHARS ? `${json.slice(0, RESULT_SUMMARY_CHARS)}… (${json.length} chars)` : json;
}

/** Builds the audit record of a tenant's request from its workflow history, decoded with the client's data converter. */
export async function buildAuditRecord(client: Client, tenant: string, requestId: string): Promise<AuditRecord> {
  const workflowId = workflowIdFor(tenant, requestId);
  const handle = client.workflow.getHandle(workflowId);
  let history: temporal.api.history.v1.IHistory;
  try {
    history = await handle.fetchHistory();
  } catch (err) {
    throw new AuditRecordError(`no request ${requestId}: ${(err as Error).message}`);
  }
  return auditRecordFromHistory(history, client.options.loadedDataConverter, { workflowId });
}

/** Builds an audit record from a fetched history (exported for replay-style tests on stored histories). */
export async function auditRecordFromHistory(
  history: temporal.api.history.v1.IHistory,
  converter: LoadedDataConverter,
  ids: { workflowId: string },
): Promise<AuditRecord> {
  const events = history.events ?? [];
  const timeline: AuditRecord['timeline'] = [];
  let request: ToolRequest | undefined;
  let startedAt = '';
  let runId: string | undefined;
  let evaluation: Evaluation | undefined;
  let lastStatus: RequestStatus | undefined;
  let outcome: ToolOutcome | undefined;
  let endedAs: string | undefined;
  let endError: { type: string; message: string } | undefined;
  const votes: DecideInput[] = [];
  const refusals: RefusalRecord[] = [];
  const scheduled = new Map<string, { type: string; input: unknown }>();
  let execution: { runAs: string; idempotencyKey: string; attempts: number; startedAt?: string; finishedAt?: string } | undefined;
  let executed: { result: unknown; egress?: { bytes: number; redactions: Record<string, number> } } | undefined;
  let executionError: { type: string; message: string } | undefined;

  for (const event of events) {
    const at = timeOf(event);
    const id = String(event.eventId ?? '');
    if (event.workflowExecutionStartedEventAttributes) {
      const attrs = event.workflowExecutionStartedEventAttributes;
      request = await first<ToolRequest>(converter, attrs.input?.payloads);
      runId = attrs.originalExecutionRunId ?? undefined;
      startedAt = at;
      timeline.push({ at, event: `requested ${request?.tool ?? '?'} by ${request?.actor.id ?? '?'} for tenant ${request?.tenant ?? '?'}` });
    } else if (event.markerRecordedEventAttributes) {
      const details = event.markerRecordedEventAttributes.details ?? {};
      const decoded = await first<Evaluation>(converter, details.result?.payloads).catch(() => undefined);
      if (decoded && typeof decoded === 'object' && 'decision' in decoded) {
        evaluation = decoded;
        const d = decoded.decision;
        timeline.push({ at, event: `policy decided ${d.outcome} (rule ${d.rule}, risk ${d.risk})` });
      }
    } else if (event.workflowExecutionUpdateAcceptedEventAttributes) {
      const input = await first<DecideInput>(converter, event.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest?.input?.args?.payloads);
      if (input) {
        votes.push(input);
        timeline.push({ at, event: `${input.approver.id} ${input.decision === 'edit' ? 'edited the arguments' : `${input.decision}d`} (via ${input.via ?? 'api'})` });
      }
    } else if (event.workflowExecutionUpdateCompletedEventAttributes) {
      const status = await first<RequestStatus>(converter, event.workflowExecutionUpdateCompletedEventAttributes.outcome?.success?.payloads).catch(() => undefined);
      if (status && typeof status === 'object' && 'approvals' in status) lastStatus = status;
    } else if (event.workflowExecutionSignaledEventAttributes) {
      const attrs = event.workflowExecutionSignaledEventAttributes;
      if (attrs.signalName === 'attemptRefused') {
        const refusal = await first<RefusalRecord>(converter, attrs.input?.payloads);
        if (refusal) {
          refusals.push(refusal);
          timeline.push({ at, event: `refused a decision by ${refusal.approverId ?? `unverified ${refusal.claimedId ?? 'caller'}`}: ${refusal.code}` });
        }
      } else {
        timeline.push({ at, event: `signal ${attrs.signalName ?? '?'}` });
      }
    } else if (event.activityTaskScheduledEventAttributes) {
      const attrs = event.activityTaskScheduledEventAttributes;
      const type = attrs.activityType?.name ?? '?';
      const input = await first<unknown>(converter, attrs.input?.payloads).catch(() => undefined);
      scheduled.set(id, { type, input });
      if (type === 'executeTool') {
        const i = input as { runAs: string; idempotencyKey: string };
        execution = { runAs: i.runAs, idempotencyKey: i.idempotencyKey, attempts: 0, startedAt: at };
        timeline.push({ at, event: `execution scheduled as ${i.runAs}` });
      } else if (type === 'notifyApprovers') {
        const n = input as { kind?: string; groups?: string[] };
        timeline.push({ at, event: `notified ${n.groups?.join(', ') || 'nobody'} (${n.kind ?? '?'})` });
      }
    } else if (event.activityTaskStartedEventAttributes) {
      const attrs = event.activityTaskStartedEventAttributes;
      if (scheduled.get(String(attrs.scheduledEventId ?? ''))?.type === 'executeTool' && execution) execution.attempts = attrs.attempt ?? 1;
    } else if (event.activityTaskCompletedEventAttributes) {
      const attrs = event.activityTaskCompletedEventAttributes;
      if (scheduled.get(String(attrs.scheduledEventId ?? ''))?.type === 'executeTool') {
        executed = await first<typeof executed>(converter, attrs.result?.payloads);
        if (execution) execution.finishedAt = at;
        timeline.push({ at, event: `tool executed (${execution?.attempts ?? '?'} attempt(s))` });
      }
    } else if (event.activityTaskFailedEventAttributes) {
      const attrs = event.activityTaskFailedEventAttributes;
      if (scheduled.get(String(attrs.scheduledEventId ?? ''))?.type === 'executeTool') {
        const err = await decodeOptionalFailureToOptionalError(converter, attrs.failure);
        const type = (err as { type?: string } | undefined)?.type ?? err?.name ?? 'ActivityFailure';
        executionError = { type, message: redactText(err?.message ?? '') };
        if (execution) execution.finishedAt = at;
        timeline.push({ at, event: `tool failed: ${type}` });
      }
    } else if (event.timerFiredEventAttributes) {
      timeline.push({ at, event: 'timer fired (escalation, reminder or expiry)' });
    } else if (event.workflowExecutionCompletedEventAttributes) {
      outcome = await first<ToolOutcome>(converter, event.workflowExecutionCompletedEventAttributes.result?.payloads);
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
  if (!request) throw new AuditRecordError(`${ids.workflowId}: the history has no toolRequest input`);

  const decision = evaluation?.decision;
  const approvalsSource: ApprovalRecord[] = outcome?.approvals ?? lastStatus?.approvals ?? [];
  const approvals = approvalsSource.map((v) => ({
    who: v.approverId,
    decision: v.decision,
    groups: v.groups,
    at: v.at,
    tier: v.tier,
    digest: v.digest,
    via: v.via ?? 'api',
    ...(v.reason === undefined ? {} : { reason: redactText(v.reason) }),
  }));
  const editsSource: EditRecord[] = lastStatus?.edits ?? [];
  const edits = editsSource.map((e) => ({
    editor: e.editorId,
    at: e.at,
    fromDigest: e.fromDigest,
    ...(e.toDigest === undefined ? {} : { toDigest: e.toDigest }),
    args: redact(e.args),
    ...(e.reason === undefined ? {} : { reason: redactText(e.reason) }),
  }));
  // Edits whose update never completed (the workflow ended first) are still votes in the history.
  for (const vote of votes) {
    if (vote.decision === 'edit' && !edits.some((e) => e.editor === vote.approver.id)) {
      edits.push({ editor: vote.approver.id, at: '', fromDigest: vote.digest, args: redact(vote.args ?? {}), ...(vote.reason ? { reason: redactText(vote.reason) } : {}) });
    }
  }

  const completedExecution = outcome && (outcome.status === 'completed' || outcome.status === 'failed' || outcome.status === 'outcome_unknown') ? outcome.execution : undefined;
  const ranAs = completedExecution
    ? {
        runAs: completedExecution.runAs,
        idempotencyKey: completedExecution.idempotencyKey,
        attempts: completedExecution.attempts || execution?.attempts || 0,
        startedAt: completedExecution.startedAt,
        finishedAt: completedExecution.finishedAt,
      }
    : (execution ?? null);

  let outcomeView: AuditRecord['outcome'] = null;
  if (outcome) {
    outcomeView = { status: outcome.status };
    if (outcome.status === 'completed') {
      outcomeView.result = summarise(outcome.result);
      const egress = outcome.egress ?? executed?.egress;
      if (egress) outcomeView.egress = egress;
    } else if (outcome.status === 'failed' || outcome.status === 'outcome_unknown') {
      outcomeView.error = { type: outcome.error.type, message: redactText(outcome.error.message) };
    } else if (outcome.status === 'denied') {
      outcomeView.error = { type: outcome.code, message: redactText(outcome.reasons.join('; ')) };
    } else if (outcome.status === 'rejected') {
      outcomeView.error = { type: 'rejected', message: redactText(`rejected by ${outcome.rejectedBy}${outcome.reason ? `: ${outcome.reason}` : ''}`) };
    } else if (outcome.status === 'expired') {
      outcomeView.error = { type: 'expired', message: `no decision before ${outcome.expiresAt}` };
    }
  } else if (endedAs) {
    outcomeView = { status: endedAs, ...(endError ? { error: endError } : executionError ? { error: executionError } : {}) };
  }
  const status = outcome?.status ?? endedAs ?? 'running';

  const record: Omit<AuditRecord, 'answers'> = {
    requestId: request.requestId ?? requestIdFromWorkflowId(ids.workflowId) ?? '',
    workflowId: ids.workflowId,
    ...(runId ? { runId } : {}),
    ...(request.traceId ? { traceId: request.traceId } : {}),
    status,
    initiatedBy: {
      actor: request.actor,
      onBehalfOf: request.onBehalfOf ?? [],
      tenant: request.tenant,
      environment: request.environment,
      ...(request.reason === undefined ? {} : { reason: redactText(request.reason) }),
      at: startedAt,
    },
    proposal: {
      tool: request.tool,
      ...(decision?.toolDigest ? { toolDigest: decision.toolDigest } : {}),
      ...(outcome?.digest ? { digest: outcome.digest } : evaluation?.digest ? { digest: evaluation.digest } : {}),
      args: redact(outcome?.status === 'completed' ? outcome.args : request.args),
    },
    decision: decision
      ? {
          outcome: decision.outcome,
          rule: decision.rule,
          reasons: redact(decision.reasons),
          risk: decision.risk,
          policyDigest: decision.policyDigest,
          ...(decision.code ? { code: decision.code } : {}),
        }
      : outcome
        ? { outcome: outcome.status === 'denied' ? 'deny' : 'unknown', rule: outcome.rule, reasons: [], risk: outcome.risk, policyDigest: outcome.policyDigest }
        : null,
    approvals,
    refusals: refusals.map((r) => ({
      who: r.approverId,
      ...(r.claimedId ? { claimed: r.claimedId } : {}),
      at: r.at,
      code: r.code,
      message: redactText(r.message),
      via: r.via,
    })),
    edits,
    ranAs,
    outcome: outcomeView,
    timeline,
  };
  return { ...record, answers: answersOf(record) };
}

function answersOf(r: Omit<AuditRecord, 'answers'>): AuditRecord['answers'] {
  const chain = r.initiatedBy.onBehalfOf.length > 0 ? ` on behalf of ${r.initiatedBy.onBehalfOf.map((p) => `${p.type} ${p.id}`).join(' → ')}` : '';
  const whoInitiated = `${r.initiatedBy.actor.type} ${r.initiatedBy.actor.id}${chain} (tenant ${r.initiatedBy.tenant}, ${r.initiatedBy.environment}) at ${r.initiatedBy.at}${r.initiatedBy.reason ? `: "${r.initiatedBy.reason}"` : ''}`;
  const policy = r.decision ? `policy rule ${r.decision.rule} decided ${r.decision.outcome} (risk ${r.decision.risk}, policy ${r.decision.policyDigest.slice(0, 12) || 'none'})` : 'no policy decision recorded';
  const approvers = r.approvals.filter((a) => a.decision === 'approve');
  const rejecters = r.approvals.filter((a) => a.decision === 'reject');
  let people = '';
  if (approvers.length > 0) people += `; approved by ${approvers.map((a) => `${a.who} (tier ${a.tier}, via ${a.via}, ${a.at})`).join(', ')}`;
  if (rejecters.length > 0) people += `; rejected by ${rejecters.map((a) => `${a.who} (${a.at})`).join(', ')}`;
  if (r.edits.length > 0) people += `; arguments edited by ${r.edits.map((e) => e.editor).join(', ')}`;
  if (r.status === 'expired') people += '; nobody decided before expiry';
  const whoAllowed = r.ranAs ? `${policy}${people}` : `nobody: ${policy}${people}`;
  const underWhichIdentity = r.ranAs
    ? `${r.ranAs.runAs} (idempotency key ${r.ranAs.idempotencyKey}, ${r.ranAs.attempts} attempt(s))`
    : 'it never left: no execution';
  let whatItProduced: string;
  if (!r.outcome) whatItProduced = 'nothing yet: the request is still open';
  else if (r.outcome.status === 'completed') {
    const redactions = Object.entries(r.outcome.egress?.redactions ?? {}).map(([rule, n]) => `${rule}×${n}`).join(', ');
    whatItProduced = `completed: ${r.outcome.result ?? 'null'}${r.outcome.egress ? ` (${r.outcome.egress.bytes} bytes${redactions ? `, redacted ${redactions}` : ''})` : ''}`;
  } else whatItProduced = `${r.outcome.status}${r.outcome.error ? `: ${r.outcome.error.type}: ${r.outcome.error.message}` : ''}`;
  return { whoInitiated, whoAllowed, underWhichIdentity, whatItProduced };
}

/** A human-readable rendering of a record, for `toolgate audit show`. */
export function formatAuditRecord(r: AuditRecord): string {
  const lines = [
    `request ${r.requestId}  (${r.workflowId}${r.traceId ? `, trace ${r.traceId}` : ''})  status: ${r.status}`,
    '',
    `who initiated:          ${r.answers.whoInitiated}`,
    `who allowed:            ${r.answers.whoAllowed}`,
    `under which identity:   ${r.answers.underWhichIdentity}`,
    `what it produced:       ${r.answers.whatItProduced}`,
    '',
    `proposal: ${r.proposal.tool}${r.proposal.toolDigest ? ` (tool ${r.proposal.toolDigest.slice(0, 12)})` : ''}${r.proposal.digest ? ` digest ${r.proposal.digest}` : ''}`,
    `  args: ${JSON.stringify(r.proposal.args)}`,
  ];
  if (r.decision) lines.push(`decision: ${r.decision.outcome} by ${r.decision.rule}, risk ${r.decision.risk}${r.decision.reasons.length ? ` — ${r.decision.reasons.join('; ')}` : ''}`);
  for (const a of r.approvals) lines.push(`vote: ${a.who} ${a.decision} at ${a.at}, tier ${a.tier}, via ${a.via}, digest ${a.digest.slice(0, 12)}${a.reason ? ` — ${a.reason}` : ''}`);
  for (const e of r.edits) lines.push(`edit: ${e.editor} at ${e.at}: ${JSON.stringify(e.args)}${e.reason ? ` — ${e.reason}` : ''}`);
  for (const f of r.refusals) lines.push(`refused: ${f.who ?? `unverified ${f.claimed ?? 'caller'}`} at ${f.at} via ${f.via}: ${f.code} — ${f.message}`);
  lines.push('', 'timeline:');
  for (const t of r.timeline) lines.push(`  ${t.at}  ${t.event}`);
  return `${lines.join('\n')}\n`;
}
