/** Activities of the bare baseline workflows; `onStart` lets the approval scenario time the activity's start. */
import { benchWork, type WorkInput } from './work.js';

/** Creates the baseline activities. */
export function createBaselineActivities(hooks: { onStart?: (input: WorkInput) => void } = {}) {
  return {
    /** The same work the toolgate tool does. */
    async work(input: WorkInput): Promise<{ n: number; digest: string }> {
      hooks.onStart?.(input);
      return benchWork(input);
    },
  };
}

/** The baseline activity functions, by name. */
export type BaselineActivities = ReturnType<typeof createBaselineActivities>;
