/**
 * Bare Temporal workflows the gateway is compared with: the engine's floor (a workflow that starts
 * and completes, no activity), the least a workflow can do to run the same work (one regular
 * activity, one local activity), and the least it can do to wait for a person
 * (block on `condition()` until a client Update arrives, then run the activity). Deterministic code
 * only; bundled on its own for a separate worker.
 */
import { defineSearchAttributeKey } from '@temporalio/common';
import { condition, defineUpdate, proxyActivities, proxyLocalActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { BaselineActivities } from './baseline-activities.js';
import type { WorkInput } from './work.js';

/** Resumes a `bareAwaitUpdate` workflow. */
export const approveUpdate = defineUpdate<{ approved: boolean }, [{ approver: string }]>('approve');

/** A search attribute the waiting baseline sets once it waits (as toolgate sets `ToolgateStatus`), so the bench can count waiters. */
export const benchStateKey = defineSearchAttributeKey('BenchState', 'KEYWORD');

const { work } = proxyActivities<BaselineActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});

const { work: localWork } = proxyLocalActivities<BaselineActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 5, initialInterval: '200 milliseconds' },
});

/** No activity: start → complete, the least any workflow costs (the engine floor). */
export async function bareEmpty(input: WorkInput): Promise<{ n: number }> {
  return { n: input.n };
}

/** One regular activity. */
export async function bareActivity(input: WorkInput): Promise<{ n: number; digest: string }> {
  return work(input);
}

/** One local activity. */
export async function bareLocalActivity(input: WorkInput): Promise<{ n: number; digest: string }> {
  return localWork(input);
}

/** Waits on `condition()` until an Update approves, then runs one regular activity. */
export async function bareAwaitUpdate(input: WorkInput): Promise<{ n: number; digest: string }> {
  let approved = false;
  setHandler(approveUpdate, () => {
    approved = true;
    return { approved };
  });
  upsertSearchAttributes([{ key: benchStateKey, value: 'waiting' }]);
  await condition(() => approved);
  return work(input);
}
