/**
 * The execution activity: re-verifies the evidence (admission, approvals, the worker's seal, the
 * run), checks the manifest and kill switches again, runs the side effect with the request's
 * idempotency key, and sends its result through the egress filter before it enters the history.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { ResultTooLargeError, TenantMismatchError, filterResult, redactText, redactValue } from '../src/egress/index.js';
import { countRedactions } from '../src/metrics.js';
import { callMcpTool } from '../src/mcp/executor.js';
import { EXECUTION_BOUNDS, FailureTypes, idempotencyKeyFor, type EgressEvent, type ResultWithheld, type ToolRequest } from '../src/shared/index.js';
import { EvidenceError, verifyExecution, type ExecutionEvidence } from '../src/trust/evidence.js';
import { callHttpTool, ToolUnavailableError } from '../src/tools/http-adapter.js';
import { OutcomeUnknownError, ResultWithheldError, ToolNotReachedError, ToolRejectedError, type ToolContext } from '../src/tools/types.js';
import { evidenceContext, unverified, type ActivityDeps, type SealedEvaluation } from './deps.js';

/** Input of the execution activity. The fields beside `evidence` are for people reading the history; the activity acts only on what the evidence proves. */
export interface ExecuteToolInput {
  requestId: string;
  tenant: string;
  tool: string;
  args: Record<string, unknown>;
  runAs: string;
  idempotencyKey: string;
  traceId?: string;
  /**
   * The first run of the workflow's chain, as its history says. Read only when the activity runs as
   * a local activity: then the caller is the toolRequest workflow in this worker, not a command
   * anyone with a Temporal connection could schedule, and the run check needs no describe.
   */
  firstRunId?: string;
  /** The admission, the approvals and the sealed evaluation (absent only in runs from before the trust boundary, which cannot execute any more). */
  evidence?: Omit<ExecutionEvidence, 'admitted' | 'seal' | 'evaluation'> & { admitted?: ToolRequest; evaluation: SealedEvaluation };
}

/** The activities of the execution group, bound to `deps`. */
export function executeActivities(deps: ActivityDeps) {
  return {
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
      const { attempt, isLocal } = Context.current().info;
      const trusted = evidenceContext(deps);
      const evidence = given.evidence;
      if (!evidence) throw unverified('no evidence of admission and approval came with this execution');
      const { seal, ...evaluation } = evidence.evaluation;
      try {
        await verifyExecution({ ...evidence, evaluation, seal: seal ?? '', admitted: evidence.admitted ?? evidence.request }, trusted, deps.trust.sealer);
      } catch (err) {
        if (err instanceof EvidenceError) throw unverified(`the execution is not backed by a verified admission and approval: ${err.message}`);
        throw err;
      }
      const ownRun = isLocal && given.firstRunId !== undefined ? { firstRunId: given.firstRunId } : undefined;
      const runProblem = deps.runs ? await deps.runs.problem(trusted.workflowId, trusted.runId, ownRun) : 'this worker has no run guard configured';
      if (runProblem) throw unverified(`the run asking to act is not the request's own: ${runProblem}`);
      // Act only on what the evidence proves, whatever the rest of the input says.
      const { request } = evidence;
      const input = {
        requestId: request.requestId,
        tenant: request.tenant,
        tool: request.tool,
        args: request.args,
        runAs: evaluation.decision.runAs ?? 'unknown',
        idempotencyKey: idempotencyKeyFor(trusted.workflowId),
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
  // A local activity has no heartbeat: its worker's workflow task stands for it.
  if (context.info.isLocal) return { signal, deadline, stop: () => undefined };
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
