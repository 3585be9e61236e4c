/**
 * What every framework adapter shares: a stable request id from the framework's tool-call id, and
 * one way to run a request through the gateway that turns every outcome — result, denial,
 * rejection, expiry, a person still deciding — into something to hand back to the model.
 *
 * Adapters are agent-side code: they reach toolgate only through the front door with the agent's
 * credential (a `ToolGateway`). Who the agent is — actor, roles, tenant, environment, on whose
 * behalf — comes from that credential; a request built here names only the tool, its arguments,
 * and optionally a request id and a reason.
 */
import { createHash } from 'node:crypto';
import { canonicalSha256 } from '../shared/assertions.js';
import { GatewayRequestError, ToolGatewayError, unwrapOutcome, type ToolResultForModel } from '../client/errors.js';
import type { ToolCallInput, ToolGateway, ToolRequestHandle } from '../client/gateway.js';
import {
  IDENTIFIER_PATTERN,
  PROVENANCE_LIMITS,
  formatArgPath,
  type AgentRequestView,
  type ArgPathSegment,
  type Provenance,
  type ProvenanceKind,
  type RequestState,
  type ToolOutcome,
} from '../shared/index.js';

/** Options every adapter takes. Identity is not among them: it is the gateway's token. */
export interface AdapterOptions {
  /** The agent's client of the front door; its token says who the agent is. */
  gateway: ToolGateway;
  /**
   * How long to wait, in ms, for people to decide a request that needs approval. When the limit
   * passes the adapter returns a `pending_approval` result with the request id instead. `0`
   * returns at once when approval is needed; it never cuts short policy evaluation or execution.
   * @default Infinity
   */
  wait?: number;
  /**
   * Scopes request ids derived from tool-call ids (use the conversation or session id), so that
   * ids reused by a model in different conversations never collide.
   * @default the agent id of the gateway's token (`gateway.identity()`)
   */
  scope?: string;
  /** Maps a framework tool name to the toolgate tool name. @default the same name */
  toolName?: (frameworkName: string) => string;
  /** A reason shown to approvers and kept in the record. */
  reason?: string;
}

/** The result an adapter hands to the model while a person has not decided yet. */
export interface PendingApprovalResult {
  ok: false;
  status: 'pending_approval';
  requestId: string;
  tool: string;
  message: string;
  expiresAt?: string;
  eligibleGroups?: string[];
}

/** Everything a model can get back from a tool call through an adapter. */
export type AdapterToolResult = unknown;

/** Progress reported while a request waits (for MCP progress notifications, logs, UIs). */
export interface WaitProgress {
  requestId: string;
  state: RequestState;
  elapsedMs: number;
}

/** How one call is run. */
export interface RunOptions {
  /** @see AdapterOptions.wait */
  wait?: number;
  /** Called about every `progressEveryMs` while the request is not finished. */
  onProgress?: (progress: WaitProgress) => void | Promise<void>;
  /** @default 1000 */
  progressEveryMs?: number;
  /** Stops waiting for people (the request carries on; a pending result names it). */
  signal?: AbortSignal;
}

/** A finished call: the tool's result, or a result for the model that says what happened. */
export type CallResult =
  | { kind: 'completed'; result: unknown; outcome: ToolOutcome }
  | { kind: 'refused'; toolResult: ToolResultForModel; outcome?: ToolOutcome }
  | { kind: 'pending'; toolResult: PendingApprovalResult };

/**
 * A request id derived from a framework tool-call id: the same call retried is the same request.
 * Readable (`<scope>:<callId>`) when that is a valid id, otherwise a SHA-256-derived one.
 */
export function requestIdForToolCall(scope: string, toolCallId: string): string {
  const readable = `${scope}:${toolCallId}`;
  if (IDENTIFIER_PATTERN.test(readable)) return readable;
  return `tc:${createHash('sha256').update(readable).digest('hex').slice(0, 48)}`;
}

/** The scope of derived request ids: the configured one, else the agent id the token names. */
export async function scopeOf(options: Pick<AdapterOptions, 'gateway' | 'scope'>): Promise<string> {
  return options.scope ?? (await options.gateway.identity()).id;
}

/** The request id of a framework tool call, in the scope of `options` ({@link requestIdForToolCall} of {@link scopeOf}). */
export async function toolCallRequestId(options: Pick<AdapterOptions, 'gateway' | 'scope'>, toolCallId: string): Promise<string> {
  return requestIdForToolCall(await scopeOf(options), toolCallId);
}

/**
 * Builds the front-door request of one tool call: the tool, its arguments, an optional id, reason
 * and provenance — nothing about who asks.
 */
export function toolRequest(
  options: Pick<AdapterOptions, 'toolName' | 'reason'>,
  tool: string,
  args: unknown,
  requestId?: string,
  provenance?: Provenance,
): ToolCallInput {
  return {
    ...(requestId !== undefined && { requestId }),
    tool: options.toolName?.(tool) ?? tool,
    args: (args ?? {}) as Record<string, unknown>,
    ...(options.reason !== undefined && { reason: options.reason }),
    ...(provenance !== undefined && { provenance }),
  };
}

/** A call a provenance function is asked about. */
export interface ProvenanceCall<Context = unknown> {
  /** The framework's tool name. */
  tool: string;
  args: Record<string, unknown>;
  /** The framework's tool-call id, when it has one. */
  callId?: string;
  /** What the framework hands the tool besides its arguments (AI SDK: the execution options; OpenAI Agents: the RunContext). */
  context?: Context;
}

/**
 * Where the runtime's provenance comes from: one value for every call, or a function of the call
 * (the runtime knows which documents, pages or uploads it put into the prompt; the adapter does not).
 */
export type ProvenanceOption<Context = unknown> = Provenance | ((call: ProvenanceCall<Context>) => Provenance | undefined | Promise<Provenance | undefined>);

/** The provenance `option` gives for `call`. */
export async function resolveProvenance<Context>(
  option: ProvenanceOption<Context> | undefined,
  call: ProvenanceCall<Context>,
): Promise<Provenance | undefined> {
  if (option === undefined) return undefined;
  return typeof option === 'function' ? option(call) : option;
}

/** Argument strings shorter than this are not looked for in earlier outputs: too common to say where they came from. */
export const MIN_VERBATIM_CHARS = 4;

/** An argument path within the length a request allows: the nearest ancestor that fits (flagging it is stricter, never laxer). */
function boundedPath(segments: readonly ArgPathSegment[]): string {
  for (let length = segments.length; length > 0; length--) {
    const path = formatArgPath(segments.slice(0, length));
    if (path.length <= PROVENANCE_LIMITS.pathChars) return path;
  }
  return 'args';
}

/**
 * The arguments whose string value (at least `MIN_VERBATIM_CHARS` characters) appears verbatim in
 * one of `texts`, flagged as `kind`. More flags than a request may carry collapse into one flag
 * on all the arguments. Only a verbatim match is evidence: a value the model rephrased, or
 * shorter than the minimum, is not flagged — which does not make it trusted.
 */
export function flagVerbatim(args: Record<string, unknown>, texts: readonly string[], kind: ProvenanceKind): NonNullable<Provenance['untrusted']> {
  const flags: NonNullable<Provenance['untrusted']> = {};
  if (texts.length === 0) return flags;
  const pending: [unknown, ArgPathSegment[]][] = [[args, []]];
  let count = 0;
  while (pending.length > 0) {
    const [value, segments] = pending.pop() as [unknown, ArgPathSegment[]];
    if (typeof value === 'string') {
      if (value.length >= MIN_VERBATIM_CHARS && texts.some((text) => text.includes(value))) {
        const path = boundedPath(segments);
        if (!flags[path]) count += 1;
        flags[path] = [kind];
        if (count > PROVENANCE_LIMITS.paths) return { args: [kind] };
      }
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => pending.push([item, [...segments, index]]));
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) pending.push([item, [...segments, key]]);
    }
  }
  return flags;
}

/**
 * Two accounts of a call's provenance in one: every flag of either (kinds united), and the
 * prompt metadata of `first` where it has it, else of `second`. Too many flags collapse into one
 * on all the arguments, so the request stays within its bounds and only gets stricter.
 */
export function mergeProvenance(first: Provenance | undefined, second: Provenance | undefined): Provenance | undefined {
  if (!first) return second;
  if (!second) return first;
  const untrusted: Record<string, ProvenanceKind[]> = {};
  for (const flags of [first.untrusted, second.untrusted]) {
    for (const [path, kinds] of Object.entries(flags ?? {})) untrusted[path] = [...new Set([...(untrusted[path] ?? []), ...kinds])];
  }
  const paths = Object.keys(untrusted);
  const bounded = paths.length > PROVENANCE_LIMITS.paths ? { args: [...new Set(Object.values(untrusted).flat())] } : untrusted;
  const prompt = first.prompt || second.prompt ? { ...second.prompt, ...first.prompt } : undefined;
  return { ...(paths.length > 0 && { untrusted: bounded }), ...(prompt && { prompt }) };
}

/** The pending-approval result of a request that waits for people. */
export function pendingResult(requestId: string, tool: string, status?: Pick<AgentRequestView, 'expiresAt' | 'eligibleGroups'>): PendingApprovalResult {
  return {
    ok: false,
    status: 'pending_approval',
    requestId,
    tool,
    message:
      `${tool} needs a human approval and has not been decided yet; it has not run. ` +
      `Do not call it again: check request ${requestId} later, or tell the user it is waiting for approval.`,
    ...(status?.expiresAt !== undefined && { expiresAt: status.expiresAt }),
    ...(status?.eligibleGroups !== undefined && { eligibleGroups: status.eligibleGroups }),
  };
}

/** Resolves with the promise's value, or with undefined as soon as `signal` aborts. */
function unlessAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T | undefined> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.resolve(undefined);
  }
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => {
      // The read still finishes (within its wait); its answer is no longer needed.
      promise.catch(() => undefined);
      resolve(undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * Waits for a started request: its outcome, or — once it has waited `wait` ms for approval, or
 * `signal` aborts — a pending result. Policy evaluation and execution are always waited for.
 * Waiting long-polls the front door (`GET /v1/tool-requests/:id?wait=…`), so an outcome arrives
 * as soon as there is one and nothing keeps polling after this returns.
 */
export async function awaitRequest(gateway: ToolGateway, handle: ToolRequestHandle, tool: string, options: RunOptions = {}): Promise<CallResult> {
  const wait = options.wait ?? Number.POSITIVE_INFINITY;
  const every = options.progressEveryMs ?? 1000;
  const longest = gateway.pollSeconds * 1000;
  const started = Date.now();
  let view: AgentRequestView = await handle.status();
  for (;;) {
    if (view.outcome) return fromOutcome(view.outcome);
    const elapsed = Date.now() - started;
    const waitedOut = elapsed >= wait || options.signal?.aborted === true;
    if (waitedOut && view.state === 'pending_approval') return { kind: 'pending', toolResult: pendingResult(handle.requestId, view.tool ?? tool, view) };
    // A long poll returns early only with an outcome; a request that turns pending must still be
    // seen soon once the wait is used up, hence short polls then. Without progress to report,
    // one long poll can cover the whole wait.
    const budget = waitedOut ? Math.min(every, 250) : Math.min(options.onProgress ? every : longest, wait - elapsed, longest);
    const read = gateway.read(handle.requestId, Math.max(0, budget) / 1000);
    // Evaluating or executing after an abort: the request is moments from an outcome; give it that moment.
    const next = waitedOut ? await read : await unlessAborted(read, options.signal);
    if (next) view = next;
    if (!view.outcome && options.onProgress) await options.onProgress({ requestId: handle.requestId, state: view.state, elapsedMs: Date.now() - started });
  }
}

/**
 * Submits a request and waits as `awaitRequest` does. Tool outcomes and the refusals a model can
 * act on (`ToolGatewayError`) become results for the model; a refusal of the credential or the
 * call itself (`GatewayRequestError`: 401, identity mismatch, unreachable) propagates as an error.
 */
export async function runRequest(gateway: ToolGateway, request: ToolCallInput, options: RunOptions = {}): Promise<CallResult> {
  try {
    const handle = await gateway.start(request);
    return await awaitRequest(gateway, handle, request.tool, options);
  } catch (err) {
    if (err instanceof ToolGatewayError) return { kind: 'refused', toolResult: err.toToolResult(), ...(err.outcome && { outcome: err.outcome }) };
    throw err;
  }
}

/**
 * Checks a request an adapter left pending: its outcome if it has one (waiting up to `wait` ms
 * for people), or a pending result. The front door shows an agent only its own requests, so a
 * request of another agent or tenant (a 404) answers, as a result for the model, that this agent
 * has no such request.
 */
export async function checkRequest(gateway: ToolGateway, requestId: string, options: RunOptions = {}): Promise<CallResult> {
  const notYours: CallResult = {
    kind: 'refused',
    toolResult: { ok: false, status: 'invalid_request', requestId, message: `no request ${requestId} of this agent exists` },
  };
  if (!IDENTIFIER_PATTERN.test(requestId)) return notYours;
  const handle = await gateway.get(requestId);
  let status: AgentRequestView;
  try {
    status = await handle.status();
  } catch (err) {
    if (err instanceof GatewayRequestError && err.status === 404) return notYours;
    throw err;
  }
  return awaitRequest(gateway, handle, status.tool ?? status.outcome?.tool ?? 'the tool', { ...options, wait: options.wait ?? 0 });
}

/** The value to hand the model: the tool's result, or the refusal or pending result. */
export function resultForModel(call: CallResult): unknown {
  return call.kind === 'completed' ? call.result : call.toolResult;
}

function fromOutcome(outcome: ToolOutcome): CallResult {
  if (outcome.status === 'completed' && !outcome.withheld) return { kind: 'completed', result: outcome.result, outcome };
  try {
    unwrapOutcome(outcome);
  } catch (err) {
    if (err instanceof ToolGatewayError) return { kind: 'refused', toolResult: err.toToolResult(), outcome };
    throw err;
  }
  throw new Error(`unexpected outcome status ${(outcome as { status: string }).status}`);
}

/**
 * The end user's answer an adapter relays (the body of `POST /v1/tool-requests/:id/confirmation`):
 * `confirm` and `decline` the proposal of `digest`, `adjust` proposes other arguments.
 */
export interface EndUserAnswer {
  decision: 'confirm' | 'decline' | 'adjust';
  /** The digest of the proposal the end user was shown: the answer applies to it and nothing else. */
  digest: string;
  reason?: string;
  /** For `adjust` only: the arguments the end user wants instead. */
  args?: Record<string, unknown>;
}

/** What the end user is asked to confirm: a request pending under a plan that accepts their confirmation. */
export interface EndUserProposal {
  requestId: string;
  tool: string;
  /** The proposal digest the answer must be bound to. */
  digest: string;
  args: Record<string, unknown>;
  /** The dry-run preview, when the tool has one. */
  preview?: NonNullable<AgentRequestView['endUserConfirmation']>['preview'];
  /** The approval plan that accepts the end user. */
  plan: string;
  expiresAt?: string;
}

/** The end-user proposal of a request view: set only while it waits under a plan that accepts the end user. */
export function endUserProposalOf(view: AgentRequestView, tool: string): EndUserProposal | undefined {
  const asked = view.endUserConfirmation;
  if (!asked || view.outcome || view.state !== 'pending_approval') return undefined;
  return {
    requestId: view.requestId,
    tool: view.tool ?? tool,
    digest: asked.digest,
    args: asked.args,
    ...(asked.preview !== undefined && { preview: asked.preview }),
    plan: asked.plan,
    ...(view.expiresAt !== undefined && { expiresAt: view.expiresAt }),
  };
}

/** Whether two argument objects are the same JSON value (canonical form: key order does not matter). */
export function sameArgs(a: unknown, b: unknown): boolean {
  return canonicalSha256(a ?? {}) === canonicalSha256(b ?? {});
}

/**
 * Reads a started request until policy has decided it (it is no longer evaluating): its view then,
 * or the last view read when `timeoutMs` passes first.
 */
export async function settledView(handle: ToolRequestHandle, timeoutMs: number): Promise<AgentRequestView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await handle.status();
    if (view.outcome || (view.state !== 'evaluating' && view.state !== 'reevaluating') || Date.now() > deadline) return view;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * One of this agent's requests by id with its view, or undefined when there is none (404): lets an
 * adapter attach to a request it started earlier (possibly in another process) without submitting
 * it again, since a resubmission with other provenance would be a conflict.
 */
export async function existingRequest(gateway: ToolGateway, requestId: string): Promise<{ handle: ToolRequestHandle; view: AgentRequestView } | undefined> {
  const handle = await gateway.get(requestId);
  try {
    return { handle, view: await handle.status() };
  } catch (err) {
    if (err instanceof GatewayRequestError && err.status === 404) return undefined;
    throw err;
  }
}

/** What became of a relayed answer: recorded (the request's view after it), or refused with the front door's code. */
export type RelayOutcome = { relayed: true; view: AgentRequestView } | { relayed: false; code: string; message: string };

/** The refusals of a confirmation that leave the request as it was: it goes on waiting for approvers, or already ended. */
const UNRELAYED_CODES = new Set(['digest_mismatch', 'not_pending', 'duplicate_vote', 'edit_limit', 'not_eligible', 'no_end_user', 'not_found', 'invalid_body']);

/**
 * Relays the end user's answer to the front door (`ToolRequestHandle.confirm`). A refusal that
 * leaves the request as it was — the proposal changed since the user saw it (`digest_mismatch`),
 * it is no longer pending, the plan does not accept the end user (`not_eligible`), the token acts
 * for nobody (`no_end_user`), adjusted arguments that are not valid (`invalid_body`) — is reported,
 * not thrown: the adapter then waits for approvers as it would have without the user. Anything
 * else (401, unreachable) propagates.
 */
export async function relayEndUserAnswer(handle: ToolRequestHandle, answer: EndUserAnswer): Promise<RelayOutcome> {
  try {
    return { relayed: true, view: await handle.confirm(answer) };
  } catch (err) {
    if (err instanceof GatewayRequestError && UNRELAYED_CODES.has(err.code)) return { relayed: false, code: err.code, message: err.message };
    throw err;
  }
}

/**
 * Attaches to the request of a call the end user approved in the framework's own approval flow,
 * relays their confirmation of the digest they were shown (`shownDigest`, given the pending
 * proposal if there is one; undefined: nothing to confirm), and waits for the outcome. A relay
 * refused (the proposal changed since it was shown, the request ended) or not sent leaves the
 * request waiting for approvers, or with its outcome, exactly as without the end user. Undefined
 * when there is no such request: the adapter then submits it as usual.
 */
export async function confirmShownAndAwait(
  gateway: ToolGateway,
  requestId: string,
  tool: string,
  shownDigest: (proposal: EndUserProposal | undefined) => string | undefined,
  options: RunOptions,
): Promise<CallResult | undefined> {
  const existing = await existingRequest(gateway, requestId);
  if (!existing) return undefined;
  const proposal = endUserProposalOf(existing.view, tool);
  const digest = shownDigest(proposal);
  if (proposal && digest !== undefined) await relayEndUserAnswer(existing.handle, { decision: 'confirm', digest });
  return awaitRequest(gateway, existing.handle, tool, options);
}
