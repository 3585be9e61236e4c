/**
 * One reading of how an activity call failed, for regular and local activities alike. A regular
 * activity's failure reaches the workflow as an ActivityFailure around its cause; a local
 * activity's may reach it as the cause itself (the tool's ApplicationFailure, a TimeoutFailure).
 * Code that tells "the activity failed" from "the workflow broke" asks this, so a local activity's
 * failure becomes the request's outcome instead of failing the workflow. Workflow code.
 */
import { RetryState } from '@temporalio/common';
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';

/** `err` as an ActivityFailure when it is an activity's failure (of `activityType`, for a bare cause), else undefined. */
export function asActivityFailure(err: unknown, activityType: string): ActivityFailure | undefined {
  if (err instanceof ActivityFailure) return err;
  if (err instanceof ApplicationFailure || err instanceof TimeoutFailure) {
    // Whatever retries its worker made are over: the workflow sees the final failure.
    return new ActivityFailure(err.message, activityType, undefined, RetryState.NON_RETRYABLE_FAILURE, undefined, err);
  }
  return undefined;
}
