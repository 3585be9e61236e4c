/**
 * Typed HTTP calls to toolgate's JSON APIs for tests: one fetch path for the in-process gateway
 * (`gw.api`) and the spawned ones (`callApi` in processes.ts), and typed shortcuts for the routes
 * tests call most (reading and deciding approvals).
 */
import type { ApprovalView } from '../../src/approvals/view.js';
import type { DecisionBody } from '../../src/shared/index.js';

/** The error answer of toolgate's HTTP APIs (src/api/errors.ts), with what some routes add (e.g. `requestId`). */
export interface ApiErrorBody {
  error: { code: string; message: string; fields?: string[]; [more: string]: unknown };
}

/**
 * An HTTP answer: its status and its JSON body (the text when it is not JSON, undefined when empty).
 * `T` is what the caller expects at the status it asserts: a success type, or {@link ApiErrorBody}.
 */
export interface ApiAnswer<T> {
  status: number;
  body: T;
}

/** Options of one call. */
export interface ApiCallOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is, with `content-type: application/json` (malformed bodies). */
  rawBody?: string;
  /** Aborts the call after this long. @default no limit */
  timeoutMs?: number;
}

/** Calls `baseUrl + path`; resolves with the status and the parsed body whatever the status. */
export async function requestJson<T = any>(baseUrl: string, method: string, path: string, options: ApiCallOptions = {}): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.rawBody !== undefined || options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = options.rawBody ?? JSON.stringify(options.body);
  }
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
    ...(options.timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(options.timeoutMs) }),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (an HTML page, a proxy's error): keep the text, so the failing assertion shows it
  }
  return { status: response.status, body: parsed as T };
}

/** Anything with the test gateway's `api` (GatewayEnv). */
export interface ApiCaller {
  api<T = any>(method: string, path: string, options?: ApiCallOptions): Promise<ApiAnswer<T>>;
}

/** `GET path`, typed. */
export function getJson<T = any>(gw: ApiCaller, path: string, options: { token?: string } = {}): Promise<ApiAnswer<T>> {
  return gw.api<T>('GET', path, options);
}

/** `POST path` with a JSON body, typed. */
export function postJson<T = any>(gw: ApiCaller, path: string, body: unknown, options: { token?: string } = {}): Promise<ApiAnswer<T>> {
  return gw.api<T>('POST', path, { ...options, body });
}

/** What `GET /v1/approvals/:id` answers: the approver's view, with the tool's argument schema when the API holds policy. */
export type ApprovalAnswer = ApprovalView & { argsSchema?: Record<string, unknown> };

/** `GET /v1/approvals/:id` as `token`'s approver. */
export function getApproval(gw: ApiCaller, requestId: string, token: string): Promise<ApiAnswer<ApprovalAnswer>> {
  return getJson<ApprovalAnswer>(gw, `/v1/approvals/${encodeURIComponent(requestId)}`, { token });
}

/**
 * `POST /v1/approvals/:id/decision` as `token`'s approver: approve, reject or edit the proposal of
 * `digest`. Typed as the success view; on a refusal read `body` as {@link ApiErrorBody} (`refusal()`).
 */
export function decide(gw: ApiCaller, requestId: string, token: string, body: DecisionBody): Promise<ApiAnswer<ApprovalView>> {
  return postJson<ApprovalView>(gw, `/v1/approvals/${encodeURIComponent(requestId)}/decision`, body, { token });
}

/** The error of a refused call (fails when the answer is not an error answer): `refusal(answer).code`. */
export function refusal(answer: ApiAnswer<unknown>): ApiErrorBody['error'] {
  const body = answer.body as Partial<ApiErrorBody> | undefined;
  if (!body || typeof body !== 'object' || !body.error) throw new Error(`expected an error answer, got ${answer.status} ${JSON.stringify(answer.body)}`);
  return body.error;
}
