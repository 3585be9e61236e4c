/**
 * The confirmation page of a one-click link: it shows the whole proposal and decides only on an
 * explicit POST from its own form. Every value is HTML-escaped; the view is the redacted
 * `approvalView`, and the page's own messages are redacted too.
 */
import { redactText } from '../egress/redact.js';
import { describePrompt, previewHeadline, provenanceKinds, type ApprovalView } from '../approvals/view.js';

/** What the link page shows. */
export type LinkPageModel =
  | {
      kind: 'confirm';
      view: ApprovalView;
      approverId: string;
      decisions: ('approve' | 'reject')[];
      linkExpiresAt: string;
      warning?: string;
    }
  | { kind: 'done' | 'error'; title: string; message: string };

const escape = (value: string | number | undefined | null): string =>
  String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}' +
  'dt{font-weight:600;margin-top:.6rem}pre{background:#f4f4f4;padding:.8rem;overflow:auto}' +
  'button{font-size:1rem;padding:.5rem 1.4rem;margin-right:.8rem}.warn{background:#fff3cd;padding:.6rem}';

/** Renders the page. */
export function renderLinkPage(model: LinkPageModel): string {
  const head = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>toolgate approval</title><style>${STYLE}</style></head><body>`;
  if (model.kind !== 'confirm') {
    // Messages may quote a workflow's or tool's error text: redacted like every view.
    return `${head}<h1>${escape(redactText(model.title))}</h1><p>${escape(redactText(model.message))}</p></body></html>`;
  }
  const { view } = model;
  const canDecide = view.canDecide && !model.warning;
  const buttons = model.decisions
    .map((decision) => `<button type="submit" name="decision" value="${decision}">${decision === 'approve' ? 'Approve' : 'Reject'}</button>`)
    .join('');
  return (
    `${head}<h1>${escape(view.tool)} for ${escape(view.tenant)}</h1>` +
    (model.warning ? `<p class="warn">${escape(redactText(model.warning))}</p>` : '') +
    `<dl><dt>Requested by</dt><dd>${escape(view.actor.id)} (${escape(view.actor.type)})${view.reason ? ` — ${escape(view.reason)}` : ''}</dd>` +
    `<dt>Risk</dt><dd>${escape(view.risk)} (rule ${escape(view.rule)})</dd>` +
    `<dt>Environment</dt><dd>${escape(view.environment)}</dd>` +
    `<dt>Runs as</dt><dd>${escape(view.runAs)}</dd>` +
    `<dt>Arguments</dt><dd><pre>${escape(JSON.stringify(view.args, null, 2))}</pre></dd>` +
    // What the agent's runtime says came from untrusted content (its silence vouches for nothing).
    (view.provenance && view.provenance.untrusted.length > 0
      ? `<dt>Came from untrusted content</dt><dd><ul>${view.provenance.untrusted
          .map((flag) => `<li class="warn">⚠ <code>${escape(flag.path)}</code> came from untrusted content: ${escape(provenanceKinds(flag.kinds))}</li>`)
          .join('')}</ul></dd>`
      : '') +
    (view.provenance?.prompt ? `<dt>Prompt</dt><dd>${escape(describePrompt(view.provenance.prompt))}</dd>` : '') +
    // What the tool says it would do (a dry run), or that it could not say: part of what the digest binds.
    (view.preview
      ? `<dt>${escape(previewHeadline(view.preview))}</dt><dd>${view.preview.status === 'ok' ? `<pre>${escape(view.preview.text)}</pre>` : `<p class="warn">${escape(view.preview.text)}</p>`}</dd>`
      : '') +
    `<dt>Digest</dt><dd><code>${escape(view.digest)}</code></dd>` +
    `<dt>State</dt><dd>${escape(view.state)}; expires ${escape(view.expiresAt)}</dd>` +
    `<dt>You</dt><dd>${escape(model.approverId)}; this link expires ${escape(model.linkExpiresAt)}</dd></dl>` +
    (canDecide
      ? `<form method="post">${buttons}</form>`
      : `<p>You cannot decide this request${view.cannotDecideBecause ? `: ${escape(view.cannotDecideBecause)}` : ''}.</p>`) +
    '</body></html>'
  );
}
