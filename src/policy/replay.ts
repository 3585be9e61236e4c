/**
 * Policy what-if replay: decide past requests again under a candidate policy and say what would
 * change — without executing anything and without touching a history.
 *
 * The core is pure: it consumes a stream of recorded requests (`ReplayEntry`: the request as
 * admitted and the decision policy recorded for it) from any {@link ReplaySource} — workflow
 * histories found through visibility today (src/cli/policy-replay-source.ts), an audit archive later —
 * and keeps only counts and the first few examples of each kind of change, so memory stays flat
 * however many requests stream through.
 *
 * **Which recorded decision.** A request's history can hold several `evaluatePolicy` results: the
 * first, on the request as the front door admitted it, and one more after each approver's edit of
 * the arguments. The replay compares the FIRST with the candidate's decision on the admitted
 * request: same input on both sides. A later one judged arguments an approver wrote, and only
 * because the first decision asked a person — under the candidate nobody may have been asked, or
 * the edit may have been another; comparing it with the candidate's verdict on the admitted
 * request would report an approver's edit as a policy change.
 *
 * **Like with like.** Some recorded decisions were not policy's: the activity turns an allow or
 * approve into a denial when a kill switch is on or a rate limit is exhausted (or its store did not
 * answer), and denies everything while no policy is in force; a request whose admission did not
 * verify was never evaluated at all. Those are `not_comparable`, counted by reason, never reported
 * as policy changes. Denials after policy (a kill switch while the request waited, a changed
 * manifest at execution) leave policy's own recorded decision in place, which stays comparable.
 */
import type { LoadedDataConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { decodeFirstPayload, startInputOf, withWorkflowContext } from '../audit/history-payloads.js';
import type { AUDITED_ACTIVITIES } from '../audit/record-audited.js';
import { KeyNotInKeyring } from '../codec/aes-gcm.js';
import { redactText } from '../egress/redact.js';
import { parseRequestWorkflowId, type PolicyDecision, type ToolOutcome, type ToolRequest } from '../shared/index.js';
import { CHANGE_KINDS, compareDecisions, type ChangeKind } from './compare.js';
import { decide } from './decide.js';

export { CHANGE_KINDS, compareDecisions, type ChangeKind };
import type { LoadedPolicy } from './model.js';
import { ToolgateError } from '../errors.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Every class a replayed request falls in, in the order reports list them. */
export const REPLAY_KINDS = ['unchanged', ...CHANGE_KINDS, 'not_comparable'] as const;
/** The class of one replayed request. */
export type ReplayKind = (typeof REPLAY_KINDS)[number];

/** Named sets of kinds for `--fail-on`. */
export const FAIL_ON_GROUPS = {
  /** Anything that makes a request harder to run: a person needed, or a denial. */
  tightening: ['allow->approve', 'allow->deny', 'approve->deny'],
  /** Anything that makes a request easier to run. */
  widening: ['approve->allow', 'deny->allow', 'deny->approve'],
  /** Whatever would now run without a person: any change to allow. */
  'allow-widening': ['approve->allow', 'deny->allow'],
  /** Every change (not `not_comparable`, which is no change). */
  any: [...CHANGE_KINDS],
} as const satisfies Record<string, readonly ChangeKind[]>;

/** Why a recorded request cannot be compared with the candidate's decision. */
export const NOT_COMPARABLE_REASONS = [
  /** A kill switch denied it when it was evaluated (the activity overrode policy's verdict). */
  'kill_switch',
  /** A rate limit denied it when it was evaluated. */
  'rate_limited',
  /** The rate-limit store did not answer, so it was denied uncounted. */
  'rate_limits_unavailable',
  /** No policy was in force (the worker's policy never loaded). */
  'no_policy_in_force',
  /** Its admission did not verify (front door or worker): policy never saw it. */
  'unverified_request',
  /** Policy has not decided yet (still starting), or the workflow ended before it did. */
  'not_decided',
  /** The history does not hold a tool request (a raw client started the workflow with something else). */
  'not_a_request',
  /** The history could not be read: a payload failed to decode (another tenant's key, no key), or it is not a toolgate history. */
  'unreadable',
  /** The history was gone when read (retention deleted it after the listing). */
  'history_gone',
] as const;
/** A reason for `not_comparable`. */
export type NotComparableReason = (typeof NOT_COMPARABLE_REASONS)[number];

/** One recorded request, as a source yields it. */
export interface ReplayEntry {
  workflowId: string;
  runId?: string;
  /** When the workflow started (ISO 8601), or '' when unknown. */
  startedAt: string;
  /** The request as admitted: the workflow's start input. Absent when the history holds none. */
  request?: ToolRequest;
  /** Policy's first decision on the admitted request (see the module comment). Absent when policy never decided. */
  recorded?: PolicyDecision;
  /** How the workflow ended, when it has (outcome status, and the denial code of a denial). */
  ended?: { status: string; code?: string };
  /** Set when the history could not be read; nothing else is then known. */
  unreadable?: { code: 'unreadable' | 'history_gone'; message: string };
}

/**
 * Where recorded requests come from. Today: workflow histories through visibility
 * (`temporalReplaySource` in src/cli/policy-replay-source.ts). An audit-archive source plugs in by
 * implementing the same two members over archived records.
 */
export interface ReplaySource {
  /** How many entries `entries()` will yield, when known up front (progress and ETA); undefined otherwise. */
  count(): Promise<number | undefined>;
  /** The entries, streamed: a source must not hold them all. */
  entries(): AsyncIterable<ReplayEntry>;
}

/** A decision as examples show it. */
export interface DecisionSummary {
  outcome: PolicyDecision['outcome'];
  rule: string;
  risk: string;
  code?: string;
  /** The approval plan's name, for `approve`. */
  plan?: string;
}

/** One example of a kind: which request, what was recorded, what the candidate decides. */
export interface ReplayExample {
  workflowId: string;
  requestId: string;
  tenant: string;
  tool: string;
  actor: string;
  startedAt: string;
  recorded?: DecisionSummary;
  candidate?: DecisionSummary;
  /** What differs (the plan's fields), or why the request is not comparable. */
  detail?: string;
  /** For `not_comparable`: the reason. */
  reason?: NotComparableReason;
}

/** What one request replays to. */
export interface Classification {
  kind: ReplayKind;
  candidate?: PolicyDecision;
  reason?: NotComparableReason;
  detail?: string;
}

/** The result of a replay: counts per kind and the first examples of each. */
export interface ReplayReport {
  candidate: { digest: string; files: string[] };
  /** Requests replayed (every entry the source yielded). */
  total: number;
  /** Requests whose decision would change (the change kinds summed). */
  changed: number;
  counts: Record<ReplayKind, number>;
  /** `not_comparable` by reason (only reasons seen). */
  notComparable: Partial<Record<NotComparableReason, number>>;
  /** The first examples of each kind seen, in stream order (none for `unchanged`). */
  examples: Partial<Record<ReplayKind, ReplayExample[]>>;
  /** The kinds the caller forbade, and how many requests fell in them. */
  failOn: ReplayKind[];
  forbidden: number;
}

/** Examples kept per kind unless told otherwise. */
export const DEFAULT_EXAMPLES = 3;
/** Most examples per kind a caller may ask for: examples are the only thing a replay holds. */
export const MAX_EXAMPLES = 100;

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

const isStrings = (value: unknown): boolean => Array.isArray(value) && value.every((item) => typeof item === 'string');
const optional = (value: unknown, check: (v: unknown) => boolean): boolean => value === undefined || check(value);
const isNumber = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value);

/**
 * What is wrong with a recorded decision's shape, or undefined when every field the comparison
 * reads has the type it expects. A history is data anyone with Temporal access can write: a
 * planted marker (`approval.groups: 5`) must make its own entry unreadable, not abort the replay.
 * Lenient where old histories are (a plan's `allOf`, `rejectionsToDeny`, `escalation` may be absent).
 */
export function malformedDecision(value: unknown): string | undefined {
  if (!isDecision(value)) return 'not a decision (outcome, rule, risk)';
  const decision = value as unknown as Record<string, unknown>;
  if (!optional(decision.code, (v) => typeof v === 'string')) return 'code is not a string';
  const plan = decision.approval;
  if (plan === undefined) return undefined;
  if (!isObject(plan)) return 'approval is not an object';
  if (typeof plan.name !== 'string') return 'approval.name is not a string';
  for (const field of ['groups', 'allOf'] as const) {
    if (!optional(plan[field], isStrings)) return `approval.${field} is not a list of strings`;
  }
  for (const field of ['minApprovals', 'rejectionsToDeny', 'expiresAfterMs', 'remindEveryMs'] as const) {
    if (!optional(plan[field], isNumber)) return `approval.${field} is not a number`;
  }
  const tiers = plan.escalation;
  if (!optional(tiers, (v) => Array.isArray(v) && v.every((tier) => isObject(tier) && isNumber(tier.afterMs) && optional(tier.groups, isStrings)))) {
    return 'approval.escalation is not a list of tiers';
  }
  return undefined;
}

/** Why a recorded request is not comparable, or undefined when it is. */
function notComparable(entry: ReplayEntry): { reason: NotComparableReason; detail: string } | undefined {
  if (entry.unreadable) return { reason: entry.unreadable.code, detail: entry.unreadable.message };
  if (!entry.request) return { reason: 'not_a_request', detail: 'the workflow input is not a tool request' };
  const recorded = entry.recorded;
  if (!recorded) {
    if (entry.ended?.code === 'unverified_request') return { reason: 'unverified_request', detail: 'its admission did not verify: policy never evaluated it' };
    return { reason: 'not_decided', detail: entry.ended ? `the workflow ended (${entry.ended.status}) before policy decided` : 'policy has not decided yet' };
  }
  // Any source's entries (histories, an archive) are checked here, where the comparison reads them.
  const malformed = malformedDecision(recorded);
  if (malformed) return { reason: 'unreadable', detail: `the recorded decision is malformed: ${malformed}` };
  // The activity's own denials (activities/evaluate.ts: refuseIfStopped and the no-policy case) keep
  // policy's fields but replace its outcome and rule: what policy said is no longer recorded.
  if (recorded.outcome === 'deny') {
    if (recorded.code === 'kill_switch') return { reason: 'kill_switch', detail: `denied by ${recorded.rule} when evaluated` };
    if (recorded.code === 'rate_limited') return { reason: 'rate_limited', detail: `denied by ${recorded.rule} when evaluated` };
    if (recorded.rule === 'check:rate_limits_unavailable') return { reason: 'rate_limits_unavailable', detail: 'denied: the rate-limit store did not answer' };
    if (recorded.rule === 'check:policy_unavailable') return { reason: 'no_policy_in_force', detail: 'denied: no policy was in force' };
  }
  return undefined;
}

/** Classifies one recorded request under `candidate`. Pure: decides, compares, keeps nothing. */
export function classify(entry: ReplayEntry, candidate: LoadedPolicy): Classification {
  const excluded = notComparable(entry);
  if (excluded) return { kind: 'not_comparable', ...excluded };
  const decided = decide(candidate, entry.request as ToolRequest);
  return { ...compareDecisions(entry.recorded as PolicyDecision, decided), candidate: decided };
}

function summary(decision: PolicyDecision): DecisionSummary {
  return {
    outcome: decision.outcome,
    rule: decision.rule,
    risk: decision.risk,
    ...(decision.code ? { code: decision.code } : {}),
    ...(decision.outcome === 'approve' && decision.approval ? { plan: decision.approval.name } : {}),
  };
}

/**
 * Parses `--fail-on`: comma-separated kinds (`allow->deny`, also written `allow→deny` or
 * `allow-to-deny`; `plan`, `risk`, `not_comparable`) and groups (`tightening`, `widening`,
 * `allow-widening`, `any`). Throws a message naming what is accepted.
 */
export function parseFailOn(spec: string): ReplayKind[] {
  const kinds = new Set<ReplayKind>();
  const accepted = `kinds ${[...CHANGE_KINDS, 'not_comparable'].join(', ')} or groups ${Object.keys(FAIL_ON_GROUPS).join(', ')}`;
  const parts = spec
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new Error(`--fail-on needs at least one of the ${accepted}`);
  for (const part of parts) {
    const name = part
      .toLowerCase()
      .replace(/\s+/g, '')
      .replace('→', '->')
      .replace(/[-_]to[-_]/, '->')
      .replace('not-comparable', 'not_comparable');
    if (Object.hasOwn(FAIL_ON_GROUPS, name)) {
      for (const kind of FAIL_ON_GROUPS[name as keyof typeof FAIL_ON_GROUPS]) kinds.add(kind);
    } else if ((CHANGE_KINDS as readonly string[]).includes(name) || name === 'not_comparable') {
      kinds.add(name as ReplayKind);
    } else {
      throw new Error(`--fail-on: "${part}" is not a kind of change; expected ${accepted}`);
    }
  }
  return REPLAY_KINDS.filter((kind) => kinds.has(kind));
}

/**
 * Counts replayed requests and keeps the first `examples` of each kind. Holds nothing else: its
 * memory is the same after ten requests and after ten million.
 */
export class ReplayTally {
  private readonly counts = Object.fromEntries(REPLAY_KINDS.map((kind) => [kind, 0])) as Record<ReplayKind, number>;
  private readonly reasons: Partial<Record<NotComparableReason, number>> = {};
  private readonly examples: Partial<Record<ReplayKind, ReplayExample[]>> = {};
  private readonly forbidden: ReadonlySet<ReplayKind>;
  private readonly keep: number;

  constructor(
    private readonly candidate: LoadedPolicy,
    options: { examples?: number; failOn?: readonly ReplayKind[] } = {},
  ) {
    const keep = options.examples ?? DEFAULT_EXAMPLES;
    if (!Number.isInteger(keep) || keep < 0 || keep > MAX_EXAMPLES) throw new RangeError(`examples must be a whole number from 0 to ${MAX_EXAMPLES}`);
    this.keep = keep;
    this.forbidden = new Set(options.failOn ?? []);
  }

  /**
   * Classifies one entry, counts it, keeps it as an example while its kind has fewer than
   * `examples`. An entry whose classification throws (recorded data the checks did not foresee)
   * counts as `not_comparable`/`unreadable`: one bad history must not abort the replay and its
   * `--fail-on` gate.
   */
  add(entry: ReplayEntry): Classification {
    let result: Classification;
    try {
      result = classify(entry, this.candidate);
    } catch (err) {
      result = { kind: 'not_comparable', reason: 'unreadable', detail: `could not be compared: ${redactText((err as Error)?.message ?? String(err))}` };
    }
    this.counts[result.kind] += 1;
    if (result.reason) this.reasons[result.reason] = (this.reasons[result.reason] ?? 0) + 1;
    if (result.kind !== 'unchanged') {
      const list = (this.examples[result.kind] ??= []);
      if (list.length < this.keep) list.push(safeExampleOf(entry, result));
    }
    return result;
  }

  /** The report so far (a copy: adding more entries does not change it). */
  report(): ReplayReport {
    const counts = { ...this.counts };
    const changed = CHANGE_KINDS.reduce((sum, kind) => sum + counts[kind], 0);
    const examples: ReplayReport['examples'] = {};
    for (const kind of REPLAY_KINDS) {
      const list = this.examples[kind];
      if (list && list.length > 0) examples[kind] = [...list];
    }
    return {
      candidate: { digest: this.candidate.digest, files: [...this.candidate.files] },
      total: REPLAY_KINDS.reduce((sum, kind) => sum + counts[kind], 0),
      changed,
      counts,
      notComparable: { ...this.reasons },
      examples,
      failOn: [...this.forbidden],
      forbidden: [...this.forbidden].reduce((sum, kind) => sum + counts[kind], 0),
    };
  }
}

/** `exampleOf`, or the bare ids when the entry's data does not even summarise (the same data the classification could not read). */
function safeExampleOf(entry: ReplayEntry, result: Classification): ReplayExample {
  try {
    return exampleOf(entry, result);
  } catch {
    return {
      workflowId: String(entry.workflowId),
      requestId: '',
      tenant: '',
      tool: '',
      actor: '',
      startedAt: String(entry.startedAt),
      ...(result.detail ? { detail: result.detail } : {}),
      ...(result.reason ? { reason: result.reason } : {}),
    };
  }
}

function exampleOf(entry: ReplayEntry, result: Classification): ReplayExample {
  const parsed = parseRequestWorkflowId(entry.workflowId);
  return {
    workflowId: entry.workflowId,
    requestId: entry.request?.requestId ?? parsed?.requestId ?? '',
    tenant: entry.request?.tenant ?? parsed?.tenant ?? '',
    tool: entry.request?.tool ?? '',
    actor: entry.request?.actor?.id ?? '',
    startedAt: entry.startedAt,
    ...(entry.recorded ? { recorded: summary(entry.recorded) } : {}),
    ...(result.candidate ? { candidate: summary(result.candidate) } : {}),
    ...(result.detail ? { detail: result.detail } : {}),
    ...(result.reason ? { reason: result.reason } : {}),
  };
}

/** Options of {@link replayDecisions}. */
export interface ReplayOptions {
  /** Examples kept per kind. @default 3 */
  examples?: number;
  /** Kinds that count as forbidden in the report. */
  failOn?: readonly ReplayKind[];
  /** Called after each entry with the number replayed so far (the caller throttles its output). */
  onProgress?: (done: number) => void;
}

/**
 * Replays a stream of recorded requests under `candidate`, one at a time as the source yields
 * them. Never executes a tool, never writes anywhere: `decide()` is a pure function of the
 * policy and the request.
 */
export async function replayDecisions(
  entries: AsyncIterable<ReplayEntry> | Iterable<ReplayEntry>,
  candidate: LoadedPolicy,
  options: ReplayOptions = {},
): Promise<ReplayReport> {
  const tally = new ReplayTally(candidate, options);
  let done = 0;
  for await (const entry of entries) {
    tally.add(entry);
    options.onProgress?.(++done);
  }
  return tally.report();
}

// ---------------------------------------------------------------------------------------------
// Reading a recorded request from a workflow history.

/** The policy activity's name as the workflow proxies it (a rename fails to compile here). */
const EVALUATE_POLICY = 'evaluatePolicy' satisfies keyof typeof AUDITED_ACTIVITIES;

/** Whether `value` looks like a decision at all: how a marker without an activity type is recognised. */
function isDecision(value: unknown): value is PolicyDecision {
  return (
    isObject(value) &&
    (value.outcome === 'allow' || value.outcome === 'approve' || value.outcome === 'deny') &&
    typeof value.rule === 'string' &&
    typeof value.risk === 'string'
  );
}

/**
 * The activity type a local-activity marker names in its `data` (plain JSON written by the SDK
 * core, not by the codec), or undefined when it names none. Lets a reader skip other markers
 * without decrypting their results.
 */
function markerActivityType(attrs: temporal.api.history.v1.IMarkerRecordedEventAttributes): string | undefined {
  const payload = attrs.details?.data?.payloads?.[0];
  if (!payload?.data) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(payload.data).toString('utf8'));
    return isObject(value) && typeof value.activity_type === 'string' ? value.activity_type : undefined;
  } catch {
    return undefined;
  }
}

function msOf(event: HistoryEvent): number | undefined {
  const t = event.eventTime;
  if (!t) return undefined;
  return Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

/**
 * Reads what a replay needs from a request's history — the start input and the first policy
 * decision — decoding payloads as that workflow (so a payload of another tenant fails to decode).
 * It stops at the first decision: give it a lazy stream of events and the rest of the history is
 * never fetched. When policy never decided it reads on to the end, to say how the workflow ended.
 * A history it cannot read (a payload that does not decode, no start event) is an entry with
 * `unreadable`; it throws only when reading the events fails (the caller's I/O) or the client
 * lacks a key the history names (its configuration).
 */
export async function recordedFromHistory(
  events: AsyncIterable<HistoryEvent> | Iterable<HistoryEvent>,
  loaded: LoadedDataConverter,
  ids: { workflowId: string; runId?: string },
): Promise<ReplayEntry> {
  const converter = withWorkflowContext(loaded, ids.workflowId);
  const entry: ReplayEntry = { workflowId: ids.workflowId, ...(ids.runId ? { runId: ids.runId } : {}), startedAt: '' };
  /** Decodes a payload; a payload that does not decode makes the history unreadable (reading it failed otherwise: rethrown). */
  const decode = async <T>(payloads: Parameters<typeof decodeFirstPayload>[1]): Promise<T | undefined> => {
    try {
      return await decodeFirstPayload<T>(converter, payloads);
    } catch (err) {
      // A key missing from this client's keyring is its configuration, not the history's fault:
      // the caller stops (every other history would fail the same way) rather than count it.
      if (err instanceof KeyNotInKeyring) throw err;
      // Another tenant's payload, tampered bytes, or not JSON at all.
      throw new UnreadableHistory(redactText((err as Error).message));
    }
  };
  let started = false;
  try {
    for await (const event of events) {
      if (event.workflowExecutionStartedEventAttributes) {
        started = true;
        const ms = msOf(event);
        if (ms !== undefined) entry.startedAt = new Date(ms).toISOString();
        const { request } = startInputOf(await decode<unknown>(event.workflowExecutionStartedEventAttributes.input?.payloads));
        if (request) entry.request = request;
      } else if (event.markerRecordedEventAttributes) {
        const attrs = event.markerRecordedEventAttributes;
        const type = markerActivityType(attrs);
        // A failed attempt has no result; the workflow goes on to a later marker or ends (unverified).
        if ((type !== undefined && type !== EVALUATE_POLICY) || !attrs.details?.result?.payloads?.length) continue;
        const decoded = await decode<unknown>(attrs.details.result.payloads);
        // Markers without an activity type in their data are recognised by the result's shape (as the audit record does).
        if (isObject(decoded) && isDecision(decoded.decision)) {
          // The first decision is the one compared: a malformed one makes the history unreadable
          // (a later, well-formed one must not stand in for it).
          const malformed = malformedDecision(decoded.decision);
          if (malformed) throw new UnreadableHistory(`the recorded decision is malformed: ${malformed}`);
          entry.recorded = decoded.decision;
          return entry;
        }
      } else if (event.workflowExecutionCompletedEventAttributes) {
        const outcome = await decode<ToolOutcome>(event.workflowExecutionCompletedEventAttributes.result?.payloads);
        entry.ended = {
          status: typeof outcome?.status === 'string' ? outcome.status : 'completed',
          ...(outcome?.status === 'denied' ? { code: outcome.code } : {}),
        };
      } else if (event.workflowExecutionFailedEventAttributes) {
        entry.ended = { status: 'workflow_failed' };
      } else if (event.workflowExecutionTerminatedEventAttributes) {
        entry.ended = { status: 'terminated' };
      } else if (event.workflowExecutionTimedOutEventAttributes) {
        entry.ended = { status: 'timed_out' };
      } else if (event.workflowExecutionCanceledEventAttributes) {
        entry.ended = { status: 'canceled' };
      }
    }
  } catch (err) {
    if (!(err instanceof UnreadableHistory)) throw err;
    return {
      workflowId: entry.workflowId,
      ...(ids.runId ? { runId: ids.runId } : {}),
      startedAt: entry.startedAt,
      unreadable: { code: 'unreadable', message: err.message },
    };
  }
  if (!started) return { ...entry, unreadable: { code: 'unreadable', message: 'the history has no start event' } };
  return entry;
}

/** A payload of the history did not decode: the history is reported unreadable, the replay goes on. */
class UnreadableHistory extends ToolgateError {
  constructor(message: string) {
    super('history_unreadable', message);
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering.

/** How a kind reads in a table. */
export function kindLabel(kind: ReplayKind): string {
  return kind.replace('->', ' → ').replace('_', ' ');
}

function describeDecision(d: DecisionSummary | undefined): string {
  if (!d) return '—';
  const plan = d.plan ? `, plan ${d.plan}` : '';
  const code = d.code ? ` ${d.code}` : '';
  return `${d.outcome}${code} (${d.rule}, ${d.risk}${plan})`;
}

/**
 * The report as a table (kind, count, share) followed by the first examples of each kind, and
 * the verdict on `failOn`. `context` names the window and tenant replayed.
 */
export function formatReplayReport(report: ReplayReport, context: { window?: string; tenant?: string } = {}): string {
  const lines: string[] = [];
  const scope = [context.window, context.tenant ? `tenant ${context.tenant}` : undefined].filter(Boolean).join(', ');
  lines.push(
    `policy replay of ${report.total} request(s)${scope ? ` (${scope})` : ''} under candidate policy ${report.candidate.digest.slice(0, 12)} (${report.candidate.files.join(', ')})`,
  );
  lines.push('');
  const width = Math.max(...REPLAY_KINDS.map((kind) => kindLabel(kind).length), 'total'.length);
  const share = (n: number) => (report.total === 0 ? '-' : `${((100 * n) / report.total).toFixed(1)}%`);
  lines.push(`${'kind'.padEnd(width)}  ${'count'.padStart(8)}  ${'share'.padStart(7)}`);
  for (const kind of REPLAY_KINDS) {
    const n = report.counts[kind];
    let note = '';
    if (kind === 'not_comparable' && n > 0) {
      note = `  (${Object.entries(report.notComparable)
        .map(([reason, count]) => `${reason} ${count}`)
        .join(', ')})`;
    }
    const mark = report.failOn.includes(kind) && n > 0 ? '  FORBIDDEN' : '';
    lines.push(`${kindLabel(kind).padEnd(width)}  ${String(n).padStart(8)}  ${share(n).padStart(7)}${note}${mark}`);
  }
  lines.push(`${'total'.padEnd(width)}  ${String(report.total).padStart(8)}  ${share(report.total).padStart(7)}`);
  for (const kind of REPLAY_KINDS) {
    const examples = report.examples[kind];
    if (!examples || examples.length === 0) continue;
    lines.push('');
    lines.push(`${kindLabel(kind)}: ${report.counts[kind]}, first ${examples.length}:`);
    for (const e of examples) {
      const who = `${e.workflowId}  ${e.tool || '?'} by ${e.actor || '?'} (tenant ${e.tenant || '?'}, ${e.startedAt || 'start unknown'})`;
      if (kind === 'not_comparable') lines.push(`  ${who}: ${e.reason ?? '?'}${e.detail ? ` — ${e.detail}` : ''}`);
      else lines.push(`  ${who}\n    ${describeDecision(e.recorded)} → ${describeDecision(e.candidate)}${e.detail ? `; ${e.detail}` : ''}`);
    }
  }
  lines.push('');
  if (report.failOn.length === 0) {
    lines.push(`${report.changed} of ${report.total} would change (no --fail-on given)`);
  } else if (report.forbidden > 0) {
    lines.push(
      `FORBIDDEN: ${report.forbidden} request(s) in ${report.failOn
        .filter((kind) => report.counts[kind] > 0)
        .map(kindLabel)
        .join(', ')} (--fail-on ${report.failOn.join(',')})`,
    );
  } else {
    lines.push(`ok: no request in ${report.failOn.join(', ')}; ${report.changed} of ${report.total} would change`);
  }
  return `${lines.join('\n')}\n`;
}
