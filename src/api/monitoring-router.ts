/**
 * What infrastructure polls, mounted at the root without authentication: `GET /healthz` for load
 * balancers and orchestrators, `GET /metrics` for Prometheus.
 */
import type { Client } from '@temporalio/client';
import express from 'express';
import type { Logger } from 'pino';
import { metricsExposition, pendingApprovalsRegistry } from '../metrics.js';

/** The router of `/healthz` and `/metrics`. */
export function createMonitoringRouter(deps: { client: Client; logger: Logger }): express.Router {
  const { client, logger } = deps;
  const router = express.Router();

  // Healthy means able to serve: Temporal answers and the namespace exists. Cached a second, so a
  // load balancer polling it does not become load on Temporal.
  let health: { at: number; answer: Promise<{ ok: boolean; detail: string }> } | undefined;
  const checkTemporal = (): Promise<{ ok: boolean; detail: string }> => {
    if (health && Date.now() - health.at < 1_000) return health.answer;
    const namespace = client.options.namespace;
    const answer = client.workflowService.describeNamespace({ namespace }).then(
      () => ({ ok: true, detail: `namespace ${namespace} described` }),
      (err: unknown) => ({ ok: false, detail: `Temporal did not describe namespace ${namespace}: ${(err as Error).message}` }),
    );
    const bounded = Promise.race([
      answer,
      new Promise<{ ok: boolean; detail: string }>((resolve) =>
        setTimeout(() => resolve({ ok: false, detail: 'Temporal did not answer within 2 s' }), 2_000).unref(),
      ),
    ]);
    health = { at: Date.now(), answer: bounded };
    return bounded;
  };
  router.get('/healthz', async (_req, res) => {
    const temporal = await checkTemporal();
    res.status(temporal.ok ? 200 : 503).json({ status: temporal.ok ? 'ok' : 'unavailable', temporal: temporal.detail });
  });
  // This process's metrics (and, in `toolgate dev`, its worker's and the Temporal SDK's), plus the
  // requests waiting for approval across the deployment, counted by visibility at scrape time.
  const pendingApprovals = pendingApprovalsRegistry(client, { logger });
  router.get('/metrics', async (_req, res) => {
    const { contentType, text } = await metricsExposition([pendingApprovals]);
    res.set('Content-Type', contentType).send(text);
  });
  return router;
}
