/**
 * The activities of a tool request: policy evaluation, dry-run previews, approver notification and
 * tool execution.
 * Built by `createActivities(deps)` so tests and the worker inject real dependencies or fakes.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import { buildProposal, proposalDigest } from '../src/approvals/digest.js';
import { ResultTooLargeError, TenantMismatchError, filterResult, redactText, redactValue } from '../src/egress/index.js';
import type { ApprovalNotification, Notifier } from '../src/notify/notifier.js';
import type { KillSwitches } from '../src/policy/kill-switch-client.js';
import { countRedactions } from '../src/metrics.js';
import { RateLimitStoreError, RateLimits, decide, type RateLimitRule, type RateLimitStore, type RateLimited } from '../src/policy/index.js';
import type { PolicyStore } from '../src/policy/store.js';
import { compareDecisions } from '../src/policy/compare.js';
import {
  EXECUTION_BOUNDS,
  FailureTypes,
  PREVIEW_BOUNDS,
  type EgressEvent,
  type ResultWithheld,
  type Evaluation,
  type PolicyDecision,
  type Proposal,
  type ProposalPreview,
  type ShadowDecision,
  type ToolRequest,
  type TrustAnchors,
} from '../src/shared/index.js';
import { EvidenceError, verifyAdmission, verifyExecution, type ExecutionEvidence } from '../src/trust/evidence.js';
import type { WorkerTrust } from '../src/trust/store.js';
import type { RunGuard } from '../src/trust/runs.js';
import { callMcpTool } from '../src/mcp/executor.js';
import { callHttpTool, ToolUnavailableError } from '../src/tools/http-adapter.js';
import { runPreview } from '../src/tools/preview.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { OutcomeUnknownError, ResultWithheldError, ToolNotReachedError, ToolRejectedError, type ToolContext, type ToolRegistry } from '../src/tools/types.js';

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
  /** The keys requests are verified with and the seal on evaluations (see src/trust/). */
  trust: WorkerTrust;
  /** Checks with the server that the run asking to act is a toolgate request's one and only run. Without it nothing executes. */
  runs?: RunGuard;
  /**
   * Where rate-limit counters live: `RateLimits.postgres(url)` shares them with every worker of
   * the deployment. The caller closes it. @default RateLimits.memory() (this process only)
   */
  rateLimits?: RateLimitStore;
  /**
   * A candidate policy run in shadow (`TOOLGATE_SHADOW_POLICY`): every evaluation also decides with
   * it and records that decision beside the enforced one (`Evaluation.shadow`). It never changes
   * what is enforced; a shadow that cannot decide is recorded as unavailable.
   */
  shadowPolicy?: PolicyStore;
}

/**
 * How many attempts of the policy evaluation ride out an unreachable rate-limit store (the local
 * activity retries from 200 ms, doubling) before the request is denied instead.
 */
export const RATE_LIMIT_STORE_ATTEMPTS = 5;

/** Input of the execution activity. The fields beside `evidence` are for people reading the history; the activity acts only on what the evidence proves. */
export interface ExecuteToolInput {
  requestId: string;
  tenant: string;
  tool: string;
  args: Record<string, unknown>;
  runAs: string;
  idempotencyKey: string;
  traceId?: string;
  /** The admission, the approvals and the sealed evaluation (absent only in runs from before the trust boundary, which cannot execute any more). */
  evidence?: Omit<ExecutionEvidence, 'admitted' | 'seal' | 'evaluation'> & { admitted?: ToolRequest; evaluation: SealedEvaluation };
}

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

/** A policy evaluation sealed by the worker: only a sealed evaluation is ever executed. */
export type SealedEvaluation = Evaluation & { seal?: string };

/**
 * Input of the preview activities: the request as it is now, the evidence that it was admitted
 * (and edited), and policy's sealed evaluation, which asked for approval and carries no preview yet.
 */
export interface PreviewToolInput {
  request: ToolRequest;
  admission: string;
  /** The accepted edit whose arguments `request` carries. */
  edit?: string;
  /** The request as admitted, when an edit changed its arguments since. */
  admitted?: ToolRequest;
  evaluation: SealedEvaluation;
}

/** A notification as the workflow sends it: the facts, and the proposal's dry-run preview while one is shown. */
export type ApproverNotificationInput = Omit<ApprovalNotification, 'reviewUrl'>;

/** Refuses an activity call that cannot be shown to come from a real, admitted toolgate request. */
function unverified(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${message}; nothing was evaluated or executed`, FailureTypes.UnverifiedExecution);
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

/** Creates the activity functions bound to `deps`. */
export function createActivities(deps: ActivityDeps) {
  const apiUrl = (deps.publicApiUrl ?? 'http://127.0.0.1:8787').replace(/\/$/, '');
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

  /** The real workflow and run of the calling activity (from its task, not its input) and the worker's trust. */
  const evidenceContext = () => {
    const { workflowExecution } = Context.current().info;
    if (!workflowExecution) throw unverified('the activity was not scheduled by a workflow');
    return { workflowId: workflowExecution.workflowId, runId: workflowExecution.runId, anchors: deps.trust.anchors() };
  };

  /**
   * The evaluation a preview may be added to, once checked: the request was admitted (and edited)
   * as it says, the evaluation carries this worker deployment's seal for this run, policy asked
   * for approval, and the tool declared a preview that has not run yet. Anything else refuses:
   * a preview is called only on the way to people who must approve, never for a tool without.
   */
  const previewable = async (
    input: PreviewToolInput,
    trusted: ReturnType<typeof evidenceContext>,
  ): Promise<Evaluation & { proposal: Proposal; digest: string }> => {
    const { request } = input;
    try {
      await verifyAdmission(
        { admission: input.admission, admitted: input.admitted ?? request, request, ...(input.edit === undefined ? {} : { edit: input.edit }) },
        trusted,
      );
    } catch (err) {
      if (err instanceof EvidenceError) throw unverified(`the request was not admitted by the front door: ${err.message}`);
      throw err;
    }
    const { seal, ...evaluation } = input.evaluation;
    if (!deps.trust.sealer.verify({ workflowId: trusted.workflowId, runId: trusted.runId, request, evaluation }, seal)) {
      throw unverified("the evaluation does not carry this worker deployment's seal for this run");
    }
    const { proposal, digest } = evaluation;
    if (evaluation.decision.outcome !== 'approve' || !proposal || !digest || evaluation.previewTimeoutMs === undefined || proposal.preview !== undefined) {
      throw unverified('a preview runs once per approval round, only for a tool that declares one and a request policy sent to approval');
    }
    return { ...evaluation, proposal, digest };
  };

  /** The evaluation with `preview` in its proposal, digested again and sealed: what approvers then sign. */
  const sealPreview = (
    evaluation: Evaluation & { proposal: Proposal },
    preview: ProposalPreview,
    request: ToolRequest,
    trusted: ReturnType<typeof evidenceContext>,
  ): SealedEvaluation => {
    const proposal: Proposal = { ...evaluation.proposal, preview };
    const next: Evaluation = { ...evaluation, proposal, digest: proposalDigest(proposal) };
    return { ...next, seal: deps.trust.sealer.seal({ workflowId: trusted.workflowId, runId: trusted.runId, request, evaluation: next }) };
  };

  return {
    /** The keys requests of this worker deployment trust; the workflow records them in its history. */
    async loadTrustAnchors(): Promise<TrustAnchors> {
      return deps.trust.anchors();
    },

    /**
     * Decides a request from the policy in force and, when people must approve, builds the
     * proposal and its digest; seals the result. Runs only as a local activity of a real workflow,
     * and only for a request whose admission (and edit) verifies with this worker's keys.
     */
    async evaluatePolicy({ request, admission, edit, admitted }: EvaluatePolicyInput): Promise<SealedEvaluation> {
      const info = Context.current().info;
      if (!info.isLocal) throw unverified('policy is evaluated only as a local activity of a toolgate workflow');
      const trusted = evidenceContext();
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

    /** Tells approver groups that a request waits for them, was escalated or reminded, or ended. */
    async notifyApprovers(notification: ApproverNotificationInput): Promise<void> {
      await deps.notifier.notify({
        ...notification,
        reviewUrl: `${apiUrl}/inbox/requests/${encodeURIComponent(notification.requestId)}`,
      });
    },

    /**
     * Runs the tool's dry-run preview (manifest `preview:`) for a request policy sent to approval,
     * under the tool's identity with `preview: true` (code) or `Toolgate-Preview: 1` (http), and
     * returns the evaluation with the preview's answer in its proposal, digested again and sealed:
     * approvals then bind to what approvers were shown. Scheduled with one attempt and never
     * retried; the answer leaves through the egress filter (see src/tools/preview.ts). A failure
     * or timeout is the preview's content (`failed`, `timed_out`), not the activity's: the
     * approval goes on. Only evidence that does not verify fails the activity.
     */
    async previewTool(input: PreviewToolInput): Promise<SealedEvaluation> {
      const trusted = evidenceContext();
      const evaluation = await previewable(input, trusted);
      const { request } = input;
      const at = new Date().toISOString();
      const manifest = deps.policy.current().policy?.manifest(request.tool);
      const killSwitch = await deps.killSwitches?.covering(request.tenant, request.tool);
      let preview: ProposalPreview;
      if (!manifest?.preview) {
        preview = { status: 'failed', message: `the tool manifest in force declares no preview for ${request.tool}`, at };
      } else if (manifest.digest !== evaluation.decision.toolDigest) {
        // Preview exactly the tool that was evaluated; the execution would refuse the changed one anyway.
        preview = { status: 'failed', message: `the manifest of ${request.tool} changed since the request was evaluated; the preview was not run`, at };
      } else if (killSwitch) {
        preview = {
          status: 'failed',
          message: `a kill switch is on for ${killSwitch.tool ?? 'every tool'} of tenant ${killSwitch.tenant}; the preview was not run`,
          at,
        };
      } else {
        preview = await runPreview({
          manifest,
          preview: manifest.preview,
          context: {
            args: request.args,
            // Not the execution's key: a tool that deduplicates must never answer the real call with the preview.
            idempotencyKey: `toolgate-preview:${trusted.workflowId}:${evaluation.digest}`,
            runAs: evaluation.decision.runAs ?? 'unknown',
            requestId: request.requestId,
            tenant: request.tenant,
            tool: request.tool,
            ...(request.traceId === undefined ? {} : { traceId: request.traceId }),
          },
          tools: deps.tools,
          signal: Context.current().cancellationSignal,
        });
      }
      deps.logger.info({ requestId: request.requestId, tool: request.tool, tenant: request.tenant, preview: preview.status }, 'dry-run preview');
      if (preview.status === 'ok') countRedactions(request.tool, preview.redactions ?? {});
      return sealPreview(evaluation, preview, request, trusted);
    },

    /**
     * When the preview activity itself gave no answer (no worker ran it in time, or its worker
     * died): the evaluation with that failure as its preview, sealed, so the approval goes on with
     * approvers told so. A local activity of the workflow; the message is this worker's own.
     */
    async recordPreviewFailure(input: PreviewToolInput & { reason: 'timed_out' | 'failed' }): Promise<SealedEvaluation> {
      if (!Context.current().info.isLocal) throw unverified('a preview failure is recorded only as a local activity of a toolgate workflow');
      const trusted = evidenceContext();
      const evaluation = await previewable(input, trusted);
      const message =
        input.reason === 'timed_out'
          ? `no worker ran the preview within its time (${evaluation.previewTimeoutMs ?? '?'} ms and ${PREVIEW_BOUNDS.pickUpMs} ms to start it); decide without it`
          : 'the preview could not be run (its activity failed before answering); decide without it';
      return sealPreview(evaluation, { status: input.reason, message, at: new Date().toISOString() }, input.request, trusted);
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
    async executeTool(given: ExecuteToolInput): Promise<{ result: unknown; attempts: number; egress: EgressEvent; withheld?: ResultWithheld }> {
      const { attempt } = Context.current().info;
      const trusted = evidenceContext();
      const evidence = given.evidence;
      if (!evidence) throw unverified('no evidence of admission and approval came with this execution');
      const { seal, ...evaluation } = evidence.evaluation;
      try {
        await verifyExecution({ ...evidence, evaluation, seal: seal ?? '', admitted: evidence.admitted ?? evidence.request }, trusted, deps.trust.sealer);
      } catch (err) {
        if (err instanceof EvidenceError) throw unverified(`the execution is not backed by a verified admission and approval: ${err.message}`);
        throw err;
      }
      const runProblem = deps.runs ? await deps.runs.problem(trusted.workflowId, trusted.runId) : 'this worker has no run guard configured';
      if (runProblem) throw unverified(`the run asking to act is not the request's own: ${runProblem}`);
      // Act only on what the evidence proves, whatever the rest of the input says.
      const { request } = evidence;
      const input = {
        requestId: request.requestId,
        tenant: request.tenant,
        tool: request.tool,
        args: request.args,
        runAs: evaluation.decision.runAs ?? 'unknown',
        idempotencyKey: `toolgate:${trusted.workflowId}`,
        ...(request.traceId === undefined ? {} : { traceId: request.traceId }),
      };
      const { policy } = deps.policy.current();
      const manifest = policy?.manifest(input.tool);
      if (!manifest) {
        throw ApplicationFailure.nonRetryable(`tool ${input.tool} is not in the tool manifest in force`, FailureTypes.ToolNotRegistered);
      }
      if (!manifest.idempotent && attempt > 1) {
        // An earlier attempt may have acted and this tool cannot deduplicate: stop, do not repeat.
        throw ApplicationFailure.nonRetryable(
          `${input.tool} is not idempotent and attempt ${attempt - 1} ended without a confirmed outcome (its worker stopped or it timed out); the tool may have acted`,
          FailureTypes.OutcomeUnknown,
        );
      }
      // Execute exactly what was evaluated and approved: the same adapter, URL, identity and limits.
      const evaluatedDigest = evaluation.decision.toolDigest;
      if (manifest.digest !== evaluatedDigest) {
        throw ApplicationFailure.nonRetryable(
          `the manifest of ${input.tool} changed since the request was ${evaluation.proposal ? 'approved' : 'evaluated'} ` +
            `(then ${evaluatedDigest ?? 'none recorded'}, now ${manifest.digest}); nothing was executed: submit the request again`,
          FailureTypes.ManifestChanged,
          { evaluated: evaluatedDigest ?? null, inForce: manifest.digest },
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
      const log = deps.logger.child({ requestId: input.requestId, tool: input.tool, runAs: input.runAs, attempt });
      const attemptRun = startAttempt();
      const context: ToolContext = { ...input, attempt, signal: attemptRun.signal, deadline: attemptRun.deadline };
      const act = async (): Promise<unknown> => {
        if (manifest.adapter.type === 'http') return callHttpTool(manifest.adapter, context, manifest.idempotent, manifest.egress);
        if (manifest.adapter.type === 'mcp') return callMcpTool(manifest.adapter, context);
        const handler = deps.tools[manifest.adapter.handler];
        if (!handler) {
          throw ApplicationFailure.nonRetryable(
            `no code handler named ${manifest.adapter.handler} is registered on this worker`,
            FailureTypes.ToolNotRegistered,
          );
        }
        return handler(context);
      };
      let result: unknown;
      let withheld: ResultWithheld | undefined;
      try {
        for (let tries = 1; ; tries++) {
          try {
            result = await act();
            break;
          } catch (err) {
            if (err instanceof ResultWithheldError) {
              withheld = { code: err.code, reason: redactText(err.message) };
              result = null;
              break;
            }
            // A tool that cannot deduplicate is tried again only while it certainly received nothing,
            // inside this attempt: a later attempt could not tell "refused" from "acted, then lost".
            if (err instanceof ToolNotReachedError && !manifest.idempotent) {
              if (tries < EXECUTION_BOUNDS.notReachedTries && !attemptRun.signal.aborted) {
                await sleep(Math.min(200 * 2 ** tries, 2_000), undefined, { signal: attemptRun.signal }).catch(() => undefined);
                continue;
              }
              throw ApplicationFailure.nonRetryable(
                `${redactText(err.message)}; tried ${tries} times and nothing was sent: the tool did not act`,
                FailureTypes.ToolUnreachable,
              );
            }
            throw redactedFailure(err, manifest.idempotent, log);
          }
        }
      } finally {
        attemptRun.stop();
      }
      let filtered: ReturnType<typeof filterResult> | undefined;
      if (!withheld) {
        try {
          filtered = filterResult(result ?? null, { tenant: input.tenant, egress: manifest.egress });
        } catch (err) {
          if (!(err instanceof ResultTooLargeError || err instanceof TenantMismatchError)) throw err;
          withheld = { code: err instanceof ResultTooLargeError ? 'result_too_large' : 'tenant_mismatch', reason: redactText(err.message) };
        }
      }
      if (withheld || !filtered) {
        const reason = withheld?.reason ?? 'the result could not be filtered';
        // The tool acted: this is a completion whose result stays inside, never "failed, did not act".
        log.error({ reason }, 'tool acted; its result is withheld by the egress policy');
        return { result: null, attempts: attempt, egress: { bytes: 0, redactions: {} }, withheld: withheld ?? { code: 'result_too_large', reason } };
      }
      log.info({ bytes: filtered.bytes, redactions: filtered.redactions }, 'tool executed');
      countRedactions(input.tool, filtered.redactions);
      return { result: filtered.value, attempts: attempt, egress: { bytes: filtered.bytes, redactions: filtered.redactions } };
    },
  };
}

/**
 * The running attempt of an execution: heartbeats so the server notices a dead worker within
 * EXECUTION_BOUNDS.heartbeatTimeoutMs, and a signal that aborts at the attempt's deadline or when
 * the server cancels the attempt (which it does when it gave the attempt up: the next heartbeat
 * answers that the attempt is gone), so two attempts of one call do not run side by side.
 */
function startAttempt(): { signal: AbortSignal; deadline: Date; stop(): void } {
  const context = Context.current();
  const { startToCloseTimeoutMs } = context.info;
  // Leave the activity time to report: the adapter stops a little before the server gives up.
  const budget = Math.min(EXECUTION_BOUNDS.maxToolTimeoutMs, Math.max(1_000, (startToCloseTimeoutMs || EXECUTION_BOUNDS.attemptTimeoutMs) - 5_000));
  const deadline = new Date(Date.now() + budget);
  const signal = AbortSignal.any([context.cancellationSignal, AbortSignal.timeout(budget)]);
  context.heartbeat({ phase: 'acting' });
  const timer = setInterval(() => context.heartbeat({ phase: 'acting' }), EXECUTION_BOUNDS.heartbeatEveryMs);
  return { signal, deadline, stop: () => clearInterval(timer) };
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
