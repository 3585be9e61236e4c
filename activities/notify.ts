/** The notification activity: tells approver groups about a request, with the link to review it. */
import type { ApprovalNotification } from '../src/notify/notifier.js';
import type { ActivityDeps } from './deps.js';

/** A notification as the workflow sends it: the facts, and the proposal's dry-run preview while one is shown. */
export type ApproverNotificationInput = Omit<ApprovalNotification, 'reviewUrl'>;

/** The activities of the notification group, bound to `deps`. */
export function notifyActivities(deps: ActivityDeps) {
  const apiUrl = (deps.publicApiUrl ?? 'http://127.0.0.1:8787').replace(/\/$/, '');
  return {
    /** Tells approver groups that a request waits for them, was escalated or reminded, or ended. */
    async notifyApprovers(notification: ApproverNotificationInput): Promise<void> {
      await deps.notifier.notify({
        ...notification,
        reviewUrl: `${apiUrl}/inbox/requests/${encodeURIComponent(notification.requestId)}`,
      });
    },
  };
}
