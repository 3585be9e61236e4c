/**
 * The activities of a tool request: policy evaluation, dry-run previews, approver notification and
 * tool execution, one file per group (./evaluate.ts, ./preview.ts, ./notify.ts, ./execute.ts,
 * ./trust-anchors.ts; what they share is in ./deps.ts).
 * Built by `createActivities(deps)` so tests and the worker inject real dependencies or fakes.
 * The activities' names are recorded in every history: renaming one breaks replay.
 */
import type { ActivityDeps } from './deps.js';
import { evaluateActivities } from './evaluate.js';
import { executeActivities } from './execute.js';
import { notifyActivities } from './notify.js';
import { previewActivities } from './preview.js';
import { trustAnchorActivities } from './trust-anchors.js';

/** Creates the activity functions bound to `deps`. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...trustAnchorActivities(deps),
    ...evaluateActivities(deps),
    ...notifyActivities(deps),
    ...previewActivities(deps),
    ...executeActivities(deps),
  };
}
