/** The contract between toolgate and a tool implementation registered in code. */
import { ToolgateError, type ErrorCode, type ToolgateErrorOptions } from '../errors.js';

/** What a tool implementation receives for one execution. */
export interface ToolContext {
  /** The tool's validated arguments. */
  args: Record<string, unknown>;
  /** Stable across retries of the same request: pass it to the system you call, so a retry is not a second effect. */
  idempotencyKey: string;
  /** The identity the call runs as, from the tool manifest. */
  runAs: string;
  requestId: string;
  tenant: string;
  tool: string;
  /** 1 on the first attempt; higher when Temporal retries after a failure. */
  attempt: number;
  traceId?: string;
  /**
   * Aborted when this attempt must stop: its deadline passed, the server cancelled it, or the
   * server gave the attempt up (no heartbeat reached it) and may run another. Pass it to every
   * call that can wait (fetch, database clients): an attempt that ignores it may overlap the next.
   */
  signal: AbortSignal;
  /** When this attempt is given up at the latest; `signal` aborts then. */
  deadline: Date;
  /**
   * True when toolgate calls for the manifest's dry-run `preview`, before anyone approved: say what
   * the call would do (rows it would touch, a diff) and do none of it. The answer is redacted, cut
   * to `preview.max_bytes` and shown to approvers. Absent for the real call.
   */
  preview?: boolean;
}

/** A tool implemented in code; its resolved value is the tool's result. */
export type ToolHandler = (context: ToolContext) => Promise<unknown>;

/** Tools registered in code when the worker is created, by handler name. */
export type ToolRegistry = Record<string, ToolHandler>;

/**
 * Thrown by a tool (or an adapter) to say the call was refused for good and did not act — bad
 * input, forbidden, not found. It is never retried.
 */
export class ToolRejectedError extends ToolgateError {
  override readonly name = 'ToolRejectedError';
  /** HTTP status or tool-specific code, when there is one. */
  readonly status?: number;
  constructor(message: string, options?: { status?: number; cause?: unknown }) {
    super('tool_rejected', message, { cause: options?.cause });
    this.status = options?.status;
  }
}

/**
 * Thrown when a retry with the same idempotency key is safe for a tool that deduplicates (a 503, a
 * reset connection). For a tool that cannot deduplicate it means "may have acted": outcome unknown.
 */
export class ToolUnavailableError extends ToolgateError {
  override readonly name: string = 'ToolUnavailableError';
  constructor(message: string, options?: ToolgateErrorOptions, code: ErrorCode = 'tool_unavailable') {
    super(code, message, options);
  }
}

/**
 * Thrown when the tool certainly received nothing (connection refused, name not resolved, a
 * header that could not be built): retried even for a tool that cannot deduplicate, because
 * nothing can have acted.
 */
export class ToolNotReachedError extends ToolUnavailableError {
  override readonly name = 'ToolNotReachedError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super(message, options, 'tool_not_reached');
  }
}

/**
 * Thrown by an adapter when the tool confirmed that it acted but its answer cannot be taken (too
 * large): the request completes with its result withheld, never as "failed, did not act".
 */
export class ResultWithheldError extends ToolgateError {
  override readonly name = 'ResultWithheldError';
  declare readonly code: 'result_too_large';
  constructor(message: string, code: 'result_too_large' = 'result_too_large') {
    super(code, message);
  }
}

/**
 * Thrown when the tool may have acted but did not confirm it (a timeout after the request was
 * sent to a tool that cannot deduplicate). The request is recorded as `outcome_unknown` and left
 * for reconciliation, never retried into a duplicate.
 */
export class OutcomeUnknownError extends ToolgateError {
  override readonly name = 'OutcomeUnknownError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('outcome_unknown', message, { cause: options?.cause });
  }
}
