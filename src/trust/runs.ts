/**
 * The execution activity's check of the run asking it to act. Evidence is bound to a workflow id
 * and a run; this check adds what only the server knows: that the run is a toolRequest workflow on
 * toolgate's own task queue, the first run of its chain (not a reset or continuation), and the only
 * run of its request id that visibility lists. So a run started under the id of a request that
 * already ended (a raw restart, a reset) cannot make a worker act again with the evidence of the
 * first one; a new request must come through the front door.
 *
 * What it cannot see: runs deleted from the server before the restart (whoever may delete
 * histories can, within the admission's one-minute validity, re-run a request; tools that honour
 * the idempotency key still act once), and runs visibility has not indexed yet. It costs a describe
 * and a visibility list per execution; a local execution, whose worker knows its own run, only the list.
 */
import type { Client } from '@temporalio/client';
import { WORKFLOW_TYPE } from '../shared/messages.js';

/**
 * What the worker itself knows of a run when the execution is a local activity of its own
 * toolRequest workflow: the type and task queue are the worker's, and the first run of the chain
 * comes from the history, so the describe is not needed.
 */
export interface OwnRun {
  firstRunId: string;
}

/** Says why a run may not act, or nothing when it may. */
export interface RunGuard {
  problem(workflowId: string, runId: string, own?: OwnRun): Promise<string | undefined>;
}

/** The run guard that asks the Temporal server (describe the run and list the runs of the id, together). */
export class TemporalRunGuard implements RunGuard {
  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
  ) {}

  async problem(workflowId: string, runId: string, own?: OwnRun): Promise<string | undefined> {
    if (/['"\\]/.test(workflowId)) return 'the workflow id cannot be a request id';
    // The describe and the list are independent reads: asked together, the check costs one round trip, not two.
    const [description, otherRun] = await Promise.all([
      own ? undefined : this.client.workflow.getHandle(workflowId, runId).describe(),
      this.otherRunOf(workflowId, runId),
    ]);
    if (description) {
      if (description.type !== WORKFLOW_TYPE) return `the run is a ${description.type} workflow, not ${WORKFLOW_TYPE}`;
      if (description.taskQueue !== this.taskQueue) return `the run is on task queue ${description.taskQueue}, not toolgate's`;
    }
    const firstRunId = own ? own.firstRunId : (description?.raw.workflowExecutionInfo?.firstRunId ?? undefined);
    // A reset, a retry or a continue-as-new makes a later run of the same chain: never the request's own.
    if (firstRunId && firstRunId !== runId) return `the run is not the first of its chain (${firstRunId}); a reset or continued request cannot act`;
    if (otherRun) return `request id ${workflowId} has another run (${otherRun}); a request id is one run, ever — submit a new request`;
    return undefined;
  }

  /** Another run visibility lists under `workflowId`, if any. */
  private async otherRunOf(workflowId: string, runId: string): Promise<string | undefined> {
    for await (const run of this.client.workflow.list({ query: `WorkflowId = '${workflowId}'`, pageSize: 10 })) {
      if (run.runId !== runId) return run.runId;
    }
    return undefined;
  }
}
