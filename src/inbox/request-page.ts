/**
 * The inbox's request page: everything an approver must see before deciding (the request, policy's
 * reasons, provenance, the dry-run preview, a break-glass override or rollback link, the end
 * user's answers), the votes and edits so far, and the decision forms. Escaped templates, no inline
 * script or style (see ./page-frame.ts); element ids are a contract with the browser tests.
 */
import {
  describePrompt,
  previewHeadline,
  provenanceKinds,
  type EndUserPlanView,
  type LinkView,
  type OverrideView,
  type PreviewView,
  type ProvenanceView,
} from '../approvals/view.js';
import type { EndUserConfirmation } from '../shared/index.js';
import { editForm } from './edit-page.js';
import { escapeHtml, hidden, json, page, riskBadge, time, type Frame, type InboxRequestView } from './page-frame.js';

/**
 * What the agent runtime says of untrusted content: each flagged argument with the kinds of
 * content, and the prompt metadata. Nothing when it said nothing — which vouches for nothing.
 */
function provenanceDetails(provenance: ProvenanceView | undefined): string {
  if (!provenance) return '';
  const flagged =
    provenance.untrusted.length > 0
      ? '<dt>Came from untrusted content</dt><dd id="request-untrusted"><ul>' +
        provenance.untrusted
          .map(
            (flag) =>
              `<li class="untrusted" data-path="${escapeHtml(flag.path)}">⚠ <code>${escapeHtml(flag.path)}</code> came from untrusted content: ${escapeHtml(provenanceKinds(flag.kinds))}</li>`,
          )
          .join('') +
        '</ul><p class="hint">As the agent\'s runtime reports it; an argument not listed is not thereby trusted.</p></dd>'
      : '';
  const prompt = provenance.prompt ? `<dt>Prompt</dt><dd id="request-prompt">${escapeHtml(describePrompt(provenance.prompt))}</dd>` : '';
  return flagged + prompt;
}

/**
 * The tool's dry-run preview: what it says the call would do, marked as a preview, or that it
 * failed or timed out (the request can be decided all the same). Nothing for tools without one.
 */
function previewDetails(preview: PreviewView | undefined): string {
  if (!preview) return '';
  const headline = previewHeadline(preview);
  const note = preview.truncated ? '<p class="hint">Shortened to the size the tool\'s manifest allows.</p>' : '';
  const body =
    preview.status === 'ok'
      ? `<pre>${escapeHtml(preview.text)}</pre>${note}`
      : `<p>${escapeHtml(preview.text)}</p><p class="hint">Decide without it, or reject.</p>`;
  return `<dt>${escapeHtml(headline.charAt(0).toUpperCase() + headline.slice(1))}</dt><dd id="request-preview" class="preview preview-${preview.status}" data-status="${preview.status}">${body}</dd>`;
}

/**
 * The banner of a break-glass override, first on the page: approving overrides a policy denial.
 * Says which rule denied it and why, who asked and why, and who is told. Nothing otherwise.
 */
function overrideBanner(override: OverrideView | undefined): string {
  if (!override) return '';
  const reasons =
    override.deniedReasons.length > 0
      ? `<ul id="break-glass-denied-reasons">${override.deniedReasons.map((r) => `<li>${escapeHtml(r)}</li>`).join('')}</ul>`
      : '';
  return (
    '<section id="break-glass-banner" class="break-glass" role="alert"><h2>BREAK-GLASS OVERRIDE</h2>' +
    `<p id="break-glass-warning">Approving overrides a policy denial: rule <code>${escapeHtml(override.deniedRule)}</code> denied this call (<code>${escapeHtml(override.deniedCode)}</code>).</p>` +
    reasons +
    `<p id="break-glass-asked">Asked by ${escapeHtml(override.by)} under break-glass rule <code>${escapeHtml(override.breakGlass)}</code>: ${escapeHtml(override.reason)}</p>` +
    `<p class="hint">Always notified: ${escapeHtml(override.notify.join(', ') || '—')}. Approve only if you are the second person this override needs.</p></section>`
  );
}

/** The request this one overrides or rolls back, with a link to its page (its history is closed and unchanged). */
function linkDetails(base: string, link: LinkView | undefined): string {
  if (!link) return '';
  const href = `${escapeHtml(base)}/requests/${encodeURIComponent(link.requestId)}`;
  const by = `${link.by.id}${link.by.groups.length > 0 ? ` (${link.by.groups.join(', ')})` : ''}`;
  return (
    `<dt>${link.kind === 'rollback' ? 'Rolls back' : 'Overrides'}</dt><dd id="request-link" data-kind="${escapeHtml(link.kind)}">` +
    `<p id="request-link-summary">${escapeHtml(link.summary)}</p>` +
    `<p><a id="request-link-original" href="${href}">Original request ${escapeHtml(link.requestId)}</a> (${escapeHtml(link.tool)}) · asked by ${escapeHtml(by)}</p>` +
    (link.kind === 'rollback' ? `<p id="request-link-reason">Reason: ${escapeHtml(link.reason)}</p>` : '') +
    '</dd>'
  );
}

/** Who the end user is and what they answered: never among the votes, said as "confirmed by the end user". */
function endUserDetails(endUser: EndUserPlanView | undefined, confirmations: readonly EndUserConfirmation[] | undefined): string {
  const answers = confirmations ?? [];
  if (!endUser && answers.length === 0) return '';
  const said = { approve: 'confirmed by the end user', reject: 'declined by the end user', edit: 'arguments adjusted by the end user' } as const;
  const plan = endUser ? `<dt>End user</dt><dd id="request-end-user">${escapeHtml(endUser.note)}</dd>` : '';
  const list =
    answers.length > 0
      ? `<dt>End user's answers</dt><dd id="request-confirmations"><ul>${answers
          .map(
            (answer) =>
              `<li class="confirmation" data-decision="${escapeHtml(answer.decision)}">${escapeHtml(`${said[answer.decision] ?? answer.decision} ${answer.principal}`)} ${time(answer.at)}` +
              ` on <code>${escapeHtml(answer.digest.slice(0, 12))}</code>${answer.reason ? `: ${escapeHtml(answer.reason)}` : ''}</li>`,
          )
          .join('')}</ul></dd>`
      : '';
  return plan + list;
}

/** The badges after a request's title: a rollback, a break-glass override. */
function badges(view: InboxRequestView): string {
  if (view.override || view.link?.kind === 'override') return ' <span id="break-glass-badge" class="badge badge-break-glass">BREAK-GLASS</span>';
  if (view.link?.kind === 'rollback') return ' <span id="rollback-badge" class="badge badge-rollback">ROLLBACK</span>';
  return '';
}

/**
 * One decision's form (`approve-form`, `reject-form`): posts the decision with the session's CSRF
 * token and the digest of what the page shows, so the decision counts only for that proposal.
 */
function decisionForm(post: { action: string; csrf: string; digest: string }, decision: 'approve' | 'reject', reasonField: string): string {
  const title = decision === 'approve' ? 'Approve' : 'Reject';
  return (
    `<form id="${decision}-form" class="decision" method="post" action="${post.action}"><h3>${title}</h3>` +
    hidden('csrf', post.csrf) +
    hidden('digest', post.digest) +
    hidden('decision', decision) +
    reasonField +
    `<button id="${decision}-button" type="submit">${title}</button></form>`
  );
}

/** The request page: everything the approver must see, the history, and the decision forms. */
export function requestPage(frame: Frame, model: { view: InboxRequestView; csrf: string }): string {
  const { base } = frame;
  const { view, csrf } = model;
  const action = `${escapeHtml(base)}/requests/${encodeURIComponent(view.requestId)}/decision`;
  const principals = (view.onBehalfOf ?? []).map((p) => `${p.id} (${p.type})`).join(', ');
  const planGroups = view.plan ? [...view.plan.groups, ...view.plan.allOf.map((g) => `all of ${g}`)] : [];
  const plan = view.plan
    ? `${view.plan.name}: ${
        planGroups.length > 0 ? `${view.plan.minApprovals} approval(s) from ${planGroups.join(', ')}` : 'no approver group'
      }${view.plan.endUser ? `${planGroups.length > 0 ? ', or' : ';'} the end user's confirmation` : ''}`
    : '—';
  const details =
    '<dl id="request-details">' +
    linkDetails(base, view.link) +
    `<dt>State</dt><dd id="request-state">${escapeHtml(view.state)}${view.outcome ? ` (outcome ${escapeHtml(view.outcome.status)})` : ''}</dd>` +
    `<dt>Tool</dt><dd id="request-tool">${escapeHtml(view.tool)}${view.toolDigest ? ` <code class="digest">${escapeHtml(view.toolDigest.slice(0, 12))}</code>` : ''}</dd>` +
    // An API from before signed manifests sends no signers: nothing to show then.
    ((view.toolSigners ?? []).length > 0
      ? `<dt>Tool signed by</dt><dd id="request-tool-signers">${escapeHtml((view.toolSigners ?? []).map((s) => `${s.role} (${s.key})`).join(', '))}</dd>`
      : '') +
    `<dt>Requested by</dt><dd id="request-actor">${escapeHtml(view.actor.id)} (${escapeHtml(view.actor.type)})${principals ? ` on behalf of ${escapeHtml(principals)}` : ''}</dd>` +
    `<dt>Reason</dt><dd id="request-reason">${escapeHtml(view.reason ?? '—')}</dd>` +
    `<dt>Risk</dt><dd id="request-risk">${riskBadge(view.risk)}</dd>` +
    `<dt>Rule</dt><dd id="request-rule">${escapeHtml(view.rule)}</dd>` +
    `<dt>Policy says</dt><dd id="request-reasons">${view.reasons.length > 0 ? `<ul>${view.reasons.map((r) => `<li>${escapeHtml(r)}</li>`).join('')}</ul>` : '—'}</dd>` +
    `<dt>Environment</dt><dd id="request-environment">${escapeHtml(view.environment)}</dd>` +
    `<dt>Runs as</dt><dd id="request-run-as">${escapeHtml(view.runAs ?? '—')}</dd>` +
    `<dt>Approval plan</dt><dd id="request-plan">${escapeHtml(plan)}; eligible now: ${escapeHtml(view.eligibleGroups.join(', ') || '—')}</dd>` +
    `<dt>Expires</dt><dd id="request-expires">${time(view.expiresAt)}</dd>` +
    `<dt>Digest</dt><dd><code id="request-digest">${escapeHtml(view.digest ?? '—')}</code></dd>` +
    `<dt>Policy digest</dt><dd><code id="request-policy-digest">${escapeHtml(view.policyDigest ?? '—')}</code></dd>` +
    `<dt>Arguments (redacted)</dt><dd><pre id="request-args">${json(view.args ?? {})}</pre></dd>` +
    `${provenanceDetails(view.provenance)}${previewDetails(view.preview)}${endUserDetails(view.endUser, view.confirmations)}</dl>`;
  const votes =
    view.approvals.length > 0
      ? '<table id="votes-table"><thead><tr><th>Who</th><th>Decision</th><th>Groups</th><th>Via</th><th>Reason</th><th>When</th></tr></thead><tbody>' +
        view.approvals
          .map(
            (vote) =>
              `<tr><td>${escapeHtml(vote.approverId)}</td><td>${escapeHtml(vote.decision)}</td><td>${escapeHtml(vote.groups.join(', '))}</td>` +
              `<td>${escapeHtml(vote.via ?? 'api')}</td><td>${escapeHtml(vote.reason ?? '')}</td><td>${time(vote.at)}</td></tr>`,
          )
          .join('') +
        '</tbody></table>'
      : '<p id="votes-empty">No votes on this version yet.</p>';
  const edits =
    view.edits.length > 0
      ? '<table id="edits-table"><thead><tr><th>Who</th><th>When</th><th>From → to digest</th><th>Reason</th><th>New arguments</th></tr></thead><tbody>' +
        view.edits
          .map(
            (edit) =>
              `<tr><td>${escapeHtml(edit.editorId)}</td><td>${time(edit.at)}</td>` +
              `<td><code>${escapeHtml(edit.fromDigest.slice(0, 12))}</code> → <code>${escapeHtml(edit.toDigest?.slice(0, 12) ?? 'pending')}</code></td>` +
              `<td>${escapeHtml(edit.reason ?? '')}</td><td><pre>${json(edit.args)}</pre></td></tr>`,
          )
          .join('') +
        '</tbody></table>'
      : '<p id="edits-empty">No edits.</p>';
  const forms = view.canDecide
    ? '<section id="decide"><h2>Decide</h2>' +
      decisionForm(
        { action, csrf, digest: view.digest ?? '' },
        'approve',
        '<label for="approve-reason">Comment (optional)</label><input id="approve-reason" name="reason" type="text" maxlength="2000">',
      ) +
      decisionForm(
        { action, csrf, digest: view.digest ?? '' },
        'reject',
        '<label for="reject-reason">Reason (required)</label><textarea id="reject-reason" name="reason" rows="3" required maxlength="2000"></textarea>',
      ) +
      editForm(base, view, csrf) +
      '</section>'
    : `<p id="cannot-decide">You cannot decide this request${view.cannotDecideBecause ? `: ${escapeHtml(view.cannotDecideBecause)}` : ''}.</p>`;
  return page(
    frame,
    `<h1 id="request-title">${escapeHtml(view.tool)} <small>${escapeHtml(view.requestId)}</small>${badges(view)}</h1>${overrideBanner(view.override)}${details}` +
      `<h2>Votes</h2>${votes}<h2>Edits</h2>${edits}${forms}`,
  );
}
