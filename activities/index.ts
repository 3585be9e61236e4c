/**
 * The activities of a tool request: policy evaluation, approver notification and tool execution.
 * Built by `createActivities(deps)` so tests and the worker inject real dependencies or fakes.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import { buildProposal, proposalDigest } from '../src/approvals/digest.js';
import type { ApprovalNotification, Notifier } from '../src/notify/notifier.js';
import { decide } from '../src/policy/index.js';
import type { PolicyStore } from '../src/policy-store.js';
import {
  FailureTypes,
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
     */
    async executeTool(input: ExecuteToolInput): Promise<{ result: unknown; attempts: number }> {
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
      const context: ToolContext = { ...input, attempt };
      const log = deps.logger.child({ requestId: input.requestId, tool: input.tool, runAs: input.runAs, attempt });
      try {
        let result: unknown;
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
        log.info('tool executed');
        return { result: result ?? null, attempts: attempt };
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        if (err instanceof ToolRejectedError) {
          log.warn({ err: err.message }, 'tool rejected the call');
          throw ApplicationFailure.nonRetryable(err.message, FailureTypes.ToolRejected);
        }
        if (err instanceof OutcomeUnknownError) {
          log.error({ err: err.message }, 'tool outcome unknown');
          throw ApplicationFailure.nonRetryable(err.message, FailureTypes.OutcomeUnknown);
        }
        if (!manifest.idempotent && !(err instanceof ToolUnavailableError)) {
          throw ApplicationFailure.nonRetryable(`${(err as Error).message}; the tool may have acted`, FailureTypes.OutcomeUnknown);
        }
        log.warn({ err: (err as Error).message }, 'tool attempt failed; will retry with the same idempotency key');
        throw err;
      }
    },
  };
}
