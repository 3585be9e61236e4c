/**
 * The four questions of an audit record — who initiated it, who allowed it, under which identity
 * it left, what it produced — answered in a sentence each, from the record's parts, saying where an
 * answer rests on something that does not verify.
 */
import type { RequestLink } from '../shared/index.js';
import type { AssertionCheck, AuditRecord } from './record-types.js';

function admissionPhrase(a: AuditRecord['admission'], link?: RequestLink): string {
  // A linked request was not asked for by an agent: the approval API admitted it for the person who asked.
  if (a.verified && link)
    return `admitted by the approval API for ${link.by.id}, who signed in as an approver (front-door assertion signed with key ${a.kid ?? '?'})`;
  if (a.verified) return `identity from a verified agent credential (front-door assertion signed with key ${a.kid ?? '?'})`;
  if (!a.present && a.problem?.code === 'unsigned') return 'identity NOT verified: the request predates signed front-door admissions';
  return `identity NOT verified: no valid front-door assertion (${a.problem?.code ?? 'unknown'}: ${a.problem?.message ?? ''}); these are the claims of whoever started the workflow`;
}

/** What a linked request is, after the requester's name: `(rollback of r-1)`, `(break-glass override of r-1, asked by sam)`. */
function linkPhrase(link: RequestLink | undefined): string {
  if (!link) return '';
  return link.kind === 'rollback' ? ` (rollback of ${link.requestId})` : ` (break-glass override of ${link.requestId}, asked by ${link.by.id})`;
}

/** The end user's answer in the words of `whoAllowed`. */
const END_USER_ANSWERS = { approve: 'confirmed', reject: 'declined', edit: 'arguments adjusted' } as const;

/** The record's four answers, from the rest of the record. */
export function answersOf(r: Omit<AuditRecord, 'answers'>): AuditRecord['answers'] {
  const chain = r.initiatedBy.onBehalfOf.length > 0 ? ` on behalf of ${r.initiatedBy.onBehalfOf.map((p) => `${p.type} ${p.id}`).join(' → ')}` : '';
  const whoInitiated =
    `${r.initiatedBy.actor.type} ${r.initiatedBy.actor.id || '?'}${linkPhrase(r.link)}${chain} (tenant ${r.initiatedBy.tenant || '?'}, ${r.initiatedBy.environment || '?'}) at ${r.initiatedBy.at}` +
    `${r.initiatedBy.reason ? `: "${r.initiatedBy.reason}"` : ''}; ${admissionPhrase(r.admission, r.link)}`;
  const policy = r.decision
    ? `policy rule ${r.decision.rule} decided ${r.decision.outcome} (risk ${r.decision.risk}, policy ${r.decision.policyDigest.slice(0, 12) || 'none'})`
    : 'no policy decision recorded';
  const verification = (a: AssertionCheck) => (a.verified ? 'verified decision' : `UNVERIFIED decision: ${a.problem?.code ?? 'unknown'}`);
  const confirmation = (c: AssertionCheck) => (c.verified ? 'verified confirmation' : `UNVERIFIED confirmation: ${c.problem?.code ?? 'unknown'}`);
  const approvers = r.approvals.filter((a) => a.decision === 'approve');
  const rejecters = r.approvals.filter((a) => a.decision === 'reject');
  const approverList = approvers.map((a) => `${a.who} (tier ${a.tier}, via ${a.via}, ${a.at}, ${verification(a)})`).join(', ');
  let people = '';
  // The end user answers for themselves: said as such, before (and never as) an approver's vote.
  for (const c of r.confirmations ?? []) people += `; ${END_USER_ANSWERS[c.decision]} by the end user ${c.principal} (${c.at}, ${confirmation(c)})`;
  // An override's second person is named in its own clause below.
  if (approvers.length > 0 && !r.override) people += `; approved by ${approverList}`;
  if (rejecters.length > 0) people += `; rejected by ${rejecters.map((a) => `${a.who} (${a.at}, ${verification(a)})`).join(', ')}`;
  if (r.edits.length > 0) people += `; arguments edited by ${r.edits.map((e) => e.editor).join(', ')}`;
  if (r.status === 'expired') people += '; nobody decided before expiry';
  let allowed = `${policy}${people}`;
  if (r.override) {
    const o = r.override;
    const second = approvers.length > 0 ? `confirmed by ${approverList}` : 'not confirmed by a second person';
    allowed = `break-glass override ${o.breakGlass} of ${o.deniedRule} (${o.deniedCode}) asked by ${o.by} ("${o.reason}"), ${second}; ${policy}${people}`;
  }
  const whoAllowed = r.ranAs ? allowed : `nobody: ${allowed}`;
  const underWhichIdentity = r.ranAs
    ? `${r.ranAs.runAs} (idempotency key ${r.ranAs.idempotencyKey}, ${r.ranAs.attempts} attempt(s))`
    : 'it never left: no execution';
  let whatItProduced: string;
  if (!r.outcome) whatItProduced = 'nothing yet: the request is still open';
  else if (r.outcome.status === 'completed' && r.outcome.withheld) {
    whatItProduced = `completed (the tool acted), result withheld: ${r.outcome.withheld.code}: ${r.outcome.withheld.reason}`;
  } else if (r.outcome.status === 'completed') {
    const redactions = Object.entries(r.outcome.egress?.redactions ?? {})
      .map(([rule, n]) => `${rule}×${n}`)
      .join(', ');
    whatItProduced = `completed: ${r.outcome.result ?? 'null'}${r.outcome.egress ? ` (${r.outcome.egress.bytes} bytes${redactions ? `, redacted ${redactions}` : ''})` : ''}`;
  } else whatItProduced = `${r.outcome.status}${r.outcome.error ? `: ${r.outcome.error.type}: ${r.outcome.error.message}` : ''}`;
  return { whoInitiated, whoAllowed, underWhichIdentity, whatItProduced };
}
