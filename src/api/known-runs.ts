/**
 * The run ids of requests this API process has already seen from the server, by workflow id: the
 * runs its front door started (after checking the memo says they are the requests it admitted)
 * and the runs an approver's read found in the approver's tenant. A decision signs the run it is
 * bound to; with the run known, the API sends it without first describing the workflow, which
 * saves a server round trip per decision.
 *
 * Safe to trust because of what is remembered: a workflow id names its tenant
 * (`toolreq/<tenant>/<id>`), and only runs the server showed as that tenant's request are kept.
 * A run that closed or was replaced answers the update with "not found"; the caller then forgets
 * it and asks the server, as it would without the cache. Bounded: the oldest entries go first.
 */
export class KnownRuns {
  private readonly runs = new Map<string, string>();

  constructor(private readonly capacity = 10_000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive whole number, not ${capacity}`);
  }

  /** Remembers `runId` as the run of `workflowId` (the newest entry). */
  remember(workflowId: string, runId: string): void {
    this.runs.delete(workflowId);
    this.runs.set(workflowId, runId);
    if (this.runs.size > this.capacity) {
      const oldest = this.runs.keys().next().value;
      if (oldest !== undefined) this.runs.delete(oldest);
    }
  }

  /** The remembered run of `workflowId`, if any. */
  runOf(workflowId: string): string | undefined {
    return this.runs.get(workflowId);
  }

  /** Forgets `workflowId`'s run (it closed or was replaced). */
  forget(workflowId: string): void {
    this.runs.delete(workflowId);
  }

  /** How many runs are remembered. */
  get size(): number {
    return this.runs.size;
  }
}
