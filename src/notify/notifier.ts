/** Telling approvers that a request waits for them: the notifier contract and a webhook notifier. */
import type { Logger } from 'pino';
import type { Risk, ToolOutcome } from '../shared/index.js';

/** One notification to approver groups. */
export interface ApprovalNotification {
  /** requested: a request waits; escalated: a tier fired; reminder: still waiting; outcome: it ended. */
  kind: 'requested' | 'escalated' | 'reminder' | 'outcome';
  tier: number;
  /** The groups to notify: the tier's new groups on escalation, all eligible groups otherwise. */
  groups: string[];
  requestId: string;
  tenant: string;
  tool: string;
  risk: Risk;
  actor: string;
  digest: string;
  expiresAt?: string;
  /** Where an approver reviews and decides the request. */
  reviewUrl: string;
  /** How the request ended, on `outcome` notifications. */
  outcome?: ToolOutcome['status'];
}

/** Delivers approval notifications; throwing makes Temporal retry the delivery. */
export interface Notifier {
  notify(notification: ApprovalNotification): Promise<void>;
}

/** Posts each notification as JSON to every configured webhook; any failure throws so it is retried. */
export class WebhookNotifier implements Notifier {
  constructor(
    private readonly urls: string[],
    private readonly options: { timeoutMs?: number; logger?: Logger } = {},
  ) {}

  async notify(notification: ApprovalNotification): Promise<void> {
    const failures: string[] = [];
    await Promise.all(
      this.urls.map(async (url) => {
        try {
          const response = await fetch(url, {
            method: 'POST',
            redirect: 'error',
            signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ type: `toolgate.approval.${notification.kind}`, ...notification }),
          });
          if (!response.ok) failures.push(`${new URL(url).host}: HTTP ${response.status}`);
        } catch (err) {
          failures.push(`${new URL(url).host}: ${(err as Error).message}`);
        }
      }),
    );
    this.options.logger?.info({ requestId: notification.requestId, kind: notification.kind, groups: notification.groups }, 'approvers notified');
    if (failures.length > 0) throw new Error(`notification failed for ${failures.join('; ')}`);
  }
}

/** A notifier that only logs: the embedded default when no webhook is configured. */
export class LogNotifier implements Notifier {
  constructor(private readonly logger: Logger) {}
  async notify(notification: ApprovalNotification): Promise<void> {
    this.logger.info({ notification }, 'approval needed');
  }
}
