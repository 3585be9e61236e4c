/**
 * What every activity group shares: the dependencies the worker (or a test) injects, the sealed
 * evaluation they pass along, and the checks that an activity call comes from a real toolgate
 * workflow (the run it was scheduled by, the worker's trust anchors).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import type { Notifier } from '../src/notify/notifier.js';
import type { KillSwitches } from '../src/policy/kill-switch-client.js';
import type { RateLimitStore } from '../src/policy/index.js';
import type { PolicyStore } from '../src/policy/store.js';
import { FailureTypes, type Evaluation } from '../src/shared/index.js';
import type { WorkerTrust } from '../src/trust/store.js';
import type { RunGuard } from '../src/trust/runs.js';
import type { ToolRegistry } from '../src/tools/types.js';

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

/** A policy evaluation sealed by the worker: only a sealed evaluation is ever executed. */
export type SealedEvaluation = Evaluation & { seal?: string };

/** Refuses an activity call that cannot be shown to come from a real, admitted toolgate request. */
export function unverified(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${message}; nothing was evaluated or executed`, FailureTypes.UnverifiedExecution);
}

/** The real workflow and run of the calling activity (from its task, not its input) and the worker's trust. */
export function evidenceContext(deps: Pick<ActivityDeps, 'trust'>): { workflowId: string; runId: string; anchors: ReturnType<WorkerTrust['anchors']> } {
  const { workflowExecution } = Context.current().info;
  if (!workflowExecution) throw unverified('the activity was not scheduled by a workflow');
  return { workflowId: workflowExecution.workflowId, runId: workflowExecution.runId, anchors: deps.trust.anchors() };
}

/** The verified origin of an activity call, as `evidenceContext` returns it. */
export type TrustedContext = ReturnType<typeof evidenceContext>;
