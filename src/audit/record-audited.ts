/**
 * What the audit record reads of a request's workflow: each activity the workflow proxies (by the
 * name it proxies it under) and each message it accepts that lands in its history. Both maps are
 * checked by tests against what the workflow really registers, so the record can never silently
 * lose a part of a request's history.
 */
import type { createActivities } from '../../activities/index.js';
import { decideUpdate, killSignal, refreshTrustSignal } from '../shared/index.js';

/** The activities a request's workflow can call, by the names it proxies them under. */
type RequestActivity = keyof ReturnType<typeof createActivities>;

/**
 * What the record makes of each activity of a request's workflow. Exhaustive over the activities
 * the workflow proxies: renaming one, or adding one, does not compile until this map says how the
 * record shows it — so the record can never silently lose the execution or the notifications.
 * Local activities leave markers, which are recognised by the shape of their result; the
 * execution, which runs as a local activity when policy marks it `localExecution`, is recognised by
 * the activity type its marker names.
 */
export const AUDITED_ACTIVITIES = {
  loadTrustAnchors: 'marker',
  evaluatePolicy: 'marker',
  notifyApprovers: 'notification',
  // The dry-run preview's answer is sealed into the evaluation it returns; a failure to answer is sealed by the marker.
  previewTool: 'preview',
  recordPreviewFailure: 'marker',
  executeTool: 'execution',
} as const satisfies Record<RequestActivity, 'marker' | 'notification' | 'preview' | 'execution'>;

/** The signal of histories from before the trust boundary that carried a refused attempt (no definition exists any more). */
export const LEGACY_REFUSAL_SIGNAL = 'attemptRefused';

/**
 * The messages a request's workflow accepts that land in its history, and how the record reads
 * them, named from the definitions the workflow registers. An integration test asks a running
 * request for its registered handlers and fails on one missing here.
 */
export const AUDITED_MESSAGES = {
  updates: { [decideUpdate.name]: 'decision' },
  signals: { [killSignal.name]: 'kill order', [refreshTrustSignal.name]: 'trusted keys refresh', [LEGACY_REFUSAL_SIGNAL]: 'refused attempt (legacy)' },
} as const;

/** What the record makes of the activity `name` (see {@link AUDITED_ACTIVITIES}), or undefined for one the workflow does not proxy. */
export function activityRole(name: string): (typeof AUDITED_ACTIVITIES)[RequestActivity] | undefined {
  return Object.hasOwn(AUDITED_ACTIVITIES, name) ? AUDITED_ACTIVITIES[name as RequestActivity] : undefined;
}
