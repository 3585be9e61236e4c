/**
 * The built-in `http` adapter: calls the URL a tool's manifest names, with the request's
 * idempotency key in an `Idempotency-Key` header so retries are deduplicated by the tool.
 *
 * It reaches only the destinations the tool's egress policy allows (`guardedFetch`): the adapter
 * URL's origin plus `egress.allow_hosts`, every redirect re-checked, private address space refused
 * unless `egress.allow_private` is set, and the socket connected to the address that was checked.
 */
import type { Response } from 'undici';
import { DestinationBlockedError, guardedFetch, resolveEgress, type DestinationPolicy, type EgressConfig } from '../egress/index.js';
import type { ToolManifestEntry } from '../policy/index.js';
import { redactText } from '../egress/redact.js';
import { OutcomeUnknownError, ResultWithheldError, ToolNotReachedError, ToolRejectedError, ToolUnavailableError, type ToolContext } from './types.js';

type HttpAdapter = Extract<ToolManifestEntry['adapter'], { type: 'http' }>;

/** Largest response body accepted from a tool. @default 5 MiB */
export const MAX_TOOL_RESPONSE_BYTES = 5 * 1024 * 1024;

/** Statuses that say "try again": the tool did not finish acting or asks for a retry. */
const RETRYABLE_STATUSES = new Set([408, 409, 425, 429]);

export { ToolUnavailableError };

/** The destinations an `http` tool may reach: its adapter URL's origin (scheme, host, port) plus the origins in `egress.allow_hosts`. */
export function destinationPolicyFor(adapter: HttpAdapter, egress: EgressConfig = {}): DestinationPolicy {
  const { destinations } = resolveEgress(egress);
  return { ...destinations, allowOrigins: [new URL(adapter.url).origin, ...destinations.allowOrigins] };
}

/**
 * Calls an `http` tool once; throws `ToolRejectedError` (also for a destination the egress policy
 * blocks: nothing was sent), `ToolUnavailableError` or `OutcomeUnknownError`.
 */
export async function callHttpTool(
  adapter: HttpAdapter,
  context: ToolContext,
  idempotent: boolean,
  egress: EgressConfig = {},
  /** Overrides the destination policy (tests inject a resolver). */
  destinations: DestinationPolicy = destinationPolicyFor(adapter, egress),
): Promise<unknown> {
  let response: Response;
  try {
    response = await guardedFetch(
      adapter.url,
      {
        method: adapter.method,
        // The attempt's own signal too: when the worker is told the attempt is over, the call stops.
        signal: AbortSignal.any([context.signal, AbortSignal.timeout(adapter.timeoutMs)]),
        headers: {
          ...adapter.headers,
          'content-type': 'application/json',
          accept: 'application/json',
          'idempotency-key': context.idempotencyKey,
          'x-toolgate-request-id': context.requestId,
          'x-toolgate-run-as': context.runAs,
          'x-toolgate-tenant': context.tenant,
          ...(context.traceId ? { 'x-toolgate-trace-id': context.traceId } : {}),
          // A dry-run preview: the tool must answer what it would do and do nothing.
          ...(context.preview ? { 'toolgate-preview': '1' } : {}),
        },
        body: JSON.stringify({ tool: context.tool, args: context.args, requestId: context.requestId, tenant: context.tenant }),
        // Manifest headers may hold credentials under any name: none of them follows a redirect to another origin.
        credentialHeaders: Object.keys(adapter.headers ?? {}),
      },
      destinations,
    );
  } catch (err) {
    if (err instanceof DestinationBlockedError) {
      // A name that does not resolve now may resolve later; nothing was sent either way.
      if (err.reason === 'unresolvable') throw new ToolNotReachedError(`${context.tool}: ${err.message}`, { cause: err });
      throw new ToolRejectedError(`${context.tool}: destination blocked by egress policy: ${err.message}`, { cause: err });
    }
    const code = (err as { cause?: { code?: string } }).cause?.code;
    // Refused before anything was sent: the tool cannot have acted.
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      throw new ToolNotReachedError(`${context.tool}: cannot reach ${new URL(adapter.url).host} (${code})`, { cause: err });
    }
    // A request that could not even be built (a header value no HTTP request may carry) never will be.
    if (err instanceof TypeError && !(err as { cause?: unknown }).cause) {
      throw new ToolRejectedError(`${context.tool}: the request could not be built: ${err.message}; nothing was sent`, { cause: err });
    }
    const message = `${context.tool}: no answer from ${new URL(adapter.url).host} (${code ?? (err as Error).name})`;
    if (idempotent) throw new ToolUnavailableError(message, { cause: err });
    throw new OutcomeUnknownError(`${message}; the tool may have acted and cannot deduplicate a retry`, { cause: err });
  }
  const body = await readBody(response, context.tool);
  if (response.ok && body instanceof ResultWithheldError) throw body;
  if (response.ok) return body;
  const summary = `${context.tool}: HTTP ${response.status} from ${new URL(adapter.url).host}`;
  if (response.status >= 400 && response.status < 500 && !RETRYABLE_STATUSES.has(response.status)) {
    throw new ToolRejectedError(`${summary}: ${describe(body)}`, { status: response.status });
  }
  if (idempotent) throw new ToolUnavailableError(`${summary}: ${describe(body)}`);
  throw new OutcomeUnknownError(`${summary}; the tool may have acted and cannot deduplicate a retry`);
}

/** The body of the answer; for a body above the limit, a `ResultWithheldError` (the caller knows whether the tool acted). */
async function readBody(response: Response, tool: string): Promise<unknown> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  const tooLarge = (size: string) =>
    new ResultWithheldError(`${tool}: HTTP ${response.status} answer of ${size} exceeds the adapter's limit of ${MAX_TOOL_RESPONSE_BYTES} bytes`);
  if (declared > MAX_TOOL_RESPONSE_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    return tooLarge(`${declared} bytes`);
  }
  const text = await response.text();
  if (text.length > MAX_TOOL_RESPONSE_BYTES) return tooLarge(`more than ${MAX_TOOL_RESPONSE_BYTES} characters`);
  if (text === '') return null;
  if ((response.headers.get('content-type') ?? '').includes('json')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

/** A short account of an error body: redacted in full first, then cut, so no secret is cut in half and left readable. */
function describe(body: unknown): string {
  if (body instanceof ResultWithheldError) return body.message;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const redacted = redactText(text ?? '');
  return redacted.length > 300 ? `${redacted.slice(0, 300)}…` : redacted;
}
