/**
 * The inbox's HTML, from small template functions. Every value is escaped where it is written;
 * no page has inline script, inline style or event-handler attributes (the CSP forbids them), so
 * styling and behaviour come from /inbox/static only. Element ids and form field names are a
 * contract with the browser tests and are kept stable (those the docs name are in docs/approvals.md
 * and docs/policy.md).
 */
import {
  describePrompt,
  flagsOnArgument,
  previewHeadline,
  provenanceKinds,
  type ApprovalView,
  type EndUserPlanView,
  type LinkView,
  type OverrideView,
  type PreviewView,
  type ProvenanceView,
} from '../approvals/view.js';
import type { EndUserConfirmation } from '../shared/index.js';
import type { DiffRow } from './diff.js';

/** The JSON the approval API answers for one request, plus what a later API may add. */
export type InboxRequestView = ApprovalView & {
  /** The tool's argument JSON schema, when the API carries it (drives the field-by-field edit form). */
  argsSchema?: unknown;
};

/** One row of `GET /v1/approvals`. */
export interface InboxListItem {
  requestId: string;
  tenant?: string;
  tool?: string;
  risk?: string;
  /** The agent's id (the visibility-backed list), or the older object form. */
  actor?: string | { id?: string; type?: string };
  expiresAt?: string;
  tier?: number;
  eligibleGroups?: string[];
  approvals?: number;
  reason?: string;
  state?: string;
}

/** A message carried to the next page after a redirect. */
export interface Flash {
  kind: 'ok' | 'error';
  message: string;
}

/** Who is signed in, for the page header. */
export interface PageApprover {
  id: string;
  tenant: string;
  groups: string[];
}

/** What every page's frame needs. */
export interface Frame {
  /** Where the router is mounted (e.g. `/inbox`). */
  base: string;
  title: string;
  approver?: PageApprover;
  /** The session's CSRF token, for the sign-out form. */
  csrf?: string;
  flash?: Flash;
}

/** A value as text: strings and numbers as they are, anything else as JSON (undefined and null: empty). */
const textOf = (value: unknown): string =>
  value === undefined || value === null
    ? ''
    : typeof value === 'string'
      ? value
      : typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint'
        ? value.toString()
        : (JSON.stringify(value) ?? '');

/** HTML-escapes any value (undefined and null become empty). */
export const escapeHtml = (value: unknown): string =>
  textOf(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const time = (iso: string | undefined): string => (iso ? `<time datetime="${escapeHtml(iso)}">${escapeHtml(iso)}</time>` : '—');
const json = (value: unknown): string => escapeHtml(JSON.stringify(value, null, 2) ?? 'undefined');
const riskBadge = (risk: string | undefined): string =>
  risk ? `<span class="risk risk-${escapeHtml(/^[a-z]+$/.test(risk) ? risk : 'unknown')}">${escapeHtml(risk)}</span>` : '—';
const hidden = (name: string, value: string): string => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`;

/** The "came from untrusted content" marker of a flagged argument (the kinds in its title). */
const untrustedMarker = (flags: ProvenanceView['untrusted']): string =>
  flags.length > 0
    ? ` <span class="untrusted-marker" title="${escapeHtml(flags.map((f) => `${f.path}: ${provenanceKinds(f.kinds)}`).join('; '))}">⚠ came from untrusted content</span>`
    : '';

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

/** The whole document around `body`. */
export function page(frame: Frame, body: string): string {
  const { base } = frame;
  const header = frame.approver
    ? `<nav class="top"><a id="nav-inbox" href="${escapeHtml(base)}/">Waiting for me</a>` +
      `<span id="signed-in-as">${escapeHtml(frame.approver.id)} · ${escapeHtml(frame.approver.tenant)} · ${escapeHtml(frame.approver.groups.join(', ') || 'no groups')}</span>` +
      `<form id="signout-form" method="post" action="${escapeHtml(base)}/signout">${hidden('csrf', frame.csrf ?? '')}<button id="signout-button" type="submit">Sign out</button></form></nav>`
    : '';
  const flash = frame.flash
    ? `<p id="flash" class="flash flash-${frame.flash.kind === 'ok' ? 'ok' : 'error'}" role="status">${escapeHtml(frame.flash.message)}</p>`
    : '';
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>${escapeHtml(frame.title)} · toolgate</title>` +
    `<link rel="stylesheet" href="${escapeHtml(base)}/static/inbox.css">` +
    `<script src="${escapeHtml(base)}/static/inbox.js" defer></script></head>` +
    `<body>${header}<main>${flash}${body}</main></body></html>`
  );
}

/** The sign-in page: paste a dev token, or sign in with the identity provider. */
export function signInPage(frame: Frame, model: { next: string; csrf: string; oidc: boolean; error?: string }): string {
  const { base } = frame;
  const error = model.error ? `<p id="signin-error" class="flash flash-error" role="alert">${escapeHtml(model.error)}</p>` : '';
  const oidc = model.oidc
    ? `<section id="signin-oidc-section"><h2>Single sign-on</h2>` +
      `<p><a id="signin-oidc" class="button" href="${escapeHtml(base)}/signin/oidc?next=${encodeURIComponent(model.next)}">Sign in with your identity provider</a></p></section>`
    : '';
  return page(
    frame,
    `<h1 id="signin-title">Sign in to the approver inbox</h1>${error}${oidc}` +
      `<section id="signin-token-section"><h2>Approver token</h2>` +
      '<p>For local development, issue a token and paste it here:</p>' +
      '<pre id="signin-command">npx toolgate token issue --sub alice --groups manager --tenant acme</pre>' +
      `<form id="signin-form" method="post" action="${escapeHtml(base)}/signin">` +
      hidden('csrf', model.csrf) +
      hidden('next', model.next) +
      '<label for="token">Token</label>' +
      '<textarea id="token" name="token" rows="4" required autocomplete="off" spellcheck="false"></textarea>' +
      '<button id="signin-submit" type="submit">Sign in</button></form></section>',
  );
}

/** "Waiting for me": the requests this approver may decide now. */
export function listPage(frame: Frame, model: { items: InboxListItem[]; nextHref?: string; firstHref?: string }): string {
  const { base } = frame;
  const rows = model.items
    .map(
      (item) =>
        `<tr data-request-id="${escapeHtml(item.requestId)}">` +
        `<td><a class="request-link" href="${escapeHtml(base)}/requests/${encodeURIComponent(item.requestId)}">${escapeHtml(item.requestId)}</a></td>` +
        `<td>${escapeHtml(item.tool)}</td><td>${riskBadge(item.risk)}</td><td>${escapeHtml(typeof item.actor === 'string' ? item.actor : item.actor?.id)}</td>` +
        `<td>${escapeHtml((item.eligibleGroups ?? []).join(', '))}</td><td>${escapeHtml(item.approvals ?? 0)}</td><td>${time(item.expiresAt)}</td></tr>`,
    )
    .join('');
  const table =
    model.items.length > 0
      ? '<table id="waiting-table"><thead><tr><th>Request</th><th>Tool</th><th>Risk</th><th>Requested by</th><th>Groups</th><th>Votes</th><th>Expires</th></tr></thead>' +
        `<tbody>${rows}</tbody></table>`
      : '<p id="waiting-empty">Nothing is waiting for you.</p>';
  const pager =
    (model.firstHref ? `<a id="first-page" href="${escapeHtml(model.firstHref)}">First page</a>` : '') +
    (model.nextHref ? `<a id="next-page" href="${escapeHtml(model.nextHref)}">Next page</a>` : '');
  return page(frame, `<h1 id="waiting-title">Waiting for me</h1>${table}${pager ? `<nav class="pager">${pager}</nav>` : ''}`);
}

const EDIT_FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** One field of the schema-guided edit form. */
export interface SchemaField {
  name: string;
  type: 'string' | 'number' | 'integer' | 'boolean' | 'json';
  enum?: unknown[];
  required: boolean;
  description?: string;
}

/** The fields of a schema-guided edit form: the schema's top-level properties, when it has usable ones. */
export function schemaFields(schema: unknown): SchemaField[] | undefined {
  if (!schema || typeof schema !== 'object') return undefined;
  const s = schema as { type?: unknown; properties?: unknown; required?: unknown };
  if (s.type !== 'object' || !s.properties || typeof s.properties !== 'object') return undefined;
  const required = new Set(Array.isArray(s.required) ? s.required.filter((r): r is string => typeof r === 'string') : []);
  const fields: SchemaField[] = [];
  for (const [name, property] of Object.entries(s.properties as Record<string, unknown>)) {
    // A property name that cannot be a form field name falls back to the JSON editor.
    if (!EDIT_FIELD_NAME.test(name)) return undefined;
    const p = (property ?? {}) as { type?: unknown; enum?: unknown; description?: unknown };
    const type: SchemaField['type'] = p.type === 'string' || p.type === 'number' || p.type === 'integer' || p.type === 'boolean' ? p.type : 'json';
    fields.push({
      name,
      type,
      ...(Array.isArray(p.enum) ? { enum: p.enum as unknown[] } : {}),
      required: required.has(name),
      ...(typeof p.description === 'string' ? { description: p.description } : {}),
    });
  }
  return fields.length > 0 ? fields : undefined;
}

function editForm(base: string, view: InboxRequestView, csrf: string): string {
  const action = `${escapeHtml(base)}/requests/${encodeURIComponent(view.requestId)}/edit/preview`;
  const args = view.args ?? {};
  const fields = schemaFields(view.argsSchema);
  let inputs: string;
  if (fields) {
    inputs =
      hidden('mode', 'fields') +
      fields
        .map((field) => {
          const id = `edit-arg-${field.name}`;
          const name = `arg.${field.name}`;
          const current = args[field.name];
          const label = `<label for="${escapeHtml(id)}">${escapeHtml(field.name)}${field.required ? ' *' : ''}${untrustedMarker(flagsOnArgument(view.provenance, field.name))}${field.description ? ` <small>${escapeHtml(field.description)}</small>` : ''}</label>`;
          if (field.enum) {
            const options = [
              '<option value="">(unset)</option>',
              ...field.enum.map((option) => {
                const value = JSON.stringify(option);
                return `<option value="${escapeHtml(value)}"${JSON.stringify(current) === value ? ' selected' : ''}>${escapeHtml(String(option))}</option>`;
              }),
            ].join('');
            return `${label}<select id="${escapeHtml(id)}" name="${escapeHtml(name)}" data-kind="enum">${options}</select>`;
          }
          if (field.type === 'boolean') {
            const option = (value: string, text: string) => `<option value="${value}"${textOf(current) === value ? ' selected' : ''}>${text}</option>`;
            return `${label}<select id="${escapeHtml(id)}" name="${escapeHtml(name)}" data-kind="boolean"><option value="">(unset)</option>${option('true', 'true')}${option('false', 'false')}</select>`;
          }
          if (field.type === 'number' || field.type === 'integer') {
            return `${label}<input id="${escapeHtml(id)}" name="${escapeHtml(name)}" type="number"${field.type === 'integer' ? ' step="1"' : ' step="any"'} value="${escapeHtml(current)}" data-kind="${field.type}"${field.required ? ' required' : ''}>`;
          }
          if (field.type === 'string') {
            return `${label}<input id="${escapeHtml(id)}" name="${escapeHtml(name)}" type="text" value="${escapeHtml(current)}" data-kind="string"${field.required ? ' required' : ''}>`;
          }
          return `${label}<textarea id="${escapeHtml(id)}" name="${escapeHtml(name)}" rows="4" data-kind="json" spellcheck="false">${current === undefined ? '' : json(current)}</textarea>`;
        })
        .join('');
  } else {
    inputs =
      hidden('mode', 'json') +
      '<label for="edit-args">New arguments (JSON; they replace all arguments)</label>' +
      `<textarea id="edit-args" name="args" rows="10" required spellcheck="false">${json(args)}</textarea>`;
  }
  return (
    `<form id="edit-form" class="decision" method="post" action="${action}"><h3>Edit arguments</h3>` +
    hidden('csrf', csrf) +
    hidden('digest', view.digest ?? '') +
    inputs +
    '<label for="edit-reason">Reason for the edit</label><input id="edit-reason" name="reason" type="text" maxlength="2000">' +
    '<p class="hint">Redacted values are shown as [REDACTED:…]: an edit replaces the arguments, so type the real value of every argument you keep.</p>' +
    '<button id="edit-preview-button" type="submit">Preview the edit</button></form>'
  );
}

/** The badges after a request's title: a rollback, a break-glass override. */
function badges(view: InboxRequestView): string {
  if (view.override || view.link?.kind === 'override') return ' <span id="break-glass-badge" class="badge badge-break-glass">BREAK-GLASS</span>';
  if (view.link?.kind === 'rollback') return ' <span id="rollback-badge" class="badge badge-rollback">ROLLBACK</span>';
  return '';
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
      `<form id="approve-form" class="decision" method="post" action="${action}"><h3>Approve</h3>` +
      hidden('csrf', csrf) +
      hidden('digest', view.digest ?? '') +
      hidden('decision', 'approve') +
      '<label for="approve-reason">Comment (optional)</label><input id="approve-reason" name="reason" type="text" maxlength="2000">' +
      '<button id="approve-button" type="submit">Approve</button></form>' +
      `<form id="reject-form" class="decision" method="post" action="${action}"><h3>Reject</h3>` +
      hidden('csrf', csrf) +
      hidden('digest', view.digest ?? '') +
      hidden('decision', 'reject') +
      '<label for="reject-reason">Reason (required)</label><textarea id="reject-reason" name="reason" rows="3" required maxlength="2000"></textarea>' +
      '<button id="reject-button" type="submit">Reject</button></form>' +
      editForm(base, view, csrf) +
      '</section>'
    : `<p id="cannot-decide">You cannot decide this request${view.cannotDecideBecause ? `: ${escapeHtml(view.cannotDecideBecause)}` : ''}.</p>`;
  return page(
    frame,
    `<h1 id="request-title">${escapeHtml(view.tool)} <small>${escapeHtml(view.requestId)}</small>${badges(view)}</h1>${overrideBanner(view.override)}${details}` +
      `<h2>Votes</h2>${votes}<h2>Edits</h2>${edits}${forms}`,
  );
}

/** What the API's policy preview answered, or why there is none. */
export type PolicyPreview =
  | { kind: 'decision'; outcome?: string; risk?: string; rule?: string; reasons?: string[]; eligibleGroups?: string[]; digest?: string }
  | { kind: 'unavailable'; message: string };

/** The edit preview: the diff, the policy's answer on the new arguments, and the final submit. */
export function editPreviewPage(
  frame: Frame,
  model: { view: InboxRequestView; csrf: string; args: Record<string, unknown>; reason?: string; diff: DiffRow[]; preview: PolicyPreview },
): string {
  const { base } = frame;
  const { view } = model;
  const cell = (value: unknown) => (value === undefined ? '' : `<code>${escapeHtml(JSON.stringify(value))}</code>`);
  const diff =
    model.diff.length > 0
      ? '<table id="args-diff"><thead><tr><th>Argument</th><th>Change</th><th>Before</th><th>After</th></tr></thead><tbody>' +
        model.diff
          .map(
            (row) =>
              `<tr class="diff-${row.kind}"><td>${escapeHtml(row.path)}</td><td>${row.kind}</td><td>${cell(row.before)}</td><td>${cell(row.after)}</td></tr>`,
          )
          .join('') +
        '</tbody></table>'
      : '<p id="args-diff-empty">The new arguments are the same as the current ones.</p>';
  const p = model.preview;
  const policy =
    p.kind === 'decision'
      ? '<dl id="policy-preview">' +
        `<dt>Outcome</dt><dd id="preview-outcome">${escapeHtml(p.outcome ?? '—')}</dd>` +
        `<dt>Risk</dt><dd id="preview-risk">${riskBadge(p.risk)}</dd>` +
        `<dt>Rule</dt><dd id="preview-rule">${escapeHtml(p.rule ?? '—')}</dd>` +
        `<dt>Who must approve</dt><dd id="preview-groups">${escapeHtml((p.eligibleGroups ?? []).join(', ') || '—')}</dd>` +
        `<dt>Reasons</dt><dd id="preview-reasons">${(p.reasons ?? []).map((r) => escapeHtml(r)).join('<br>') || '—'}</dd></dl>`
      : `<p id="policy-preview-unavailable" class="hint">${escapeHtml(p.message)}</p>`;
  return page(
    frame,
    `<h1 id="edit-preview-title">Edit ${escapeHtml(view.tool)} <small>${escapeHtml(view.requestId)}</small></h1>` +
      `<section id="edit-preview"><h2>Changes</h2>${diff}<h2>New arguments</h2><pre id="edit-new-args">${json(model.args)}</pre>` +
      `<h2>Policy on the new arguments</h2>${policy}` +
      '<p class="hint">Submitting sends the edit; policy judges it again and it counts as your approval where the new plan lets you approve.</p>' +
      `<form id="edit-confirm-form" class="decision" method="post" action="${escapeHtml(base)}/requests/${encodeURIComponent(view.requestId)}/decision">` +
      hidden('csrf', model.csrf) +
      hidden('digest', view.digest ?? '') +
      hidden('decision', 'edit') +
      hidden('args', JSON.stringify(model.args)) +
      hidden('reason', model.reason ?? '') +
      '<button id="edit-submit-button" type="submit">Submit the edit</button>' +
      `<a id="edit-cancel" href="${escapeHtml(base)}/requests/${encodeURIComponent(view.requestId)}">Cancel</a></form></section>`,
  );
}

/** A page that only says something (not found, unavailable, a bad form). */
export function messagePage(frame: Frame, model: { heading: string; message: string; backHref?: string }): string {
  return page(
    frame,
    `<h1 id="message-title">${escapeHtml(model.heading)}</h1><p id="message-text">${escapeHtml(model.message)}</p>` +
      (model.backHref ? `<p><a id="message-back" href="${escapeHtml(model.backHref)}">Back</a></p>` : ''),
  );
}
