/**
 * The audit record of one request, derived from its workflow history — the history is the only
 * source of truth; this module reads it (./record-history.ts), decodes its payloads with the
 * gateway's data converter and builds the record (./record-types.ts): who initiated it, who allowed
 * it, under which identity it left, what it produced. Arguments, results and messages in the
 * record are redacted.
 *
 * It also says how far each answer can be trusted (./record-checks.ts): the front door's request
 * assertion and every approver's decision assertion are verified again here, against the trust
 * anchors the workflow recorded in the same history. Histories from before the trust boundary (the
 * request itself as input, plain decision objects, `attemptRefused` signals) stay readable; they
 * are reported as unverified, because nothing in them can be verified.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { LoadedDataConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { provenanceView } from '../approvals/view.js';
import { redactText } from '../egress/redact.js';
import { parseRequestWorkflowId, requestIdFromWorkflowId, workflowIdFor, type ToolRequest } from '../shared/index.js';
import { GrpcStatus, grpcStatusOf } from '../temporal/errors.js';
import { withWorkflowContext } from './history-payloads.js';
import { answersOf } from './record-answers.js';
import { admissionCheck } from './record-checks.js';
import { recordedDecisions } from './record-decisions.js';
import { readRequestHistory } from './record-history.js';
import { listLinkedRequests } from './record-linked.js';
import { AuditRecordError, type AuditRecord } from './record-types.js';
import { linkOf, overrideOf, previewOf, redact, signersOf, summarise } from './recorded-values.js';

/**
 * Builds the audit record of a tenant's request from its workflow history, decoded with the
 * client's data converter. Request ids are namespaced per tenant, so the tenant is part of the id.
 */
export async function buildAuditRecord(client: Client, tenant: string, requestId: string): Promise<AuditRecord> {
  return buildAuditRecordOfWorkflow(client, workflowIdFor(tenant, requestId));
}

/**
 * Builds the audit record of a toolgate workflow by its id (and run, when given) — the form
 * visibility lists them in, including ids from before tenant-scoped ids (`toolreq:<id>`).
 */
export async function buildAuditRecordOfWorkflow(client: Client, workflowId: string, runId?: string, options: { linked?: boolean } = {}): Promise<AuditRecord> {
  const handle = client.workflow.getHandle(workflowId, runId);
  let history: temporal.api.history.v1.IHistory;
  try {
    history = await handle.fetchHistory();
  } catch (err) {
    // Only "no such workflow" is a missing request; anything else (Temporal out of reach, a
    // timeout) is passed on so the API answers 503 instead of a false 404.
    // (`fetchHistory` passes the service's NOT_FOUND through as a gRPC error; other calls wrap it as WorkflowNotFoundError.)
    if (err instanceof WorkflowNotFoundError || grpcStatusOf(err) === GrpcStatus.NOT_FOUND) {
      throw new AuditRecordError(`no request ${requestIdFromWorkflowId(workflowId) ?? workflowId}: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  }
  const record = await auditRecordFromHistory(history, client.options.loadedDataConverter, { workflowId });
  const ids = parseRequestWorkflowId(workflowId);
  // Ids from before tenant-scoped ids name no tenant, and no linked request can point at them.
  if (options.linked === false || ids?.tenant === undefined) return record;
  try {
    record.linked = await listLinkedRequests(client, ids.tenant, ids.requestId);
  } catch (err) {
    // Said in the record rather than thrown: the history is the record; visibility only adds the links to it.
    record.linkedUnavailable = redactText((err as Error).message);
  }
  return record;
}

/** Builds an audit record from a fetched history (exported for replay-style tests on stored histories). */
export async function auditRecordFromHistory(
  history: temporal.api.history.v1.IHistory,
  loaded: LoadedDataConverter,
  ids: { workflowId: string },
): Promise<AuditRecord> {
  // Decode as the request's own workflow: the codec then refuses any payload of another tenant
  // written into this history, so a record can never show (decrypted) what is not its tenant's.
  const converter = withWorkflowContext(loaded, ids.workflowId);
  const read = await readRequestHistory(history, converter, ids.workflowId);
  const { request, admission, evaluation, outcome } = read;
  // A raw client can start the workflow with anything; the workflow denied it, and the record still says what it was given.
  const input: ToolRequest = request ?? {
    requestId: requestIdFromWorkflowId(ids.workflowId) ?? '',
    actor: { id: '', type: 'agent', roles: [] },
    tenant: '',
    environment: '',
    tool: '',
    args: {},
  };

  // The admission, verified as the workflow did: against the first keys it read, at its start time.
  const admissionView = admissionCheck(admission, request, read.anchorsRead[0]?.anchors, { workflowId: ids.workflowId, startedAtMs: read.startedAtMs });
  const { approvals, confirmations, edits, refusals } = recordedDecisions(read.attempts, {
    edits: read.lastStatus?.edits ?? [],
    approvals: outcome?.approvals ?? read.lastStatus?.approvals ?? [],
    legacyRefusals: read.legacyRefusals,
  });

  const decision = evaluation?.decision;

  const completedExecution =
    outcome && (outcome.status === 'completed' || outcome.status === 'failed' || outcome.status === 'outcome_unknown') ? outcome.execution : undefined;
  const ranAs = completedExecution
    ? {
        runAs: completedExecution.runAs,
        idempotencyKey: completedExecution.idempotencyKey,
        attempts: completedExecution.attempts || read.execution?.attempts || 0,
        startedAt: completedExecution.startedAt,
        finishedAt: completedExecution.finishedAt,
      }
    : (read.execution ?? null);

  let outcomeView: AuditRecord['outcome'] = null;
  if (outcome) {
    outcomeView = { status: outcome.status };
    if (outcome.status === 'completed') {
      outcomeView.result = summarise(outcome.result);
      const egress = outcome.egress ?? read.executed?.egress;
      if (egress) outcomeView.egress = egress;
      if (outcome.withheld) outcomeView.withheld = { code: outcome.withheld.code, reason: redactText(outcome.withheld.reason) };
    } else if (outcome.status === 'failed' || outcome.status === 'outcome_unknown') {
      outcomeView.error = { type: outcome.error.type, message: redactText(outcome.error.message) };
    } else if (outcome.status === 'denied') {
      outcomeView.error = { type: outcome.code, message: redactText(outcome.reasons.join('; ')) };
    } else if (outcome.status === 'rejected') {
      outcomeView.error = { type: 'rejected', message: redactText(`rejected by ${outcome.rejectedBy}${outcome.reason ? `: ${outcome.reason}` : ''}`) };
    } else if (outcome.status === 'expired') {
      outcomeView.error = { type: 'expired', message: `no decision before ${outcome.expiresAt}` };
    }
  } else if (read.endedAs) {
    const error = read.endError ?? read.executionError;
    outcomeView = { status: read.endedAs, ...(error ? { error } : {}) };
  }
  const status = outcome?.status ?? read.endedAs ?? 'running';

  const provenance = provenanceView(input.provenance);
  const link = linkOf(input.link);
  // The grant policy made (sealed with its evaluation); the outcome repeats it, and is all an early denial leaves.
  const override = overrideOf(decision?.override) ?? overrideOf(outcome?.override);
  const record: Omit<AuditRecord, 'answers'> = {
    requestId: input.requestId || (requestIdFromWorkflowId(ids.workflowId) ?? ''),
    workflowId: ids.workflowId,
    ...(read.runId ? { runId: read.runId } : {}),
    ...(input.traceId ? { traceId: input.traceId } : {}),
    status,
    initiatedBy: {
      actor: input.actor,
      onBehalfOf: input.onBehalfOf ?? [],
      tenant: input.tenant,
      environment: input.environment,
      ...(input.reason === undefined ? {} : { reason: redactText(input.reason) }),
      at: read.startedAt,
    },
    ...(link ? { link } : {}),
    admission: admissionView,
    trustAnchors: read.anchorsRead.map(({ at, anchors }) => ({
      at,
      requestKeys: anchors.requestKeys.map((k) => k.kid),
      decisionKeys: anchors.decisionKeys.map((k) => k.kid),
    })),
    proposal: {
      tool: input.tool,
      ...(decision?.toolDigest ? { toolDigest: decision.toolDigest } : {}),
      ...signersOf(decision?.toolSigners),
      ...(outcome?.digest ? { digest: outcome.digest } : evaluation?.digest ? { digest: evaluation.digest } : {}),
      args: redact(outcome?.status === 'completed' ? outcome.args : input.args),
      ...previewOf(outcome?.status === 'completed' && outcome.proposal ? outcome.proposal.preview : evaluation?.proposal?.preview),
    },
    ...(provenance ? { provenance } : {}),
    decision: decision
      ? {
          outcome: decision.outcome,
          rule: decision.rule,
          reasons: redact(decision.reasons),
          risk: decision.risk,
          policyDigest: decision.policyDigest,
          ...(decision.code ? { code: decision.code } : {}),
          ...(admission ? { sealed: typeof evaluation?.seal === 'string' && evaluation.seal.length > 0 } : {}),
        }
      : outcome
        ? {
            outcome: outcome.status === 'denied' ? 'deny' : 'unknown',
            rule: outcome.rule,
            reasons: outcome.status === 'denied' ? redact(outcome.reasons) : [],
            risk: outcome.risk,
            policyDigest: outcome.policyDigest,
            ...(outcome.status === 'denied' ? { code: outcome.code } : {}),
          }
        : null,
    overridden: override !== undefined,
    ...(override ? { override } : {}),
    ...(read.shadow ? { shadow: read.shadow } : {}),
    approvals,
    confirmations,
    refusals,
    edits,
    ranAs,
    outcome: outcomeView,
    linked: [],
    timeline: read.timeline,
  };
  return { ...record, answers: answersOf(record) };
}
