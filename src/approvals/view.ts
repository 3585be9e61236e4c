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
  canonicalId,
  parseArgPath,
  refuseDecision,
  requesterIdsOf,
  type Approver,
  type EndUserConfirmation,
  type OverrideGrant,
  type RequestLink,
  type RequestStatus,
} from '../shared/index.js';

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

/** A linked request as approvers are shown it: the link (reason redacted) and one readable line. */
export interface LinkView extends RequestLink {
  /** `Break-glass override of r-1: <reason> — asked by sam`, or `Rollback of r-1`. */
  summary: string;
}

/** The link of a request as every surface shows it, or undefined when it has none. */
export function linkView(link: RequestLink | undefined): LinkView | undefined {
  if (!link) return undefined;
  const reason = redactText(link.reason);
  const summary = link.kind === 'override' ? `Break-glass override of ${link.requestId}: ${reason} — asked by ${link.by.id}` : `Rollback of ${link.requestId}`;
  return { kind: link.kind, requestId: link.requestId, tool: link.tool, by: { id: link.by.id, groups: [...link.by.groups] }, reason, summary };
}

/** A break-glass grant as approvers are shown it: what approving overrides, said up front. */
export interface OverrideView extends OverrideGrant {
  /** The warning every surface puts first: approving overrides a policy denial (rule, code, reasons). */
  warning: string;
}

/** The break-glass grant of a decision as every surface shows it (texts redacted), or undefined when there is none. */
export function overrideView(grant: OverrideGrant | undefined): OverrideView | undefined {
  if (!grant) return undefined;
  const deniedReasons = grant.deniedReasons.map((reason) => redactText(reason));
  const reason = redactText(grant.reason);
  const warning =
    `Approving overrides a policy denial: rule ${grant.deniedRule} denied this call (${grant.deniedCode})` +
    `${deniedReasons.length > 0 ? `: ${deniedReasons.join('; ')}` : ''}. ` +
    `Break-glass rule ${grant.breakGlass} lets a second person allow it; ${grant.by} asked: ${reason}`;
  return { ...grant, deniedReasons, reason, notify: [...grant.notify], warning };
}

/** What approvers are told of a plan that accepts the end user's confirmation. */
export interface EndUserPlanView {
  /** The end user who may confirm (the request's first `onBehalfOf` principal); absent when the request names none. */
  principal?: string;
  /** `the end user maria may confirm this`, or why nobody can. */
  note: string;
  /** No approver group is named: only the end user can satisfy the plan. */
  only: boolean;
}

function endUserPlanView(status: RequestStatus): EndUserPlanView | undefined {
  const plan = status.decision?.approval;
  if (plan?.endUser !== true) return undefined;
  const principal = status.onBehalfOf?.[0]?.id;
  const only = plan.groups.length === 0 && plan.allOf.length === 0;
  if (principal === undefined) return { note: 'the end user may confirm this, but the request names no end user', only };
  return { principal: canonicalId(principal), note: `the end user ${canonicalId(principal)} may confirm this${only ? ' (only they can)' : ''}`, only };
}

/** The end user's answers, reasons redacted: shown apart from approvers' votes. */
function confirmationsView(confirmations: readonly EndUserConfirmation[] | undefined): EndUserConfirmation[] {
  return (confirmations ?? []).map((answer) => ({ ...answer, ...(answer.reason === undefined ? {} : { reason: redactText(answer.reason) }) }));
}

/** The refusal a break-glass asker gets, in words that say why, before the generic ones. */
function askerRefusal(status: RequestStatus, approver: Approver): { type: string; message: string } | undefined {
  if (status.link?.kind !== 'override' || canonicalId(status.link.by.id) !== canonicalId(approver.id)) return undefined;
  return { type: FailureTypes.SelfApproval, message: 'you asked for this break-glass override: a second person must approve it' };
}

/**
 * The approval view of a request: everything an approver must see before deciding. Arguments,
 * reasons and edits are redacted; the digests are those of the real request.
 */
export function approvalView(status: RequestStatus, approver: Approver) {
  const plan = status.decision?.approval;
  const refusal =
    status.state === 'pending_approval' && plan && status.digest
      ? (askerRefusal(status, approver) ??
        refuseDecision(
          {
            pending: true,
            tenant: status.tenant,
            requesterIds: requesterIdsOf(status),
            digest: status.digest,
            plan,
            tier: status.tier,
            approvals: status.approvals,
          },
          { decision: 'approve', digest: status.digest, approver },
        ))
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
      ? {
          name: plan.name,
          groups: plan.groups,
          allOf: plan.allOf,
          minApprovals: plan.minApprovals,
          rejectionsToDeny: plan.rejectionsToDeny,
          ...(plan.endUser === true ? { endUser: true as const } : {}),
        }
      : undefined,
    /** The earlier request this one overrides (break-glass) or rolls back, with a readable line; absent otherwise. */
    link: linkView(status.link),
    /** Set on a break-glass override: approving overrides a policy denial (`warning` says which, and why it was asked). */
    override: overrideView(status.decision?.override),
    /** The end user's answers (confirm, decline, adjust), never counted among `approvals`. */
    confirmations: confirmationsView(status.confirmations),
    /** Set when the plan accepts the end user's confirmation: who may confirm, and whether only they can. */
    endUser: endUserPlanView(status),
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
