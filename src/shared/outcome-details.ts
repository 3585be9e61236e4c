/**
 * What an outcome notification says about how a request ended: who decided and what happened.
 *
 * Pure and free of runtime imports (types only), so the workflow can import it and pass its
 * result to the `notifyApprovers` activity: nothing here touches I/O, time or randomness.
 */
import type { ToolOutcome } from './request-status.js';

/** How a request ended, as an outcome notification tells it. Every field is optional but `status`. */
export interface OutcomeDetails {
  status: ToolOutcome['status'];
  /** completed: the approvers whose votes approved what ran (canonical ids, in vote order). */
  approvedBy?: string[];
  /** completed / failed / outcome_unknown: the identity the tool ran as. */
  runAs?: string;
  /** completed: the code of the withheld result, when the tool acted but its result may not leave. */
  withheld?: string;
  /** rejected: who rejected. */
  rejectedBy?: string;
  /** rejected: the reason the rejecting approver gave (untrusted text; messages redact it). */
  reason?: string;
  /** denied: the denial code (`policy_denied`, `kill_switch`, ...). */
  code?: string;
  /** failed / outcome_unknown: the error type. */
  error?: string;
}

/** The details an outcome notification shows, taken from the outcome (never its result or arguments). */
export function notificationOutcome(outcome: ToolOutcome): OutcomeDetails {
  switch (outcome.status) {
    case 'completed': {
      // Only the votes for what ran: a vote for an earlier proposal (before an edit) approved something else.
      const votes = outcome.approvals.filter((vote) => vote.decision === 'approve' && (outcome.digest === undefined || vote.digest === outcome.digest));
      const approvedBy = [...new Set(votes.map((vote) => vote.approverId))];
      return {
        status: 'completed',
        ...(approvedBy.length > 0 ? { approvedBy } : {}),
        runAs: outcome.execution.runAs,
        ...(outcome.withheld ? { withheld: outcome.withheld.code } : {}),
      };
    }
    case 'rejected':
      return { status: 'rejected', rejectedBy: outcome.rejectedBy, ...(outcome.reason ? { reason: outcome.reason } : {}) };
    case 'denied':
      return { status: 'denied', code: outcome.code };
    case 'expired':
      return { status: 'expired' };
    case 'failed':
    case 'outcome_unknown':
      return { status: outcome.status, error: outcome.error.type, ...(outcome.execution ? { runAs: outcome.execution.runAs } : {}) };
  }
}

/**
 * One sentence for how a request ended: "completed by svc-x, approved by maria, omar",
 * "rejected by maria: too broad", "expired, nothing ran", "denied: kill_switch",
 * "completed by svc-x; result withheld (result_too_large)". `reason` must already be redacted.
 */
export function outcomeSentence(details: OutcomeDetails | undefined, status: ToolOutcome['status'] | undefined): string {
  const d = details ?? (status ? { status } : undefined);
  if (!d) return 'ended';
  switch (d.status) {
    case 'completed': {
      let text = d.runAs ? `completed by ${d.runAs}` : 'completed';
      if (d.approvedBy && d.approvedBy.length > 0) text += `, approved by ${d.approvedBy.join(', ')}`;
      if (d.withheld) text += `; result withheld (${d.withheld})`;
      return text;
    }
    case 'rejected':
      return `rejected${d.rejectedBy ? ` by ${d.rejectedBy}` : ''}${d.reason ? `: ${d.reason}` : ''}`;
    case 'expired':
      return 'expired, nothing ran';
    case 'denied':
      return `denied${d.code ? `: ${d.code}` : ''}`;
    case 'failed':
      return `failed${d.error ? `: ${d.error}` : ''}${d.runAs ? ` (ran as ${d.runAs})` : ''}`;
    case 'outcome_unknown':
      return `outcome unknown${d.error ? ` (${d.error})` : ''}: check what the tool did before retrying`;
  }
}
