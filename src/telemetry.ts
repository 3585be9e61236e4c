/**
 * OpenTelemetry traces, off by default. When the standard OTel environment variables ask for traces
 * (`OTEL_TRACES_EXPORTER` set to something other than `none`, or `OTEL_EXPORTER_OTLP_ENDPOINT` /
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set; `OTEL_SDK_DISABLED=true` wins over both), `toolgate
 * worker`, `toolgate api` and `toolgate dev` start the OTel Node SDK (`startTelemetry`), which
 * reads everything else — exporter, protocol, endpoint, headers, sampler, `OTEL_SERVICE_NAME`,
 * `OTEL_RESOURCE_ATTRIBUTES` — from the same variables. Without them nothing of the SDK is even
 * loaded, and the `@opentelemetry/api` calls elsewhere are no-ops.
 *
 * One trace then follows a request: the agent's `traceparent` (the client SDK sends it) is
 * continued by the API's HTTP span (http instrumentation), carried into the workflow start by
 * Temporal's client interceptor, through the workflow (Temporal's workflow interceptors, bundled
 * with the workflows; their spans leave the sandbox through a sink) to the activities (activity
 * interceptors), down to the tool's HTTP call (undici instrumentation, which also sends the tool a
 * `traceparent`). The request's own `traceId` field is put on the spans as `toolgate.trace_id`.
 *
 * What leaves in spans and headers is bounded: URL attributes are rewritten (`scrubUrlAttributes`:
 * link tokens and queries off incoming paths, outgoing calls by origin only, since a Slack
 * webhook's path is its secret), and only W3C trace context is propagated — no `baggage`, which
 * an agent could otherwise plant on its call and have carried to every tool.
 *
 * Process-global, like the OTel API itself: started once per process by the CLI, or by a test.
 */
import { createRequire } from 'node:module';
import { isSpanContextValid, propagation, trace, SpanKind, type Attributes, type AttributeValue, type Span } from '@opentelemetry/api';
import { Client, type DataConverter, type WorkflowClientInterceptor } from '@temporalio/client';
import type { ActivityInboundCallsInterceptor, InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Logger } from 'pino';

const require = createRequire(import.meta.url);

/** The workflow interceptor module of `@temporalio/interceptors-opentelemetry`: bundle it with the workflows (`workflowInterceptorModules`) to trace them. */
export const WORKFLOW_TRACING_MODULE = require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

/** Whether `env` asks for traces (see the module comment). */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (exporters.length > 0) return !(exporters.length === 1 && exporters[0] === 'none');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/** Tracing in this process: what the worker and the Temporal clients add while it runs. */
export interface Telemetry {
  readonly serviceName: string;
  /** Temporal client interceptors carrying the active trace into workflow starts, updates, signals and queries. */
  clientInterceptors(): WorkflowClientInterceptor[];
  /** Worker interceptors: activity spans (continuing the workflow's), and the workflow interceptor module for workers that bundle at start. */
  workerInterceptors(): WorkerInterceptors;
  /** The sink through which the workflow's spans leave the sandbox into this process's span processors. */
  workerSinks(): InjectedSinks<Record<string, never>>;
  /** Exports what has ended so far. */
  flush(): Promise<void>;
  /** Flushes and stops the SDK (and the instrumentations). */
  shutdown(): Promise<void>;
}

let active: Telemetry | undefined;
/** Origins whose outgoing HTTP calls are not traced (this process's own metrics scrape of the Temporal SDK). */
const untracedOrigins = new Set<string>();

/** The tracing of this process, if `startTelemetry` started it. */
export function activeTelemetry(): Telemetry | undefined {
  return active;
}

/** Outgoing HTTP calls to `origin` make no spans (noise such as a scrape every few seconds). */
export function untraced(origin: string): void {
  untracedOrigins.add(origin);
}

/** Options of `startTelemetry`. */
export interface TelemetryOptions {
  /** `service.name` unless `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` say otherwise. */
  serviceName: string;
  /** The environment that decides whether to start (the SDK itself then reads `process.env`). @default process.env */
  env?: NodeJS.ProcessEnv;
  /**
   * Span processors to use instead of the exporters the environment names (tests: an in-memory
   * exporter). Given, tracing starts whatever the environment says.
   */
  spanProcessors?: SpanProcessor[];
  logger?: Logger;
}

/**
 * Starts the OTel Node SDK with http and undici instrumentation when the environment asks for
 * traces (or `spanProcessors` are given); otherwise does nothing and resolves undefined. Call it
 * before creating Temporal clients and workers, so they get the interceptors. Once per process: a
 * second call returns the first one's telemetry.
 */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry | undefined> {
  if (active) return active;
  if (!options.spanProcessors && !tracingRequested(options.env ?? process.env)) return undefined;
  // Loaded only now: a process without tracing loads none of this.
  const [{ NodeSDK, core }, { Resource }, { HttpInstrumentation }, { UndiciInstrumentation }, otelTemporal] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-undici'),
    import('@temporalio/interceptors-opentelemetry'),
  ]);
  const isUntraced = (origin: string) => untracedOrigins.has(origin);
  // Trace context only: the default propagators also carry W3C `baggage`, which an agent could set
  // on its call and have travel through the workflow into every tool's request.
  const propagator = new core.W3CTraceContextPropagator();
  const sdk = new NodeSDK({
    textMapPropagator: propagator,
    // Merged under the detected resource: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
    resource: new Resource({ 'service.name': options.serviceName }),
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
    // toolgate exports traces; its logs are JSON on stdout and its metrics Prometheus.
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        // Probes and scrapes are not requests worth a trace.
        ignoreIncomingRequestHook: (req) => /^\/(?:metrics|healthz)(?:[/?]|$)/.test(req.url ?? ''),
        ignoreOutgoingRequestHook: (req) => isUntraced(`${req.protocol ?? 'http:'}//${req.hostname ?? req.host ?? ''}${req.port ? `:${req.port}` : ''}`),
        // Right after the span starts (before any exporter sees it) and again before it ends.
        requestHook: (span) => scrubUrlAttributes(span),
        applyCustomAttributesOnSpan: (span) => scrubUrlAttributes(span),
      }),
      new UndiciInstrumentation({
        ignoreRequestHook: (req) => isUntraced(req.origin),
        requestHook: (span) => scrubUrlAttributes(span),
        responseHook: (span) => scrubUrlAttributes(span),
      }),
    ],
  });
  sdk.start();
  // With the exporters taken from the environment the SDK ignores `textMapPropagator` (0.57
  // registers the OTEL_PROPAGATORS default, baggage included): put ours in place either way.
  propagation.disable();
  propagation.setGlobalPropagator(propagator);
  // The instrumentations patch `http` when it is next required: the API's express already holds
  // it (ESM imports ran before this), so require it now to have the patch applied in place.
  require('node:http');
  require('node:https');

  // The processors of the provider the SDK registered, for the workflow's spans (they are made in
  // the sandbox and handed over through a sink) — the same pipeline as every other span.
  const provider = (trace.getTracerProvider() as { getDelegate?: () => unknown }).getDelegate?.() as
    { activeSpanProcessor?: SpanProcessor; resource?: InstanceType<typeof Resource> } | undefined;
  const spanProcessor = provider?.activeSpanProcessor;
  const resource = provider?.resource ?? new Resource({ 'service.name': options.serviceName });
  if (!spanProcessor) options.logger?.warn('OpenTelemetry: no span processor registered; workflow spans will not be exported');

  const telemetry: Telemetry = {
    serviceName: options.serviceName,
    clientInterceptors: () => [new otelTemporal.OpenTelemetryWorkflowClientInterceptor()],
    workerInterceptors: () => ({
      workflowModules: [WORKFLOW_TRACING_MODULE],
      activity: [
        (ctx) => ({
          inbound: new otelTemporal.OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new otelTemporal.OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
        // Inside the activity's span (interceptors run in order): name the request on it.
        () => ({ inbound: new RequestSpanAttributes() }),
      ],
    }),
    workerSinks: () => (spanProcessor ? { exporter: otelTemporal.makeWorkflowExporter(spanProcessor, resource) } : {}) as InjectedSinks<Record<string, never>>,
    flush: async () => {
      await spanProcessor?.forceFlush();
    },
    shutdown: async () => {
      if (active === telemetry) active = undefined;
      // An unreachable collector must not hold a stopping process: export what it can within 5 s.
      let timer: NodeJS.Timeout | undefined;
      const stopped = sdk.shutdown().catch((err: unknown) => options.logger?.warn({ err: (err as Error).message }, 'OpenTelemetry shutdown failed'));
      await Promise.race([stopped, new Promise<void>((resolve) => (timer = setTimeout(resolve, 5_000).unref()))]);
      clearTimeout(timer);
    },
  };
  active = telemetry;
  options.logger?.info({ serviceName: options.serviceName }, 'OpenTelemetry traces on (from the OTEL_* environment)');
  return telemetry;
}

/**
 * `client` with Temporal's OpenTelemetry client interceptor added when tracing is on (a new
 * client on the same connection, namespace and data converter); `client` itself otherwise, or
 * when it already carries the interceptor.
 */
export function tracedClient(client: Client): Client {
  if (!active || tracedClients.has(client)) return client;
  const interceptors = client.options.interceptors;
  const workflow = Array.isArray(interceptors.workflow) ? interceptors.workflow : [];
  const traced = new Client({
    connection: client.connection,
    namespace: client.options.namespace,
    identity: client.options.identity,
    // The client accepts an already loaded converter (it checks), which keeps the codecs and the
    // failure converter without knowing how they were configured.
    dataConverter: client.options.loadedDataConverter as unknown as DataConverter,
    interceptors: { ...interceptors, workflow: [...workflow, ...active.clientInterceptors()] },
  });
  tracedClients.add(traced);
  return traced;
}
/** Clients `tracedClient` made: wrapping one again would trace every call twice. */
const tracedClients = new WeakSet<Client>();

/** The trace id of the active span, when tracing is on and a span is active. */
export function activeTraceId(): string | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}

/** Renames the active span (an HTTP server span is named by its method alone); nothing without tracing. */
export function nameActiveSpan(name: string): void {
  trace.getActiveSpan()?.updateName(name);
}

/** Names a tool request on the active span (`toolgate.*` attributes); nothing without tracing. */
export function annotateActiveSpan(request: { requestId?: unknown; tool?: unknown; tenant?: unknown; traceId?: unknown }): void {
  const span = trace.getActiveSpan();
  if (!span) return;
  const attributes: Attributes = {};
  for (const [key, value] of [
    ['toolgate.request_id', request.requestId],
    ['toolgate.tool', request.tool],
    ['toolgate.tenant', request.tenant],
    ['toolgate.trace_id', request.traceId],
  ] as const) {
    if (typeof value === 'string' && value.length > 0 && value.length <= 256) attributes[key] = value;
  }
  span.setAttributes(attributes);
}

/** Puts the request an activity works on (its input's ids, not its evidence) on the activity's span. */
class RequestSpanAttributes implements ActivityInboundCallsInterceptor {
  async execute(
    input: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[0],
    next: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[1],
  ): Promise<unknown> {
    const first = input.args[0] as ({ request?: Record<string, unknown> } & Record<string, unknown>) | undefined;
    if (first && typeof first === 'object') annotateActiveSpan(first.request && typeof first.request === 'object' ? first.request : first);
    return next(input);
  }
}

/**
 * Path segments that are secrets: the one after `links` (`/v1/links/<token>`) and after
 * `from-link` (`/inbox/from-link/<token>`, wherever the inbox is mounted).
 */
const SECRET_SEGMENT = /\/(links|from-link)\/[^/?#]+/g;

/** `path` as a trace may show it: token segments replaced by `:token`, no query, no fragment. */
export function traceablePath(path: string): string {
  const bare = path.replace(/[?#].*$/s, '');
  return (bare || '/').replace(SECRET_SEGMENT, '/$1/:token');
}

/** `url` as a trace may show it: a server's URL with its path made traceable, a client's origin only. */
function traceableUrl(url: string, kind: SpanKind): string {
  try {
    const parsed = new URL(url);
    return kind === SpanKind.CLIENT ? parsed.origin : `${parsed.origin}${traceablePath(parsed.pathname)}`;
  } catch {
    return kind === SpanKind.CLIENT ? '' : traceablePath(url);
  }
}

/**
 * Rewrites the URL attributes the http (0.57, old and stable semantic conventions) and undici
 * (0.10) instrumentations record. Incoming requests carry one-click link tokens in their path
 * (`/v1/links/<token>`) and OIDC codes in their query; outgoing ones go to webhook URLs whose path
 * is the secret (Slack) and to tools whose query may carry arguments. So a server span keeps its
 * path with the tokens replaced and no query, a client span only the origin (scheme://host:port).
 * Works on the SDK's span (its `attributes` are a plain record): attributes the instrumentation
 * has no API to remove are deleted there. Any other span is left alone.
 */
export function scrubUrlAttributes(span: Span): void {
  const sdkSpan = span as Partial<{ attributes: Record<string, AttributeValue | undefined>; kind: SpanKind }>;
  const attributes = sdkSpan.attributes;
  if (!attributes || typeof attributes !== 'object') return;
  const client = sdkSpan.kind === SpanKind.CLIENT;
  const kind = client ? SpanKind.CLIENT : SpanKind.SERVER;
  for (const key of ['http.url', 'url.full']) {
    const value = attributes[key];
    if (typeof value === 'string') attributes[key] = traceableUrl(value, kind);
  }
  for (const key of ['http.target', 'url.path', 'http.route']) {
    const value = attributes[key];
    if (typeof value !== 'string') continue;
    if (client) delete attributes[key];
    else attributes[key] = traceablePath(value);
  }
  delete attributes['url.query'];
}
