/**
 * The policy evaluation activity: decides a verified request from the policy in force, applies the
 * kill switches and rate limits, builds and seals the proposal approvers will sign, and records
 * the shadow policy's decision beside it.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { buildProposal, proposalDigest } from '../src/approvals/digest.js';
import { RateLimitStoreError, RateLimits, decide, type RateLimitRule, type RateLimited } from '../src/policy/index.js';
import type { PolicyStore } from '../src/policy/store.js';
import { compareDecisions } from '../src/policy/compare.js';
import type { Evaluation, PolicyDecision, ShadowDecision, ToolRequest } from '../src/shared/index.js';
import { EvidenceError, verifyAdmission } from '../src/trust/evidence.js';
import { evidenceContext, unverified, type ActivityDeps, type SealedEvaluation } from './deps.js';

/**
 * How many attempts of the policy evaluation ride out an unreachable rate-limit store (the local
 * activity retries from 200 ms, doubling) before the request is denied instead.
 */
export const RATE_LIMIT_STORE_ATTEMPTS = 5;

/** Input of the policy activity. */
export interface EvaluatePolicyInput {
  request: ToolRequest;
  workflowId: string;
  /** The front door's request assertion (absent only in runs from before the trust boundary). */
  admission?: string;
  /** The accepted edit whose arguments `request` carries. */
  edit?: string;
  /** The request as admitted, when an edit changed its arguments since. */
  admitted?: ToolRequest;
}

/** Longest reason recorded for an unavailable shadow: a load error can be long, and it goes into every history. */
const SHADOW_REASON_CHARS = 500;

/**
 * The shadow policy's decision on `request`, compared with `enforced` — the enforced policy's own
 * decision, before kill switches and rate limits (those are not policy: the shadow is judged on
 * policy alone, and it takes no rate-limit count). Never throws: whatever goes wrong with the
 * shadow is recorded as `unavailable`, and enforcement goes on untouched.
 */
export function shadowDecision(shadow: PolicyStore, request: ToolRequest, enforced: PolicyDecision | undefined): ShadowDecision {
  try {
    const { policy, error } = shadow.current();
    if (!policy) return { kind: 'unavailable', reason: `the shadow policy is not loaded: ${error?.message ?? 'unknown error'}`.slice(0, SHADOW_REASON_CHARS) };
    const decided = decide(policy, request);
    const compared = enforced ? compareDecisions(enforced, decided) : undefined;
    return {
      kind: compared === undefined ? 'not_comparable' : compared.kind === 'unchanged' ? 'agree' : compared.kind,
      policyDigest: decided.policyDigest,
      outcome: decided.outcome,
      rule: decided.rule,
      risk: decided.risk,
      ...(decided.outcome === 'approve' && decided.approval ? { plan: decided.approval.name } : {}),
      ...(decided.code ? { code: decided.code } : {}),
      ...(compared?.detail ? { detail: compared.detail } : {}),
    };
  } catch (err) {
    return { kind: 'unavailable', reason: `the shadow policy failed: ${err instanceof Error ? err.message : String(err)}`.slice(0, SHADOW_REASON_CHARS) };
  }
}

/** The activities of the policy group, bound to `deps` (with one rate-limit store for all their calls). */
export function evaluateActivities(deps: ActivityDeps) {
  const rateLimits = deps.rateLimits ?? RateLimits.memory();

  /** A denial when a kill switch covers the request or a rate limit is exhausted; undefined to go on. */
  const refuseIfStopped = async (request: ToolRequest, decision: PolicyDecision, limits: readonly RateLimitRule[]): Promise<PolicyDecision | undefined> => {
    const killSwitch = await deps.killSwitches?.covering(request.tenant, request.tool);
    if (killSwitch) {
      return {
        ...decision,
        outcome: 'deny',
        code: 'kill_switch',
        rule: `kill-switch:${killSwitch.id}`,
        reasons: [
          `a kill switch is on for ${killSwitch.tool ?? 'every tool'} of tenant ${killSwitch.tenant} (by ${killSwitch.by} at ${killSwitch.at}: ${killSwitch.reason})`,
        ],
      };
    }
    let limited: RateLimited | undefined;
    try {
      limited = await rateLimits.take(limits, request, decision.risk);
    } catch (err) {
      if (!(err instanceof RateLimitStoreError)) throw err;
      // Fail closed: never allow a request the limits did not count. A short outage is ridden out
      // by the local activity's retries; after the last one the request is denied with a reason of
      // its own, not left to exhaust its retries (the workflow would call that unverified_request).
      const { attempt, retryPolicy } = Context.current().info;
      const maxAttempts = retryPolicy?.maximumAttempts !== undefined && retryPolicy.maximumAttempts > 0 ? retryPolicy.maximumAttempts : Infinity;
      const lastAttempt = attempt >= Math.min(maxAttempts, RATE_LIMIT_STORE_ATTEMPTS);
      deps.logger.error(
        { requestId: request.requestId, tenant: request.tenant, tool: request.tool, attempt, err: err.message },
        lastAttempt ? 'rate-limit store unreachable: request denied' : 'rate-limit store unreachable: the policy evaluation will be retried',
      );
      if (!lastAttempt) throw ApplicationFailure.retryable(`${err.message}; the policy evaluation is retried`, 'RateLimitStoreUnavailable');
      return {
        ...decision,
        outcome: 'deny',
        code: 'policy_unavailable',
        rule: 'check:rate_limits_unavailable',
        // The agent reads this reason: where the store is and why it failed go to the log only.
        reasons: ['the rate limits could not be checked (their store did not answer), so the request is denied rather than let through uncounted; retry later'],
      };
    }
    if (limited) {
      return {
        ...decision,
        outcome: 'deny',
        code: 'rate_limited',
        rule: `limit:${limited.rule.name}`,
        reasons: [
          `rate limit ${limited.rule.name} (${limited.rule.count} per ${limited.rule.windowMs} ms per ${limited.rule.per}) is exhausted for ${limited.key}; retry after ${limited.retryAfterMs} ms`,
        ],
      };
    }
    return undefined;
  };

  return {
    /**
     * Decides a request from the policy in force and, when people must approve, builds the
     * proposal and its digest; seals the result. Runs only as a local activity of a real workflow,
     * and only for a request whose admission (and edit) verifies with this worker's keys.
     */
    async evaluatePolicy({ request, admission, edit, admitted }: EvaluatePolicyInput): Promise<SealedEvaluation> {
      const info = Context.current().info;
      if (!info.isLocal) throw unverified('policy is evaluated only as a local activity of a toolgate workflow');
      const trusted = evidenceContext(deps);
      try {
        await verifyAdmission({ admission: admission ?? '', admitted: admitted ?? request, request, ...(edit === undefined ? {} : { edit }) }, trusted);
      } catch (err) {
        if (err instanceof EvidenceError) throw unverified(`the request was not admitted by the front door: ${err.message}`);
        throw err;
      }
      const workflowId = trusted.workflowId;
      const { policy, error } = deps.policy.current();
      let decision: PolicyDecision;
      if (!policy) {
        decision = {
          outcome: 'deny',
          tool: request.tool,
          risk: 'critical',
          rule: 'check:policy_unavailable',
          code: 'policy_unavailable',
          reasons: [`no policy is in force: ${error?.message ?? 'unknown error'}`],
          policyDigest: '',
        };
      } else {
        decision = decide(policy, request);
      }
      // Decided from the same verified request, compared with policy's own verdict; computed
      // before the kill switches and limits below, which it never consults.
      const shadow = deps.shadowPolicy ? shadowDecision(deps.shadowPolicy, request, policy ? decision : undefined) : undefined;
      if (decision.outcome !== 'deny') decision = (await refuseIfStopped(request, decision, policy?.limits ?? [])) ?? decision;
      deps.logger.info(
        {
          requestId: request.requestId,
          tool: request.tool,
          tenant: request.tenant,
          actor: request.actor.id,
          outcome: decision.outcome,
          rule: decision.rule,
          risk: decision.risk,
        },
        'policy decision',
      );
      if (shadow?.kind === 'unavailable') {
        deps.logger.warn(
          { requestId: request.requestId, tool: request.tool, tenant: request.tenant, reason: shadow.reason },
          'shadow policy unavailable: recorded as such, enforcement unaffected',
        );
      } else if (shadow && shadow.kind !== 'agree') {
        deps.logger.info(
          {
            requestId: request.requestId,
            tool: request.tool,
            tenant: request.tenant,
            kind: shadow.kind,
            shadowOutcome: shadow.outcome,
            shadowRule: shadow.rule,
            shadowRisk: shadow.risk,
          },
          'shadow policy disagrees',
        );
      }
      let evaluation: Evaluation = { decision };
      if (decision.outcome === 'approve') {
        const proposal = buildProposal(request, workflowId, decision);
        evaluation = { decision, proposal, digest: proposalDigest(proposal) };
        // The workflow runs it before approvers are asked; sealed here, so nothing else can ask for one.
        const preview = policy?.manifest(request.tool)?.preview;
        if (preview) evaluation = { ...evaluation, previewTimeoutMs: preview.timeoutMs };
      }
      // Inside the sealed evaluation: the seal vouches that this worker recorded it, and the
      // execution's seal check covers it like the rest. Nothing reads it to decide or act.
      if (shadow) evaluation = { ...evaluation, shadow };
      return { ...evaluation, seal: deps.trust.sealer.seal({ workflowId, runId: trusted.runId, request, evaluation }) };
    },
  };
}
