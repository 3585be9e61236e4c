/**
 * The parts every scenario shares: one Temporal dev server started by the bench (in memory, with
 * toolgate's search attributes), the workflow bundles (toolgate's and the baselines'), workers for
 * both, the approval API and the machine description recorded with the results.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, bundleWorkflowCode, makeTelemetryFilterString, type WorkflowBundle } from '@temporalio/worker';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { createApiApp } from '../../src/api/app.js';
import { ApproverTokenVerifier, issueApproverToken } from '../../src/auth/tokens.js';
import { ToolGateway } from '../../src/client/index.js';
import { silentLogger } from '../../src/logger.js';
import type { Notifier } from '../../src/notify/notifier.js';
import { PolicyStore } from '../../src/policy-store.js';
import { SEARCH_ATTRIBUTE_CLI_ARGS } from '../../src/shared/index.js';
import { requireTemporalCli } from '../../src/temporal/cli.js';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import type { ToolRegistry } from '../../src/tools/types.js';
import { WORKFLOWS_PATH, createToolgateWorker } from '../../src/worker.js';
import { createBaselineActivities } from '../baseline-activities.js';
import { benchWork, type WorkInput } from '../work.js';

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
    adapter: { type: code, handler: bench_work }
    args: { type: object, required: [n, text], properties: { n: { type: integer }, text: { type: string } } }
  bench_change:
    run_as: svc-bench
    adapter: { type: code, handler: bench_work }
    args: { type: object, required: [n, text], properties: { n: { type: integer }, text: { type: string } } }
`;

/** The agent every bench request comes from. */
export const BENCH_ACTOR = { id: 'bench-agent', type: 'agent' as const, roles: ['agent_runtime'] };

let runtimeInstalled = false;
/** Keeps the SDK's core logs to errors, so the progress display stays readable. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const noop = (): void => {};
  Runtime.install({
    logger: { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: (m, meta) => process.stderr.write(`temporal: ${m} ${JSON.stringify(meta ?? {})}\n`) },
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }), forward: {} } },
  });
}

const silentBundleLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** The Temporal dev server and the connections to it. */
export interface BenchServer {
  server: DevServer;
  connection: Connection;
  nativeConnection: NativeConnection;
  client: Client;
  toolgateBundle: WorkflowBundle;
  baselineBundle: WorkflowBundle;
  close(): Promise<void>;
}

/** Starts an in-memory dev server (headless, free port) with the bench's search attributes, and bundles both workflow sets. */
export async function startBenchServer(): Promise<BenchServer> {
  quietRuntime();
  const server = await startDevServer({ cliPath: requireTemporalCli(), port: 0, ui: false, searchAttributes: BENCH_SEARCH_ATTRIBUTE_ARGS, logLevel: 'error' });
  try {
    const connection = await Connection.connect({ address: server.address });
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    const client = new Client({ connection });
    const [toolgateBundle, baselineBundle] = await Promise.all([
      bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: silentBundleLogger }),
      bundleWorkflowCode({ workflowsPath: BASELINE_WORKFLOWS_PATH, logger: silentBundleLogger }),
    ]);
    return {
      server,
      connection,
      nativeConnection,
      client,
      toolgateBundle,
      baselineBundle,
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

/** A running toolgate: worker, approval API and client, on one task queue. */
export interface BenchGateway {
  worker: Worker;
  gateway: ToolGateway;
  api: BenchApi;
  close(): Promise<void>;
}

/** The approval API on a loopback port, with a fresh approver key and a token of an eligible approver. */
export interface BenchApi {
  apiUrl: string;
  /** A bearer token of an approver allowed to decide bench requests. */
  approverToken: string;
  close(): Promise<void>;
}

/** Starts the real approval API (`createApiApp`) against the bench's server. */
export async function startBenchApi(bench: BenchServer): Promise<BenchApi> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const verifier = await ApproverTokenVerifier.fromPublicKeyPem(await exportSPKI(publicKey));
  const approverToken = await issueApproverToken(
    { sub: 'bench-approver', tenant: 'bench', groups: ['approvers'] },
    { privateKeyPem: await exportPKCS8(privateKey), ttlSeconds: 3600 },
  );
  const app = createApiApp({ client: bench.client, verifier, logger: silentLogger() });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    approverToken,
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

/** Starts a toolgate worker (the product's `createToolgateWorker`), the approval API and a client. */
export async function startBenchGateway(
  bench: BenchServer,
  options: { taskQueue: string; tools: ToolRegistry; notifier?: Notifier; workflowBundle?: WorkflowBundle },
): Promise<BenchGateway> {
  const worker = await createToolgateWorker({
    connection: bench.nativeConnection,
    taskQueue: options.taskQueue,
    workflowBundle: options.workflowBundle ?? bench.toolgateBundle,
    policy: PolicyStore.fromSources([{ file: 'bench-policy.yaml', text: BENCH_POLICY }]),
    tools: options.tools,
    notifier: options.notifier ?? { notify: async () => {} },
    logger: silentLogger(),
  });
  const running = worker.run();
  const api = await startBenchApi(bench);
  return {
    worker,
    gateway: new ToolGateway({ client: bench.client, taskQueue: options.taskQueue }),
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
    temporalCli = execFileSync(requireTemporalCli(), ['--version'], { encoding: 'utf8' }).trim().replace(/^temporal version /, '');
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
