/**
 * toolgate's errors: one base class, `ToolgateError`, with a stable snake_case `code`, the error
 * that caused it (`cause`, ES2022) and optionally the input fields at fault; and the one table
 * that says which HTTP status each code is answered with (`httpStatusOf`). Code that decides
 * something from an error checks its class (`instanceof`) or its `code`, never its message: the
 * messages are for people and may be reworded at any time.
 *
 * Adding an error: subclass `ToolgateError` (or an existing subclass), give it a code, and add the
 * code to `ERROR_HTTP_STATUS` — the compiler refuses a code that is not in the table.
 */

/**
 * The HTTP status of every error code. Codes that are API answers are what clients read in
 * `{ error: { code } }`; the other codes name errors inside the gateway (configuration, keys,
 * tools), which the API answers as 500 `internal` without their message should one ever reach it.
 * Any code not listed here (an error from elsewhere) is a 500 too.
 */
export const ERROR_HTTP_STATUS = {
  // 400: the request is malformed.
  invalid_body: 400,
  invalid_query: 400,
  invalid_request_id: 400,
  invalid_decision: 400,
  invalid_usage: 400,
  // 401: no valid credential.
  unauthenticated: 401,
  invalid_token: 401,
  // 403: authenticated, not allowed.
  identity_mismatch: 403,
  tool_not_granted: 403,
  not_ops: 403,
  not_eligible: 403,
  self_approval: 403,
  wrong_tenant: 403,
  no_end_user: 403,
  // 404: nothing of that id the caller may address (another tenant's request is not found either).
  not_found: 404,
  /** The edit-preview route of a gateway that holds no policy files. */
  preview_unavailable: 404,
  // 409: the request's state does not allow it.
  conflict: 409,
  digest_mismatch: 409,
  duplicate_vote: 409,
  link_reused: 409,
  vote_limit: 409,
  edit_limit: 409,
  not_pending: 409,
  not_denied: 409,
  not_completed: 409,
  no_undo: 409,
  // 422: understood, but it cannot be done with what the request holds.
  undo_failed: 422,
  evaluation_failed: 422,
  // 503: something the gateway needs is not there right now; retry.
  temporal_unavailable: 503,
  worker_unavailable: 503,
  busy: 503,
  decision_not_verified: 503,
  identity_provider_unavailable: 503,
  confirmation_unavailable: 503,
  requests_unavailable: 503,
  policy_unavailable: 503,
  rate_limit_store_unavailable: 503,
  mcp_server_unavailable: 503,
  // 500: the gateway's own configuration, keys, data or tools; never the caller's to fix.
  internal: 500,
  payload_undecryptable: 500,
  key_not_in_keyring: 500,
  codec_key_invalid: 500,
  auth_config_invalid: 500,
  approver_directory_invalid: 500,
  webhook_target_invalid: 500,
  notification_failed: 500,
  manifest_signing_failed: 500,
  manifest_untrusted: 500,
  policy_invalid: 500,
  history_unreadable: 500,
  audit_chain_invalid: 500,
  audit_export_invalid: 500,
  archive_integrity: 500,
  config_invalid: 500,
  dev_server_start_failed: 500,
  temporal_cli_not_found: 500,
  destination_blocked: 500,
  invalid_origin: 500,
  tenant_mismatch: 500,
  regex_untranslatable: 500,
  secret_ruleset_invalid: 500,
  result_too_large: 500,
  unknown_redaction_rule: 500,
  tool_rejected: 500,
  tool_unavailable: 500,
  tool_not_reached: 500,
  outcome_unknown: 500,
  evidence_invalid: 500,
  trust_key_invalid: 500,
} as const satisfies Record<string, number>;

/** A stable error code: one of the keys of {@link ERROR_HTTP_STATUS}. */
export type ErrorCode = keyof typeof ERROR_HTTP_STATUS;

/** The HTTP status an error code is answered with; 500 for a code the table does not know. */
export function httpStatusOf(code: string): number {
  return Object.hasOwn(ERROR_HTTP_STATUS, code) ? ERROR_HTTP_STATUS[code as ErrorCode] : 500;
}

/** What a {@link ToolgateError} may carry besides its code and message. */
export interface ToolgateErrorOptions {
  /** The error this one was raised for (kept as `cause`, ES2022). */
  cause?: unknown;
  /** The input fields at fault (e.g. `requestId`, `args.to`), for answers that name them. */
  fields?: readonly string[];
}

/** The base of toolgate's errors: a stable code (decide on it or on the class, never on the message), the cause, the fields at fault. */
export class ToolgateError extends Error {
  /** Stable snake_case code; its HTTP status is `httpStatusOf(code)`. */
  readonly code: ErrorCode;
  /** The input fields at fault, when there are some (declared, not initialised: absent unless given). */
  declare readonly fields?: string[];

  constructor(code: ErrorCode, message: string, options: ToolgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    // The class's own name in logs and stacks (subclasses that declare `name` keep theirs).
    this.name = new.target.name;
    this.code = code;
    if (options.fields !== undefined) this.fields = [...options.fields];
  }
}
