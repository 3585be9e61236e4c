/**
 * What an approver is shown of a request: one view for the approval API's JSON (list and detail),
 * the one-click link page and the inbox, so all three show the same redacted facts. Its own module
 * so that the pages rendering it do not import the API that serves them.
 */
import { redactText, redactValue } from '../egress/redact.js';
import {
  FailureTypes,
  PREVIEW_BOUNDS,
  PROVENANCE_KINDS,
  PROVENANCE_LIMITS,
  parseArgPath,
  refuseDecision,
  type Approver,
  type RequestStatus,
} from '../shared/index.js';

const requesterIds = (status: RequestStatus): string[] => [status.actor.id, ...(status.onBehalfOf ?? []).map((p) => p.id)];

/** A redacted copy of what approvers are shown (all rules): they decide on the shape of the call, not on its secrets. */
const redacted = <T>(value: T): T => redactValue(value).value;

/** How approvers read a kind of untrusted content. */
export const PROVENANCE_KIND_LABELS: Readonly<Record<string, string>> = Object.freeze({
  retrieved_document: 'retrieved document',
  web_page: 'web page',
  tool_output: 'tool output',
  user_upload: 'user upload',
  email: 'e-mail',
  other: 'other untrusted content',
});

/** What approvers are shown of a request's provenance: the agent runtime's claim, redacted and bounded. */
export interface ProvenanceView {
  /** Each argument the runtime flagged as coming from untrusted content, with the kinds of content. */
  untrusted: { path: string; kinds: string[] }[];
  /** How the prompt was assembled, when the runtime said. */
  prompt?: { model?: string; systemPromptDigest?: string; sources: string[] };
}

/**
 * The provenance of a request as approvers, notifications and the audit record show it, or
 * undefined when there is none. Built field by field from whatever is recorded (a history holds
 * what was written into it): known kinds only, within the bounds, every text redacted.
 */
export function provenanceView(provenance: unknown): ProvenanceView | undefined {
  if (provenance === null || typeof provenance !== 'object') return undefined;
  const { untrusted, prompt } = provenance as { untrusted?: unknown; prompt?: unknown };
  const view: ProvenanceView = { untrusted: [] };
  if (untrusted !== null && typeof untrusted === 'object' && !Array.isArray(untrusted)) {
    for (const [path, kinds] of Object.entries(untrusted).slice(0, PROVENANCE_LIMITS.paths)) {
      const known = Array.isArray(kinds)
        ? kinds.filter((kind): kind is string => typeof kind === 'string' && (PROVENANCE_KINDS as readonly string[]).includes(kind))
        : [];
      view.untrusted.push({ path: redactText(path.slice(0, PROVENANCE_LIMITS.pathChars)), kinds: known.length > 0 ? known : ['other'] });
    }
  }
  if (prompt !== null && typeof prompt === 'object') {
    const { model, systemPromptDigest, sources } = prompt as Record<string, unknown>;
    const text = (value: unknown, max: number) => (typeof value === 'string' ? redactText(value.slice(0, max)) : undefined);
    const shown: NonNullable<ProvenanceView['prompt']> = {
      sources: Array.isArray(sources)
        ? sources
            .slice(0, PROVENANCE_LIMITS.sources)
            .map((id) => text(id, PROVENANCE_LIMITS.sourceChars))
            .filter((id): id is string => id !== undefined)
        : [],
    };
    const modelText = text(model, PROVENANCE_LIMITS.modelChars);
    if (modelText !== undefined) shown.model = modelText;
    if (typeof systemPromptDigest === 'string' && /^[a-f0-9]{64}$/.test(systemPromptDigest)) shown.systemPromptDigest = systemPromptDigest;
    if (shown.model !== undefined || shown.systemPromptDigest !== undefined || shown.sources.length > 0) view.prompt = shown;
  }
  return view.untrusted.length > 0 || view.prompt ? view : undefined;
}

/** The kinds of a flagged argument in words: `web page, e-mail`. */
export function provenanceKinds(kinds: readonly string[]): string {
  return kinds.map((kind) => PROVENANCE_KIND_LABELS[kind] ?? kind).join(', ');
}

/** The prompt metadata in one line: `model gpt-4.1 · system prompt sha256 0123456789ab… · sources kb-1, kb-2`. */
export function describePrompt(prompt: NonNullable<ProvenanceView['prompt']>, maxSources = 10): string {
  const parts: string[] = [];
  if (prompt.model !== undefined) parts.push(`model ${prompt.model}`);
  if (prompt.systemPromptDigest !== undefined) parts.push(`system prompt sha256 ${prompt.systemPromptDigest.slice(0, 16)}…`);
  if (prompt.sources.length > 0) {
    const more = prompt.sources.length - maxSources;
    parts.push(`sources ${prompt.sources.slice(0, maxSources).join(', ')}${more > 0 ? ` and ${more} more` : ''}`);
  }
  return parts.join(' · ');
}

/**
 * The flags that touch the top-level argument `name` (flagged itself, inside it, or all the
 * arguments at once), for marking it where arguments are listed by name.
 */
export function flagsOnArgument(view: ProvenanceView | undefined, name: string): ProvenanceView['untrusted'] {
  if (!view) return [];
  return view.untrusted.filter((flag) => {
    const parsed = parseArgPath(flag.path);
    return 'segments' in parsed && (parsed.segments.length === 0 || parsed.segments[0] === name);
  });
}

/** How every surface labels a dry-run preview: what the tool says it would do, not what it did. */
export const PREVIEW_LABEL = 'preview (dry run)';

/** A request's dry-run preview as approvers are shown it (pages, messages, the record). */
export interface PreviewView {
  /** `ok`: the tool answered; `failed` / `timed_out`: it did not, and the approval went on without it. */
  status: 'ok' | 'failed' | 'timed_out';
  /** The answer (a text as it is, anything else as indented JSON), or why there is none; redacted. */
  text: string;
  /** The answer was longer than the tool's `preview.max_bytes` and is cut. */
  truncated: boolean;
  /** When the preview ran. */
  at?: string;
}

/**
 * The dry-run preview of a proposal as every surface shows it, or undefined when there is none.
 * Built field by field from whatever is recorded (a history holds what was written into it): the
 * worker redacted and cut the answer already; it is redacted again here and never longer than
 * the largest `preview.max_bytes`.
 */
export function previewView(preview: unknown): PreviewView | undefined {
  if (preview === null || typeof preview !== 'object') return undefined;
  const { status, result, message, truncated, at } = preview as Record<string, unknown>;
  if (status !== 'ok' && status !== 'failed' && status !== 'timed_out') return undefined;
  let text: string;
  if (status === 'ok') text = typeof result === 'string' ? result : (JSON.stringify(result ?? null, null, 2) ?? 'null');
  else text = typeof message === 'string' ? message : '';
  const long = text.length > PREVIEW_BOUNDS.maxMaxBytes;
  if (long) text = `${text.slice(0, PREVIEW_BOUNDS.maxMaxBytes)}…`;
  return { status, text: redactText(text), truncated: truncated === true || long, ...(typeof at === 'string' ? { at } : {}) };
}

/** A preview's headline: `preview (dry run)`, `preview (dry run) failed`, `preview (dry run) timed out`. */
export function previewHeadline(view: PreviewView): string {
  return view.status === 'ok' ? PREVIEW_LABEL : `${PREVIEW_LABEL} ${view.status === 'failed' ? 'failed' : 'timed out'}`;
}

/**
 * The approval view of a request: everything an approver must see before deciding. Arguments,
 * reasons and edits are redacted; the digests are those of the real request.
 */
export function approvalView(status: RequestStatus, approver: Approver) {
  const plan = status.decision?.approval;
  const refusal =
    status.state === 'pending_approval' && plan && status.digest
      ? refuseDecision(
          {
            pending: true,
            tenant: status.tenant,
            requesterIds: requesterIds(status),
            digest: status.digest,
            plan,
            tier: status.tier,
            approvals: status.approvals,
          },
          { decision: 'approve', digest: status.digest, approver },
        )
      : { type: FailureTypes.NotPending, message: 'the request is not waiting for approval' };
  return {
    requestId: status.requestId,
    state: status.state,
    tenant: status.tenant,
    environment: status.environment,
    tool: status.tool,
    args: redacted(status.proposal?.args),
    /** Which arguments the agent runtime says came from untrusted content, and the prompt metadata (absent: it said nothing, which is no assurance). */
    provenance: provenanceView(status.proposal?.provenance),
    /** The tool's dry-run preview: what it says the call would do (or why it could not say), part of the digest. */
    preview: previewView(status.proposal?.preview),
    risk: status.decision?.risk,
    rule: status.decision?.rule,
    reasons: redacted(status.decision?.reasons ?? []),
    policyDigest: status.decision?.policyDigest,
    toolDigest: status.decision?.toolDigest,
    /** Who signed the tool's manifest entry (role and key id), as verified when the policy was loaded; empty when unsigned. */
    toolSigners: status.decision?.toolSigners ?? [],
    runAs: status.decision?.runAs,
    actor: status.actor,
    onBehalfOf: status.onBehalfOf ?? [],
    reason: redacted(status.reason),
    traceId: status.traceId,
    digest: status.digest,
    expiresAt: status.expiresAt,
    tier: status.tier,
    eligibleGroups: status.eligibleGroups,
    plan: plan
      ? { name: plan.name, groups: plan.groups, allOf: plan.allOf, minApprovals: plan.minApprovals, rejectionsToDeny: plan.rejectionsToDeny }
      : undefined,
    approvals: redacted(status.approvals.filter((vote) => vote.digest === status.digest)),
    edits: status.edits.map((edit) => ({ ...edit, args: redacted(edit.args), ...(edit.reason === undefined ? {} : { reason: redacted(edit.reason) }) })),
    canDecide: refusal === undefined,
    ...(refusal ? { cannotDecideBecause: refusal.message } : {}),
    proposal: status.proposal
      ? {
          ...status.proposal,
          args: redacted(status.proposal.args),
          // Argument paths are names, not secrets: only their text is redacted, not values under secret-looking keys.
          ...(status.proposal.provenance === undefined ? {} : { provenance: redactValue(status.proposal.provenance, { secretKeys: false }).value }),
          ...(status.proposal.preview === undefined ? {} : { preview: redacted(status.proposal.preview) }),
        }
      : undefined,
    outcome: status.outcome ? { status: status.outcome.status } : undefined,
  };
}

/** The approval view of a request, as `approvalView` builds it. */
export type ApprovalView = ReturnType<typeof approvalView>;
