/**
 * Prometheus metrics of toolgate's processes (`prom-client`), served at `/metrics` by the API.
 * Refused attempts that may not be written into any request's history — anonymous callers,
 * invalid credentials, identity spoofing, requests of another tenant — are counted here and
 * logged, so a flood is visible without letting anyone grow a history.
 */
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

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
