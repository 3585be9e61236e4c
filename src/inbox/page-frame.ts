/**
 * The inbox's HTML, from small template functions: the frame every page shares, the escaping
 * helpers, the data the pages render, and the message page. (The pages: ./sign-in-page.ts,
 * ./list-page.ts, ./request-page.ts, ./edit-page.ts.) Every value is escaped where it is written;
 * no page has inline script, inline style or event-handler attributes (the CSP forbids them), so
 * styling and behaviour come from /inbox/static only. Element ids and form field names are a
 * contract with the browser tests and are kept stable (those the docs name are in docs/approvals.md
 * and docs/policy.md).
 */
import type { ApprovalView } from '../approvals/view.js';

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
export const textOf = (value: unknown): string =>
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

/** A time element for an ISO time (a dash when there is none). */
export const time = (iso: string | undefined): string => (iso ? `<time datetime="${escapeHtml(iso)}">${escapeHtml(iso)}</time>` : '—');
/** Pretty-printed JSON, escaped. */
export const json = (value: unknown): string => escapeHtml(JSON.stringify(value, null, 2) ?? 'undefined');
/** The risk as a badge (its class only from a plain word). */
export const riskBadge = (risk: string | undefined): string =>
  risk ? `<span class="risk risk-${escapeHtml(/^[a-z]+$/.test(risk) ? risk : 'unknown')}">${escapeHtml(risk)}</span>` : '—';
/** A hidden form field. */
export const hidden = (name: string, value: string): string => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`;

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

/** A page that only says something (not found, unavailable, a bad form). */
export function messagePage(frame: Frame, model: { heading: string; message: string; backHref?: string }): string {
  return page(
    frame,
    `<h1 id="message-title">${escapeHtml(model.heading)}</h1><p id="message-text">${escapeHtml(model.message)}</p>` +
      (model.backHref ? `<p><a id="message-back" href="${escapeHtml(model.backHref)}">Back</a></p>` : ''),
  );
}
