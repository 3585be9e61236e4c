/**
 * The workflow's side of toolgate's Prometheus metrics: calls to a workflow sink (`proxySinks`),
 * which the worker turns into counter increments outside the sandbox (`workflowMetricsSinks` in
 * src/metrics.ts). A sink call is not a command: it leaves the history unchanged, so adding or
 * removing one never breaks replay. The worker registers these sinks with
 * `callDuringReplay: false`: a workflow replayed after a cache eviction, on another worker or by
 * the replayer does not count again what it counted when it first ran.
 *
 * Labels are chosen by the workflow from what it verified: a tool only once policy knows it, a
 * tenant only once the front door's admission verified. Never request ids or actors (unbounded).
 */
import { proxySinks, workflowInfo, type Sinks } from '@temporalio/workflow';

/** The tool and tenant a request's metrics are labelled with. */
export interface RequestMetricLabels {
  tool: string;
  tenant: string;
}

/** How a round of approval ended. */
export type ApprovalEndLabel = 'approved' | 'rejected' | 'expired' | 'reevaluated' | 'killed';

/** The metrics sinks of the toolRequest workflow. */
export interface ToolgateMetricsSinks extends Sinks {
  toolgateMetrics: {
    /** The request's first decision (policy's, or the admission check's denial): once per request. */
    decided(labels: RequestMetricLabels, decision: 'allow' | 'approve' | 'deny'): void;
    /** A round of approval ended, `waitedSeconds` after it began (workflow time). */
    approvalEnded(labels: RequestMetricLabels, end: ApprovalEndLabel, waitedSeconds: number): void;
    /** The request ended with `outcome`; a denial with its code and the rule that denied. */
    ended(labels: RequestMetricLabels, outcome: string, denial?: { code: string; rule: string }): void;
    /** The shadow policy disagreed with policy's first decision, by `kind` (`allow->deny`, `plan`, `risk`, …): once per request. */
    shadowDisagreed(labels: RequestMetricLabels, kind: string): void;
    /** A break-glass override: `requested` when policy granted its round, then its outcome. */
    overridden(labels: RequestMetricLabels, stage: string): void;
  };
}

/** Tool or tenant label of a request whose tool policy does not know / whose admission did not verify. */
export const UNKNOWN_TOOL_LABEL = '(unknown)';
export const UNVERIFIED_TENANT_LABEL = '(unverified)';

const sink = proxySinks<ToolgateMetricsSinks>().toolgateMetrics;
/**
 * Whether the workflow is running new events (not replaying old ones): only then is anything
 * counted. The worker's `callDuringReplay: false` is the same rule on its side; checking here too
 * keeps a replayer without these sinks (the replay tests, `Worker.runReplayHistories`) from
 * logging every call as an unregistered sink. Reading it changes no command: replay-safe.
 */
const live = (): boolean => !workflowInfo().unsafe.isReplayingHistoryEvents;

/** The sink the workflow reports to (calls made while replaying are dropped). */
export const toolgateMetrics: ToolgateMetricsSinks['toolgateMetrics'] = {
  decided: (labels, decision) => {
    if (live()) sink.decided(labels, decision);
  },
  approvalEnded: (labels, end, waitedSeconds) => {
    if (live()) sink.approvalEnded(labels, end, waitedSeconds);
  },
  ended: (labels, outcome, denial) => {
    if (live()) sink.ended(labels, outcome, denial);
  },
  shadowDisagreed: (labels, kind) => {
    if (live()) sink.shadowDisagreed(labels, kind);
  },
  overridden: (labels, stage) => {
    if (live()) sink.overridden(labels, stage);
  },
};
