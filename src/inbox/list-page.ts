/** The inbox's "Waiting for me" list (escaped templates, no inline script or style: see ./page-frame.ts). */
import { escapeHtml, page, riskBadge, time, type Frame, type InboxListItem } from './page-frame.js';

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
