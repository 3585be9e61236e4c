/**
 * Real toolgate processes for crash tests: `toolgate worker` and `toolgate api` spawned from the
 * CLI with the same environment an operator would give them, and the Temporal dev server on a
 * SQLite file. Each can be SIGKILLed and started again on the same state (same ports, same file),
 * and every process started here is killed when the test ends, whatever happened.
 *
 * Requests enter the way an agent's do: through the spawned API's front door with an agent token
 * minted from the state directory's local key (as `toolgate token issue --agent` does). Only the
 * assertions read more than an agent may see, through a Temporal client with the codec keys (the
 * ops view).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, type DataConverter } from '@temporalio/client';
import { issueAgentToken, type AgentClaims } from '../../src/auth/agent-tokens.js';
import { ToolGateway, type ToolCallInput, type ToolRequestHandle } from '../../src/client/index.js';
import { dataConverterFor, defaultKeyringFile, ensureKeyringFile, loadKeyring, type CodecKeyring } from '../../src/codec/index.js';
import { defaultKeyPaths, ensureLocalKeyPair, issueApproverToken, type ApproverClaims } from '../../src/auth/tokens.js';
import { SEARCH_ATTRIBUTE_CLI_ARGS, statusQuery, workflowIdFor, type RequestStatus, type ToolOutcome } from '../../src/shared/index.js';
import { loadFrontDoorKeys, loadWorkerTrust } from '../../src/trust/store.js';
import { requireTemporalCli } from '../../src/temporal/cli.js';
import { findFreePort, startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import { startCrashToolService, type CrashToolService } from '../fixtures/crash/tool-service.js';
import { requestJson } from './http.js';

/** The repository root: child processes run the CLI from here. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const OUTPUT_KEPT_CHARS = 200_000;

/** A spawned process whose output is kept (the tail) for readiness checks and failure messages. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Everything it printed (stdout and stderr, the last 200 000 characters). */
  output(): string;
  /** Resolves once the process has exited (code, or null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Sends SIGKILL (no shutdown hooks run) and waits until the process is gone. */
  kill(): Promise<void>;
  /** Sends SIGTERM and waits for a clean exit; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
}

/** Spawns `node --import tsx src/cli/main.ts <args>` with `env` on top of this process's environment. */
export function spawnToolgate(name: string, args: string[], env: NodeJS.ProcessEnv): ManagedProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return manage(name, child);
}

/** Runs the real `toolgate` CLI to its exit; resolves with its exit code and its whole output. */
export function runToolgate(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('exit', (code) => resolve({ code, out: Buffer.concat(out).toString('utf8'), err: Buffer.concat(err).toString('utf8') }));
  });
}

/**
 * Wraps a spawned child: keeps the tail of its output (and copies all of it to `options.log`, if
 * given, ended when the child exits) and gives it `kill`/`stop`.
 */
export function manage(name: string, child: ChildProcess, options: { log?: NodeJS.WritableStream } = {}): ManagedProcess {
  let text = '';
  const append = (chunk: Buffer): void => {
    options.log?.write(chunk);
    text += chunk.toString('utf8');
    if (text.length > OUTPUT_KEPT_CHARS) text = text.slice(-OUTPUT_KEPT_CHARS);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<number | null>((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit(child.exitCode);
    else child.once('exit', (code) => resolveExit(code));
  }).finally(() => options.log?.end());
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    name,
    child,
    output: () => text,
    exited,
    async kill() {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 10_000) {
      if (alive()) child.kill('SIGTERM');
      const outcome = await Promise.race([exited.then(() => 'exited' as const), sleep(graceMs, 'timeout' as const)]);
      if (outcome === 'timeout') child.kill('SIGKILL');
      return exited;
    },
  };
}

/** Waits until the process has printed something matching `pattern`; fails if it exits first or after `timeoutMs`. */
export async function waitForOutput(proc: ManagedProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(proc.output())) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before printing ${pattern}:\n${proc.output().slice(-4000)}`);
    }
    if (Date.now() > deadline) throw new Error(`${proc.name}: timed out after ${timeoutMs} ms waiting for ${pattern}:\n${proc.output().slice(-4000)}`);
    await sleep(50);
  }
}

/** Polls `check` every `intervalMs` until it returns a value other than undefined; fails with `what` after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** The environment shared by every toolgate process of one test: the same Temporal, state directory, policy and keys. */
export interface GatewayProcessEnv extends NodeJS.ProcessEnv {
  TEMPORAL_ADDRESS: string;
  TOOLGATE_STATE_DIR: string;
  TOOLGATE_POLICY: string;
  TOOLGATE_API_PORT: string;
}

/** Starts `toolgate worker` and waits until it polls the task queue. */
export async function startWorkerProcess(env: GatewayProcessEnv, name = 'worker', timeoutMs = 90_000): Promise<ManagedProcess> {
  const worker = spawnToolgate(name, ['worker'], { TOOLGATE_LOG_LEVEL: 'info', ...env });
  try {
    await waitForOutput(worker, /"msg":"worker running"/, timeoutMs);
  } catch (err) {
    await worker.kill();
    throw err;
  }
  return worker;
}

/** Starts `toolgate api` and waits until `/healthz` answers. */
export async function startApiProcess(env: GatewayProcessEnv, name = 'api', timeoutMs = 60_000): Promise<ManagedProcess> {
  const api = spawnToolgate(name, ['api'], { TOOLGATE_LOG_LEVEL: 'warn', ...env });
  try {
    await until(`${name} /healthz`, timeoutMs, async () => {
      if (api.child.exitCode !== null) throw new Error(`${name} exited:\n${api.output().slice(-4000)}`);
      const response = await fetch(`http://127.0.0.1:${env.TOOLGATE_API_PORT}/healthz`);
      return response.ok ? true : undefined;
    });
  } catch (err) {
    await api.kill();
    throw err;
  }
  return api;
}

/** A Temporal dev server on a SQLite file that can be SIGKILLed and started again on the same file and port. */
export class TemporalProcess {
  private server: DevServer | undefined;

  private constructor(
    readonly dbFile: string,
    readonly port: number,
  ) {}

  /** Starts a server with toolgate's search attributes on a free port, state in `dbFile`. */
  static async start(dbFile: string): Promise<TemporalProcess> {
    const temporal = new TemporalProcess(dbFile, await findFreePort());
    await temporal.restart();
    return temporal;
  }

  /** The frontend address, host:port; it does not change across restarts. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts the server (again) on the same file and port; resolves when it serves requests. Returns the time it took, ms. */
  async restart(): Promise<number> {
    const started = Date.now();
    this.server = await startDevServer({
      cliPath: requireTemporalCli(),
      dbFile: this.dbFile,
      port: this.port,
      ui: false,
      logLevel: 'error',
      searchAttributes: SEARCH_ATTRIBUTE_CLI_ARGS,
      startTimeoutMs: 60_000,
    });
    return Date.now() - started;
  }

  /** SIGKILLs the server: no shutdown, the SQLite file is left as the crash left it. */
  async kill(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    process.kill(server.pid, 'SIGKILL');
    await server.exited;
  }

  /** Stops the server cleanly (end of test). */
  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
  }
}

/** A Temporal client of the test process: the ops view its assertions read (agents never connect to Temporal). */
export async function connectClient(address: string, dataConverter?: DataConverter): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address });
  return { client: new Client({ connection, ...(dataConverter ? { dataConverter } : {}) }), connection };
}

/**
 * The payload codec keyring the toolgate processes of `env` use, loaded the way the CLI loads it
 * (`TOOLGATE_CODEC_KEYS`, `TOOLGATE_CODEC_KEYS_FILE`, else `<stateDir>/keys/codec-keys.json`).
 * The key file is created first, so every process and the test's client share one key.
 */
export async function processKeyring(env: GatewayProcessEnv): Promise<CodecKeyring> {
  const merged = { ...process.env, ...env };
  if (!merged.TOOLGATE_CODEC_KEYS && !merged.TOOLGATE_CODEC_KEYS_FILE) await ensureKeyringFile(defaultKeyringFile(env.TOOLGATE_STATE_DIR));
  return loadKeyring({ env: merged, devStateDir: env.TOOLGATE_STATE_DIR });
}

/** Mints the tokens of a state directory's local issuer, which the spawned API trusts for approvers and agents alike. */
export interface LocalTokens {
  approver(claims: ApproverClaims): Promise<string>;
  agent(claims: AgentClaims): Promise<string>;
}

/**
 * Creates the local token key pair under the state directory (as `toolgate token issue` does) and
 * mints approver and agent tokens with it. Call it before `toolgate api` starts: the API serves
 * the agent routes only when the public key exists at start-up.
 */
export async function localTokens(stateDir: string): Promise<LocalTokens> {
  const paths = defaultKeyPaths(stateDir);
  await ensureLocalKeyPair(paths);
  const privateKeyPem = await readFile(paths.privateKeyFile, 'utf8');
  return {
    approver: (claims) => issueApproverToken(claims, { privateKeyPem }),
    agent: (claims) => issueAgentToken(claims, { privateKeyPem }),
  };
}

/**
 * Creates the boundary's keys under the state directory (request- and decision-signing pairs, the
 * workers' seal secret) with the functions the processes themselves call, once, before any
 * process starts: a worker and an API started together then read finished files instead of
 * racing to write the same ones.
 */
export async function provisionBoundaryKeys(env: GatewayProcessEnv): Promise<void> {
  const merged = { ...process.env, ...env };
  await loadFrontDoorKeys(env.TOOLGATE_STATE_DIR, merged);
  await loadWorkerTrust(env.TOOLGATE_STATE_DIR, merged);
}

/** A free loopback port for `toolgate api`. */
export { findFreePort };

/** Calls a toolgate HTTP API; returns status and parsed JSON. `timeoutMs` bounds the whole call. */
export async function callApi(
  baseUrl: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<{ status: number; body: any }> {
  return requestJson(baseUrl, method, path, { ...options, timeoutMs: options.timeoutMs ?? 60_000 });
}

/** Figures a crash test records and prints: counts and how long each recovery took. */
export class Figures {
  private readonly rows: [string, string | number][] = [];

  constructor(readonly scenario: string) {}

  /** Records one figure. */
  set(name: string, value: string | number): void {
    this.rows.push([name, value]);
  }

  /** The figures as printable lines. */
  lines(): string[] {
    return [`figures: ${this.scenario}`, ...this.rows.map(([name, value]) => `  ${name}: ${value}`)];
  }

  /** Prints the figures to stdout (the test report shows them) and returns them as an object. */
  print(): Record<string, string | number> {
    process.stdout.write(`${this.lines().join('\n')}\n`);
    return Object.fromEntries(this.rows);
  }
}

/** The agent every crash test's requests come from; its token, not the request, says who and where. */
export const CRASH_AGENT: AgentClaims = { sub: 'crash-agent', tenant: 'acme', environment: 'production', roles: ['agent_runtime'] };

/** Options of {@link startCrashGateway}. */
export interface CrashGatewayOptions {
  /** Extra environment for the worker and API (e.g. `TOOLGATE_WEBHOOKS`). */
  env?: NodeJS.ProcessEnv;
}

/** A request a crash test submitted through the front door. */
export interface CrashRequest {
  readonly requestId: string;
  /** Its tenant-scoped workflow id (`workflowIdFor`); the tool's idempotency key is `toolgate:<workflowId>`. */
  readonly workflowId: string;
  /** The agent's own handle: what the agent sees through the front door. */
  readonly agent: ToolRequestHandle;
  /** The full status (digest, tier, notifications...) as ops see it: a Temporal query with the codec keys. */
  status(): Promise<RequestStatus>;
  /** The outcome as the agent receives it, long-polling the front door. */
  outcome(): Promise<ToolOutcome>;
}

/** A whole gateway of real processes on a fresh state directory, for one crash test. */
export interface CrashGateway {
  stateDir: string;
  temporal: TemporalProcess;
  tools: CrashToolService;
  /** The environment every toolgate process of this test gets. */
  env: GatewayProcessEnv;
  /** The worker running now (undefined while it is down). */
  readonly worker: ManagedProcess | undefined;
  api: ManagedProcess;
  apiUrl: string;
  /** A Temporal client with the codec keys: the ops view, for assertions only (never to submit or decide). */
  ops: Client;
  /** The SDK of {@link CRASH_AGENT}, holding its agent token and nothing else. */
  agent: ToolGateway;
  /** Submits a request as {@link CRASH_AGENT} through the spawned API's front door. */
  start(request: ToolCallInput): Promise<CrashRequest>;
  /** Mints an approver token the API trusts (tenant `acme`). */
  token(sub: string, groups: string[]): Promise<string>;
  /** SIGKILLs the worker. */
  killWorker(): Promise<void>;
  /** Starts a new worker process; returns how long it took to be ready, ms. */
  startWorker(): Promise<number>;
  /** Stops everything and removes the state directory. */
  close(): Promise<void>;
}

/**
 * Starts Temporal (SQLite under a fresh state directory), the crash tool service, `toolgate worker`
 * and `toolgate api`, and checks that the API admits {@link CRASH_AGENT}'s token.
 */
export async function startCrashGateway(scenario: string, options: CrashGatewayOptions = {}): Promise<CrashGateway> {
  const stateDir = await mkdtemp(join(tmpdir(), `toolgate-${scenario}-`));
  const cleanups: (() => Promise<unknown>)[] = [() => rm(stateDir, { recursive: true, force: true })];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.reverse()) await step().catch(() => undefined);
  };
  try {
    const tools = await startCrashToolService();
    cleanups.push(() => tools.close());
    const policyFile = join(stateDir, 'policy.yaml');
    const template = await readFile(join(REPO_ROOT, 'test', 'fixtures', 'crash', 'policy.yaml'), 'utf8');
    await writeFile(policyFile, template.replaceAll('{{TOOLS_URL}}', tools.url));
    const temporal = await TemporalProcess.start(join(stateDir, 'temporal.db'));
    cleanups.push(() => temporal.stop());
    const apiPort = await findFreePort();
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const env: GatewayProcessEnv = {
      ...options.env,
      TEMPORAL_ADDRESS: temporal.address,
      TOOLGATE_STATE_DIR: stateDir,
      TOOLGATE_POLICY: policyFile,
      TOOLGATE_API_PORT: String(apiPort),
    };
    // Before any process starts: the API enables the agent routes only if the token key exists.
    const tokens = await localTokens(stateDir);
    await provisionBoundaryKeys(env);
    // The assertions read the same encrypted payloads as the worker and the API.
    const { client: ops, connection } = await connectClient(temporal.address, dataConverterFor(await processKeyring(env)));
    cleanups.push(() => connection.close());
    const agent = new ToolGateway({ url: apiUrl, token: await tokens.agent(CRASH_AGENT), pollSeconds: 10 });
    const processes: ManagedProcess[] = [];
    cleanups.push(async () => {
      for (const proc of processes) await proc.kill();
    });
    let workers = 0;
    let currentWorker: ManagedProcess | undefined;
    const startWorker = async (): Promise<number> => {
      const started = Date.now();
      workers += 1;
      const worker = await startWorkerProcess(env, `worker-${workers}`);
      processes.push(worker);
      currentWorker = worker;
      return Date.now() - started;
    };
    // Both settle before anything is cleaned up, so a process that came up beside a failed one is killed too.
    const [workerReady, apiReady] = await Promise.allSettled([startWorker(), startApiProcess(env)]);
    if (apiReady.status === 'fulfilled') processes.push(apiReady.value);
    if (workerReady.status === 'rejected') throw workerReady.reason;
    if (apiReady.status === 'rejected') throw apiReady.reason;
    const api = apiReady.value;
    const gateway: CrashGateway = {
      stateDir,
      temporal,
      tools,
      env,
      get worker() {
        return currentWorker;
      },
      api,
      apiUrl,
      ops,
      agent,
      async start(request) {
        const handle = await agent.start(request);
        const workflowId = workflowIdFor(CRASH_AGENT.tenant, handle.requestId);
        return {
          requestId: handle.requestId,
          workflowId,
          agent: handle,
          status: () => ops.workflow.getHandle(workflowId).query(statusQuery),
          outcome: () => handle.outcome(),
        };
      },
      token: (sub, groups) => tokens.approver({ sub, tenant: CRASH_AGENT.tenant, groups }),
      async killWorker() {
        await currentWorker?.kill();
        currentWorker = undefined;
      },
      startWorker,
      close: cleanup,
    };
    // The front door knows the agent as its token says: a harness whose API serves no agent routes fails here, not in a test.
    const identity = await agent.identity();
    if (identity.id !== CRASH_AGENT.sub || identity.tenant !== CRASH_AGENT.tenant || identity.environment !== CRASH_AGENT.environment) {
      throw new Error(`the API identifies the crash agent as ${JSON.stringify(identity)}`);
    }
    return gateway;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The request every crash test sends: a tool with a title; who asks comes from the agent's token. */
export function crashRequest(requestId: string, tool: string, title: string): ToolCallInput {
  return { requestId, tool, args: { title }, reason: 'crash test' };
}
