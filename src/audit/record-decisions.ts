/**
 * The decisions in a request's history: each `decide` update the workflow accepted (an approver's
 * vote or edit, or the end user's confirmation), in either history shape, with whether its signed
 * assertion verifies and what came of it; matched to the votes and edits the workflow recorded,
 * and the refused ones as refusals. The end user's answers are confirmations, never votes.
 */
import { redactText } from '../egress/redact.js';
import { canonicalId, type ApprovalRecord, type DecideInput, type EditRecord, type RefusalRecord } from '../shared/index.js';
import { isObject } from './history-payloads.js';
import { UNSIGNED_DECISION, peekJws } from './record-checks.js';
import type { AssertionCheck, AuditRecord } from './record-types.js';
import { redact } from './recorded-values.js';

/** A failure type (`NotEligible`) as the stable snake-case code the API answers with and old records carry (`not_eligible`). */
export function refusalCode(type: string): string {
  return /^[A-Z]/.test(type) ? type.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase() : type;
}

/** One `decide` update the workflow accepted, in either history shape, with its answer once it completed. */
export interface DecisionAttempt {
  at: string;
  /** The decision, the approver and the rest, from the assertion's claims (new) or the plain input (old). */
  input: DecideInput;
  check: AssertionCheck;
  timelineEntry: { at: string; event: string };
  result?: { ok: true; at: string } | { ok: false; at: string; type: string; message: string };
}

/** A decide update's input as a decision: the assertion's claims (new histories), or the plain input (old ones). */
export function decisionOf(input: unknown): { decided: DecideInput; token?: string } | undefined {
  if (!isObject(input)) return undefined;
  if (typeof input.assertion === 'string') {
    const claims = peekJws(input.assertion)?.claims ?? {};
    const decision = claims.decision === 'approve' || claims.decision === 'reject' || claims.decision === 'edit' ? claims.decision : 'approve';
    const decided: DecideInput = {
      decision,
      digest: typeof claims.digest === 'string' ? claims.digest : '',
      approver: {
        id: typeof claims.sub === 'string' ? canonicalId(claims.sub) : '?',
        tenant: typeof claims.tenant === 'string' ? claims.tenant : '?',
        groups: Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === 'string') : [],
      },
      via: claims.channel === 'link' || claims.channel === 'end_user' ? claims.channel : 'api',
      ...(typeof claims.reason === 'string' ? { reason: claims.reason } : {}),
      ...(isObject(claims.args) ? { args: claims.args } : {}),
      ...(typeof claims.link_nonce === 'string' ? { linkNonce: claims.link_nonce } : {}),
    };
    return { decided, token: input.assertion };
  }
  const approver = input.approver;
  if (typeof input.decision !== 'string' || !isObject(approver) || typeof approver.id !== 'string') return undefined;
  return { decided: input as unknown as DecideInput };
}

/** What an approver did, in a timeline's words. */
export const verbOf = (decision: string): string => (decision === 'edit' ? 'edited the arguments' : `${decision}d`);
/** What the end user did, in words: they confirm, decline or adjust (never "approve"). */
export const END_USER_VERBS = { approve: 'confirmed', reject: 'declined', edit: 'adjusted the arguments' } as const;
/** What the end user tried to do, in words (a refused attempt). */
export const END_USER_ATTEMPTS = { approve: 'confirm', reject: 'decline', edit: 'adjust the arguments' } as const;
/** Who decided, as a timeline names them: the end user is named as such. */
export const deciderOf = (d: DecideInput): string => (d.via === 'end_user' ? `the end user ${d.approver.id}` : d.approver.id);
/** Whether a decision's assertion verified, in a timeline's words. */
export const checkPhrase = (c: AssertionCheck): string =>
  c.verified ? `signed decision verified${c.kid ? ` with key ${c.kid}` : ''}` : `decision NOT verified: ${c.problem?.code ?? 'unknown'}`;

/** What the workflow itself recorded of the decisions: its edits and votes (the last status, or the outcome's votes) and, in old histories, refused attempts. */
export interface RecordedDecisions {
  edits: EditRecord[];
  approvals: ApprovalRecord[];
  legacyRefusals: RefusalRecord[];
}

/**
 * The record's votes, confirmations, edits and refusals: each vote and edit the workflow recorded,
 * backed by the accepted decision behind it (and its check), the end user's answers apart, and the
 * refused attempts. Also completes each attempt's timeline entry with what came of it.
 */
export function recordedDecisions(
  attempts: DecisionAttempt[],
  recorded: RecordedDecisions,
): Pick<AuditRecord, 'approvals' | 'confirmations' | 'edits' | 'refusals'> {
  // Each decision's timeline entry says what came of it, where it was accepted.
  for (const attempt of attempts) {
    const { input: d, check: c } = attempt;
    if (attempt.result && !attempt.result.ok) {
      const tried = d.via === 'end_user' ? END_USER_ATTEMPTS[d.decision] : d.decision;
      attempt.timelineEntry.event = `${deciderOf(d)} tried to ${tried} (via ${d.via ?? 'api'}): refused, ${refusalCode(attempt.result.type)}`;
    } else if (attempt.check !== UNSIGNED_DECISION) {
      attempt.timelineEntry.event += `; ${checkPhrase(c)}`;
    }
  }
  // The end user's answers are confirmations, never votes or approvers' edits: kept apart from here on.
  const accepted = attempts.filter((a) => a.result?.ok !== false);
  const successful = accepted.filter((a) => a.input.via !== 'end_user');
  const confirmations: AuditRecord['confirmations'] = accepted
    .filter((a) => a.input.via === 'end_user')
    .map(({ input: d, at, check: c }) => ({
      principal: d.approver.id,
      decision: d.decision,
      digest: d.digest,
      at,
      ...(d.reason ? { reason: redactText(d.reason) } : {}),
      ...(d.decision === 'edit' && d.args ? { args: redact(d.args) } : {}),
      ...c,
    }));

  const editsSource = recorded.edits;
  const approvalsSource = recorded.approvals;
  /** The accepted decision behind a vote the workflow recorded; an edit's approval is the edit itself. */
  const attemptOf = (v: ApprovalRecord): DecisionAttempt | undefined => {
    const who = canonicalId(v.approverId);
    if (v.via === 'edit') {
      const edit = editsSource.find((e) => e.toDigest === v.digest && canonicalId(e.editorId) === who);
      return successful.find((a) => a.input.decision === 'edit' && canonicalId(a.input.approver.id) === who && (!edit || a.input.digest === edit.fromDigest));
    }
    return successful.find((a) => a.input.decision === v.decision && a.input.digest === v.digest && canonicalId(a.input.approver.id) === who);
  };
  const missing: AssertionCheck = { verified: false, problem: { code: 'missing', message: 'no accepted decision in the history backs this vote' } };
  const approvals = approvalsSource.map((v) => ({
    who: v.approverId,
    decision: v.decision,
    groups: v.groups,
    at: v.at,
    tier: v.tier,
    digest: v.digest,
    via: v.via ?? 'api',
    ...(v.reason === undefined ? {} : { reason: redactText(v.reason) }),
    ...(attemptOf(v)?.check ?? missing),
  }));
  // An end user's adjustment the workflow recorded as an edit is backed by their own decision.
  const editAttemptOf = (e: { editorId: string; fromDigest: string }) =>
    accepted.find((a) => a.input.decision === 'edit' && canonicalId(a.input.approver.id) === canonicalId(e.editorId) && a.input.digest === e.fromDigest);
  const edits: AuditRecord['edits'] = editsSource.map((e) => ({
    editor: e.editorId,
    at: e.at,
    fromDigest: e.fromDigest,
    ...(e.toDigest === undefined ? {} : { toDigest: e.toDigest }),
    args: redact(e.args),
    ...(e.reason === undefined ? {} : { reason: redactText(e.reason) }),
    ...(editAttemptOf(e)?.check ?? missing),
  }));
  // Edits whose update never completed (the workflow ended first) are still decisions in the history.
  for (const attempt of successful) {
    const vote = attempt.input;
    if (vote.decision === 'edit' && !edits.some((e) => canonicalId(e.editor) === canonicalId(vote.approver.id) && e.fromDigest === vote.digest)) {
      edits.push({
        editor: vote.approver.id,
        at: attempt.at,
        fromDigest: vote.digest,
        args: redact(vote.args ?? {}),
        ...(vote.reason ? { reason: redactText(vote.reason) } : {}),
        ...attempt.check,
      });
    }
  }

  const refusals: AuditRecord['refusals'] = recorded.legacyRefusals.map((r) => ({
    who: r.approverId,
    ...(r.claimedId ? { claimed: r.claimedId } : {}),
    at: r.at,
    code: refusalCode(r.code),
    message: redactText(r.message),
    via: r.via,
    ...(r.decision === undefined ? {} : { decision: r.decision }),
    verified: false,
  }));
  for (const attempt of attempts) {
    if (!attempt.result || attempt.result.ok) continue;
    refusals.push({
      who: attempt.input.approver.id,
      at: attempt.result.at,
      code: refusalCode(attempt.result.type),
      message: redactText(attempt.result.message),
      via: attempt.input.via ?? 'api',
      decision: attempt.input.decision,
      verified: attempt.check.verified,
    });
  }
  return { approvals, confirmations, edits, refusals };
}
