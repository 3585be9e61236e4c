/**
 * The approval plans a policy declares, resolved: `approvals:` plans (groups, quorum, escalation,
 * expiry, reminders) and the `break_glass:` rules that open a second person's round on a denial.
 */
import type { ApprovalPlan, EscalationTier } from '../shared/index.js';
import { BREAK_GLASS_BOUNDS } from './break-glass.js';
import { NO_APPROVAL, type ApprovalPlanDocument, type BreakGlassDocument } from './document.js';
import type { PolicyIssue } from './errors.js';
import type { BreakGlassRule } from './model.js';
import { duration, type Defined } from './sections.js';

/** An `approvals:` plan resolved (durations in ms, defaults applied), or undefined after reporting its issues. */
export function resolvePlan(name: string, { source, value: plan }: Defined<ApprovalPlanDocument>, issues: PolicyIssue[]): ApprovalPlan | undefined {
  const at = (...path: (string | number)[]) => ['approvals', name, ...path];
  const before = issues.length;
  if (name === NO_APPROVAL) issues.push(source.issue(at(), `"${NO_APPROVAL}" is reserved (it means no approval); choose another plan name`, { key: true }));
  const groups = plan.groups ?? [];
  const allOf = plan.all_of ?? [];
  const endUser = plan.end_user === true;
  // The end user alone may satisfy an end_user plan, so it needs no group; any other plan does.
  if (groups.length === 0 && allOf.length === 0 && !endUser) {
    issues.push(source.issue(at(), 'must list groups or all_of (or set end_user: true): nobody could approve this plan'));
  }
  const minApprovals = plan.min_approvals ?? Math.max(1, allOf.length);
  if (minApprovals < allOf.length) {
    issues.push(source.issue(at('min_approvals'), `must be at least ${allOf.length} (one distinct person per all_of group)`));
  }
  const expiresAfterMs = duration(source, at('expires_after'), plan.expires_after, issues);
  const escalation: EscalationTier[] = [];
  let previous = 0;
  for (const [index, tier] of (plan.escalation ?? []).entries()) {
    const afterMs = duration(source, at('escalation', index, 'after'), tier.after, issues);
    if (afterMs === undefined) continue;
    if (afterMs <= previous) issues.push(source.issue(at('escalation', index, 'after'), 'must be later than the previous escalation tier'));
    if (expiresAfterMs !== undefined && afterMs >= expiresAfterMs) {
      issues.push(source.issue(at('escalation', index, 'after'), `must be earlier than expires_after (${plan.expires_after})`));
    }
    previous = afterMs;
    escalation.push({ afterMs, groups: [...tier.groups] });
  }
  const remindEveryMs = plan.remind_every === undefined ? undefined : duration(source, at('remind_every'), plan.remind_every, issues);
  if (remindEveryMs !== undefined && remindEveryMs < 1000) issues.push(source.issue(at('remind_every'), 'must be at least 1s'));
  if (issues.length > before || expiresAfterMs === undefined) return undefined;
  return {
    name,
    groups: [...groups],
    allOf: [...allOf],
    minApprovals,
    rejectionsToDeny: plan.rejections_to_deny ?? 1,
    escalation,
    expiresAfterMs,
    ...(remindEveryMs === undefined ? {} : { remindEveryMs }),
    // Only when set, so the plans (and proposal digests) of existing policies keep their shape.
    ...(endUser ? { endUser: true as const } : {}),
  };
}

/**
 * The `break_glass:` rules, resolved and in name order (the order `decide()` tries them in): each
 * names tools of the policy and gives its second person 1m..1h.
 */
export function resolveBreakGlass(
  docs: ReadonlyMap<string, Defined<BreakGlassDocument>>,
  tools: ReadonlyMap<string, unknown>,
  issues: PolicyIssue[],
): Map<string, BreakGlassRule> {
  const out = new Map<string, BreakGlassRule>();
  for (const name of [...docs.keys()].sort()) {
    const { source, value: rule } = docs.get(name) as Defined<BreakGlassDocument>;
    const at = (...path: (string | number)[]) => ['break_glass', name, ...path];
    const before = issues.length;
    for (const [index, tool] of rule.tools.entries()) {
      if (!tools.has(tool)) issues.push(source.issue(at('tools', index), `tool "${tool}" is not defined under tools`));
    }
    const expiresAfterMs = duration(source, at('expires_after'), rule.expires_after, issues);
    const { minExpiresAfterMs, maxExpiresAfterMs } = BREAK_GLASS_BOUNDS;
    if (expiresAfterMs !== undefined && (expiresAfterMs < minExpiresAfterMs || expiresAfterMs > maxExpiresAfterMs)) {
      // An override is an emergency: the second person answers now or the request expires.
      issues.push(source.issue(at('expires_after'), `"${rule.expires_after}" must be between 1m and 1h`));
    }
    if (issues.length > before || expiresAfterMs === undefined) continue;
    out.set(name, {
      name,
      tools: [...rule.tools],
      groups: [...rule.groups],
      notify: [...rule.notify],
      expiresAfterMs,
      ...(rule.environments ? { environments: [...rule.environments] } : {}),
    });
  }
  return out;
}
