/** Notifications as the one line `toolgate dev` prints: a shared message (see ./facts.ts), terminal-safe. */
import { provenanceKinds } from '../approvals/view.js';
import { LINE_BREAKS, OVERRIDE_ENDS, facts, plain, readableTime, timeLeft } from './facts.js';
import type { ApprovalNotification } from './types.js';

/** Removes terminal control characters (escape sequences could rewrite what the terminal shows). */
function terminalSafe(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}

/**
 * The line `toolgate dev` prints for a notification: a shared message (a terminal is a shared
 * place, so never a decision link). Waiting requests: tool, risk, tenant, requester, groups,
 * deadline and the review URL; outcomes: how the request ended.
 */
export function consoleLine(notification: ApprovalNotification, now = Date.now()): string {
  const n = facts(notification);
  const requester = `requested by ${n.actor}${n.onBehalfOf && n.onBehalfOf.length > 0 ? ` for ${n.onBehalfOf.map((p) => p.id).join(', ')}` : ''}`;
  const breakGlass = n.override !== undefined || n.kind === 'override' || n.requestLink?.kind === 'override';
  const o = n.override;
  const overrides = o ? ` · overrides ${o.deniedRule} (${o.deniedCode}), asked by ${o.by}: "${plain(o.reason.replace(LINE_BREAKS, ' ⏎ '), 200)}"` : '';
  const rollback = n.requestLink?.kind === 'rollback' ? ` · rollback of ${n.requestLink.requestId}` : '';
  if (n.kind === 'outcome') {
    const start = breakGlass ? `BREAK-GLASS override ${OVERRIDE_ENDS[n.outcome ?? ''] ?? 'ended'}: request ${n.requestId} ` : `request ${n.requestId} `;
    return terminalSafe(`toolgate: ${start}(${n.tool}, tenant ${n.tenant}, ${requester}) ${n.summary ?? 'ended'}${overrides}${rollback}`);
  }
  let label = n.kind === 'requested' ? 'approval needed' : n.kind === 'escalated' ? `escalated to tier ${n.tier}` : 'still waiting for approval';
  if (breakGlass) {
    label =
      n.kind === 'requested' || n.kind === 'override'
        ? 'BREAK-GLASS override requested'
        : n.kind === 'escalated'
          ? `BREAK-GLASS override escalated to tier ${n.tier}`
          : 'BREAK-GLASS override still waiting for a second person';
  }
  const deadline = n.expiresAt ? ` · expires ${readableTime(n.expiresAt)} (${timeLeft(n.expiresAt, now)})` : '';
  const flagged =
    n.provenance && n.provenance.untrusted.length > 0
      ? ` · ⚠ from untrusted content: ${plain(n.provenance.untrusted.map((flag) => `${flag.path} (${provenanceKinds(flag.kinds)})`).join(', '), 300)}`
      : '';
  const preview = n.preview ? ` · ${n.preview.headline}: ${plain(n.preview.text.replace(LINE_BREAKS, ' ⏎ '), 200)}` : '';
  return terminalSafe(
    `toolgate: ${label}: ${n.tool} (${n.risk} risk)${overrides}${rollback} · tenant ${n.tenant} · ${requester} · groups ${n.groups.join(', ') || '(none)'}${deadline}${flagged}${preview} · review ${n.reviewUrl}`,
  );
}
