/**
 * The activities of a tool request: policy evaluation, approver notification and tool execution.
 * Built by `createActivities(deps)` so tests and the worker inject real dependencies or fakes.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import { buildProposal, proposalDigest } from '../src/approvals/digest.js';
import { ResultTooLargeError, TenantMismatchError, filterResult, redactText, redactValue } from '../src/egress/index.js';
import type { ApprovalNotification, Notifier } from '../src/notify/notifier.js';
import type { KillSwitches } from '../src/kill-switch.js';
import { RateLimiter, decide, type RateLimitRule } from '../src/policy/index.js';
import type { PolicyStore } from '../src/policy-store.js';
import {
  FailureTypes,
  type EgressEvent,
  type Evaluation,
  type PolicyDecision,
  type ToolRequest,
} from '../src/shared/index.js';
import { callMcpTool } from '../src/mcp/executor.js';
import { callHttpTool, ToolUnavailableError } from '../src/tools/http-adapter.js';
import { OutcomeUnknownError, ToolRejectedError, type ToolContext, type ToolRegistry } from '../src/tools/types.js';

/** What the activities need from the outside world. */
export interface ActivityDeps {
  policy: PolicyStore;
  tools: ToolRegistry;
  notifier: Notifier;
  logger: Logger;
  /** Base URL approvers use to reach the approval API, for links in notifications. @default 'http://127.0.0.1:8787' */
  publicApiUrl?: string;
  /**
   * The kill switches, consulted when a request is evaluated and again right before its side
   * effect. `createToolgateWorker` always provides them; without them no switch is consulted.
   */
  killSwitches?: KillSwitches;
}

/** Input of the execution activity. */
export interface ExecuteToolInput {
  requestId: string;
  tenant: string;
  tool: string;
  args: Record<string, unknown>;
  runAs: string;
  idempotencyKey: string;
  traceId?: string;
}

/** Creates the activity functions bound to `deps`. */
export function createActivities(deps: ActivityDeps) {
  const apiUrl = (deps.publicApiUrl ?? 'http://127.0.0.1:8787').replace(/\/$/, '');
  const limiter = new RateLimiter();

  /** A denial when a kill switch covers the request or a rate limit is exhausted; undefined to go on. */
  const refuseIfStopped = async (request: ToolRequest, decision: PolicyDecision, limits: readonly RateLimitRule[]): Promise<PolicyDecision | undefined> => {
    const killSwitch = await deps.killSwitches?.covering(request.tenant, request.tool);
    if (killSwitch) {
      return {
        ...decision,
        outcome: 'deny',
        code: 'kill_switch',
        rule: `kill-switch:${killSwitch.id}`,
        reasons: [`a kill switch is on for ${killSwitch.tool ?? 'every tool'} of tenant ${killSwitch.tenant} (by ${killSwitch.by} at ${killSwitch.at}: ${killSwitch.reason})`],
      };
    }
    const limited = limiter.take(limits, request, decision.risk);
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
    /** Decides a request from the policy in force and, when people must approve, builds the proposal and its digest. */
    async evaluatePolicy({ request, workflowId }: { request: ToolRequest; workflowId: string }): Promise<Evaluation> {
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
      if (decision.outcome !== 'deny') decision = (await refuseIfStopped(request, decision, policy?.limits ?? [])) ?? decision;
      deps.logger.info(
        { requestId: request.requestId, tool: request.tool, tenant: request.tenant, actor: request.actor.id, outcome: decision.outcome, rule: decision.rule, risk: decision.risk },
        'policy decision',
      );
      if (decision.outcome !== 'approve') return { decision };
      const proposal = buildProposal(request, workflowId, decision);
      return { decision, proposal, digest: proposalDigest(proposal) };
    },

    /** Tells approver groups that a request waits for them, was escalated or reminded, or ended. */
    async notifyApprovers(notification: Omit<ApprovalNotification, 'reviewUrl'>): Promise<void> {
      await deps.notifier.notify({
        ...notification,
        reviewUrl: `${apiUrl}/v1/approvals/${encodeURIComponent(notification.requestId)}`,
      });
    },

    /**
     * Runs the side effect under the tool's identity with the request's idempotency key. Permanent
     * refusals and unknown outcomes are non-retryable failures; anything else is retried with the
     * same key, which the tool uses to deduplicate.
     *
     * What it returns or throws enters the workflow history, so it leaves through the egress filter
     * first: the result is size- and tenant-checked and redacted with the tool's rules
     * (`EgressRefused` when it may not leave), and every failure message is redacted with all rules.
     */
    async executeTool(input: ExecuteToolInput): Promise<{ result: unknown; attempts: number; egress: EgressEvent }> {
      const { attempt } = Context.current().info;
      const { policy } = deps.policy.current();
      const manifest = policy?.manifest(input.tool);
      if (!manifest) {
        throw ApplicationFailure.nonRetryable(`tool ${input.tool} is not in the tool manifest in force`, FailureTypes.ToolNotRegistered);
      }
      if (!manifest.idempotent && attempt > 1) {
        // An earlier attempt may have acted and this tool cannot deduplicate: stop, do not repeat.
        throw ApplicationFailure.nonRetryable(
          `${input.tool} is not idempotent and attempt ${attempt - 1} ended without a confirmed outcome`,
          FailureTypes.OutcomeUnknown,
        );
      }
      // Checked again right before acting: a switch turned on while the request waited stops it here.
      const killSwitch = await deps.killSwitches?.covering(input.tenant, input.tool);
      if (killSwitch) {
        throw ApplicationFailure.nonRetryable(
          `a kill switch is on for ${killSwitch.tool ?? 'every tool'} of tenant ${killSwitch.tenant} (by ${killSwitch.by}: ${killSwitch.reason}); nothing was executed`,
          FailureTypes.KillSwitchActive,
        );
      }
      const context: ToolContext = { ...input, attempt };
      const log = deps.logger.child({ requestId: input.requestId, tool: input.tool, runAs: input.runAs, attempt });
      let result: unknown;
      try {
        if (manifest.adapter.type === 'http') {
          result = await callHttpTool(manifest.adapter, context, manifest.idempotent, manifest.egress);
        } else if (manifest.adapter.type === 'mcp') {
          result = await callMcpTool(manifest.adapter, context);
        } else {
          const handler = deps.tools[manifest.adapter.handler];
          if (!handler) {
            throw ApplicationFailure.nonRetryable(
              `no code handler named ${manifest.adapter.handler} is registered on this worker`,
              FailureTypes.ToolNotRegistered,
            );
          }
          result = await handler(context);
        }
      } catch (err) {
        throw redactedFailure(err, manifest.idempotent, log);
      }
      let filtered: ReturnType<typeof filterResult>;
      try {
        filtered = filterResult(result ?? null, { tenant: input.tenant, egress: manifest.egress });
      } catch (err) {
        if (!(err instanceof ResultTooLargeError || err instanceof TenantMismatchError)) throw err;
        const message = `${input.tool} acted, but its result may not leave the gateway: ${redactText(err.message)}`;
        log.error({ err: message }, 'tool result refused by egress policy');
        throw ApplicationFailure.nonRetryable(message, FailureTypes.EgressRefused);
      }
      log.info({ bytes: filtered.bytes, redactions: filtered.redactions }, 'tool executed');
      return { result: filtered.value, attempts: attempt, egress: { bytes: filtered.bytes, redactions: filtered.redactions } };
    },
  };
}

/**
 * The failure a tool's error becomes, with its message redacted (all rules) and no stack or cause
 * of the original: those would carry the clear text into the history. Permanent refusals and
 * unknown outcomes are non-retryable; anything else is retried with the same idempotency key.
 */
function redactedFailure(err: unknown, idempotent: boolean, log: Logger): ApplicationFailure {
  const message = redactText(err instanceof Error ? err.message : String(err));
  if (err instanceof ApplicationFailure) {
    return ApplicationFailure.create({
      message,
      ...(err.type ? { type: err.type } : {}),
      nonRetryable: err.nonRetryable === true,
      ...(err.details && err.details.length > 0 ? { details: redactValue(err.details).value } : {}),
    });
  }
  if (err instanceof ToolRejectedError) {
    log.warn({ err: message }, 'tool rejected the call');
    return ApplicationFailure.nonRetryable(message, FailureTypes.ToolRejected);
  }
  if (err instanceof OutcomeUnknownError) {
    log.error({ err: message }, 'tool outcome unknown');
    return ApplicationFailure.nonRetryable(message, FailureTypes.OutcomeUnknown);
  }
  if (!idempotent && !(err instanceof ToolUnavailableError)) {
    return ApplicationFailure.nonRetryable(`${message}; the tool may have acted`, FailureTypes.OutcomeUnknown);
  }
  log.warn({ err: message }, 'tool attempt failed; will retry with the same idempotency key');
  return ApplicationFailure.retryable(message, err instanceof Error ? err.name : 'Error');
}
