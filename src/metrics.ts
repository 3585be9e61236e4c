/**
 * Prometheus metrics of toolgate's processes (`prom-client`), served at `/metrics` by the API and,
 * when `TOOLGATE_METRICS_ADDRESS` is set, by `toolgate worker` on that address.
 *
 * - Refused attempts that may not be written into any request's history — anonymous callers,
 *   invalid credentials, identity spoofing, requests of another tenant — are counted here and
 *   logged, so a flood is visible without letting anyone grow a history.
 * - What happens to requests is counted by the worker that runs them: decisions, outcomes,
 *   refusals, rate-limit hits and approval waits come from the workflow through sinks (see
 *   workflows/metrics.ts: never counted twice on replay), redactions from the execution activity.
 * - Requests waiting for approval are counted by the API on each scrape from Temporal visibility
 *   (`pendingApprovalsRegistry`): right for the whole deployment, however many workers run.
 * - The Temporal SDK's own metrics (the worker's core: polls, task latencies, cache, slots) are
 *   exported by the SDK on a loopback port and appended to the same exposition
 *   (`serveTemporalSdkMetricsFrom`), so one scrape target per process serves both.
 *
 * Every label is bounded: tools and tenants come from policy-validated, verified values (a made-up
 * tool is `(unknown)`), reasons and kinds from closed sets; never request ids or actors.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import type { InjectedSinks } from '@temporalio/worker';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ToolgateMetricsSinks } from '../workflows/metrics.js';
import { isShadowDisagreement, searchAttributes } from './shared/messages.js';
import { untraced } from './telemetry.js';

/** The registry of this process. */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'toolgate_process_' });

/** Attempts refused at an edge without a record in a request's history, by surface (agent API, approvals, links, codec) and code. */
export const refusedAttempts = new Counter({
  name: 'toolgate_refused_attempts_total',
  help: 'Attempts refused at an edge and not recorded in any request history',
  labelNames: ['surface', 'code'] as const,
  registers: [metricsRegistry],
});

/** Requests by their first decision: `allow`, `approve` or `deny` (policy's, or the admission check's). Once per request. */
export const requestsTotal = new Counter({
  name: 'toolgate_requests_total',
  help: 'Tool requests by their first decision (allow, approve, deny), counted once per request',
  labelNames: ['tool', 'tenant', 'decision'] as const,
  registers: [metricsRegistry],
});

/** Requests that ended, by outcome: completed, denied, rejected, expired, failed, outcome_unknown. */
export const requestOutcomes = new Counter({
  name: 'toolgate_request_outcomes_total',
  help: 'Tool requests that ended, by outcome',
  labelNames: ['tool', 'tenant', 'outcome'] as const,
  registers: [metricsRegistry],
});

/** Denied requests by denial code (rule_denied, rate_limited, kill_switch, unverified_request, manifest_changed, ...). */
export const refusals = new Counter({
  name: 'toolgate_refusals_total',
  help: 'Tool requests denied, by denial code',
  labelNames: ['reason'] as const,
  registers: [metricsRegistry],
});

/** Time from a request entering approval to the end of that round (approved, rejected, expired, edited, killed). */
export const approvalWait = new Histogram({
  name: 'toolgate_approval_wait_seconds',
  help: 'Seconds from a request entering approval to the end of that round of approval, by how it ended',
  labelNames: ['tool', 'end'] as const,
  // From a quick click to the longest expiry policies use (days).
  buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600],
  registers: [metricsRegistry],
});

/** Values the egress filter redacted from tool results, by tool and redaction rule. */
export const egressRedactions = new Counter({
  name: 'toolgate_egress_redactions_total',
  help: 'Values redacted from tool results before they left the gateway, by tool and redaction rule',
  labelNames: ['tool', 'kind'] as const,
  registers: [metricsRegistry],
});

/** Requests denied by a rate limit, by the limit's name in policy. */
export const rateLimitHits = new Counter({
  name: 'toolgate_rate_limit_hits_total',
  help: 'Tool requests denied by a rate limit, by tool, tenant and limit',
  labelNames: ['tool', 'tenant', 'limit'] as const,
  registers: [metricsRegistry],
});

/**
 * Requests whose shadow policy (`TOOLGATE_SHADOW_POLICY`) disagreed with policy's first decision,
 * by kind of disagreement (`allow->deny`, `approve->allow`, `plan`, `risk`, …). Once per request.
 */
export const shadowDisagreements = new Counter({
  name: 'toolgate_shadow_disagreements_total',
  help: 'Tool requests on which the shadow policy disagreed with the enforced policy, by kind of disagreement, counted once per request',
  labelNames: ['tool', 'tenant', 'kind'] as const,
  registers: [metricsRegistry],
});

/**
 * Break-glass overrides: `requested` when policy granted an override round (a person asked and a
 * break-glass rule allows it), then the outcome (`completed`, `rejected`, `expired`, …) when it ends.
 */
export const overrides = new Counter({
  name: 'toolgate_overrides_total',
  help: 'Break-glass overrides of a policy denial, by tool, tenant and stage (requested, then the outcome)',
  labelNames: ['tool', 'tenant', 'stage'] as const,
  registers: [metricsRegistry],
});

/** Stages of an override the counter accepts as labels (a closed set). */
const OVERRIDE_STAGES = new Set(['requested', 'completed', 'denied', 'rejected', 'expired', 'failed', 'outcome_unknown']);

/** A label value as given when it is a short string; anything else is not trusted as a label. */
function label(value: unknown): string {
  return typeof value === 'string' && value.length <= 128 ? value : '(invalid)';
}

/**
 * The worker's side of the workflow's metrics sinks (workflows/metrics.ts). `callDuringReplay:
 * false` (the default, stated): a replayed workflow task — cache eviction, another worker, the
 * replayer — does not count again. A workflow task that fails after a sink call and is retried
 * may count twice (the SDK's documented limit of sinks); counters are for rates, the history
 * is the record.
 */
export function workflowMetricsSinks(): InjectedSinks<ToolgateMetricsSinks> {
  return {
    toolgateMetrics: {
      decided: {
        fn: (_info, labels, decision) => requestsTotal.inc({ tool: label(labels.tool), tenant: label(labels.tenant), decision: label(decision) }),
        callDuringReplay: false,
      },
      approvalEnded: {
        fn: (_info, labels, end, waitedSeconds) => {
          if (Number.isFinite(waitedSeconds) && waitedSeconds >= 0) approvalWait.observe({ tool: label(labels.tool), end: label(end) }, waitedSeconds);
        },
        callDuringReplay: false,
      },
      ended: {
        fn: (_info, labels, outcome, denial) => {
          const tool = label(labels.tool);
          const tenant = label(labels.tenant);
          requestOutcomes.inc({ tool, tenant, outcome: label(outcome) });
          if (!denial) return;
          refusals.inc({ reason: label(denial.code) });
          if (denial.code === 'rate_limited') {
            const rule = label(denial.rule);
            rateLimitHits.inc({ tool, tenant, limit: rule.startsWith('limit:') ? rule.slice('limit:'.length) : rule });
          }
        },
        callDuringReplay: false,
      },
      shadowDisagreed: {
        // Only kinds of change are labels (a closed set): anything else is one bounded value.
        fn: (_info, labels, kind) =>
          shadowDisagreements.inc({ tool: label(labels.tool), tenant: label(labels.tenant), kind: isShadowDisagreement(kind) ? kind : '(invalid)' }),
        callDuringReplay: false,
      },
      overridden: {
        fn: (_info, labels, stage) =>
          overrides.inc({ tool: label(labels.tool), tenant: label(labels.tenant), stage: OVERRIDE_STAGES.has(stage) ? stage : '(invalid)' }),
        callDuringReplay: false,
      },
    },
  };
}

/** Counts the redactions of one tool result (`FilteredResult.redactions`: replacements per rule). */
export function countRedactions(tool: string, hits: Readonly<Record<string, number>>): void {
  for (const [kind, count] of Object.entries(hits)) if (count > 0) egressRedactions.inc({ tool: label(tool), kind: label(kind) }, count);
}

/** The visibility query of requests waiting for approval. */
export const PENDING_APPROVALS_QUERY = `${searchAttributes.status.name} = 'pending_approval' AND ExecutionStatus = 'Running'`;

/**
 * A registry holding `toolgate_pending_approvals`: the number of requests waiting for approval in
 * the namespace, counted by Temporal visibility when scraped (one count call, cached `cacheMs` so
 * frequent scrapes are no load on visibility). Served by the API: a gauge kept by each worker would
 * be wrong as soon as more than one runs. NaN when visibility did not answer.
 */
export function pendingApprovalsRegistry(client: Client, options: { cacheMs?: number; logger?: Logger } = {}): Registry {
  const registry = new Registry();
  const cacheMs = options.cacheMs ?? 5_000;
  let cached: { at: number; value: Promise<number> } | undefined;
  const count = (): Promise<number> => {
    if (cached && Date.now() - cached.at < cacheMs) return cached.value;
    const value = client.connection
      .withDeadline(Date.now() + 2_000, () =>
        client.workflowService.countWorkflowExecutions({ namespace: client.options.namespace, query: PENDING_APPROVALS_QUERY }),
      )
      .then(
        // int64 arrives as a Long (or a number); a count of requests fits a double.
        (response) => Number(String(response.count ?? 0)),
        (err: unknown) => {
          options.logger?.warn({ err: (err as Error).message }, 'toolgate_pending_approvals: visibility did not answer');
          return Number.NaN;
        },
      );
    cached = { at: Date.now(), value };
    return value;
  };
  new Gauge({
    name: 'toolgate_pending_approvals',
    help: 'Requests waiting for approval in the namespace (Temporal visibility, counted at scrape time)',
    registers: [registry],
    async collect() {
      this.set(await count());
    },
  });
  return registry;
}

/** Where the Temporal SDK's Prometheus exporter of this process listens (loopback), if it does. */
let temporalSdkMetricsUrl: string | undefined;

/**
 * Appends the Temporal SDK's metrics, exported by the SDK core at `url` (`Runtime.install` with
 * `telemetryOptions.metrics.prometheus` on a loopback port), to this process's exposition. Names
 * differ (`temporal_` vs `toolgate_`), so the two texts are one valid exposition.
 */
export function serveTemporalSdkMetricsFrom(url: string): void {
  temporalSdkMetricsUrl = url;
  // Scraping is not worth a trace span per scrape.
  untraced(new URL(url).origin);
}

async function temporalSdkMetrics(): Promise<string> {
  if (!temporalSdkMetricsUrl) return '';
  try {
    const response = await fetch(temporalSdkMetricsUrl, { signal: AbortSignal.timeout(2_000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const text = await response.text();
    return text.endsWith('\n') || text === '' ? text : `${text}\n`;
  } catch (err) {
    // A comment: the scrape still succeeds with toolgate's own metrics.
    return `# Temporal SDK metrics unavailable from ${temporalSdkMetricsUrl}: ${(err as Error).message.replace(/\s+/g, ' ')}\n`;
  }
}

/** The Prometheus text of this process: its registry, `extra` registries (the API's pending gauge) and the Temporal SDK's metrics. */
export async function metricsExposition(extra: readonly Registry[] = []): Promise<{ contentType: string; text: string }> {
  const registry = extra.length > 0 ? Registry.merge([metricsRegistry, ...extra]) : metricsRegistry;
  const [own, sdk] = await Promise.all([registry.metrics(), temporalSdkMetrics()]);
  return { contentType: metricsRegistry.contentType, text: own + sdk };
}

/**
 * The worker's metrics endpoint at `address` (`host:port`): `GET /metrics`, nothing else. It has
 * no authentication: bind it to loopback or a private network that only Prometheus reaches (the
 * compose file binds it inside the container network and publishes no port), never publicly.
 */
export async function startMetricsServer(address: string, logger: Logger): Promise<Server> {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  const port = Number(address.slice(at + 1));
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    metricsExposition().then(
      ({ contentType, text }) => res.writeHead(200, { 'content-type': contentType }).end(text),
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, 'metrics exposition failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  logger.info({ address: `${bound.address}:${bound.port}` }, 'worker metrics listening (GET /metrics, no authentication: keep it off public networks)');
  return server;
}
