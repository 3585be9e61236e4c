/**
 * Metrics and traces on a real Temporal dev server.
 *
 * Metrics: the counters move for an allowed call, a denied one (refusal reason), a call policy
 * does not know (bounded labels), a forged start (unverified, bounded labels), a rate-limit hit, a
 * redaction and an approval (wait histogram); the pending gauge counts a waiting request, then 0;
 * a worker restart that replays the history, and the replayer, count nothing twice. The CLI
 * processes serve them: `toolgate worker` at TOOLGATE_METRICS_ADDRESS with the Temporal SDK's
 * metrics appended, `toolgate api` at /metrics with the pending gauge.
 *
 * Traces: off without the OTel environment; on, one trace runs from the agent's span through the
 * API, the workflow and its activities to the tool's HTTP call (in-memory exporter in this
 * process), and across processes with OTEL_TRACES_EXPORTER=console.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { ToolDenied } from '../../src/client/index.js';
import { FAILURE_CONVERTER_PATH } from '../../src/codec/index.js';
import { workflowMetricsSinks } from '../../src/metrics.js';
import { WORKFLOW_TYPE, workflowIdFor, type ToolOutcome, type ToolRequestInput } from '../../src/shared/index.js';
import { activeTelemetry, startTelemetry, tracingRequested, type Telemetry } from '../../src/telemetry.js';
import { WORKFLOWS_PATH, workflowInterceptorModules } from '../../src/worker.js';
import { eventually, startGateway, startTemporal, testDataConverter, waitForState, workflowBundle, type GatewayEnv } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import {
  REPO_ROOT,
  TemporalProcess,
  callApi,
  findFreePort,
  localTokens,
  processKeyring,
  provisionBoundaryKeys,
  startApiProcess,
  startWorkerProcess,
  until,
  type GatewayProcessEnv,
  type ManagedProcess,
} from '../helpers/processes.js';
import { startToolService, startWebhookReceiver, type ToolService } from '../helpers/tool-service.js';

/** The policy of these tests; `obs_http` calls the test tool service at `serviceUrl`, on loopback (hence `allow_private`). */
function policyYaml(serviceUrl: string): string {
  return policy()
    .tool('obs_read')
    .tool('obs_http')
    .tool('obs_admin', { risk: 'high', roles: ['admin'] })
    .tool('obs_limited')
    .tool('obs_approve', { risk: 'high', approval: 'manager' })
    .plan('manager', { groups: ['manager'], expiresAfter: '1h' })
    .limit('obs-limited-once', { per: 'tool', tools: ['obs_limited'], rate: '1/1h' })
    .codeTool('obs_read', { runAs: 'svc-reader', egress: { redact: ['pii'] }, args: argsOf() })
    .httpTool('obs_http', `${serviceUrl}/tickets`, { runAs: 'svc-http', idempotent: true, egress: { allow_private: true }, args: argsOf() })
    .codeTool('obs_admin', { runAs: 'svc-admin', args: argsOf() })
    .codeTool('obs_limited', { runAs: 'svc-limited', args: argsOf() })
    .codeTool('obs_approve', { runAs: 'svc-approve', args: argsOf() })
    .yaml();
}

const tools = {
  obs_read: async () => ({ contact: 'write to jane.doe@example.com or john.roe@example.org', tenant: 'acme' }),
  obs_admin: async () => ({ ok: true }),
  obs_limited: async () => ({ ok: true }),
  obs_approve: async () => ({ ok: true }),
};

const bot = { id: 'obs-bot', type: 'agent' as const, roles: ['agent_runtime'] };
let seq = 0;
function request(tool: string, extra: Partial<ToolRequestInput> = {}): ToolRequestInput {
  seq += 1;
  return { requestId: `obs-${process.pid}-${Date.now()}-${seq}`, actor: bot, tenant: 'acme', environment: 'production', tool, args: {}, ...extra };
}

/** The sum of a metric's samples whose labels include `labels` (0 when there is none). */
function sample(exposition: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    if (!Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  assert.equal(response.status, 200, `${url} answered ${response.status}`);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  return response.text();
}

/** Waits until `metric{labels}` at `url` reaches `expected`; returns the exposition then. */
async function metricReaches(url: string, name: string, labels: Record<string, string>, expected: number): Promise<string> {
  let last = Number.NaN;
  try {
    return await eventually(
      async () => {
        const text = await scrape(url);
        last = sample(text, name, labels);
        return last === expected ? text : undefined;
      },
      `${name}${JSON.stringify(labels)} to reach ${expected}`,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message} (last seen: ${last})`);
  }
}

describe('metrics', { timeout: 400_000 }, () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  let service: ToolService;
  const taskQueue = `observability-${process.pid}`;
  const metricsUrl = () => `${gw.apiUrl}/metrics`;

  before(async () => {
    env = await startTemporal();
    service = await startToolService('ok');
    gw = await startGateway(env, { taskQueue, policy: policyYaml(service.url), tools });
  });
  after(async () => {
    await gw?.close();
    await service?.close();
    await env?.teardown();
  });

  test('tracing is off without the OTel environment: no SDK, no spans, no trace context sent to tools', async () => {
    assert.equal(tracingRequested({}), false);
    assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), false);
    assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }), false);
    assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true);
    assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }), true);
    assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' }), true);

    assert.equal(await startTelemetry({ serviceName: 'toolgate-test', env: {} }), undefined);
    assert.equal(activeTelemetry(), undefined);
    assert.deepEqual(workflowInterceptorModules(), [], 'no tracing module in the workflow bundle');
    // Nothing is registered with the OTel API: a span started through it records nothing.
    assert.equal(trace.getTracer('probe').startSpan('probe').isRecording(), false);

    const before = service.effects.length;
    await gw.gateway.call(request('obs_http'));
    const effect = service.effects[before];
    assert.ok(effect, 'the tool was called');
    assert.equal(effect.headers.traceparent, undefined, 'no trace context reached the tool');
  });

  test('an allowed call counts its decision and its outcome', async () => {
    const labels = { tool: 'obs_read', tenant: 'acme' };
    const start = await scrape(metricsUrl());
    const allowed = sample(start, 'toolgate_requests_total', { ...labels, decision: 'allow' });
    const completed = sample(start, 'toolgate_request_outcomes_total', { ...labels, outcome: 'completed' });
    const redactions = sample(start, 'toolgate_egress_redactions_total', { tool: 'obs_read', kind: 'email' });

    const result = (await gw.gateway.call(request('obs_read'))) as { contact: string };
    assert.equal(result.contact, 'write to [REDACTED:email] or [REDACTED:email]');

    const text = await metricReaches(metricsUrl(), 'toolgate_request_outcomes_total', { ...labels, outcome: 'completed' }, completed + 1);
    assert.equal(sample(text, 'toolgate_requests_total', { ...labels, decision: 'allow' }), allowed + 1);
    // The redaction: two e-mail addresses replaced in the result.
    assert.equal(sample(text, 'toolgate_egress_redactions_total', { tool: 'obs_read', kind: 'email' }), redactions + 2);
  });

  test('a denied call counts the decision, the outcome and the refusal reason', async () => {
    const labels = { tool: 'obs_admin', tenant: 'acme' };
    const start = await scrape(metricsUrl());
    const denied = sample(start, 'toolgate_requests_total', { ...labels, decision: 'deny' });
    const refused = sample(start, 'toolgate_refusals_total', { reason: 'role_not_allowed' });

    await assert.rejects(gw.gateway.call(request('obs_admin')), (err: unknown) => err instanceof ToolDenied && err.outcome.code === 'role_not_allowed');

    const text = await metricReaches(metricsUrl(), 'toolgate_refusals_total', { reason: 'role_not_allowed' }, refused + 1);
    assert.equal(sample(text, 'toolgate_requests_total', { ...labels, decision: 'deny' }), denied + 1);
    assert.ok(sample(text, 'toolgate_request_outcomes_total', { ...labels, outcome: 'denied' }) >= 1);
  });

  test('labels stay bounded: a tool policy does not know is (unknown), a forged start (unverified)', async () => {
    const start = await scrape(metricsUrl());
    const unknownTool = sample(start, 'toolgate_refusals_total', { reason: 'unknown_tool' });
    const unverified = sample(start, 'toolgate_refusals_total', { reason: 'unverified_request' });
    const unknownDecisions = sample(start, 'toolgate_requests_total', { tool: '(unknown)', tenant: 'acme', decision: 'deny' });
    const forgedDecisions = sample(start, 'toolgate_requests_total', { tool: '(unknown)', tenant: '(unverified)', decision: 'deny' });

    const madeUp = `made_up_tool_${process.pid}`;
    await assert.rejects(gw.gateway.call(request(madeUp)), (err: unknown) => err instanceof ToolDenied && err.outcome.code === 'unknown_tool');
    // Someone with Temporal access starts a request the front door never admitted, naming any tenant.
    const forgedTenant = `forged-tenant-${process.pid}`;
    const forged = await gw.ops.workflow.start(WORKFLOW_TYPE, {
      taskQueue,
      workflowId: workflowIdFor(forgedTenant, 'forged-1'),
      args: [
        {
          request: { requestId: 'forged-1', actor: bot, tenant: forgedTenant, environment: 'production', tool: 'obs_read', args: {} },
          admission: 'not-an-admission',
        },
      ],
    });
    const outcome = (await forged.result()) as ToolOutcome;
    assert.equal(outcome.status === 'denied' && outcome.code, 'unverified_request');

    const text = await metricReaches(metricsUrl(), 'toolgate_refusals_total', { reason: 'unverified_request' }, unverified + 1);
    assert.equal(sample(text, 'toolgate_refusals_total', { reason: 'unknown_tool' }), unknownTool + 1);
    assert.equal(sample(text, 'toolgate_requests_total', { tool: '(unknown)', tenant: 'acme', decision: 'deny' }), unknownDecisions + 1);
    assert.equal(sample(text, 'toolgate_requests_total', { tool: '(unknown)', tenant: '(unverified)', decision: 'deny' }), forgedDecisions + 1);
    assert.ok(!text.includes(madeUp), 'a made-up tool name became a label');
    assert.ok(!text.includes(forgedTenant), 'a forged tenant became a label');
  });

  test('a rate-limit hit counts by limit, and as a refusal', async () => {
    const labels = { tool: 'obs_limited', tenant: 'acme' };
    const start = await scrape(metricsUrl());
    const hits = sample(start, 'toolgate_rate_limit_hits_total', { ...labels, limit: 'obs-limited-once' });
    const refused = sample(start, 'toolgate_refusals_total', { reason: 'rate_limited' });
    const allowed = sample(start, 'toolgate_requests_total', { ...labels, decision: 'allow' });
    const denied = sample(start, 'toolgate_requests_total', { ...labels, decision: 'deny' });

    await gw.gateway.call(request('obs_limited'));
    await assert.rejects(gw.gateway.call(request('obs_limited')), (err: unknown) => err instanceof ToolDenied && err.outcome.code === 'rate_limited');

    const text = await metricReaches(metricsUrl(), 'toolgate_rate_limit_hits_total', { ...labels, limit: 'obs-limited-once' }, hits + 1);
    assert.equal(sample(text, 'toolgate_refusals_total', { reason: 'rate_limited' }), refused + 1);
    // The limit is part of the decision: the second request was decided deny.
    assert.equal(sample(text, 'toolgate_requests_total', { ...labels, decision: 'allow' }), allowed + 1);
    assert.equal(sample(text, 'toolgate_requests_total', { ...labels, decision: 'deny' }), denied + 1);
  });

  test('an approval: the pending gauge shows it, the wait is observed once, and a worker restart that replays the history counts nothing twice', async () => {
    const labels = { tool: 'obs_approve', tenant: 'acme' };
    const start = await scrape(metricsUrl());
    const decided = sample(start, 'toolgate_requests_total', { ...labels, decision: 'approve' });
    const completed = sample(start, 'toolgate_request_outcomes_total', { ...labels, outcome: 'completed' });
    const waits = sample(start, 'toolgate_approval_wait_seconds_count', { tool: 'obs_approve', end: 'approved' });
    assert.equal(sample(start, 'toolgate_pending_approvals'), 0, 'nothing waits before the test');

    const handle = await gw.gateway.start(request('obs_approve'));
    const pending = await waitForState(gw, handle.requestId, 'pending_approval');
    await metricReaches(metricsUrl(), 'toolgate_requests_total', { ...labels, decision: 'approve' }, decided + 1);
    // Counted by visibility on scrape (cached a few seconds): the deployment's view, not one worker's.
    await metricReaches(metricsUrl(), 'toolgate_pending_approvals', {}, 1);

    // A new worker has no cached workflow: the decision makes it replay the history from the start,
    // including the first decision, which must not be counted again.
    await gw.stopWorker();
    await gw.startWorker();
    const manager = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    const approved = await gw.api('POST', `/v1/approvals/${handle.requestId}/decision`, {
      token: manager,
      body: { decision: 'approve', digest: pending.digest },
    });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal((await handle.outcome()).status, 'completed');

    const text = await metricReaches(metricsUrl(), 'toolgate_request_outcomes_total', { ...labels, outcome: 'completed' }, completed + 1);
    assert.equal(sample(text, 'toolgate_approval_wait_seconds_count', { tool: 'obs_approve', end: 'approved' }), waits + 1);
    assert.ok(sample(text, 'toolgate_approval_wait_seconds_sum', { tool: 'obs_approve', end: 'approved' }) > 0);
    assert.equal(sample(text, 'toolgate_requests_total', { ...labels, decision: 'approve' }), decided + 1, 'the replayed first decision was counted again');
    await metricReaches(metricsUrl(), 'toolgate_pending_approvals', {}, 0);

    // The replayer, even with the metrics sinks registered, counts nothing.
    const before = await scrape(metricsUrl());
    for (const sink of Object.values(workflowMetricsSinks().toolgateMetrics)) assert.equal(sink.callDuringReplay, false);
    const history = await gw.ops.workflow.getHandle(handle.workflowId).fetchHistory();
    await Worker.runReplayHistory(
      { workflowBundle: await workflowBundle(), dataConverter: testDataConverter, sinks: workflowMetricsSinks(), replayName: 'observability' },
      history,
      handle.workflowId,
    );
    const afterReplay = await scrape(metricsUrl());
    for (const name of ['toolgate_requests_total', 'toolgate_request_outcomes_total', 'toolgate_approval_wait_seconds_count']) {
      assert.equal(sample(afterReplay, name, { tool: 'obs_approve' }), sample(before, name, { tool: 'obs_approve' }), `${name} moved on replay`);
    }
  });

  test(
    "the CLI: `toolgate worker` serves its counters and the Temporal SDK's at TOOLGATE_METRICS_ADDRESS, `toolgate api` the pending gauge; OTEL_TRACES_EXPORTER=console traces across both",
    { timeout: 300_000 },
    async () => {
      const stateDir = await mkdtemp(join(tmpdir(), 'toolgate-observability-'));
      const temporal = await TemporalProcess.start(join(stateDir, 'temporal.db'));
      const processes: ManagedProcess[] = [];
      try {
        const env: GatewayProcessEnv = {
          TEMPORAL_ADDRESS: temporal.address,
          TOOLGATE_STATE_DIR: stateDir,
          TOOLGATE_POLICY: join(REPO_ROOT, 'policies'),
          TOOLGATE_API_PORT: String(await findFreePort()),
          // Traces on, printed to stdout by the console exporter; nothing else of OTel.
          OTEL_TRACES_EXPORTER: 'console',
        };
        await processKeyring(env);
        await provisionBoundaryKeys(env);
        const tokens = await localTokens(stateDir);
        const metricsAddress = `127.0.0.1:${await findFreePort()}`;
        processes.push(await startWorkerProcess({ ...env, TOOLGATE_METRICS_ADDRESS: metricsAddress }));
        processes.push(await startApiProcess(env));
        const [worker, api] = processes as [ManagedProcess, ManagedProcess];
        const apiUrl = `http://127.0.0.1:${env.TOOLGATE_API_PORT}`;
        const workerMetrics = `http://${metricsAddress}/metrics`;

        const agent = await tokens.agent({ sub: 'support-bot', tenant: 'acme', environment: 'production', roles: ['agent_runtime'] });
        const done = await callApi(apiUrl, 'POST', '/v1/tool-requests', { token: agent, body: { tool: 'read_kb', args: { query: 'password' }, wait: 30 } });
        assert.equal(done.status, 200, JSON.stringify(done.body));
        assert.equal(done.body.state, 'completed');

        // The worker's endpoint: its own counters, and the SDK's metrics from the same scrape.
        const labels = { tool: 'read_kb', tenant: 'acme' };
        const text = await until('the worker to count the request', 30_000, async () => {
          const body = await scrape(workerMetrics);
          return sample(body, 'toolgate_request_outcomes_total', { ...labels, outcome: 'completed' }) === 1 ? body : undefined;
        });
        assert.equal(sample(text, 'toolgate_requests_total', { ...labels, decision: 'allow' }), 1);
        assert.match(text, /^temporal_num_pollers\{[^}]*task_queue="toolgate"[^}]*\} \d+/m, 'the Temporal SDK metrics are appended');
        assert.match(text, /^toolgate_process_process_cpu_seconds_total /m);
        assert.equal((await fetch(`http://${metricsAddress}/other`)).status, 404);

        // The API runs no workflow: it counts none, and it serves the deployment's pending gauge.
        const apiText = await scrape(`${apiUrl}/metrics`);
        assert.equal(sample(apiText, 'toolgate_requests_total'), 0);
        assert.equal(sample(apiText, 'toolgate_pending_approvals'), 0);
        assert.doesNotMatch(apiText, /^temporal_/m, 'the API has no Temporal worker runtime');
        const waiting = await callApi(apiUrl, 'POST', '/v1/tool-requests', {
          token: agent,
          body: { tool: 'create_ticket', args: { title: 'Printer on fire', priority: 'urgent' } },
        });
        assert.equal(waiting.status, 202, JSON.stringify(waiting.body));
        await until('the API to count the waiting request', 30_000, async () =>
          sample(await scrape(`${apiUrl}/metrics`), 'toolgate_pending_approvals') === 1 ? true : undefined,
        );

        // One trace across the processes: the API's span of the first request, the workflow's and the
        // activities' spans in the worker, under the same trace id (console exporter output).
        const spansOf = (output: string) =>
          [...output.matchAll(/traceId: '([0-9a-f]{32})',[\s\S]*?name: '([^']+)'/g)].map((m) => ({ traceId: m[1], name: m[2] }));
        const apiSpan = await until('the API span of the request', 15_000, () => spansOf(api.output()).find((s) => s.name === 'POST /v1/tool-requests'));
        const workerSpans = await until('the worker spans of that trace', 15_000, () => {
          const names = spansOf(worker.output())
            .filter((s) => s.traceId === apiSpan.traceId)
            .map((s) => s.name);
          return ['RunWorkflow:toolRequest', 'RunActivity:evaluatePolicy', 'RunActivity:executeTool'].every((n) => names.includes(n)) ? names : undefined;
        });
        assert.ok(workerSpans.includes('StartActivity:executeTool'), workerSpans.join(', '));
      } finally {
        for (const proc of processes.reverse()) await proc.stop();
        await temporal.stop();
        await rm(stateDir, { recursive: true, force: true });
      }
    },
  );
});

describe('traces', { timeout: 300_000 }, () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  let service: ToolService;
  let telemetry: Telemetry;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  const exporter = new InMemorySpanExporter();
  /** The secret part of the shared webhook's URL, as a Slack incoming webhook has it. */
  const webhookSecret = `T0TEST/B0TEST/webhook-secret-${process.pid}`;

  before(async () => {
    telemetry = (await startTelemetry({ serviceName: 'toolgate-test', spanProcessors: [new SimpleSpanProcessor(exporter)] })) as Telemetry;
    assert.ok(telemetry, 'tracing started with a span processor given');
    env = await startTemporal();
    service = await startToolService('ok');
    // The workflows are traced only when Temporal's workflow interceptors are bundled with them.
    const bundle = await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      failureConverterPath: FAILURE_CONVERTER_PATH,
      workflowInterceptorModules: workflowInterceptorModules(),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    });
    receiver = await startWebhookReceiver();
    gw = await startGateway(env, {
      taskQueue: `observability-traces-${process.pid}`,
      policy: policyYaml(service.url),
      tools,
      workflowBundle: bundle,
      webhooks: [`slack=${receiver.url}/${webhookSecret}`],
    });
  });
  after(async () => {
    await gw?.close();
    await service?.close();
    await receiver?.close();
    await env?.teardown();
    await telemetry?.shutdown();
  });

  /** The spans of `traceId` once those named have all ended (workflow spans arrive through a sink, a moment after the outcome). */
  const spansOf = (traceId: string, names: string[]): Promise<ReadableSpan[]> =>
    eventually(
      async () => {
        await telemetry.flush();
        const spans = exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
        return names.every((name) => spans.some((span) => span.name === name)) ? spans : undefined;
      },
      `spans ${names.join(', ')} of trace ${traceId}`,
    );

  test("one trace from the agent's call through the API, the workflow and its activities to the tool's HTTP call", async () => {
    const sdk = await gw.gateway.as({ id: 'obs-bot', roles: ['agent_runtime'], tenant: 'acme', environment: 'production' });
    const before = service.effects.length;
    const { traceId, result } = await trace.getTracer('agent').startActiveSpan('agent: file a ticket', async (span) => {
      try {
        return { traceId: span.spanContext().traceId, result: await sdk.call({ tool: 'obs_http', args: {} }) };
      } finally {
        span.end();
      }
    });
    assert.ok(result);
    const names = [
      'agent: file a ticket',
      'POST /v1/tool-requests',
      'StartWorkflow:toolRequest',
      'RunWorkflow:toolRequest',
      'StartActivity:evaluatePolicy',
      'RunActivity:evaluatePolicy',
      'StartActivity:executeTool',
      'RunActivity:executeTool',
    ];
    const spans = await spansOf(traceId, names);
    const byId = new Map(spans.map((span) => [span.spanContext().spanId, span]));
    const named = (name: string) => spans.find((span) => span.name === name) as ReadableSpan;

    // One tree: every span but the agent's has its parent in this trace.
    for (const span of spans) {
      if (span.name === 'agent: file a ticket') assert.equal(span.parentSpanId, undefined);
      else assert.ok(span.parentSpanId && byId.has(span.parentSpanId), `${span.name} hangs off the trace (parent ${span.parentSpanId})`);
    }
    const ancestors = (span: ReadableSpan): string[] => {
      const chain: string[] = [];
      for (let at = span.parentSpanId ? byId.get(span.parentSpanId) : undefined; at; at = at.parentSpanId ? byId.get(at.parentSpanId) : undefined)
        chain.push(at.name);
      return chain;
    };
    const server = named('POST /v1/tool-requests');
    assert.equal(server.kind, SpanKind.SERVER);
    assert.ok(ancestors(named('RunWorkflow:toolRequest')).includes('POST /v1/tool-requests'), 'the workflow continues the API request');
    assert.ok(ancestors(named('RunActivity:executeTool')).includes('RunWorkflow:toolRequest'), 'the execution continues the workflow');

    // The tool's HTTP call: a client span under the execution activity (naming the tool's origin
    // only), and the tool got its context.
    const toolCall = spans.find((span) => span.kind === SpanKind.CLIENT && span.attributes['url.full'] === new URL(service.url).origin);
    assert.ok(toolCall, `a client span for the tool call among: ${spans.map((s) => `${s.name}(${s.kind})`).join(', ')}`);
    assert.ok(ancestors(toolCall).includes('RunActivity:executeTool'));
    const effect = service.effects[before];
    assert.ok(effect, 'the tool was called');
    assert.match(String(effect.headers.traceparent), new RegExp(`^00-${traceId}-[0-9a-f]{16}-0[01]$`));

    // The request's traceId: the agent gave none (nor a request id), so it is the trace's own.
    assert.equal(server.attributes['toolgate.trace_id'], traceId);
    assert.equal(typeof server.attributes['toolgate.request_id'], 'string');
    assert.equal(effect.headers['x-toolgate-trace-id'], traceId);
    assert.equal(named('RunActivity:executeTool').attributes['toolgate.trace_id'], traceId);
    assert.equal(named('RunActivity:executeTool').attributes['toolgate.tool'], 'obs_http');
  });

  test('a traceId the agent gives is kept, and named on the spans of its trace', async () => {
    const sdk = await gw.gateway.as({ id: 'obs-bot', roles: ['agent_runtime'], tenant: 'acme', environment: 'production' });
    const before = service.effects.length;
    const traceId = await trace.getTracer('agent').startActiveSpan('agent: with its own trace id', async (span) => {
      try {
        await sdk.call({ tool: 'obs_http', args: {}, traceId: 'ticket-4711', requestId: `obs-trace-${process.pid}-${Date.now()}` });
        return span.spanContext().traceId;
      } finally {
        span.end();
      }
    });
    const spans = await spansOf(traceId, ['POST /v1/tool-requests', 'RunActivity:executeTool']);
    for (const name of ['POST /v1/tool-requests', 'RunActivity:executeTool']) {
      assert.equal(spans.find((span) => span.name === name)?.attributes['toolgate.trace_id'], 'ticket-4711', name);
    }
    assert.equal(service.effects[before]?.headers['x-toolgate-trace-id'], 'ticket-4711');
  });

  /** Every string a span exports: its name, attribute values, event names and attributes. */
  const exportedStrings = (span: ReadableSpan): string[] => [
    span.name,
    ...Object.entries(span.attributes).map(([key, value]) => `${key}=${String(value)}`),
    ...span.events.flatMap((event) => [event.name, ...Object.values(event.attributes ?? {}).map(String)]),
  ];

  test('spans carry no link token, OIDC code or query of an incoming request, and only the origin of an outgoing one', async () => {
    const linkToken = `link-token-${process.pid}-secret`;
    const inboxToken = `inbox-token-${process.pid}-secret`;
    const oidcCode = `oidc-code-${process.pid}-secret`;
    const queryValue = `query-value-${process.pid}-secret`;
    for (const path of [`/v1/links/${linkToken}?via=${queryValue}`, `/inbox/from-link/${inboxToken}`, `/inbox/signin/callback?code=${oidcCode}&state=s`]) {
      await (await fetch(`${gw.apiUrl}${path}`)).arrayBuffer();
    }
    const secrets = [linkToken, inboxToken, oidcCode, queryValue];
    const serverPath = (span: ReadableSpan) => String(span.attributes['http.target'] ?? span.attributes['url.path'] ?? '');
    const spans = await eventually(async () => {
      await telemetry.flush();
      const all = exporter.getFinishedSpans();
      const server = all.filter((span) => span.kind === SpanKind.SERVER);
      const seen = ['/v1/links/', '/inbox/from-link/', '/inbox/signin/callback'].every((prefix) => server.some((span) => serverPath(span).startsWith(prefix)));
      return seen ? all : undefined;
    }, 'the server spans of the link, inbox and callback requests');
    for (const span of spans) {
      for (const text of exportedStrings(span)) {
        for (const secret of secrets) assert.ok(!text.includes(secret), `span ${span.name} (kind ${span.kind}) exports a secret: ${text}`);
      }
    }
    const servers = spans.filter((span) => span.kind === SpanKind.SERVER);
    assert.ok(
      servers.some((span) => serverPath(span) === '/v1/links/:token'),
      servers.map(serverPath).join(', '),
    );
    assert.ok(
      servers.some((span) => serverPath(span) === '/inbox/from-link/:token'),
      servers.map(serverPath).join(', '),
    );
    assert.ok(
      servers.some((span) => serverPath(span) === '/inbox/signin/callback'),
      servers.map(serverPath).join(', '),
    );
    // This process's own fetch of those pages (a client span): the API's origin, nothing more.
    const clients = spans.filter((span) => span.kind === SpanKind.CLIENT && String(span.attributes['url.full'] ?? '').startsWith(gw.apiUrl));
    assert.ok(clients.length >= 3, 'client spans of the fetches');
    for (const span of clients) assert.equal(span.attributes['url.full'], gw.apiUrl);

    // A webhook notification: its client span names the receiver's origin, never the secret path.
    const delivered = receiver.received.length;
    await gw.gateway.start(request('obs_approve'));
    await eventually(async () => (receiver.received.length > delivered ? true : undefined), 'the webhook notification');
    const origin = new URL(receiver.url).origin;
    const webhookSpans = await eventually(async () => {
      await telemetry.flush();
      const found = exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.CLIENT && String(span.attributes['url.full'] ?? '').startsWith(origin));
      return found.length > 0 ? found : undefined;
    }, 'the client span of the webhook call');
    for (const span of webhookSpans) assert.equal(span.attributes['url.full'], origin);
    // The receiver stands in for Slack but runs in this process: its own server span is Slack's side, not toolgate's.
    const receiverSide = (span: ReadableSpan) => span.kind === SpanKind.SERVER && String(span.attributes['http.url'] ?? '').startsWith(`${origin}/`);
    assert.ok(exporter.getFinishedSpans().some(receiverSide), "the receiver's server span is recognised (and only it is skipped)");
    for (const span of exporter.getFinishedSpans().filter((s) => !receiverSide(s))) {
      for (const text of exportedStrings(span)) {
        assert.ok(!text.includes('webhook-secret-'), `span ${span.name} (kind ${span.kind}) exports the webhook's path: ${text}`);
        assert.ok(!text.includes('/hook/'), `span ${span.name} (kind ${span.kind}) exports the webhook's path: ${text}`);
      }
    }
  });

  test("an agent's `baggage` header does not travel to the tool; its trace context does", async () => {
    const before = service.effects.length;
    const token = await gw.agentToken({ sub: 'obs-bot', tenant: 'acme', roles: ['agent_runtime'], environment: 'production' });
    // The agent's span: this process's (instrumented) fetch sends its `traceparent`; the `baggage`
    // header is the agent's own.
    const { traceId, status, text } = await trace.getTracer('agent').startActiveSpan('agent: with baggage', async (span) => {
      try {
        const response = await fetch(`${gw.apiUrl}/v1/tool-requests`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', baggage: 'planted=agent-controlled-value,tenant=other' },
          body: JSON.stringify({ tool: 'obs_http', args: {}, wait: 30 }),
        });
        return { traceId: span.spanContext().traceId, status: response.status, text: await response.text() };
      } finally {
        span.end();
      }
    });
    assert.equal(status, 200, text);
    const effect = service.effects[before];
    assert.ok(effect, 'the tool was called');
    assert.match(String(effect.headers.traceparent), new RegExp(`^00-${traceId}-`), 'the trace context still reaches the tool');
    assert.equal(effect.headers.baggage, undefined, `baggage reached the tool: ${String(effect.headers.baggage)}`);
  });

  test("the client SDK sends the caller's trace context when its fetch is not instrumented, and nothing without an OTel SDK", async () => {
    // A separate process: this one's fetch is instrumented (which then sends the context itself).
    const script = `
      import { trace } from '@opentelemetry/api';
      import { NodeSDK } from '@opentelemetry/sdk-node';
      import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
      import { ToolGateway } from './src/client/index.ts';
      const sent = [];
      const fetch = async (_url, init) => {
        sent.push(init.headers.traceparent ?? null);
        return new Response(JSON.stringify({ requestId: 'r-1', state: 'evaluating', tool: 'read_kb', statusUrl: '/v1/tool-requests/r-1' }), { status: 202, headers: { 'content-type': 'application/json' } });
      };
      const gateway = new ToolGateway({ url: 'http://127.0.0.1:9', token: 'agent-token', fetch });
      await gateway.start({ tool: 'read_kb' });
      const sdk = new NodeSDK({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())], instrumentations: [] });
      sdk.start();
      const ids = await trace.getTracer('agent').startActiveSpan('agent', async (span) => {
        await gateway.start({ tool: 'read_kb' });
        span.end();
        return span.spanContext();
      });
      await sdk.shutdown();
      console.log(JSON.stringify({ sent, traceId: ids.traceId, spanId: ids.spanId }));
    `;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`exit ${code}: ${stderr}`))));
    });
    const { sent, traceId, spanId } = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { sent: (string | null)[]; traceId: string; spanId: string };
    assert.deepEqual(sent, [null, `00-${traceId}-${spanId}-01`]);
  });
});
