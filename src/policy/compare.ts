/**
 * How two policy decisions on the same request differ: the outcome first, then the approval plan,
 * then the risk. Pure. `toolgate policy replay` compares a recorded decision with a candidate's;
 * the worker's shadow policy compares the enforced decision with the shadow's — one function, so
 * both name a change the same way.
 */
import { DECISION_CHANGE_KINDS, type ApprovalPlan, type EscalationTier, type PolicyDecision } from '../shared/index.js';

/** The kinds of change (defined in src/shared, where the workflow can read them). */
export const CHANGE_KINDS = DECISION_CHANGE_KINDS;
/** A kind of change. */
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** The plan fields that decide who may approve, how many, and for how long (reminders only change how often people are nudged). */
function planDifferences(recorded: ApprovalPlan | undefined, candidate: ApprovalPlan | undefined): string[] {
  if (!recorded || !candidate) return recorded === candidate ? [] : ['plan'];
  // Both plans are data: a recorded one comes from a history anyone with Temporal access can
  // write. A field of the wrong type compares as different (by its JSON), never throws.
  const sorted = (groups: unknown) =>
    Array.isArray(groups) ? [...(groups as unknown[])].map(String).sort().join(',') : groups === undefined ? '' : `!${JSON.stringify(groups)}`;
  const tiers = (plan: ApprovalPlan) => {
    const escalation: unknown = plan.escalation;
    if (escalation === undefined) return '';
    if (!Array.isArray(escalation)) return `!${JSON.stringify(escalation)}`;
    return escalation
      .map((tier: unknown) =>
        tier !== null && typeof tier === 'object'
          ? `${String((tier as EscalationTier).afterMs)}:${sorted((tier as EscalationTier).groups)}`
          : `!${JSON.stringify(tier)}`,
      )
      .join(';');
  };
  const differences: string[] = [];
  if (recorded.name !== candidate.name) differences.push('name');
  if (sorted(recorded.groups) !== sorted(candidate.groups)) differences.push('groups');
  if (sorted(recorded.allOf) !== sorted(candidate.allOf)) differences.push('all_of');
  if (recorded.minApprovals !== candidate.minApprovals) differences.push('min_approvals');
  if ((recorded.rejectionsToDeny ?? 1) !== (candidate.rejectionsToDeny ?? 1)) differences.push('rejections_to_deny');
  if (tiers(recorded) !== tiers(candidate)) differences.push('escalation');
  if (recorded.expiresAfterMs !== candidate.expiresAfterMs) differences.push('expires_after');
  return differences;
}

/**
 * The kind of change from one decision to another on the same request: outcome first, then the
 * approval plan, then the risk; `unchanged` when none differs. Pure. The replay compares a recorded
 * decision with a candidate's; the worker's shadow policy compares the enforced policy's with the
 * shadow's (activities/evaluate.ts), so both name a disagreement the same way.
 */
export function compareDecisions(recorded: PolicyDecision, candidate: PolicyDecision): { kind: 'unchanged' | ChangeKind; detail?: string } {
  if (recorded.outcome !== candidate.outcome) return { kind: `${recorded.outcome}->${candidate.outcome}` as ChangeKind };
  if (recorded.outcome === 'approve') {
    const differences = planDifferences(recorded.approval, candidate.approval);
    if (differences.length > 0) {
      return { kind: 'plan', detail: `plan ${recorded.approval?.name ?? '?'} → ${candidate.approval?.name ?? '?'} (differs in ${differences.join(', ')})` };
    }
  }
  if (recorded.risk !== candidate.risk) return { kind: 'risk', detail: `risk ${recorded.risk} → ${candidate.risk}` };
  return { kind: 'unchanged' };
}
