/** Typed errors of the client SDK; each converts into a tool result an LLM can read. */
import type { ToolOutcome } from '../shared/index.js';

/** A tool result for a model: what happened, why, and what it may do next. */
export interface ToolResultForModel {
  ok: false;
  status: ToolOutcome['status'] | 'invalid_request' | 'conflict' | 'result_withheld';
  requestId?: string;
  tool?: string;
  message: string;
  reasons?: string[];
}

/** Base class of the outcomes that are not a tool result. */
export abstract class ToolGatewayError extends Error {
  /** The whole outcome, as recorded by the workflow. */
  abstract readonly outcome?: ToolOutcome;
  /** This error as a tool result to hand back to the model instead of crashing the run. */
  abstract toToolResult(): ToolResultForModel;
}

/** The policy refused the call; nothing was executed. */
export class ToolDenied extends ToolGatewayError {
  override readonly name = 'ToolDenied';
  readonly outcome: Extract<ToolOutcome, { status: 'denied' }>;
  constructor(outcome: Extract<ToolOutcome, { status: 'denied' }>) {
    super(`${outcome.tool} denied (${outcome.code}): ${outcome.reasons.join('; ')}`);
    this.outcome = outcome;
  }
  toToolResult(): ToolResultForModel {
    return {
      ok: false,
      status: 'denied',
      requestId: this.outcome.requestId,
      tool: this.outcome.tool,
      message: `The gateway refused to run ${this.outcome.tool} (${this.outcome.code}). It was not executed. Do not retry the same call.`,
      reasons: this.outcome.reasons,
    };
  }
}

/** An approver rejected the call; nothing was executed. */
export class ApprovalRejected extends ToolGatewayError {
  override readonly name = 'ApprovalRejected';
  readonly outcome: Extract<ToolOutcome, { status: 'rejected' }>;
  constructor(outcome: Extract<ToolOutcome, { status: 'rejected' }>) {
    super(`${outcome.tool} rejected by ${outcome.rejectedBy}${outcome.reason ? `: ${outcome.reason}` : ''}`);
    this.outcome = outcome;
  }
  toToolResult(): ToolResultForModel {
    return {
      ok: false,
      status: 'rejected',
      requestId: this.outcome.requestId,
      tool: this.outcome.tool,
      message: `A human approver rejected ${this.outcome.tool}; it was not executed.`,
      reasons: this.outcome.reason ? [this.outcome.reason] : [],
    };
  }
}

/** Nobody approved the call in time; expiry is a denial and nothing was executed. */
export class ApprovalExpired extends ToolGatewayError {
  override readonly name = 'ApprovalExpired';
  readonly outcome: Extract<ToolOutcome, { status: 'expired' }>;
  constructor(outcome: Extract<ToolOutcome, { status: 'expired' }>) {
    super(`${outcome.tool} expired waiting for approval at ${outcome.expiresAt}`);
    this.outcome = outcome;
  }
  toToolResult(): ToolResultForModel {
    return {
      ok: false,
      status: 'expired',
      requestId: this.outcome.requestId,
      tool: this.outcome.tool,
      message: `No approver decided on ${this.outcome.tool} before ${this.outcome.expiresAt}; it was not executed.`,
    };
  }
}

/** The tool refused or failed for good, or its outcome is unknown and needs reconciliation. */
export class ToolExecutionFailed extends ToolGatewayError {
  override readonly name = 'ToolExecutionFailed';
  readonly outcome: Extract<ToolOutcome, { status: 'failed' | 'outcome_unknown' }>;
  constructor(outcome: Extract<ToolOutcome, { status: 'failed' | 'outcome_unknown' }>) {
    super(outcome.status === 'failed' ? `${outcome.tool} failed: ${outcome.error.message}` : `${outcome.tool} outcome unknown: ${outcome.error.message}`);
    this.outcome = outcome;
  }
  toToolResult(): ToolResultForModel {
    return {
      ok: false,
      status: this.outcome.status,
      requestId: this.outcome.requestId,
      tool: this.outcome.tool,
      message:
        this.outcome.status === 'failed'
          ? `${this.outcome.tool} failed and did not act: ${this.outcome.error.message}`
          : `${this.outcome.tool} may or may not have acted; an operator must reconcile request ${this.outcome.requestId}. Do not retry.`,
    };
  }
}

/**
 * The tool acted, but its result may not leave the gateway (another tenant's record, too large):
 * the side effect happened and must not be repeated; the result is not available.
 */
export class ToolResultWithheld extends ToolGatewayError {
  override readonly name = 'ToolResultWithheld';
  readonly outcome: Extract<ToolOutcome, { status: 'completed' }>;
  constructor(outcome: Extract<ToolOutcome, { status: 'completed' }>) {
    super(`${outcome.tool} acted; its result is withheld (${outcome.withheld?.code ?? 'withheld'}): ${outcome.withheld?.reason ?? ''}`);
    this.outcome = outcome;
  }
  toToolResult(): ToolResultForModel {
    return {
      ok: false,
      status: 'result_withheld',
      requestId: this.outcome.requestId,
      tool: this.outcome.tool,
      message: `${this.outcome.tool} acted, but its result may not be shown. Do not call it again for the same purpose.`,
      reasons: [this.outcome.withheld?.reason ?? 'result withheld'],
    };
  }
}

/** The request is malformed; the message names each field and what was expected. */
export class InvalidToolRequest extends ToolGatewayError {
  override readonly name = 'InvalidToolRequest';
  readonly outcome = undefined;
  readonly issues: string[];
  constructor(issues: string[]) {
    super(`invalid tool request: ${issues.join('; ')}`);
    this.issues = issues;
  }
  toToolResult(): ToolResultForModel {
    return { ok: false, status: 'invalid_request', message: this.message, reasons: this.issues };
  }
}

/** The same requestId was already used for a different request. */
export class RequestConflict extends ToolGatewayError {
  override readonly name = 'RequestConflict';
  readonly outcome = undefined;
  constructor(readonly requestId: string) {
    super(`requestId ${requestId} was already used for a different request; use a new requestId`);
  }
  toToolResult(): ToolResultForModel {
    return { ok: false, status: 'conflict', requestId: this.requestId, message: this.message };
  }
}

/** The agent's token does not grant this tool; nothing was submitted. The model may pick another tool. */
export class ToolNotGranted extends ToolGatewayError {
  override readonly name = 'ToolNotGranted';
  readonly outcome = undefined;
  constructor(
    readonly tool: string,
    message: string,
  ) {
    super(message);
  }
  toToolResult(): ToolResultForModel {
    return {
      ok: false,
      status: 'denied',
      tool: this.tool,
      message: `This agent may not use ${this.tool}; it was not executed. Do not retry it.`,
      reasons: [this.message],
    };
  }
}

/**
 * The front door refused the call itself (credential missing or invalid, identity mismatch, a
 * request that is not this agent's) or could not be reached. Not a tool outcome: adapters let it
 * through as an error, because the model cannot fix it. Every refusal of an end user's
 * confirmation (`ToolRequestHandle.confirm`) is one too, with the API's status and code
 * (`no_end_user`, `not_eligible`, `digest_mismatch`, `not_pending`, `duplicate_vote`, `edit_limit`).
 */
export class GatewayRequestError extends Error {
  override readonly name = 'GatewayRequestError';
  /** The fields at fault, when the API named them. */
  readonly fields?: string[];
  constructor(
    /** The HTTP status (0 when toolgate could not be reached). */
    readonly status: number,
    /** The API's error code, e.g. `invalid_token`, `identity_mismatch`, `not_found`. */
    readonly code: string,
    message: string,
    options: { fields?: string[]; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.fields) this.fields = options.fields;
  }
}

/** Throws the typed error of a non-completed outcome (or of a completion whose result is withheld); returns the result of a completed one. */
export function unwrapOutcome(outcome: ToolOutcome): unknown {
  switch (outcome.status) {
    case 'completed':
      if (outcome.withheld) throw new ToolResultWithheld(outcome);
      return outcome.result;
    case 'denied':
      throw new ToolDenied(outcome);
    case 'rejected':
      throw new ApprovalRejected(outcome);
    case 'expired':
      throw new ApprovalExpired(outcome);
    case 'failed':
    case 'outcome_unknown':
      throw new ToolExecutionFailed(outcome);
  }
}
