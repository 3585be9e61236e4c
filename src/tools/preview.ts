/**
 * Dry-run previews: the one call a tool's manifest `preview:` declares, made before approvers are
 * asked, whose answer they see and sign. It goes through the same adapters as the real call (the
 * registered code handler with `context.preview = true`, or the HTTP adapter with its destination
 * guard and `Toolgate-Preview: 1`), under the tool's identity, and its answer leaves through the
 * same egress filter as a result (tenant check, size limit, redaction). Nothing here retries: a
 * preview that fails or runs out of time is reported as such and the approval goes on without it.
 */
import { ResultTooLargeError, TenantMismatchError, filterResult, redactText } from '../egress/index.js';
import type { ToolManifestEntry, ToolPreview } from '../policy/model.js';
import { PREVIEW_BOUNDS, type ProposalPreview } from '../shared/index.js';
import { callHttpTool } from './http-adapter.js';
import type { ToolContext, ToolRegistry } from './types.js';

/** One preview call: the tool's manifest entry and preview, the request's facts, and the worker's code handlers. */
export interface PreviewCall {
  manifest: ToolManifestEntry;
  preview: ToolPreview;
  /** The request as the real call would get it; `attempt`, `signal`, `deadline` and `preview` are set here. */
  context: Omit<ToolContext, 'attempt' | 'signal' | 'deadline' | 'preview'>;
  tools: ToolRegistry;
  /** Aborted when the call must stop sooner (the activity was cancelled). */
  signal?: AbortSignal;
}

/** Why a preview did not answer in time, as approvers read it. */
function timedOut(ms: number): string {
  return `the preview did not answer within ${ms} ms; decide without it`;
}

/**
 * Makes the preview call and returns what approvers are shown. Never throws for anything the tool
 * or its adapter does: a refusal, an error, an answer that may not leave or no answer in time are
 * a `failed` or `timed_out` preview with a redacted message. The call is given up at
 * `preview.timeoutMs` whether or not the tool honours its signal.
 */
export async function runPreview(call: PreviewCall): Promise<ProposalPreview> {
  const { preview, manifest } = call;
  const startedAt = Date.now();
  const stop = new AbortController();
  const signal = call.signal ? AbortSignal.any([call.signal, stop.signal]) : stop.signal;
  const context: ToolContext = { ...call.context, attempt: 1, signal, deadline: new Date(startedAt + preview.timeoutMs), preview: true };
  const act = async (): Promise<unknown> => {
    if (preview.adapter.type === 'http') return callHttpTool(preview.adapter, context, false, manifest.egress);
    const handler = call.tools[preview.adapter.handler];
    if (!handler) throw new Error(`no code handler named ${preview.adapter.handler} is registered on this worker`);
    return handler(context);
  };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<{ kind: 'timed_out' }>((resolve) => {
    timer = setTimeout(() => {
      // Settled first, so the race is decided before the aborted call's rejection arrives.
      resolve({ kind: 'timed_out' });
      stop.abort(new Error(timedOut(preview.timeoutMs)));
    }, preview.timeoutMs);
  });
  const at = new Date(startedAt).toISOString();
  let answered: { kind: 'ok'; value: unknown } | { kind: 'error'; error: unknown } | { kind: 'timed_out' };
  try {
    answered = await Promise.race([
      act().then(
        (value) => ({ kind: 'ok' as const, value }),
        (error: unknown) => ({ kind: 'error' as const, error }),
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
    stop.abort();
  }
  if (answered.kind === 'timed_out' || (answered.kind === 'error' && call.signal?.aborted !== true && Date.now() - startedAt >= preview.timeoutMs)) {
    return { status: 'timed_out', message: timedOut(preview.timeoutMs), at };
  }
  if (answered.kind === 'error') return { status: 'failed', message: failureMessage(answered.error), at };
  return shown(answered.value, call, at);
}

/** An error's message as approvers may read it: redacted with every rule, then shortened. */
function failureMessage(error: unknown): string {
  const text = redactText(error instanceof Error ? error.message : String(error));
  return text.length > PREVIEW_BOUNDS.messageChars ? `${text.slice(0, PREVIEW_BOUNDS.messageChars - 1)}…` : text;
}

/**
 * The answer as approvers are shown it: through the egress filter (the tool's tenant fields and
 * result limit, and every redaction rule — a preview goes to approver pages and shared channels),
 * as plain JSON, and cut to `preview.maxBytes` after redaction, so no secret is cut in half and
 * left readable.
 */
function shown(value: unknown, call: PreviewCall, at: string): ProposalPreview {
  const { egress } = call.manifest;
  let filtered: ReturnType<typeof filterResult>;
  try {
    filtered = filterResult(value ?? null, {
      tenant: call.context.tenant,
      egress: {
        ...(egress.tenant_field === undefined ? {} : { tenant_field: egress.tenant_field }),
        ...(egress.max_result_bytes === undefined ? {} : { max_result_bytes: egress.max_result_bytes }),
      },
    });
  } catch (err) {
    if (err instanceof ResultTooLargeError || err instanceof TenantMismatchError)
      return { status: 'failed', message: `the preview's answer may not be shown: ${failureMessage(err)}`, at };
    throw err;
  }
  const result = plainJson(filtered.value);
  const redactions = Object.keys(filtered.redactions).length > 0 ? { redactions: filtered.redactions } : {};
  const json = JSON.stringify(result);
  if (Buffer.byteLength(json, 'utf8') <= call.preview.maxBytes) return { status: 'ok', result, bytes: filtered.bytes, ...redactions, at };
  const text = typeof result === 'string' ? result : JSON.stringify(result, null, 2);
  return { status: 'ok', result: cutUtf8(text, call.preview.maxBytes), bytes: filtered.bytes, truncated: true, ...redactions, at };
}

/**
 * The value as plain JSON data, every string and key well-formed Unicode: it goes into the
 * proposal, whose canonical JSON (the digest approvers sign) has no form for a lone surrogate.
 */
function plainJson(value: unknown): unknown {
  const json = JSON.stringify(value);
  if (json === undefined) return null;
  return JSON.parse(json, (_key, inner: unknown) => {
    if (typeof inner === 'string') return inner.toWellFormed();
    if (inner !== null && typeof inner === 'object' && !Array.isArray(inner)) {
      return Object.fromEntries(Object.entries(inner).map(([key, item]) => [key.toWellFormed(), item]));
    }
    return inner;
  }) as unknown;
}

/** The longest prefix of `text` of at most `maxBytes` UTF-8 bytes including a closing `…`, cut between code points. */
export function cutUtf8(text: string, maxBytes: number): string {
  const budget = maxBytes - Buffer.byteLength('…', 'utf8');
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > budget) break;
    bytes += size;
    end += char.length;
  }
  return `${text.slice(0, end)}…`;
}
