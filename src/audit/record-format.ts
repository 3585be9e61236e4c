/** The text form of an audit record: what `toolgate audit show` prints. */
import { describePrompt, previewHeadline, provenanceKinds } from '../approvals/view.js';
import { END_USER_VERBS } from './record-decisions.js';
import { RESULT_SUMMARY_CHARS, type AssertionCheck, type AuditRecord } from './record-types.js';
import { describeShadow, oneLine } from './recorded-values.js';

/** A human-readable rendering of a record, for `toolgate audit show`. */
export function formatAuditRecord(r: AuditRecord): string {
  const mark = (c: AssertionCheck) => (c.verified ? `verified${c.kid ? ` (key ${c.kid})` : ''}` : `NOT verified (${c.problem?.code ?? 'unknown'})`);
  const lines = [
    `request ${r.requestId}  (${r.workflowId}${r.traceId ? `, trace ${r.traceId}` : ''})  status: ${r.status}`,
    '',
    `who initiated:          ${r.answers.whoInitiated}`,
    `who allowed:            ${r.answers.whoAllowed}`,
    `under which identity:   ${r.answers.underWhichIdentity}`,
    `what it produced:       ${r.answers.whatItProduced}`,
    '',
    `admission: ${r.admission.present ? 'front-door assertion' : 'no front-door assertion'}, ${mark(r.admission)}${r.admission.problem ? ` — ${r.admission.problem.message}` : ''}`,
    `proposal: ${r.proposal.tool}${r.proposal.toolDigest ? ` (tool ${r.proposal.toolDigest.slice(0, 12)})` : ''}${r.proposal.digest ? ` digest ${r.proposal.digest}` : ''}`,
    ...(r.proposal.toolSigners ? [`  manifest signed by ${r.proposal.toolSigners.map((s) => `${s.role} (${s.key})`).join(', ')}`] : []),
    `  args: ${JSON.stringify(r.proposal.args)}`,
    ...(r.proposal.preview ? [`  ${previewHeadline(r.proposal.preview)}: ${oneLine(r.proposal.preview.text, RESULT_SUMMARY_CHARS)}`] : []),
    ...(r.provenance?.untrusted.length
      ? [`  untrusted (the runtime's claim): ${r.provenance.untrusted.map((flag) => `${flag.path} from ${provenanceKinds(flag.kinds)}`).join('; ')}`]
      : []),
    ...(r.provenance?.prompt ? [`  prompt: ${describePrompt(r.provenance.prompt, 100)}`] : []),
  ];
  if (r.link) {
    const what = r.link.kind === 'rollback' ? 'rollback of' : 'break-glass override of';
    lines.splice(
      2,
      0,
      `link: ${what} ${r.link.requestId} (${r.link.tool}), asked by ${r.link.by.id}${r.link.by.groups.length ? ` [${r.link.by.groups.join(', ')}]` : ''}: "${oneLine(r.link.reason, 500)}"`,
    );
  }
  if (r.decision) {
    lines.push(
      `decision: ${r.decision.outcome} by ${r.decision.rule}, risk ${r.decision.risk}${r.decision.sealed === undefined ? '' : r.decision.sealed ? ', sealed' : ', NOT sealed'}${r.decision.reasons.length ? ` — ${r.decision.reasons.join('; ')}` : ''}`,
    );
  }
  if (r.override) {
    const o = r.override;
    lines.push(
      `override: BREAK-GLASS ${o.breakGlass} overrode ${o.deniedRule} (${o.deniedCode})${o.deniedReasons.length ? ` — ${o.deniedReasons.join('; ')}` : ''}; ` +
        `asked by ${o.by}: "${oneLine(o.reason, 500)}"; notified ${o.notify.join(', ') || 'nobody'}`,
    );
  }
  if (r.shadow) lines.push(`shadow policy (recorded, not enforced): ${describeShadow(r.shadow)}`);
  for (const a of r.approvals)
    lines.push(
      `vote: ${a.who} ${a.decision} at ${a.at}, tier ${a.tier}, via ${a.via}, digest ${a.digest.slice(0, 12)}, ${mark(a)}${a.reason ? ` — ${a.reason}` : ''}`,
    );
  for (const c of r.confirmations ?? [])
    lines.push(
      `confirmation: the end user ${c.principal} ${END_USER_VERBS[c.decision]} at ${c.at}, digest ${c.digest.slice(0, 12)}, ${mark(c)}` +
        `${c.args ? `: ${JSON.stringify(c.args)}` : ''}${c.reason ? ` — ${c.reason}` : ''}`,
    );
  for (const e of r.edits) lines.push(`edit: ${e.editor} at ${e.at}, ${mark(e)}: ${JSON.stringify(e.args)}${e.reason ? ` — ${e.reason}` : ''}`);
  for (const f of r.refusals) lines.push(`refused: ${f.who ?? `unverified ${f.claimed ?? 'caller'}`} at ${f.at} via ${f.via}: ${f.code} — ${f.message}`);
  for (const l of r.linked ?? []) lines.push(`linked: ${l.kind === 'rollback' ? 'rollback' : 'break-glass override'} ${l.requestId} (${l.status})`);
  if (r.linkedUnavailable) lines.push(`linked: not listed (${r.linkedUnavailable})`);
  for (const t of r.trustAnchors)
    lines.push(`trusted keys (${t.at}): request ${t.requestKeys.join(', ') || 'none'}; decision ${t.decisionKeys.join(', ') || 'none'}`);
  lines.push('', 'timeline:');
  for (const t of r.timeline) lines.push(`  ${t.at}  ${t.event}`);
  return `${lines.join('\n')}\n`;
}
