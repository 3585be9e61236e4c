/** The contract between toolgate and a tool implementation registered in code. */

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
}

/** A tool implemented in code; its resolved value is the tool's result. */
export type ToolHandler = (context: ToolContext) => Promise<unknown>;

/** Tools registered in code when the worker is created, by handler name. */
export type ToolRegistry = Record<string, ToolHandler>;

/**
 * Thrown by a tool (or an adapter) to say the call was refused for good and did not act — bad
 * input, forbidden, not found. It is never retried.
 */
export class ToolRejectedError extends Error {
  override readonly name = 'ToolRejectedError';
  /** HTTP status or tool-specific code, when there is one. */
  readonly status?: number;
  constructor(message: string, options?: { status?: number; cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.status = options?.status;
  }
}

/**
 * Thrown when the tool may have acted but did not confirm it (a timeout after the request was
 * sent to a tool that cannot deduplicate). The request is recorded as `outcome_unknown` and left
 * for reconciliation, never retried into a duplicate.
 */
export class OutcomeUnknownError extends Error {
  override readonly name = 'OutcomeUnknownError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { cause: options?.cause });
  }
}
