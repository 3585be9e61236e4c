/**
 * Temporal-facing definitions shared by the client SDK, the HTTP API and the workflow:
 * the task queue, workflow ids, message definitions, search attributes and failure types.
 */
import { defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DecideInput, KillOrder, KillSwitch, RefusalRecord, RequestStatus } from './schemas.js';

/** The task queue toolgate workers poll. @default 'toolgate' */
export const TASK_QUEUE = 'toolgate';

/** The workflow type name of one tool request. */
export const WORKFLOW_TYPE = 'toolRequest';

/** The workflow id of a request: one request id, one workflow, ever. */
export function workflowIdFor(requestId: string): string {
  return `toolreq:${requestId}`;
}

/** The request id back from a workflow id, or undefined when it is not a toolgate workflow id. */
export function requestIdFromWorkflowId(workflowId: string): string | undefined {
  return workflowId.startsWith('toolreq:') ? workflowId.slice('toolreq:'.length) : undefined;
}

/** An approver's approve/reject; the synchronous validator refuses what may not apply. */
export const decideUpdate = defineUpdate<RequestStatus, [DecideInput]>('decide');

/** Records a decision attempt the API refused before or at the update validator. */
export const attemptRefusedSignal = defineSignal<[RefusalRecord]>('attemptRefused');

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
} as const;

/** `--search-attribute` arguments for `temporal server start-dev`. */
export const SEARCH_ATTRIBUTE_CLI_ARGS: string[] = Object.values(searchAttributes).flatMap((key) => [
  '--search-attribute',
  `${key.name}=Keyword`,
]);

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
  /** A kill switch covers the request: nothing is executed. */
  KillSwitchActive: 'KillSwitchActive',
} as const;
export type FailureType = (typeof FailureTypes)[keyof typeof FailureTypes];

/** Failure types the execution activity must never retry. */
export const NON_RETRYABLE_TOOL_FAILURES: string[] = [
  FailureTypes.KillSwitchActive,
  FailureTypes.ToolRejected,
  FailureTypes.ToolNotRegistered,
  FailureTypes.OutcomeUnknown,
  FailureTypes.EgressRefused,
];

/** How many refused attempts a request keeps in its record; later ones are counted. */
export const MAX_RECORDED_REFUSALS = 200;
