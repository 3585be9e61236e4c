/** The trust-anchor activity: the keys this worker deployment trusts, recorded in each request's history. */
import type { TrustAnchors } from '../src/shared/index.js';
import type { ActivityDeps } from './deps.js';

/** The activities of the trust-anchor group, bound to `deps`. */
export function trustAnchorActivities(deps: ActivityDeps) {
  return {
    /** The keys requests of this worker deployment trust; the workflow records them in its history. */
    async loadTrustAnchors(): Promise<TrustAnchors> {
      return deps.trust.anchors();
    },
  };
}
