/**
 * The parts every scenario shares: one Temporal dev server started by the bench (in memory, with
 * toolgate's search attributes), the workflow bundles (toolgate's and the baselines'), the keys of
 * the trust boundary, workers for both, the API (front door for agents and approvals) and the
 * machine description recorded with the results.
 */
import { execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import {
  NativeConnection,
  Runtime,
  Worker,
  bundleWorkflowCode,
  makeTelemetryFilterString,
  type ActivityInterceptorsFactory,
  type WorkflowBundle,
} from '@temporalio/worker';
import { createAgentIdentityRouter, createAgentRouter } from '../../src/api/agents.js';
import { createApiApp } from '../../src/api/app.js';
import { FrontDoor } from '../../src/api/front-door.js';
import { AgentTokenVerifier, issueAgentToken } from '../../src/auth/agent-tokens.js';
import { ApproverTokenVerifier, issueApproverToken } from '../../src/auth/tokens.js';
import { ToolGateway } from '../../src/client/index.js';
import { signingKeyFromPem, type SigningKey } from '../../src/trust/keys.js';
import { DecisionSigner, RequestSigner } from '../../src/trust/signers.js';
import { workerTrustOf, type WorkerTrust } from '../../src/trust/store.js';
import { createLogger, silentLogger } from '../../src/logger.js';
import type { Notifier } from '../../src/notify/notifier.js';
import { PolicyStore } from '../../src/policy/store.js';
import { SEARCH_ATTRIBUTE_CLI_ARGS } from '../../src/shared/index.js';
import { requireTemporalCli } from '../../src/temporal/cli.js';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import type { ToolRegistry } from '../../src/tools/types.js';
import { WORKFLOWS_PATH, createToolgateWorker } from '../../src/worker.js';
import { createBaselineActivities } from '../baseline-activities.js';
import { benchWork, type WorkInput } from '../work.js';
import { KnownRuns } from '../../src/api/known-runs.js';

/** Search attributes the bench registers: toolgate's own plus the baselines' `BenchState`. */
export const BENCH_SEARCH_ATTRIBUTE_ARGS = [...SEARCH_ATTRIBUTE_CLI_ARGS, '--search-attribute', 'BenchState=Keyword'];

/** Path of the baseline workflows' entry point. */
export const BASELINE_WORKFLOWS_PATH = fileURLToPath(new URL('../baseline-workflows.ts', import.meta.url));

/** The policy the gateway runs in the bench: one auto-allowed low-risk tool, one that needs an approver. */
export const BENCH_POLICY = `
version: 1
tools:
  bench_echo:
    risk: low
    approval: none
    allowed_roles: [agent_runtime]
  bench_change:
    risk: high
    approval: bench_approvers
    allowed_roles: [agent_runtime]
approvals:
  bench_approvers:
    groups: [approvers]
    expires_after: 24h
manifest:
  bench_echo:
    run_as: svc-bench
    idempotent: true   # a pure function: low risk, allowed and idempotent, so it runs as a local activity
    adapter: { type: code, handler: bench_work }
    args: { type: object, required: [n, text], properties: { n: { type: integer }, text: { type: string } } }
  bench_change:
    run_as: svc-bench
    adapter: { type: code, handler: bench_work }
    args: { type: object, required: [n, text], properties: { n: { type: integer }, text: { type: string } } }
`;

/** The agent every bench request comes from (its token carries this identity; the front door builds requests from it). */
export const BENCH_ACTOR = { id: 'bench-agent', type: 'agent' as const, roles: ['agent_runtime'] };
/** The tenant and environment of every bench request and approver. */
export const BENCH_TENANT = 'bench';
export const BENCH_ENVIRONMENT = 'bench';
/** The approver who decides bench requests (group `approvers`, eligible for `bench_change`). */
export const BENCH_APPROVER = { id: 'bench-approver', tenant: BENCH_TENANT, groups: ['approvers'] };

let runtimeInstalled = false;
/** Keeps the SDK's core logs to errors, so the progress display stays readable. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const noop = (): void => {};
  Runtime.install({
    logger: {
      log: noop,
      trace: noop,
      debug: noop,
      info: noop,
      warn: noop,
      error: (m, meta) => process.stderr.write(`temporal: ${m} ${JSON.stringify(meta ?? {})}\n`),
    },
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }), forward: {} } },
  });
}

const silentBundleLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/**
 * The trust material of one bench run, as a deployment holds it: an identity provider's key that
 * signs agent and approver tokens (the API trusts its public key), the front door's
 * request-signing key, the approval API's decision-signing key, and what workers trust (the two
 * public keys) and seal evaluations with. Fresh keys per run; every process of the run shares them.
 */
export interface BenchKeys {
  /** Signs agent and approver tokens. */
  identityPrivateKeyPem: string;
  approverVerifier: ApproverTokenVerifier;
  agentVerifier: AgentTokenVerifier;
  /** The front door's signer of request assertions. */
  requests: RequestSigner;
  /** The approval API's signer of decision assertions. */
  decisions: DecisionSigner;
  /** The workers' trusted keys and seal, for workers in this process. */
  trust: WorkerTrust;
  /**
   * Writes the trusted public keys and the seal secret into `dir` and returns the environment a
   * worker process loads the same trust from (`loadWorkerTrust`: TOOLGATE_TRUSTED_REQUEST_KEYS,
   * TOOLGATE_TRUSTED_DECISION_KEYS, TOOLGATE_WORKER_SEAL_KEY_FILE).
   */
  writeWorkerTrust(dir: string): Record<string, string>;
}

/** A fresh Ed25519 key pair as PEM (PKCS#8 private, SPKI public). */
function ed25519Pem(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

const publicPemOf = (key: SigningKey): string => createPublicKey(key.privateKey).export({ type: 'spki', format: 'pem' }).toString();

/** Generates the run's keys (see `BenchKeys`). */
export async function createBenchKeys(): Promise<BenchKeys> {
  const identity = ed25519Pem();
  const request = await signingKeyFromPem(ed25519Pem().privateKeyPem, 'bench request-signing key');
  const decision = await signingKeyFromPem(ed25519Pem().privateKeyPem, 'bench decision-signing key');
  const sealSecret = randomBytes(32);
  return {
    identityPrivateKeyPem: identity.privateKeyPem,
    approverVerifier: await ApproverTokenVerifier.fromPublicKeyPem(identity.publicKeyPem),
    agentVerifier: await AgentTokenVerifier.fromPublicKeyPem(identity.publicKeyPem),
    requests: new RequestSigner(request),
    decisions: new DecisionSigner(decision),
    trust: workerTrustOf({ requestKeys: [request.trusted], decisionKeys: [decision.trusted] }, sealSecret),
    writeWorkerTrust(dir) {
      const files = { request: join(dir, 'request-signing.pub.pem'), decision: join(dir, 'decision-signing.pub.pem'), seal: join(dir, 'worker-seal.key') };
      writeFileSync(files.request, publicPemOf(request));
      writeFileSync(files.decision, publicPemOf(decision));
      writeFileSync(files.seal, `${sealSecret.toString('base64')}\n`, { mode: 0o600 });
      return { TOOLGATE_TRUSTED_REQUEST_KEYS: files.request, TOOLGATE_TRUSTED_DECISION_KEYS: files.decision, TOOLGATE_WORKER_SEAL_KEY_FILE: files.seal };
    },
  };
}

/** The Temporal dev server, the connections to it and the run's keys. */
export interface BenchServer {
  server: DevServer;
  connection: Connection;
  nativeConnection: NativeConnection;
  client: Client;
  toolgateBundle: WorkflowBundle;
  baselineBundle: WorkflowBundle;
  keys: BenchKeys;
  close(): Promise<void>;
}

/**
 * Starts a dev server (headless, free port) with the bench's search attributes, and bundles both
 * workflow sets. In memory unless `dbFile` is given: then file-backed SQLite with the pragmas
 * `npm start` uses (src/temporal/dev-server.ts).
 */
export async function startBenchServer(options: { dbFile?: string } = {}): Promise<BenchServer> {
  quietRuntime();
  const server = await startDevServer({
    cliPath: requireTemporalCli(),
    port: 0,
    ui: false,
    searchAttributes: BENCH_SEARCH_ATTRIBUTE_ARGS,
    logLevel: 'error',
    ...(options.dbFile ? { dbFile: options.dbFile } : {}),
  });
  try {
    const connection = await Connection.connect({ address: server.address });
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    const client = new Client({ connection });
    const [toolgateBundle, baselineBundle, keys] = await Promise.all([
      bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: silentBundleLogger }),
      bundleWorkflowCode({ workflowsPath: BASELINE_WORKFLOWS_PATH, logger: silentBundleLogger }),
      createBenchKeys(),
    ]);
    return {
      server,
      connection,
      nativeConnection,
      client,
      toolgateBundle,
      baselineBundle,
      keys,
      async close() {
        await connection.close();
        await nativeConnection.close();
        await server.stop();
      },
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/** The bench's code tool: the shared work, with an optional hook when it starts. */
export function benchTools(onStart?: (args: WorkInput) => void): ToolRegistry {
  return {
    async bench_work({ args }) {
      const input = args as unknown as WorkInput;
      onStart?.(input);
      return benchWork(input);
    },
  };
}

/** A running toolgate: worker, API (front door and approvals) and the agent's SDK, on one task queue. */
export interface BenchGateway {
  worker: Worker;
  /** The bench agent's SDK: `ToolGateway` over HTTP to the front door, with the agent's token. */
  gateway: ToolGateway;
  api: BenchApi;
  close(): Promise<void>;
}

/** The API on a loopback port: the front door for agents (on one task queue) and the approval API. */
export interface BenchApi {
  apiUrl: string;
  /** A bearer token of an approver allowed to decide bench requests. */
  approverToken: string;
  /** The bench agent's SDK, with a token for `BENCH_ACTOR` in the bench tenant and environment. */
  gateway: ToolGateway;
  close(): Promise<void>;
}

/**
 * Starts the real API (`createApiApp` with the decision signer, plus the agent routers with a
 * `FrontDoor` that starts workflows on `taskQueue`), as `toolgate api` mounts them.
 */
export async function startBenchApi(bench: BenchServer, taskQueue: string): Promise<BenchApi> {
  const { keys } = bench;
  // BENCH_LOG_LEVEL=warn shows the API's refusals and retries (on stderr) when a scenario misbehaves.
  const logger = process.env.BENCH_LOG_LEVEL ? createLogger('bench-api', process.env.BENCH_LOG_LEVEL) : silentLogger();
  const approverToken = await issueApproverToken(
    { sub: BENCH_APPROVER.id, tenant: BENCH_APPROVER.tenant, groups: BENCH_APPROVER.groups },
    { privateKeyPem: keys.identityPrivateKeyPem, ttlSeconds: 6 * 3600 },
  );
  const agentToken = await issueAgentToken(
    { sub: BENCH_ACTOR.id, tenant: BENCH_TENANT, environment: BENCH_ENVIRONMENT, roles: BENCH_ACTOR.roles },
    { privateKeyPem: keys.identityPrivateKeyPem, ttlSeconds: 6 * 3600 },
  );
  // As `toolgate api` wires them: the runs the front door starts are the approval API's known runs.
  const runs = new KnownRuns();
  const app = createApiApp({
    client: bench.client,
    verifier: keys.approverVerifier,
    decisions: keys.decisions,
    runs,
    logger,
    mount: (api) => {
      api.use(
        '/v1/tool-requests',
        createAgentRouter({ frontDoor: new FrontDoor(bench.client, keys.requests, taskQueue, runs), verifier: keys.agentVerifier, logger }),
      );
      api.use('/v1/agent', createAgentIdentityRouter({ verifier: keys.agentVerifier, logger }));
    },
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    apiUrl,
    approverToken,
    gateway: new ToolGateway({ url: apiUrl, token: agentToken }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Approves a pending request over HTTP, as an approver would; throws unless the API answers 200. */
export async function approveOverHttp(api: BenchApi, requestId: string, digest: string | undefined): Promise<void> {
  const response = await fetch(`${api.apiUrl}/v1/approvals/${requestId}/decision`, {
    method: 'POST',
    headers: { authorization: `Bearer ${api.approverToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ decision: 'approve', digest, reason: 'bench' }),
  });
  if (response.status !== 200) throw new Error(`approval of ${requestId} refused: ${response.status} ${await response.text()}`);
  await response.arrayBuffer();
}

/** The proposal digest of a pending request, read from the approver's view over HTTP (`GET /v1/approvals/:id`), as an approver without a link would. */
export async function digestOverHttp(api: BenchApi, requestId: string): Promise<string> {
  const response = await fetch(`${api.apiUrl}/v1/approvals/${requestId}`, { headers: { authorization: `Bearer ${api.approverToken}` } });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`reading ${requestId} as its approver failed: ${response.status} ${text}`);
  const { digest } = JSON.parse(text) as { digest?: string };
  if (!digest) throw new Error(`${requestId} has no proposal digest yet (${text.slice(0, 200)})`);
  return digest;
}

/** Starts a toolgate worker (the product's `createToolgateWorker`, trusting the run's keys), the API and the agent's SDK. */
export async function startBenchGateway(
  bench: BenchServer,
  options: {
    taskQueue: string;
    tools: ToolRegistry;
    notifier?: Notifier;
    workflowBundle?: WorkflowBundle;
    activityInterceptors?: ActivityInterceptorsFactory[];
  },
): Promise<BenchGateway> {
  const worker = await createToolgateWorker({
    connection: bench.nativeConnection,
    taskQueue: options.taskQueue,
    workflowBundle: options.workflowBundle ?? bench.toolgateBundle,
    policy: PolicyStore.fromSources([{ file: 'bench-policy.yaml', text: BENCH_POLICY }]),
    tools: options.tools,
    notifier: options.notifier ?? { notify: async () => {} },
    logger: silentLogger(),
    trust: bench.keys.trust,
    ...(options.activityInterceptors ? { activityInterceptors: options.activityInterceptors } : {}),
  });
  const running = worker.run();
  const api = await startBenchApi(bench, options.taskQueue);
  return {
    worker,
    gateway: api.gateway,
    api,
    async close() {
      await api.close();
      worker.shutdown();
      await running;
    },
  };
}

/** A running worker for the baseline workflows. */
export interface BaselineWorker {
  worker: Worker;
  close(): Promise<void>;
}

/** Starts a worker for the baseline workflows on `taskQueue`, with the SDK's default tuning (as toolgate's worker). */
export async function startBaselineWorker(bench: BenchServer, taskQueue: string, onStart?: (input: WorkInput) => void): Promise<BaselineWorker> {
  const worker = await Worker.create({
    connection: bench.nativeConnection,
    taskQueue,
    workflowBundle: bench.baselineBundle,
    activities: createBaselineActivities({ onStart }),
  });
  const running = worker.run();
  return {
    worker,
    async close() {
      worker.shutdown();
      await running;
    },
  };
}

/** Resident memory of a process in bytes, from /proc/<pid>/status (VmRSS); NaN where there is no /proc. */
export function rssOf(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** What the results were measured on. */
export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  temporalCli: string;
  /** `uptime` load averages (1, 5, 15 min). */
  loadAverage: number[];
}

/** Describes this machine: cores, memory, Node, the Temporal CLI version and the load right now. */
export function machineInfo(): MachineInfo {
  let temporalCli = 'unknown';
  try {
    temporalCli = execFileSync(requireTemporalCli(), ['--version'], { encoding: 'utf8' })
      .trim()
      .replace(/^temporal version /, '');
  } catch {
    // keep 'unknown'
  }
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    temporalCli,
    loadAverage: loadavg().map((value) => Math.round(value * 100) / 100),
  };
}
