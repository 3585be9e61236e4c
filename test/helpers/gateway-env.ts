/**
 * A whole gateway for integration tests, on real parts: a Temporal dev server (the CLI binary,
 * never downloaded), a worker running the real workflow and activities, the API (front door for
 * agents, approvals, links, codec) on a loopback port, tokens and the boundary's signing keys
 * from fresh key pairs, and the client SDK. Agents reach it only through the front door: a test
 * names who asks, and the harness mints that agent's credential.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { SignJWT, exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, bundleWorkflowCode, makeTelemetryFilterString, type Worker, type WorkflowBundle } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { createAgentIdentityRouter, createAgentRouter } from '../../src/api/agents.js';
import { createApiApp } from '../../src/api/app.js';
import { FrontDoor } from '../../src/api/front-door.js';
import { AgentTokenVerifier, issueAgentToken, type AgentClaims } from '../../src/auth/agent-tokens.js';
import { LinkSigner, LinkVerifier } from '../../src/approvals/links.js';
import { ApproverTokenVerifier, issueApproverToken, type ApproverClaims } from '../../src/auth/tokens.js';
import { ToolGateway, type ToolRequestHandle } from '../../src/client/index.js';
import { signingKeyFromPem, type SigningKey } from '../../src/trust/keys.js';
import { DecisionSigner, RequestSigner } from '../../src/trust/signers.js';
import { workerTrustOf } from '../../src/trust/store.js';
import { AesGcmCodec, FAILURE_CONVERTER_PATH, createKeyring, dataConverterFor, generateCodecKey, parseKeyringEnv } from '../../src/codec/index.js';
import { silentLogger } from '../../src/logger.js';
import { WebhookNotifier, type Notifier } from '../../src/notify/notifier.js';
import { PolicyStore } from '../../src/policy/store.js';
import { searchAttributes, statusQuery, workflowIdFor, type RequestStatus, type ToolRequestInput } from '../../src/shared/index.js';
import { requireTemporalCli } from '../../src/temporal/cli.js';
import type { ToolRegistry } from '../../src/tools/types.js';
import { WORKFLOWS_PATH, createToolgateWorker } from '../../src/worker.js';
import { requestJson, type ApiAnswer, type ApiCallOptions } from './http.js';
import { KnownRuns } from '../../src/api/known-runs.js';

let runtimeInstalled = false;
/** Warnings the SDK logged in this test process (workflow code logs through the runtime logger), newest last, at most 20,000. */
export const runtimeWarnings: { message: string; meta: Record<string, unknown> }[] = [];

function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const noop = () => {};
  const warn = (message: string, meta?: Record<string, unknown>) => {
    runtimeWarnings.push({ message, meta: meta ?? {} });
    if (runtimeWarnings.length > 20_000) runtimeWarnings.shift();
  };
  Runtime.install({
    logger: {
      log: (level, message, meta) => (level === 'WARN' ? warn(message, meta) : undefined),
      trace: noop,
      debug: noop,
      info: noop,
      warn,
      error: (m, meta) => process.stderr.write(`temporal: ${m} ${JSON.stringify(meta ?? {})}\n`),
    },
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }), forward: {} } },
  });
}

let bundlePromise: Promise<WorkflowBundle> | undefined;
/** The workflow bundle, built once per test process, with the encrypting failure converter. */
export function workflowBundle(): Promise<WorkflowBundle> {
  bundlePromise ??= bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    failureConverterPath: FAILURE_CONVERTER_PATH,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
  });
  return bundlePromise;
}

/**
 * The payload-encryption keys of every test gateway in this process (two keys: rotation in effect).
 * `TOOLGATE_TEST_CODEC_KEYS` fixes them (the replay recorder uses the committed replay keys, so
 * recorded histories are encrypted as in production and the replay test can decode them).
 */
export const testKeyring = process.env.TOOLGATE_TEST_CODEC_KEYS
  ? parseKeyringEnv(process.env.TOOLGATE_TEST_CODEC_KEYS, 'TOOLGATE_TEST_CODEC_KEYS')
  : createKeyring('test-2', { 'test-2': generateCodecKey(), 'test-1': generateCodecKey() });
/** `TOOLGATE_CODEC_KEYS` for toolgate processes a test spawns against a test gateway (same keys). */
export const testCodecKeysEnv = [testKeyring.current, ...Object.keys(testKeyring.keys).filter((id) => id !== testKeyring.current)]
  .map((id) => `${id}:${Buffer.from(testKeyring.keys[id]!).toString('base64')}`)
  .join(',');
/** The data converter of the test gateways' worker, API and clients: history is encrypted as in production. */
export const testDataConverter = dataConverterFor(testKeyring);

/** Starts a Temporal dev server with toolgate's search attributes; fails (never skips) without the CLI. */
export async function startTemporal(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  const path = requireTemporalCli();
  return TestWorkflowEnvironment.createLocal({
    client: { dataConverter: testDataConverter },
    server: {
      executable: { type: 'existing-path', path },
      ip: '127.0.0.1',
      searchAttributes: Object.values(searchAttributes),
      extraArgs: ['--log-level', 'error'],
    },
  });
}

/** Options of a test gateway. */
export interface GatewayEnvOptions {
  /** Policy YAML (one file). */
  policy: string;
  tools?: ToolRegistry;
  webhooks?: string[];
  notifier?: Notifier;
  taskQueue: string;
  /** A policy store to use instead of one built from `policy` (tests that reload policy). */
  policyStore?: PolicyStore;
  /** Extra routers mounted on the API app (passed to `createApiApp` as `mount`). */
  mount?: (app: Express) => void;
  /** The logger of the worker and the API (tests that read the logs). @default silent */
  logger?: Logger;
  /** A workflow bundle instead of the shared one (tests that bundle extra workflow interceptor modules, e.g. tracing's). */
  workflowBundle?: WorkflowBundle;
  /** A candidate policy the worker runs in shadow (`ActivityDeps.shadowPolicy`): recorded, never enforced. */
  shadowPolicy?: PolicyStore;
}

/** A fresh Ed25519 signing key (for the front door's and the approval API's assertions). */
export async function freshSigningKey(): Promise<SigningKey & { privateKeyPem: string }> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const privateKeyPem = await exportPKCS8(privateKey);
  return { ...(await signingKeyFromPem(privateKeyPem, 'test key')), privateKeyPem };
}

/** A handle on a request submitted through the front door, with its tenant-scoped workflow id. */
export type TestRequestHandle = ToolRequestHandle & { workflowId: string };

/**
 * Agents submitting through the front door: each request names who asks (actor, tenant,
 * environment, on-behalf-of), and the harness mints that agent's credential and sends only the
 * tool, arguments, id and reason — the way a real agent would.
 */
export interface TestAgents {
  start(request: ToolRequestInput): Promise<TestRequestHandle>;
  call(request: ToolRequestInput): Promise<unknown>;
  /** The SDK of one agent (identity from its token). */
  as(identity: {
    id: string;
    roles?: string[];
    tenant: string;
    environment: string;
    onBehalfOf?: AgentClaims['onBehalfOf'];
    tools?: string[];
  }): Promise<ToolGateway>;
}

/** A running gateway for tests. */
export interface GatewayEnv {
  env: TestWorkflowEnvironment;
  /** The running worker (see stopWorker/startWorker). */
  readonly worker: Worker;
  /** Shuts the worker down (tests of outages); startWorker starts a new one with the same keys and tools. */
  stopWorker(): Promise<void>;
  startWorker(): Promise<void>;
  /** Agents, through the front door (the HTTP agent API with agent tokens). */
  gateway: TestAgents;
  /** A Temporal client with the codec keys: the view of ops (and of an attacker who has Temporal access). */
  ops: Client;
  /** The request's status as ops see it (a query through Temporal). */
  status(requestId: string, tenant?: string): Promise<RequestStatus>;
  /** Mints an agent token signed by the key the API trusts. */
  agentToken(claims: AgentClaims, options?: { ttlSeconds?: number }): Promise<string>;
  /** The boundary's signing keys, for tests that forge or replay assertions. */
  keys: { request: SigningKey; decision: SigningKey; requestSigner: RequestSigner; decisionSigner: DecisionSigner };
  apiUrl: string;
  /** Mints one-click links the API trusts. */
  links: LinkSigner;
  /** The PEM of the public key the API trusts for approver tokens. */
  approverPublicKeyPem: string;
  /** Signs arbitrary JWTs with the trusted approver key (to build malformed but validly signed tokens). */
  signWithTrustedKey(build: (jwt: SignJWT) => SignJWT, claims: Record<string, unknown>): Promise<string>;
  /** Mints an approver token signed by the API's trusted key. */
  token(claims: ApproverClaims, options?: { ttlSeconds?: number }): Promise<string>;
  /** Calls the API with an optional bearer token; returns status and parsed JSON (typed `T` when the caller says; see test/helpers/http.ts). */
  api<T = any>(method: string, path: string, options?: ApiCallOptions): Promise<ApiAnswer<T>>;
  close(): Promise<void>;
}

/** Starts worker, API and client against `env`. */
export async function startGateway(env: TestWorkflowEnvironment, options: GatewayEnvOptions): Promise<GatewayEnv> {
  const logger = options.logger ?? silentLogger();
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const privateKeyPem = await exportPKCS8(privateKey);
  const approverPublicKeyPem = await exportSPKI(publicKey);
  const verifier = await ApproverTokenVerifier.fromPublicKeyPem(approverPublicKeyPem);
  const linkKeys = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const links = await LinkSigner.fromPrivateKeyPem(await exportPKCS8(linkKeys.privateKey));
  const linkVerifier = await LinkVerifier.fromPublicKeyPem(await exportSPKI(linkKeys.publicKey));
  const agentVerifier = await AgentTokenVerifier.fromPublicKeyPem(approverPublicKeyPem);
  const requestKey = await freshSigningKey();
  const decisionKey = await freshSigningKey();
  const requestSigner = new RequestSigner(requestKey);
  const decisionSigner = new DecisionSigner(decisionKey);
  const trust = workerTrustOf({ requestKeys: [requestKey.trusted], decisionKeys: [decisionKey.trusted] }, randomBytes(32));

  const policyStore = options.policyStore ?? PolicyStore.fromSources([{ file: 'test-policy.yaml', text: options.policy }]);
  const notifier = options.notifier ?? new WebhookNotifier(options.webhooks ?? []);
  const newWorker = async () =>
    createToolgateWorker({
      connection: env.nativeConnection,
      taskQueue: options.taskQueue,
      workflowBundle: options.workflowBundle ?? (await workflowBundle()),
      policy: policyStore,
      tools: options.tools ?? {},
      notifier,
      logger,
      dataConverter: testDataConverter,
      trust,
      ...(options.shadowPolicy ? { shadowPolicy: options.shadowPolicy } : {}),
    });
  let worker: Worker | undefined = await newWorker();
  let running: Promise<void> | undefined = worker.run();

  // One front door for agents and for the approvers' linked requests (overrides, rollbacks), as `toolgate api` wires it.
  // Wired as `toolgate api` wires them: decisions to runs the front door started skip the describe.
  const runs = new KnownRuns();
  const frontDoor = new FrontDoor(env.client, requestSigner, options.taskQueue, runs);
  const app = createApiApp({
    runs,
    client: env.client,
    verifier,
    decisions: decisionSigner,
    frontDoor,
    links: { verify: (token, expected) => linkVerifier.verifyLink(token, expected) },
    logger,
    codec: { codec: new AesGcmCodec(testKeyring), uiOrigins: ['http://127.0.0.1:8233'] },
    // The API reads the same policy as the worker, for argument schemas and edit previews.
    policy: policyStore,
    mount: (api) => {
      api.use('/v1/tool-requests', createAgentRouter({ frontDoor, verifier: agentVerifier, logger, decisions: decisionSigner }));
      api.use('/v1/agent', createAgentIdentityRouter({ verifier: agentVerifier, logger }));
      options.mount?.(api);
    },
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const agentToken = (claims: AgentClaims, tokenOptions?: { ttlSeconds?: number }) =>
    issueAgentToken(claims, { privateKeyPem, ttlSeconds: tokenOptions?.ttlSeconds ?? 3600 });
  const sdks = new Map<string, Promise<ToolGateway>>();
  const as: TestAgents['as'] = (identity) => {
    const claims: AgentClaims = {
      sub: identity.id,
      tenant: identity.tenant,
      environment: identity.environment,
      roles: identity.roles ?? [],
      ...(identity.onBehalfOf ? { onBehalfOf: identity.onBehalfOf } : {}),
      ...(identity.tools ? { tools: identity.tools } : {}),
    };
    const key = JSON.stringify(claims);
    let sdk = sdks.get(key);
    if (!sdk) {
      sdk = agentToken(claims).then((token) => new ToolGateway({ url: apiUrl, token, pollSeconds: 5 }));
      sdks.set(key, sdk);
    }
    return sdk;
  };
  const agentOf = (request: ToolRequestInput) =>
    as({
      id: request.actor.id,
      roles: request.actor.roles ?? [],
      tenant: request.tenant,
      environment: request.environment,
      ...(request.onBehalfOf ? { onBehalfOf: request.onBehalfOf } : {}),
    });
  const fieldsOf = (request: ToolRequestInput) => ({
    ...(request.requestId === undefined ? {} : { requestId: request.requestId }),
    tool: request.tool,
    ...(request.args === undefined ? {} : { args: request.args }),
    ...(request.reason === undefined ? {} : { reason: request.reason }),
    ...(request.traceId === undefined ? {} : { traceId: request.traceId }),
    ...(request.provenance === undefined ? {} : { provenance: request.provenance }),
  });
  const gateway: TestAgents = {
    as,
    async start(request) {
      const handle = await (await agentOf(request)).start(fieldsOf(request));
      return Object.assign(handle, { workflowId: workflowIdFor(request.tenant, handle.requestId) });
    },
    async call(request) {
      return (await agentOf(request)).call(fieldsOf(request));
    },
  };

  return {
    env,
    get worker() {
      return worker as Worker;
    },
    async stopWorker() {
      worker?.shutdown();
      await running;
      worker = undefined;
      running = undefined;
    },
    async startWorker() {
      if (worker) return;
      worker = await newWorker();
      running = worker.run();
    },
    gateway,
    ops: env.client,
    status: (requestId, tenant = 'acme') => env.client.workflow.getHandle(workflowIdFor(tenant, requestId)).query(statusQuery),
    agentToken,
    keys: { request: requestKey, decision: decisionKey, requestSigner, decisionSigner },
    apiUrl,
    links,
    approverPublicKeyPem,
    signWithTrustedKey: (build, claims) => build(new SignJWT(claims)).sign(privateKey),
    token: (claims, tokenOptions) => issueApproverToken(claims, { privateKeyPem, ttlSeconds: tokenOptions?.ttlSeconds }),
    api: (method, path, callOptions) => requestJson(apiUrl, method, path, callOptions),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      worker?.shutdown();
      await running;
    },
  };
}

/** Waits until a request reaches `state` — after an edit, with a digest other than `notDigest`. */
export async function waitForState(
  gw: GatewayEnv,
  requestId: string,
  state: RequestStatus['state'],
  options: { notDigest?: string; tenant?: string } = {},
): Promise<RequestStatus> {
  return eventually(async () => {
    const status = await gw.status(requestId, options.tenant);
    return status.state === state && (options.notDigest === undefined || status.digest !== options.notDigest) ? status : undefined;
  }, `request ${requestId} to reach ${state}`);
}

/**
 * `toolgate_refused_attempts_total` from the API's metrics: attempts refused at an edge and not
 * recorded in any history, for one surface and code, or summed over those given (0 before the first).
 */
export async function refusedAtEdge(apiUrl: string, filter: { surface?: string; code?: string } = {}): Promise<number> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('toolgate_refused_attempts_total{')) continue;
    if (filter.surface !== undefined && !line.includes(`surface="${filter.surface}"`)) continue;
    if (filter.code !== undefined && !line.includes(`code="${filter.code}"`)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}
