/**
 * Temporal-facing definitions shared by the client SDK, the HTTP API and the workflow:
 * the task queue, workflow ids, message definitions, search attributes and failure types.
 */
import { defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DecideUpdateInput } from './approver-decisions.js';
import type { ShadowDisagreementKind } from './policy-decisions.js';
import type { KillOrder, KillSwitch, RequestStatus } from './request-status.js';

/** The task queue toolgate workers poll. @default 'toolgate' */
export const TASK_QUEUE = 'toolgate';

/** The workflow type name of one tool request. */
export const WORKFLOW_TYPE = 'toolRequest';

/**
 * The workflow id of a request: `toolreq/<tenant>/<requestId>`. Request ids are namespaced per
 * tenant, so no tenant can take or probe another tenant's ids; `/` is not in the identifier
 * alphabet, so the id parses back unambiguously.
 */
export function workflowIdFor(tenant: string, requestId: string): string {
  return `toolreq/${tenant}/${requestId}`;
}

/** The tenant and request id of a toolgate workflow id, or undefined for any other id. Ids of the old `toolreq:<id>` form have no tenant. */
export function parseRequestWorkflowId(workflowId: string): { tenant?: string; requestId: string } | undefined {
  const scoped = /^toolreq\/([^/]+)\/([^/]+)$/.exec(workflowId);
  if (scoped) return { tenant: scoped[1] as string, requestId: scoped[2] as string };
  if (workflowId.startsWith('toolreq:')) return { requestId: workflowId.slice('toolreq:'.length) };
  return undefined;
}

/** The request id back from a workflow id, or undefined when it is not a toolgate workflow id. */
export function requestIdFromWorkflowId(workflowId: string): string | undefined {
  return parseRequestWorkflowId(workflowId)?.requestId;
}

/**
 * An approver's approve, reject or edit, as the approval API's signed decision assertion. The
 * synchronous validator refuses, without a trace in the history, anything whose assertion does
 * not verify; an authenticated approver's refused attempt is recorded within HISTORY_BOUNDS.
 */
export const decideUpdate = defineUpdate<RequestStatus, [DecideUpdateInput]>('decide');

/**
 * Asks a waiting request to read its worker's trusted keys again (after a key rotation). It
 * carries nothing: the keys come from the worker, never from the sender. Bounded per request.
 */
export const refreshTrustSignal = defineSignal('refreshTrust');

/** The patch id of the trust boundary: runs with it verify signed requests and decisions; runs without it started before. */
export const TRUST_BOUNDARY_PATCH = 'toolgate-trust-boundary-v1';

/** Denies a request that a kill switch covers, unless its side effect already started. */
export const killSignal = defineSignal<[KillOrder]>('kill');

/** The id of the kill-switch registry workflow, one per namespace. */
export const KILL_SWITCH_WORKFLOW_ID = 'toolgate:kill-switches';
/** The workflow type of the kill-switch registry. */
export const KILL_SWITCH_WORKFLOW_TYPE = 'killSwitchRegistry';
/** Turns a kill switch on (returns it). */
export const setKillSwitchUpdate = defineUpdate<KillSwitch, [Omit<KillSwitch, 'id' | 'at'>]>('setKillSwitch');
/** Lifts the kill switches of a scope (returns those lifted). */
export const liftKillSwitchUpdate = defineUpdate<KillSwitch[], [{ tenant: string; tool?: string; by: string }]>('liftKillSwitch');
/** The kill switches on now. */
export const killSwitchesQuery = defineQuery<KillSwitch[]>('killSwitches');

/** Where the request stands, for agents, approvers and ops. */
export const statusQuery = defineQuery<RequestStatus>('status');

/** Custom search attributes, registered on the server by `toolgate dev` and by the tests. */
export const searchAttributes = {
  tool: defineSearchAttributeKey('ToolgateTool', 'KEYWORD'),
  tenant: defineSearchAttributeKey('ToolgateTenant', 'KEYWORD'),
  actor: defineSearchAttributeKey('ToolgateActor', 'KEYWORD'),
  risk: defineSearchAttributeKey('ToolgateRisk', 'KEYWORD'),
  status: defineSearchAttributeKey('ToolgateStatus', 'KEYWORD'),
  /**
   * While a request waits for approval: the groups that may approve it now (escalation adds
   * some), its escalation tier, when it expires, and who already voted on the current proposal.
   * "Waiting for me" is answered from these alone, without asking any workflow. Cleared when the
   * request stops waiting.
   */
  eligibleGroups: defineSearchAttributeKey('ToolgateEligibleGroups', 'KEYWORD_LIST'),
  tier: defineSearchAttributeKey('ToolgateTier', 'INT'),
  expiresAt: defineSearchAttributeKey('ToolgateExpiresAt', 'DATETIME'),
  voters: defineSearchAttributeKey('ToolgateVoters', 'KEYWORD_LIST'),
  /**
   * Set once, after policy's first decision, when the worker's shadow policy decided otherwise:
   * the kind of disagreement (`allow->deny`, `plan`, `risk`, …). Absent when it agreed, or when no
   * shadow policy runs. Never read to decide anything.
   */
  shadowDisagreement: defineSearchAttributeKey('ToolgateShadowDisagreement', 'KEYWORD'),
  /**
   * On a linked request: `override:<original request id>` (break-glass) or
   * `rollback:<original request id>`. The original's history is closed, so its record and views
   * find the requests linked to it through this attribute (`linkedRequestsQuery`).
   */
  link: defineSearchAttributeKey('ToolgateLink', 'KEYWORD'),
} as const;

/** The `ToolgateLink` value of a request linked to `requestId`. */
export function linkAttributeValue(kind: 'override' | 'rollback', requestId: string): string {
  return `${kind}:${requestId}`;
}

/** The visibility query of the requests of `tenant` linked to `requestId` (overrides and rollbacks of it). */
export function linkedRequestsQuery(tenant: string, requestId: string): string {
  const quote = (value: string) => `"${value.replace(/["\\]/g, '')}"`;
  return (
    `${searchAttributes.tenant.name} = ${quote(tenant)} AND ` +
    `${searchAttributes.link.name} IN (${quote(linkAttributeValue('override', requestId))}, ${quote(linkAttributeValue('rollback', requestId))})`
  );
}

/** The visibility query of every break-glass override (the Temporal UI's and `temporal workflow list --query`'s). */
export const OVERRIDES_QUERY = `${searchAttributes.link.name} STARTS_WITH "override:"`;

/** The server's name of each search attribute type, as `temporal operator search-attribute create --type` takes it. */
export const SEARCH_ATTRIBUTE_TYPE_NAMES: Record<string, string> = {
  KEYWORD: 'Keyword',
  KEYWORD_LIST: 'KeywordList',
  INT: 'Int',
  DATETIME: 'Datetime',
  TEXT: 'Text',
  BOOL: 'Bool',
  DOUBLE: 'Double',
};

/** `--search-attribute` arguments for `temporal server start-dev`. */
export const SEARCH_ATTRIBUTE_CLI_ARGS: string[] = Object.values(searchAttributes).flatMap((key) => [
  '--search-attribute',
  `${key.name}=${SEARCH_ATTRIBUTE_TYPE_NAMES[key.type] ?? 'Keyword'}`,
]);

/** The patch id of visibility-only approval listing: runs with it keep the waiting attributes above up to date. */
export const INBOX_VISIBILITY_PATCH = 'toolgate-inbox-visibility-v1';

/** The patch id of shadow policy: runs with it upsert `ToolgateShadowDisagreement` when the shadow disagreed. */
export const SHADOW_POLICY_PATCH = 'toolgate-shadow-v1';

/** The visibility query of requests whose shadow policy disagreed (the Temporal UI's and `temporal workflow list --query`'s). */
export const SHADOW_DISAGREEMENTS_QUERY = `${searchAttributes.shadowDisagreement.name} IS NOT NULL`;

/**
 * The kinds of change from one policy decision to another on the same request — outcome changes
 * first, then the approval plan, then the risk. One list for `toolgate policy replay` (src/policy/
 * compare.ts) and the shadow policy's disagreements, kept here because the workflow reads it too.
 */
export const DECISION_CHANGE_KINDS = [
  'allow->approve',
  'allow->deny',
  'approve->deny',
  'approve->allow',
  'deny->allow',
  'deny->approve',
  'plan',
  'risk',
] as const;

/** The kinds of shadow disagreement: the kinds of change. */
export const SHADOW_DISAGREEMENT_KINDS: readonly ShadowDisagreementKind[] = DECISION_CHANGE_KINDS;

/**
 * Whether a shadow decision's kind is a disagreement — one of a closed set, whatever a history
 * holds — rather than agreement, an unavailable shadow or nothing to compare with.
 */
export function isShadowDisagreement(kind: unknown): kind is ShadowDisagreementKind {
  return (SHADOW_DISAGREEMENT_KINDS as readonly unknown[]).includes(kind);
}

/**
 * `ApplicationFailure` types. Activities throw the permanent ones as non-retryable; the decide
 * validator throws the refusal ones, which the HTTP API maps to status codes.
 */
export const FailureTypes = {
  /** The tool said no for good (4xx, validation): never retried. */
  ToolRejected: 'ToolRejected',
  /** No adapter is registered for the tool. */
  ToolNotRegistered: 'ToolNotRegistered',
  /** The tool may have acted but did not confirm; retrying could duplicate the effect. */
  OutcomeUnknown: 'OutcomeUnknown',
  /** The tool acted but its result may not leave the gateway (another tenant's record, too large): never retried. */
  EgressRefused: 'EgressRefused',
  /** Decision refusals. */
  DigestMismatch: 'DigestMismatch',
  NotEligible: 'NotEligible',
  SelfApproval: 'SelfApproval',
  WrongTenant: 'WrongTenant',
  DuplicateVote: 'DuplicateVote',
  NotPending: 'NotPending',
  InvalidDecision: 'InvalidDecision',
  LinkReused: 'LinkReused',
  /** A decision assertion that does not verify (signature, type, time, request or run binding, replay): never recorded. */
  UnverifiedDecision: 'UnverifiedDecision',
  /** A decision assertion signed by a key the request does not trust (yet): the API asks the request to re-read its keys and retries. */
  UntrustedSigningKey: 'UntrustedSigningKey',
  /** The current approval round took as many votes as it may (HISTORY_BOUNDS.votesPerRound). */
  VoteLimit: 'VoteLimit',
  /** The request was edited as many times as it may (HISTORY_BOUNDS.edits). */
  EditLimit: 'EditLimit',
  /** The execution activity was asked to act without evidence that the request was admitted, evaluated and approved. */
  UnverifiedExecution: 'UnverifiedExecution',
  /** A kill switch covers the request: nothing is executed. */
  KillSwitchActive: 'KillSwitchActive',
  /** The tool's manifest changed since the request was evaluated and approved: nothing is executed. */
  ManifestChanged: 'ManifestChanged',
  /** The tool could not be reached and certainly received nothing, after the attempts allowed: it did not act. */
  ToolUnreachable: 'ToolUnreachable',
} as const;
export type FailureType = (typeof FailureTypes)[keyof typeof FailureTypes];

/** Failure types the execution activity must never retry. */
export const NON_RETRYABLE_TOOL_FAILURES: string[] = [
  FailureTypes.KillSwitchActive,
  FailureTypes.ManifestChanged,
  FailureTypes.ToolUnreachable,
  FailureTypes.ToolRejected,
  FailureTypes.ToolNotRegistered,
  FailureTypes.OutcomeUnknown,
  FailureTypes.EgressRefused,
  FailureTypes.UnverifiedExecution,
];

/**
 * How a side effect is run and how fast a dead worker is noticed (see docs/policy.md, "Execution
 * guarantees"). The execution activity heartbeats every `heartbeatEveryMs`; when the server hears
 * nothing for `heartbeatTimeoutMs` the attempt is over: an idempotent tool is retried with the same
 * key, a non-idempotent one ends `outcome_unknown`. No adapter may wait longer than
 * `maxToolTimeoutMs`, so an attempt always ends within `attemptTimeoutMs`.
 */
export const EXECUTION_BOUNDS = {
  heartbeatEveryMs: 1_000,
  heartbeatTimeoutMs: 5_000,
  maxToolTimeoutMs: 90_000,
  attemptTimeoutMs: 120_000,
  /** Tries of a non-idempotent tool that certainly received nothing (connection refused), inside one attempt. */
  notReachedTries: 5,
} as const;

/**
 * The patch id of dry-run previews: runs with it call a tool's preview (activity `previewTool`)
 * after policy asks for approval and before approvers are notified.
 */
export const PREVIEW_PATCH = 'toolgate-preview-v1';

/** The idempotency key of a request's side effect: its workflow id's, the same on every attempt and worker (workflow, activity and audit take it here). */
export const idempotencyKeyFor = (workflowId: string): string => `toolgate:${workflowId}`;

/**
 * The patch id of local execution: runs with it execute a tool that policy marks `localExecution`
 * (allowed, low risk, idempotent) as a local activity in the workflow task that decided it; runs
 * recorded before it scheduled a regular activity and replay that way.
 */
export const LOCAL_EXECUTION_PATCH = 'toolgate-local-execution-v1';

/**
 * How a dry-run preview is bounded (see docs/approvals.md, "Dry-run previews"). A preview is one call,
 * never retried; the workflow gives its activity `reportMs` beyond the preview's own timeout to
 * answer once started and `pickUpMs` in all, so approvers are asked at most that much later,
 * with the preview's failure if it did not answer. Expiry counts from before the preview.
 */
export const PREVIEW_BOUNDS = {
  defaultTimeoutMs: 5_000,
  maxTimeoutMs: 10_000,
  reportMs: 2_000,
  pickUpMs: 5_000,
  /** What approvers are shown of a preview's answer, in UTF-8 bytes (`preview.max_bytes`). */
  defaultMaxBytes: 4_096,
  minMaxBytes: 64,
  maxMaxBytes: 65_536,
  /** Longest failure message kept, in characters. */
  messageChars: 500,
} as const;

/** How many refused attempts a request from before signed decisions kept in its record; later ones were counted. */
export const MAX_RECORDED_REFUSALS = 200;

/**
 * What bounds the history of one request, whatever its callers do. Anonymous and unverifiable
 * attempts never reach it; what does is capped here, so a request's history stays far below
 * Temporal's limits (see docs/approvals.md, "History bounds", for the resulting number of events).
 */
export const HISTORY_BOUNDS = {
  /** Refused attempts of authenticated approvers recorded per request. */
  refusalsPerRequest: 50,
  /** Refused attempts recorded per approver and request. */
  refusalsPerPrincipal: 5,
  /** Votes accepted per approval round (one proposal digest): room for the largest plan (100 approvals and 100 rejections). */
  votesPerRound: 200,
  /** Edits (new approval rounds) per request. */
  edits: 5,
  /** Reminders sent per approval round (an edit opens a new round); expiry and escalation still apply after the last one. */
  reminders: 50,
  /** Re-reads of the worker's trusted keys per request. */
  trustRefreshes: 10,
} as const;
