/**
 * Break-glass overrides: a person may ask to override a policy denial, as a NEW request linked to
 * the denied one (`link.kind: 'override'`). Policy grants it only when a `break_glass:` rule covers
 * the tool (and environment) and the person is in one of its groups; a second person of those
 * groups then approves within the rule's window, and its `notify` groups are always told.
 * Only denials a person may judge are overridable: a rule, a role or an environment. Malformed
 * calls (unknown tool, invalid arguments), other tenants, kill switches and the like never are.
 */
import type { ApprovalPlan, DenialCode } from '../shared/index.js';
import type { BreakGlassRule, LoadedPolicy } from './model.js';

/** The denial codes a break-glass rule may override; any other denial stays a denial (`override_refused`). */
export const OVERRIDABLE_DENIAL_CODES = Object.freeze(['rule_denied', 'role_not_allowed', 'environment_not_allowed'] as const satisfies readonly DenialCode[]);

/** True when a denial with `code` may be overridden by a break-glass rule. */
export function isOverridable(code: DenialCode | undefined): boolean {
  return code !== undefined && (OVERRIDABLE_DENIAL_CODES as readonly string[]).includes(code);
}

/** The window a break-glass rule's second person may have (`expires_after`): long enough to reach someone, short enough to stay an emergency. */
export const BREAK_GLASS_BOUNDS = Object.freeze({ minExpiresAfterMs: 60_000, maxExpiresAfterMs: 3_600_000 });

/** The prefix of a granted override's `rule` and approval plan name: `break_glass:<rule name>`. */
export const BREAK_GLASS_RULE_PREFIX = 'break_glass:';

/**
 * The break-glass rule that lets a member of `groups` override a denial of `tool` in
 * `environment`: the first by name that lists the tool (and the environment, when it lists
 * environments) and shares a group with `groups`. Undefined when none does.
 */
export function findBreakGlassRule(
  policy: Pick<LoadedPolicy, 'breakGlass'>,
  query: { tool: string; environment: string; groups: readonly string[] },
): BreakGlassRule | undefined {
  // The map is built in name order; sorting again keeps "first by name" true for any map given.
  const rules = [...policy.breakGlass.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return rules.find(
    (rule) =>
      rule.tools.includes(query.tool) &&
      (rule.environments === undefined || rule.environments.includes(query.environment)) &&
      rule.groups.some((group) => query.groups.includes(group)),
  );
}

/** The approval plan of a granted override: one second person of the rule's groups, within its window. */
export function breakGlassPlan(rule: BreakGlassRule): ApprovalPlan {
  return {
    name: `${BREAK_GLASS_RULE_PREFIX}${rule.name}`,
    groups: [...rule.groups],
    allOf: [],
    minApprovals: 1,
    rejectionsToDeny: 1,
    escalation: [],
    expiresAfterMs: rule.expiresAfterMs,
  };
}
