/**
 * The audit record of one request, derived from its workflow history — the history is the only
 * source of truth; this module reads it, decodes its payloads with the gateway's data converter
 * and answers the four questions: who initiated it, who allowed it, under which identity it left,
 * what it produced. Arguments, results and messages in the record are redacted.
 *
 * It also says how far each answer can be trusted: the front door's request assertion and every
 * approver's decision assertion are verified again here, against the trust anchors the workflow
 * recorded in the same history. Histories from before the trust boundary (the request itself as
 * input, plain decision objects, `attemptRefused` signals) stay readable; they are reported as
 * unverified, because nothing in them can be verified.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { LoadedDataConverter, Payload, SerializationContext } from '@temporalio/common';
import { decodeFromPayloadsAtIndex, decodeOptionalFailureToOptionalError } from '../temporal/internals.js';
import type { temporal } from '@temporalio/proto';
import type { createActivities } from '../../activities/index.js';
import { redactText, redactValue } from '../egress/redact.js';
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';
import { GrpcStatus, grpcStatusOf } from '../temporal/errors.js';
import { describePrompt, previewHeadline, previewView, provenanceKinds, provenanceView, type PreviewView, type ProvenanceView } from '../approvals/view.js';
import {
  AssertionError,
  decideUpdate,
  killSignal,
  refreshTrustSignal,
  canonicalId,
  DENIAL_CODES,
  LINK_KINDS,
  linkedRequestsQuery,
  parseRequestWorkflowId,
  requestIdFromWorkflowId,
  searchAttributes,
  verifyDecisionAssertion,
  verifyRequestAssertion,
  workflowIdFor,
  type ApprovalRecord,
  type DecideInput,
  type EditRecord,
  type Evaluation,
  type LinkKind,
  type OverrideGrant,
  type RefusalRecord,
  type RequestLink,
  type RequestStatus,
  type ShadowDecision,
  type ToolOutcome,
  type ToolRequest,
  type TrustAnchors,
  type TrustedKey,
} from '../shared/index.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The activities a request's workflow can call, by the names it proxies them under. */
type RequestActivity = keyof ReturnType<typeof createActivities>;

/**
 * What the record makes of each activity of a request's workflow. Exhaustive over the activities
 * the workflow proxies: renaming one, or adding one, does not compile until this map says how the
 * record shows it — so the record can never silently lose the execution or the notifications.
 * Local activities leave markers, which are recognised by the shape of their result.
 */
export const AUDITED_ACTIVITIES = {
  loadTrustAnchors: 'marker',
  evaluatePolicy: 'marker',
  notifyApprovers: 'notification',
  // The dry-run preview's answer is sealed into the evaluation it returns; a failure to answer is sealed by the marker.
  previewTool: 'preview',
  recordPreviewFailure: 'marker',
  executeTool: 'execution',
} as const satisfies Record<RequestActivity, 'marker' | 'notification' | 'preview' | 'execution'>;

/** The signal of histories from before the trust boundary that carried a refused attempt (no definition exists any more). */
const LEGACY_REFUSAL_SIGNAL = 'attemptRefused';

/**
 * The messages a request's workflow accepts that land in its history, and how the record reads
 * them, named from the definitions the workflow registers. An integration test asks a running
 * request for its registered handlers and fails on one missing here.
 */
export const AUDITED_MESSAGES = {
  updates: { [decideUpdate.name]: 'decision' },
  signals: { [killSignal.name]: 'kill order', [refreshTrustSignal.name]: 'trusted keys refresh', [LEGACY_REFUSAL_SIGNAL]: 'refused attempt (legacy)' },
} as const;

function activityRole(name: string): (typeof AUDITED_ACTIVITIES)[RequestActivity] | undefined {
  return Object.hasOwn(AUDITED_ACTIVITIES, name) ? AUDITED_ACTIVITIES[name as RequestActivity] : undefined;
}

/** Longest result summary kept in a record, in characters of JSON. @default 2000 */
export const RESULT_SUMMARY_CHARS = 2000;

/**
 * Whether a signed assertion found in the history verifies with the keys the workflow recorded
 * in that same history. `kid` names the key that verified it; `problem` says why it did not.
 */
export interface AssertionCheck {
  verified: boolean;
  kid?: string;
  problem?: { code: string; message: string };
}

/** The audit record of one request. */
export interface AuditRecord {
  requestId: string;
  workflowId: string;
  runId?: string;
  traceId?: string;
  /** `running` while the workflow is open; otherwise the outcome's status (or how the workflow ended). */
  status: string;
  /** Who initiated it (as the workflow input says; `admission` says whether that is verified). */
  initiatedBy: {
    actor: ToolRequest['actor'];
    onBehalfOf: NonNullable<ToolRequest['onBehalfOf']>;
    tenant: string;
    environment: string;
    reason?: string;
    at: string;
  };
  /**
   * Whether the request carried the front door's assertion (`present`), and whether it verifies
   * for this request, workflow and start time against the request keys recorded in the history.
   * Only then did the identity in `initiatedBy` come from a verified agent credential.
   */
  admission: AssertionCheck & { present: boolean };
  /** The key ids the workflow trusted, each time it read them (first at the start; again after a key rotation). */
  trustAnchors: { at: string; requestKeys: string[]; decisionKeys: string[] }[];
  /**
   * What was asked, with arguments redacted. `toolSigners`: who signed the tool's manifest entry,
   * as verified when the policy that decided was loaded (co-signed manifests).
   */
  proposal: {
    tool: string;
    toolDigest?: string;
    toolSigners?: { role: string; key: string }[];
    digest?: string;
    args: Record<string, unknown>;
    /** The tool's dry-run preview approvers were shown and signed (the last round's), redacted. */
    preview?: PreviewView;
  };
  /**
   * What the agent runtime said came from untrusted content (flagged arguments, prompt metadata),
   * as the admitted request carried it: redacted and bounded. A claim, signed by the front door
   * with the request (`admission` says whether that verifies); absent when the runtime said nothing.
   */
  provenance?: ProvenanceView;
  /** What policy decided (the last evaluation; after an edit, the re-evaluation). `sealed`: the worker sealed it. */
  decision: { outcome: string; rule: string; reasons: string[]; risk: string; policyDigest: string; code?: string; sealed?: boolean } | null;
  /**
   * The shadow policy's decision on the request as admitted (the first evaluation: what the
   * `ToolgateShadowDisagreement` search attribute and the metric report), when the worker ran one.
   * It was recorded, never enforced.
   */
  shadow?: ShadowDecision;
  /** Every accepted vote: who, when, at which tier, on which digest, through which channel, and whether its signed decision verifies. */
  approvals: ({
    who: string;
    decision: 'approve' | 'reject';
    groups: string[];
    at: string;
    tier: number;
    digest: string;
    via: string;
    reason?: string;
  } & AssertionCheck)[];
  /**
   * The end user's answers (decide updates through channel `end_user`, relayed by the front door),
   * each with whether its signed assertion verifies. Never among `approvals`: the end user is no approver.
   * `args`: the adjusted arguments of an `edit` (redacted). Always set by this version (absent only
   * in records built before end-user confirmations existed, e.g. read back from an older export).
   */
  confirmations?: ({
    principal: string;
    decision: 'approve' | 'reject' | 'edit';
    digest: string;
    at: string;
    reason?: string;
    args?: Record<string, unknown>;
  } & AssertionCheck)[];
  /** Every refused decision attempt recorded on the request (`code` in snake case, as the API answers it). */
  refusals: { who: string | null; claimed?: string; at: string; code: string; message: string; via: string; decision?: string; verified: boolean }[];
  /** Approvers' edits of the arguments before approval (arguments redacted), and whether each signed edit verifies. */
  edits: ({ editor: string; at: string; fromDigest: string; toDigest?: string; args: Record<string, unknown>; reason?: string } & AssertionCheck)[];
  /** Under which identity it ran, when it ran. */
  ranAs: { runAs: string; idempotencyKey: string; attempts: number; startedAt?: string; finishedAt?: string } | null;
  /** What it produced. */
  outcome: {
    status: string;
    /** Redacted, truncated JSON of the result. */
    result?: string;
    error?: { type: string; message: string };
    egress?: { bytes: number; redactions: Record<string, number> };
    /** The tool acted, but its result was kept inside the gateway (another tenant's record, too large). */
    withheld?: { code: string; reason: string };
  } | null;
  /**
   * The earlier request this one overrides (break-glass) or rolls back, as the signed request
   * carries it (`admission` says whether that verifies); the reason redacted. Absent otherwise.
   */
  link?: RequestLink;
  /**
   * Whether a policy gate was overridden: policy turned its denial of this (linked `override`)
   * request into an approval round by a second person under a break-glass rule (`override`).
   * Whether the tool then ran is `ranAs` / `outcome`. Always set by this version (absent only in
   * records built before break-glass overrides existed).
   */
  overridden?: boolean;
  /** The break-glass grant of the decision (rule, what it overrode, who asked and why, who is notified); texts redacted. */
  override?: OverrideGrant;
  /**
   * Requests linked to this one (its overrides and rollbacks), from visibility when the record was
   * built with a client (`buildAuditRecord*`); always empty from a history alone. Always set by
   * this version (absent only in records built before linked requests existed).
   */
  linked?: { kind: LinkKind; requestId: string; status: string }[];
  /** Why `linked` could not be listed (visibility refused the query); absent when it was. */
  linkedUnavailable?: string;
  /** The four questions, answered in a sentence each. */
  answers: { whoInitiated: string; whoAllowed: string; underWhichIdentity: string; whatItProduced: string };
  timeline: { at: string; event: string }[];
}

/**
 * Thrown when a request has no workflow, or its history cannot be read as a toolgate request
 * (code `not_found`: for the API both are "no such request"). Never thrown for a history that
 * could not be fetched: Temporal out of reach is the caller's 503, not a missing request.
 */
export class AuditRecordError extends ToolgateError {
  override readonly name = 'AuditRecordError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('not_found', message, options);
  }
}

const redact = <T>(value: T): T => redactValue(value).value;

function msOf(event: HistoryEvent): number | undefined {
  const t = event.eventTime;
  if (!t) return undefined;
  return Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

function timeOf(event: HistoryEvent): string {
  const ms = msOf(event);
  return ms === undefined ? '' : new Date(ms).toISOString();
}

/** The converter with the request's workflow as the codecs' serialization context, whatever the caller passes. */
export function withWorkflowContext(converter: LoadedDataConverter, workflowId: string): LoadedDataConverter {
  const context: SerializationContext = { type: 'workflow', namespace: 'default', workflowId };
  return {
    ...converter,
    payloadCodecs: converter.payloadCodecs.map((codec) => ({
      encode: (payloads: Payload[]) => codec.encode(payloads, context),
      decode: (payloads: Payload[]) => codec.decode(payloads, context),
    })),
  };
}

async function first<T>(converter: LoadedDataConverter, payloads: Payload[] | null | undefined): Promise<T | undefined> {
  if (!payloads || payloads.length === 0) return undefined;
  return decodeFromPayloadsAtIndex<T>(converter, 0, payloads);
}
/** The first of `payloads` decoded with `converter` (give it {@link withWorkflowContext}'s), or undefined when there is none. */
export { first as decodeFirstPayload };

function summarise(result: unknown): string {
  const json = JSON.stringify(redact(result)) ?? 'null';
  return json.length > RESULT_SUMMARY_CHARS ? `${json.slice(0, RESULT_SUMMARY_CHARS)}… (${json.length} chars)` : json;
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A failure type (`NotEligible`) as the stable snake-case code the API answers with and old records carry (`not_eligible`). */
export function refusalCode(type: string): string {
  return /^[A-Z]/.test(type) ? type.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase() : type;
}

/** The header and claims of a compact JWS, read without verifying anything (what it claims, not what is proven). */
function peekJws(token: unknown): { header: Record<string, unknown>; claims: Record<string, unknown> } | undefined {
  if (typeof token !== 'string') return undefined;
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0] as string, 'base64url').toString('utf8'));
    const claims: unknown = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8'));
    return isObject(header) && isObject(claims) ? { header, claims } : undefined;
  } catch {
    return undefined;
  }
}

function isTrustedKeys(value: unknown): value is TrustedKey[] {
  return Array.isArray(value) && value.every((key) => isObject(key) && typeof key.kid === 'string' && typeof key.x === 'string');
}

/** The result of the `loadTrustAnchors` local activity, recognised by its shape (markers carry no activity type the converter decodes). */
function asTrustAnchors(value: unknown): TrustAnchors | undefined {
  return isObject(value) && isTrustedKeys(value.requestKeys) && isTrustedKeys(value.decisionKeys)
    ? { requestKeys: value.requestKeys, decisionKeys: value.decisionKeys }
    : undefined;
}

/** A tool request, or undefined when the value does not even have a request's shape (a raw Temporal client can start anything). */
function asRequest(value: unknown): ToolRequest | undefined {
  if (!isObject(value)) return undefined;
  const actor = value.actor;
  if (!isObject(actor) || typeof actor.id !== 'string' || !Array.isArray(actor.roles)) return undefined;
  const strings = [value.requestId, value.tenant, value.environment, value.tool];
  if (!strings.every((s) => typeof s === 'string') || !isObject(value.args)) return undefined;
  return value as unknown as ToolRequest;
}

/** A request's start input in either shape: `{ request, admission }`, or (before the trust boundary) the request itself. */
export function startInputOf(input: unknown): { request: ToolRequest | undefined; admission?: { token: unknown } } {
  if (isObject(input) && ('admission' in input || 'request' in input)) return { request: asRequest(input.request), admission: { token: input.admission } };
  return { request: asRequest(input) };
}

/** Runs a verification and says what came of it; the key id is the one the (verified) assertion names. */
function check(token: unknown, verify: () => unknown): AssertionCheck {
  try {
    verify();
    const kid = peekJws(token)?.header.kid;
    return { verified: true, ...(typeof kid === 'string' ? { kid } : {}) };
  } catch (err) {
    const code = err instanceof AssertionError ? err.problem : 'malformed';
    return { verified: false, problem: { code, message: redactText((err as Error).message) } };
  }
}

const UNSIGNED_DECISION: AssertionCheck = {
  verified: false,
  problem: { code: 'unsigned', message: 'the decision was recorded before signed decisions: there is no assertion to verify' },
};

/** One `decide` update the workflow accepted, in either history shape, with its answer once it completed. */
interface DecisionAttempt {
  at: string;
  /** The decision, the approver and the rest, from the assertion's claims (new) or the plain input (old). */
  input: DecideInput;
  check: AssertionCheck;
  timelineEntry: { at: string; event: string };
  result?: { ok: true; at: string } | { ok: false; at: string; type: string; message: string };
}

/** A decide update's input as a decision: the assertion's claims (new histories), or the plain input (old ones). */
function decisionOf(input: unknown): { decided: DecideInput; token?: string } | undefined {
  if (!isObject(input)) return undefined;
  if (typeof input.assertion === 'string') {
    const claims = peekJws(input.assertion)?.claims ?? {};
    const decision = claims.decision === 'approve' || claims.decision === 'reject' || claims.decision === 'edit' ? claims.decision : 'approve';
    const decided: DecideInput = {
      decision,
      digest: typeof claims.digest === 'string' ? claims.digest : '',
      approver: {
        id: typeof claims.sub === 'string' ? canonicalId(claims.sub) : '?',
        tenant: typeof claims.tenant === 'string' ? claims.tenant : '?',
        groups: Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === 'string') : [],
      },
      via: claims.channel === 'link' || claims.channel === 'end_user' ? claims.channel : 'api',
      ...(typeof claims.reason === 'string' ? { reason: claims.reason } : {}),
      ...(isObject(claims.args) ? { args: claims.args } : {}),
      ...(typeof claims.link_nonce === 'string' ? { linkNonce: claims.link_nonce } : {}),
    };
    return { decided, token: input.assertion };
  }
  const approver = input.approver;
  if (typeof input.decision !== 'string' || !isObject(approver) || typeof approver.id !== 'string') return undefined;
  return { decided: input as unknown as DecideInput };
}

const verbOf = (decision: string): string => (decision === 'edit' ? 'edited the arguments' : `${decision}d`);
/** What the end user did, in words: they confirm, decline or adjust (never "approve"). */
const END_USER_VERBS = { approve: 'confirmed', reject: 'declined', edit: 'adjusted the arguments' } as const;
const END_USER_ATTEMPTS = { approve: 'confirm', reject: 'decline', edit: 'adjust the arguments' } as const;
/** Who decided, as a timeline names them: the end user is named as such. */
const deciderOf = (d: DecideInput): string => (d.via === 'end_user' ? `the end user ${d.approver.id}` : d.approver.id);
const checkPhrase = (c: AssertionCheck): string =>
  c.verified ? `signed decision verified${c.kid ? ` with key ${c.kid}` : ''}` : `decision NOT verified: ${c.problem?.code ?? 'unknown'}`;

/**
 * Builds the audit record of a tenant's request from its workflow history, decoded with the
 * client's data converter. Request ids are namespaced per tenant, so the tenant is part of the id.
 */
export async function buildAuditRecord(client: Client, tenant: string, requestId: string): Promise<AuditRecord> {
  return buildAuditRecordOfWorkflow(client, workflowIdFor(tenant, requestId));
}

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
  let execution: { runAs: string; idempotencyKey: string; attempts: number; startedAt?: string; finishedAt?: string } | undefined;
  let executed: { result: unknown; egress?: { bytes: number; redactions: Record<string, number> } } | undefined;
  let executionError: { type: string; message: string } | undefined;

  for (const event of events) {
    const at = timeOf(event);
    const id = String(event.eventId ?? '');
    if (event.workflowExecutionStartedEventAttributes) {
      const attrs = event.workflowExecutionStartedEventAttributes;
      const input = await first<unknown>(converter, attrs.input?.payloads);
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
      const decoded = await first<unknown>(converter, details.result?.payloads).catch(() => undefined);
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
      const input = await first<unknown>(converter, attrs.acceptedRequest?.input?.args?.payloads).catch(() => undefined);
      const parsed = decisionOf(input);
      if (!parsed) continue;
      let verification = UNSIGNED_DECISION;
      if (parsed.token !== undefined) {
        // The keys in force when it arrived: the last set the workflow read before this event.
        const anchors = anchorsRead.at(-1)?.anchors;
        const context = { requestId: request?.requestId ?? '', workflowId: ids.workflowId, runId: runId ?? '', nowMs: msOf(event) ?? 0 };
        verification = anchors
          ? check(parsed.token, () => verifyDecisionAssertion(parsed.token, anchors, context))
          : { verified: false, problem: { code: 'no_trust_anchors', message: 'no trusted keys were recorded before this decision' } };
        const jti = peekJws(parsed.token)?.claims.jti;
        if (verification.verified && typeof jti === 'string') {
          // The workflow refuses a replayed assertion; one that shows up twice in a history proves nothing.
          if (usedJtis.has(jti)) verification = { verified: false, problem: { code: 'replayed', message: 'the same decision assertion was used before' } };
          usedJtis.add(jti);
        }
      }
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
        const status = await first<RequestStatus>(converter, attrs.outcome?.success?.payloads).catch(() => undefined);
        if (status && typeof status === 'object' && 'approvals' in status) lastStatus = status;
        if (attempt) attempt.result = { ok: true, at };
      }
    } else if (event.workflowExecutionSignaledEventAttributes) {
      const attrs = event.workflowExecutionSignaledEventAttributes;
      if (attrs.signalName === LEGACY_REFUSAL_SIGNAL) {
        const refusal = await first<RefusalRecord>(converter, attrs.input?.payloads);
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
      const input = await first<unknown>(converter, attrs.input?.payloads).catch(() => undefined);
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
        executed = await first<typeof executed>(converter, attrs.result?.payloads);
        if (execution) execution.finishedAt = at;
        timeline.push({ at, event: `tool executed (${execution?.attempts ?? '?'} attempt(s))` });
      } else if (role === 'preview') {
        // The evaluation with the preview in its proposal: what approvers signed from here on.
        const decoded = await first<unknown>(converter, attrs.result?.payloads).catch(() => undefined);
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
  if (!started) throw new AuditRecordError(`${ids.workflowId}: the history has no toolRequest input`);
  if (!request && !admission) throw new AuditRecordError(`${ids.workflowId}: the history's input is not a tool request`);
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
  let admissionView: AuditRecord['admission'];
  if (!admission) {
    admissionView = {
      present: false,
      verified: false,
      problem: { code: 'unsigned', message: 'the request was started before the front door signed requests: its identity was not verified' },
    };
  } else {
    const anchors = anchorsRead[0]?.anchors;
    const present = typeof admission.token === 'string' && admission.token.length > 0;
    if (!request) {
      admissionView = { present, verified: false, problem: { code: 'malformed', message: 'the workflow input is not a tool request' } };
    } else if (!anchors) {
      admissionView = {
        present,
        verified: false,
        problem: { code: 'no_trust_anchors', message: 'the history records no trusted keys (the request was never evaluated)' },
      };
    } else if (ids.workflowId !== workflowIdFor(request.tenant, request.requestId)) {
      admissionView = { present, verified: false, problem: { code: 'mismatch', message: 'the workflow id is not the one of this tenant and request id' } };
    } else {
      const token = admission.token;
      admissionView = { present, ...check(token, () => verifyRequestAssertion(token, request, anchors, { workflowId: ids.workflowId, startedAtMs })) };
    }
  }

  // Each decision's timeline entry says what came of it, where it was accepted.
  for (const attempt of attempts) {
    const { input: d, check: c } = attempt;
    if (attempt.result && !attempt.result.ok) {
      const tried = d.via === 'end_user' ? END_USER_ATTEMPTS[d.decision] : d.decision;
      attempt.timelineEntry.event = `${deciderOf(d)} tried to ${tried} (via ${d.via ?? 'api'}): refused, ${refusalCode(attempt.result.type)}`;
    } else if (attempt.check !== UNSIGNED_DECISION) {
      attempt.timelineEntry.event += `; ${checkPhrase(c)}`;
    }
  }
  // The end user's answers are confirmations, never votes or approvers' edits: kept apart from here on.
  const accepted = attempts.filter((a) => a.result?.ok !== false);
  const successful = accepted.filter((a) => a.input.via !== 'end_user');
  const confirmations: AuditRecord['confirmations'] = accepted
    .filter((a) => a.input.via === 'end_user')
    .map(({ input: d, at, check: c }) => ({
      principal: d.approver.id,
      decision: d.decision,
      digest: d.digest,
      at,
      ...(d.reason ? { reason: redactText(d.reason) } : {}),
      ...(d.decision === 'edit' && d.args ? { args: redact(d.args) } : {}),
      ...c,
    }));

  const decision = evaluation?.decision;
  const editsSource: EditRecord[] = lastStatus?.edits ?? [];
  const approvalsSource: ApprovalRecord[] = outcome?.approvals ?? lastStatus?.approvals ?? [];
  /** The accepted decision behind a vote the workflow recorded; an edit's approval is the edit itself. */
  const attemptOf = (v: ApprovalRecord): DecisionAttempt | undefined => {
    const who = canonicalId(v.approverId);
    if (v.via === 'edit') {
      const edit = editsSource.find((e) => e.toDigest === v.digest && canonicalId(e.editorId) === who);
      return successful.find((a) => a.input.decision === 'edit' && canonicalId(a.input.approver.id) === who && (!edit || a.input.digest === edit.fromDigest));
    }
    return successful.find((a) => a.input.decision === v.decision && a.input.digest === v.digest && canonicalId(a.input.approver.id) === who);
  };
  const missing: AssertionCheck = { verified: false, problem: { code: 'missing', message: 'no accepted decision in the history backs this vote' } };
  const approvals = approvalsSource.map((v) => ({
    who: v.approverId,
    decision: v.decision,
    groups: v.groups,
    at: v.at,
    tier: v.tier,
    digest: v.digest,
    via: v.via ?? 'api',
    ...(v.reason === undefined ? {} : { reason: redactText(v.reason) }),
    ...(attemptOf(v)?.check ?? missing),
  }));
  // An end user's adjustment the workflow recorded as an edit is backed by their own decision.
  const editAttemptOf = (e: { editorId: string; fromDigest: string }) =>
    accepted.find((a) => a.input.decision === 'edit' && canonicalId(a.input.approver.id) === canonicalId(e.editorId) && a.input.digest === e.fromDigest);
  const edits: AuditRecord['edits'] = editsSource.map((e) => ({
    editor: e.editorId,
    at: e.at,
    fromDigest: e.fromDigest,
    ...(e.toDigest === undefined ? {} : { toDigest: e.toDigest }),
    args: redact(e.args),
    ...(e.reason === undefined ? {} : { reason: redactText(e.reason) }),
    ...(editAttemptOf(e)?.check ?? missing),
  }));
  // Edits whose update never completed (the workflow ended first) are still decisions in the history.
  for (const attempt of successful) {
    const vote = attempt.input;
    if (vote.decision === 'edit' && !edits.some((e) => canonicalId(e.editor) === canonicalId(vote.approver.id) && e.fromDigest === vote.digest)) {
      edits.push({
        editor: vote.approver.id,
        at: attempt.at,
        fromDigest: vote.digest,
        args: redact(vote.args ?? {}),
        ...(vote.reason ? { reason: redactText(vote.reason) } : {}),
        ...attempt.check,
      });
    }
  }

  const refusals: AuditRecord['refusals'] = legacyRefusals.map((r) => ({
    who: r.approverId,
    ...(r.claimedId ? { claimed: r.claimedId } : {}),
    at: r.at,
    code: refusalCode(r.code),
    message: redactText(r.message),
    via: r.via,
    ...(r.decision === undefined ? {} : { decision: r.decision }),
    verified: false,
  }));
  for (const attempt of attempts) {
    if (!attempt.result || attempt.result.ok) continue;
    refusals.push({
      who: attempt.input.approver.id,
      at: attempt.result.at,
      code: refusalCode(attempt.result.type),
      message: redactText(attempt.result.message),
      via: attempt.input.via ?? 'api',
      decision: attempt.input.decision,
      verified: attempt.check.verified,
    });
  }

  const completedExecution =
    outcome && (outcome.status === 'completed' || outcome.status === 'failed' || outcome.status === 'outcome_unknown') ? outcome.execution : undefined;
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
  } else if (endedAs) {
    outcomeView = { status: endedAs, ...(endError ? { error: endError } : executionError ? { error: executionError } : {}) };
  }
  const status = outcome?.status ?? endedAs ?? 'running';

  const provenance = provenanceView(input.provenance);
  const link = linkOf(input.link);
  // The grant policy made (sealed with its evaluation); the outcome repeats it, and is all an early denial leaves.
  const override = overrideOf(decision?.override) ?? overrideOf(outcome?.override);
  const record: Omit<AuditRecord, 'answers'> = {
    requestId: input.requestId || (requestIdFromWorkflowId(ids.workflowId) ?? ''),
    workflowId: ids.workflowId,
    ...(runId ? { runId } : {}),
    ...(input.traceId ? { traceId: input.traceId } : {}),
    status,
    initiatedBy: {
      actor: input.actor,
      onBehalfOf: input.onBehalfOf ?? [],
      tenant: input.tenant,
      environment: input.environment,
      ...(input.reason === undefined ? {} : { reason: redactText(input.reason) }),
      at: startedAt,
    },
    ...(link ? { link } : {}),
    admission: admissionView,
    trustAnchors: anchorsRead.map(({ at, anchors }) => ({
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
    ...(shadow ? { shadow } : {}),
    approvals,
    confirmations,
    refusals,
    edits,
    ranAs,
    outcome: outcomeView,
    linked: [],
    timeline,
  };
  return { ...record, answers: answersOf(record) };
}

function admissionPhrase(a: AuditRecord['admission'], link?: RequestLink): string {
  // A linked request was not asked for by an agent: the approval API admitted it for the person who asked.
  if (a.verified && link)
    return `admitted by the approval API for ${link.by.id}, who signed in as an approver (front-door assertion signed with key ${a.kid ?? '?'})`;
  if (a.verified) return `identity from a verified agent credential (front-door assertion signed with key ${a.kid ?? '?'})`;
  if (!a.present && a.problem?.code === 'unsigned') return 'identity NOT verified: the request predates signed front-door admissions';
  return `identity NOT verified: no valid front-door assertion (${a.problem?.code ?? 'unknown'}: ${a.problem?.message ?? ''}); these are the claims of whoever started the workflow`;
}

/** What a linked request is, after the requester's name: `(rollback of r-1)`, `(break-glass override of r-1, asked by sam)`. */
function linkPhrase(link: RequestLink | undefined): string {
  if (!link) return '';
  return link.kind === 'rollback' ? ` (rollback of ${link.requestId})` : ` (break-glass override of ${link.requestId}, asked by ${link.by.id})`;
}

/** The end user's answer in the words of `whoAllowed`. */
const END_USER_ANSWERS = { approve: 'confirmed', reject: 'declined', edit: 'arguments adjusted' } as const;

function answersOf(r: Omit<AuditRecord, 'answers'>): AuditRecord['answers'] {
  const chain = r.initiatedBy.onBehalfOf.length > 0 ? ` on behalf of ${r.initiatedBy.onBehalfOf.map((p) => `${p.type} ${p.id}`).join(' → ')}` : '';
  const whoInitiated =
    `${r.initiatedBy.actor.type} ${r.initiatedBy.actor.id || '?'}${linkPhrase(r.link)}${chain} (tenant ${r.initiatedBy.tenant || '?'}, ${r.initiatedBy.environment || '?'}) at ${r.initiatedBy.at}` +
    `${r.initiatedBy.reason ? `: "${r.initiatedBy.reason}"` : ''}; ${admissionPhrase(r.admission, r.link)}`;
  const policy = r.decision
    ? `policy rule ${r.decision.rule} decided ${r.decision.outcome} (risk ${r.decision.risk}, policy ${r.decision.policyDigest.slice(0, 12) || 'none'})`
    : 'no policy decision recorded';
  const verification = (a: AssertionCheck) => (a.verified ? 'verified decision' : `UNVERIFIED decision: ${a.problem?.code ?? 'unknown'}`);
  const confirmation = (c: AssertionCheck) => (c.verified ? 'verified confirmation' : `UNVERIFIED confirmation: ${c.problem?.code ?? 'unknown'}`);
  const approvers = r.approvals.filter((a) => a.decision === 'approve');
  const rejecters = r.approvals.filter((a) => a.decision === 'reject');
  const approverList = approvers.map((a) => `${a.who} (tier ${a.tier}, via ${a.via}, ${a.at}, ${verification(a)})`).join(', ');
  let people = '';
  // The end user answers for themselves: said as such, before (and never as) an approver's vote.
  for (const c of r.confirmations ?? []) people += `; ${END_USER_ANSWERS[c.decision]} by the end user ${c.principal} (${c.at}, ${confirmation(c)})`;
  // An override's second person is named in its own clause below.
  if (approvers.length > 0 && !r.override) people += `; approved by ${approverList}`;
  if (rejecters.length > 0) people += `; rejected by ${rejecters.map((a) => `${a.who} (${a.at}, ${verification(a)})`).join(', ')}`;
  if (r.edits.length > 0) people += `; arguments edited by ${r.edits.map((e) => e.editor).join(', ')}`;
  if (r.status === 'expired') people += '; nobody decided before expiry';
  let allowed = `${policy}${people}`;
  if (r.override) {
    const o = r.override;
    const second = approvers.length > 0 ? `confirmed by ${approverList}` : 'not confirmed by a second person';
    allowed = `break-glass override ${o.breakGlass} of ${o.deniedRule} (${o.deniedCode}) asked by ${o.by} ("${o.reason}"), ${second}; ${policy}${people}`;
  }
  const whoAllowed = r.ranAs ? allowed : `nobody: ${allowed}`;
  const underWhichIdentity = r.ranAs
    ? `${r.ranAs.runAs} (idempotency key ${r.ranAs.idempotencyKey}, ${r.ranAs.attempts} attempt(s))`
    : 'it never left: no execution';
  let whatItProduced: string;
  if (!r.outcome) whatItProduced = 'nothing yet: the request is still open';
  else if (r.outcome.status === 'completed' && r.outcome.withheld) {
    whatItProduced = `completed (the tool acted), result withheld: ${r.outcome.withheld.code}: ${r.outcome.withheld.reason}`;
  } else if (r.outcome.status === 'completed') {
    const redactions = Object.entries(r.outcome.egress?.redactions ?? {})
      .map(([rule, n]) => `${rule}×${n}`)
      .join(', ');
    whatItProduced = `completed: ${r.outcome.result ?? 'null'}${r.outcome.egress ? ` (${r.outcome.egress.bytes} bytes${redactions ? `, redacted ${redactions}` : ''})` : ''}`;
  } else whatItProduced = `${r.outcome.status}${r.outcome.error ? `: ${r.outcome.error.type}: ${r.outcome.error.message}` : ''}`;
  return { whoInitiated, whoAllowed, underWhichIdentity, whatItProduced };
}

const isStrings = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string');

/** The recorded link of a request, its fields checked (a history holds whatever was written into it) and its reason redacted; undefined when none. */
function linkOf(value: unknown): RequestLink | undefined {
  if (!isObject(value) || !(LINK_KINDS as readonly unknown[]).includes(value.kind)) return undefined;
  const { requestId, tool, by, reason } = value;
  if (typeof requestId !== 'string' || typeof tool !== 'string' || typeof reason !== 'string') return undefined;
  if (!isObject(by) || typeof by.id !== 'string' || !isStrings(by.groups)) return undefined;
  return { kind: value.kind as LinkKind, requestId, tool, by: { id: by.id, groups: [...by.groups] }, reason: redactText(reason) };
}

/** A recorded break-glass grant, its fields checked and its texts redacted; undefined when there is none. */
function overrideOf(value: unknown): OverrideGrant | undefined {
  if (!isObject(value)) return undefined;
  const { breakGlass, deniedRule, deniedCode, deniedReasons, by, reason, notify } = value;
  if (typeof breakGlass !== 'string' || typeof deniedRule !== 'string' || typeof by !== 'string' || typeof reason !== 'string') return undefined;
  if (!(DENIAL_CODES as readonly unknown[]).includes(deniedCode) || !isStrings(deniedReasons) || !isStrings(notify)) return undefined;
  return {
    breakGlass,
    deniedRule,
    deniedCode: deniedCode as OverrideGrant['deniedCode'],
    deniedReasons: deniedReasons.map((text) => redactText(text)),
    by,
    reason: redactText(reason),
    notify: [...notify],
  };
}

/** How the timeline names the dry-run preview. */
const PREVIEW_TIMELINE = 'dry-run preview';

/** A recorded preview, checked and redacted (see `previewView`); nothing when there is none. */
function previewOf(value: unknown): { preview?: PreviewView } {
  const view = previewView(value);
  return view ? { preview: view } : {};
}

/** Text on one line, shortened to `max` characters. */
function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s*\n\s*/g, ' ⏎ ');
  return flat.length > max ? `${flat.slice(0, max)}… (${flat.length} chars)` : flat;
}

/** A recorded preview in a timeline line: how it went, and the start of its answer. */
function describePreview(value: unknown): string {
  const view = previewView(value);
  if (!view) return `${PREVIEW_TIMELINE}: no answer recorded`;
  return `${PREVIEW_TIMELINE} ${view.status === 'ok' ? 'answered' : view.status === 'failed' ? 'failed' : 'timed out'}: ${oneLine(view.text, 200)}`;
}

/** The recorded manifest signers, each checked (a history holds whatever was written into it); nothing when none. */
function signersOf(value: unknown): { toolSigners?: { role: string; key: string }[] } {
  if (!Array.isArray(value)) return {};
  const signers = (value as unknown[])
    .filter((s): s is { role: string; key: string } => {
      const signer = s as { role?: unknown; key?: unknown } | null;
      return signer !== null && typeof signer === 'object' && typeof signer.role === 'string' && typeof signer.key === 'string';
    })
    .map((s) => ({ role: s.role, key: s.key }));
  return signers.length > 0 ? { toolSigners: signers } : {};
}

/** A recorded shadow decision, its fields checked (a history holds whatever was written into it), or undefined. */
function shadowOf(value: unknown): ShadowDecision | undefined {
  if (!isObject(value) || typeof value.kind !== 'string') return undefined;
  if (value.kind === 'unavailable') return { kind: 'unavailable', reason: redactText(typeof value.reason === 'string' ? value.reason : '') };
  const { kind, policyDigest, outcome, rule, risk, plan, code, detail } = value;
  if (typeof policyDigest !== 'string' || typeof outcome !== 'string' || typeof rule !== 'string' || typeof risk !== 'string') return undefined;
  return {
    kind,
    policyDigest,
    outcome,
    rule,
    risk,
    ...(typeof plan === 'string' ? { plan } : {}),
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof detail === 'string' ? { detail } : {}),
  } as ShadowDecision;
}

/** A shadow decision in a line: its kind against the enforced decision, and what it decided. */
function describeShadow(s: ShadowDecision): string {
  if (s.kind === 'unavailable') return `unavailable (${s.reason})`;
  const decided = `${s.outcome}${s.code ? ` ${s.code}` : ''} by ${s.rule}, risk ${s.risk}${s.plan ? `, plan ${s.plan}` : ''}, policy ${s.policyDigest.slice(0, 12)}`;
  const kind = s.kind === 'agree' ? 'agrees' : s.kind === 'not_comparable' ? 'not comparable (no policy in force)' : `DISAGREES (${s.kind})`;
  return `${kind}: ${decided}${s.detail ? `; ${s.detail}` : ''}`;
}

/** A human-readable rendering of a record, for `toolgate audit show`. */
export function formatAuditRecord(r: AuditRecord): string {
  const mark = (c: AssertionCheck) => (c.verified ? `verified${c.kid ? ` (key ${c.kid})` : ''}` : `NOT verified (${c.problem?.code ?? 'unknown'})`);
  const lines = [
    `request ${r.requestId}  (${r.workflowId}${r.traceId ? `, trace ${r.traceId}` : ''})  status: ${r.status}`,
    '',
    `who initiated:          ${r.answers.whoInitiated}`,
    `who allowed:            ${r.answers.whoAllowed}`,
    `under which identity:   ${r.answers.underWhichIdentity}`,
    `what it produced:       ${r.answers.whatItProduced}`,
    '',
    `admission: ${r.admission.present ? 'front-door assertion' : 'no front-door assertion'}, ${mark(r.admission)}${r.admission.problem ? ` — ${r.admission.problem.message}` : ''}`,
    `proposal: ${r.proposal.tool}${r.proposal.toolDigest ? ` (tool ${r.proposal.toolDigest.slice(0, 12)})` : ''}${r.proposal.digest ? ` digest ${r.proposal.digest}` : ''}`,
    ...(r.proposal.toolSigners ? [`  manifest signed by ${r.proposal.toolSigners.map((s) => `${s.role} (${s.key})`).join(', ')}`] : []),
    `  args: ${JSON.stringify(r.proposal.args)}`,
    ...(r.proposal.preview ? [`  ${previewHeadline(r.proposal.preview)}: ${oneLine(r.proposal.preview.text, RESULT_SUMMARY_CHARS)}`] : []),
    ...(r.provenance?.untrusted.length
      ? [`  untrusted (the runtime's claim): ${r.provenance.untrusted.map((flag) => `${flag.path} from ${provenanceKinds(flag.kinds)}`).join('; ')}`]
      : []),
    ...(r.provenance?.prompt ? [`  prompt: ${describePrompt(r.provenance.prompt, 100)}`] : []),
  ];
  if (r.link) {
    const what = r.link.kind === 'rollback' ? 'rollback of' : 'break-glass override of';
    lines.splice(
      2,
      0,
      `link: ${what} ${r.link.requestId} (${r.link.tool}), asked by ${r.link.by.id}${r.link.by.groups.length ? ` [${r.link.by.groups.join(', ')}]` : ''}: "${oneLine(r.link.reason, 500)}"`,
    );
  }
  if (r.decision) {
    lines.push(
      `decision: ${r.decision.outcome} by ${r.decision.rule}, risk ${r.decision.risk}${r.decision.sealed === undefined ? '' : r.decision.sealed ? ', sealed' : ', NOT sealed'}${r.decision.reasons.length ? ` — ${r.decision.reasons.join('; ')}` : ''}`,
    );
  }
  if (r.override) {
    const o = r.override;
    lines.push(
      `override: BREAK-GLASS ${o.breakGlass} overrode ${o.deniedRule} (${o.deniedCode})${o.deniedReasons.length ? ` — ${o.deniedReasons.join('; ')}` : ''}; ` +
        `asked by ${o.by}: "${oneLine(o.reason, 500)}"; notified ${o.notify.join(', ') || 'nobody'}`,
    );
  }
  if (r.shadow) lines.push(`shadow policy (recorded, not enforced): ${describeShadow(r.shadow)}`);
  for (const a of r.approvals)
    lines.push(
      `vote: ${a.who} ${a.decision} at ${a.at}, tier ${a.tier}, via ${a.via}, digest ${a.digest.slice(0, 12)}, ${mark(a)}${a.reason ? ` — ${a.reason}` : ''}`,
    );
  for (const c of r.confirmations ?? [])
    lines.push(
      `confirmation: the end user ${c.principal} ${END_USER_VERBS[c.decision]} at ${c.at}, digest ${c.digest.slice(0, 12)}, ${mark(c)}` +
        `${c.args ? `: ${JSON.stringify(c.args)}` : ''}${c.reason ? ` — ${c.reason}` : ''}`,
    );
  for (const e of r.edits) lines.push(`edit: ${e.editor} at ${e.at}, ${mark(e)}: ${JSON.stringify(e.args)}${e.reason ? ` — ${e.reason}` : ''}`);
  for (const f of r.refusals) lines.push(`refused: ${f.who ?? `unverified ${f.claimed ?? 'caller'}`} at ${f.at} via ${f.via}: ${f.code} — ${f.message}`);
  for (const l of r.linked ?? []) lines.push(`linked: ${l.kind === 'rollback' ? 'rollback' : 'break-glass override'} ${l.requestId} (${l.status})`);
  if (r.linkedUnavailable) lines.push(`linked: not listed (${r.linkedUnavailable})`);
  for (const t of r.trustAnchors)
    lines.push(`trusted keys (${t.at}): request ${t.requestKeys.join(', ') || 'none'}; decision ${t.decisionKeys.join(', ') || 'none'}`);
  lines.push('', 'timeline:');
  for (const t of r.timeline) lines.push(`  ${t.at}  ${t.event}`);
  return `${lines.join('\n')}\n`;
}
