/**
 * A production-topology toolgate cluster on loopback, for `npm run cluster` and the cluster tests
 * (`npm run test:cluster`): nothing of the dev server, every part a separate process as a
 * deployment has them.
 *
 * - PostgreSQL from the operating system's packages (Debian's `postgresql`), a private instance
 *   made with `initdb` in a temporary directory: TCP on 127.0.0.1 only, trust authentication on
 *   loopback, its socket in the same directory. As root it runs as the `postgres` user (initdb
 *   refuses root).
 * - The Temporal server built from the Go module at the pinned version
 *   (scripts/cluster/build-temporal.ts), on PostgreSQL: schema applied with the server's own
 *   `temporal-sql-tool` (setup-schema 0.0, then update-schema from the module's versioned
 *   schema), frontend/history/matching/worker services on free loopback ports, namespace
 *   `default` created with an explicit retention, toolgate's search attributes registered with
 *   their types.
 * - Two `toolgate worker` and two `toolgate api` processes. Keys come from `toolgate keys init`
 *   into a secrets directory, and each process is given, by variable, exactly the files its role
 *   needs (see {@link WORKER_SECRETS} and {@link API_SECRETS}); its own state directory stays
 *   empty of keys, so nothing is created silently. Inherited TOOLGATE_* and TEMPORAL_* variables
 *   of the caller are not passed on. The workers count rate limits in the same PostgreSQL
 *   (database {@link RATE_LIMIT_DB}), so a limit holds across both.
 *
 * Every process is ended by {@link Cluster.close}, and also if the process that started the
 * cluster dies without closing it: a small watchdog shell (its own pid the only one it watches)
 * kills what the cluster started and stops PostgreSQL.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, createWriteStream, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { issueAgentToken, type AgentClaims } from '../../src/auth/agent-tokens.js';
import { defaultLinkKeyPaths } from '../../src/approvals/links.js';
import { defaultKeyPaths, issueApproverToken, type ApproverClaims } from '../../src/auth/tokens.js';
import { dataConverterFor, defaultKeyringFile, loadKeyring } from '../../src/codec/index.js';
import { SEARCH_ATTRIBUTE_TYPE_NAMES, searchAttributes } from '../../src/shared/index.js';
import { requireTemporalCli } from '../../src/temporal/cli.js';
import { findFreePort } from '../../src/temporal/dev-server.js';
import { defaultTrustKeyPaths } from '../../src/trust/keys.js';
import { buildTemporalServer, type TemporalServerPaths } from '../../scripts/cluster/build-temporal.js';
import { REPO_ROOT, manage, until, waitForOutput, type ManagedProcess, spawnToolgate } from '../helpers/processes.js';

/** The namespace the cluster creates and every process uses. */
export const CLUSTER_NAMESPACE = 'default';
/** Its retention, given explicitly (a production namespace has one chosen, not the CLI's default). */
export const CLUSTER_RETENTION = '30d';
const TEMPORAL_DB = 'temporal';
const VISIBILITY_DB = 'temporal_visibility';
/** The database the workers keep their shared rate-limit counters in (TOOLGATE_RATE_LIMIT_STORE). */
export const RATE_LIMIT_DB = 'toolgate';
/** The PostgreSQL superuser of the private instance (trust authentication on loopback, no password). */
export const PG_USER = 'temporal';

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Policy files or directories for the workers (`TOOLGATE_POLICY`). */
  policy: string;
  /** Number of workers and APIs (default 2 each). */
  workers?: number;
  apis?: number;
  /** Extra environment for every toolgate process (not secrets: those are set per role). */
  env?: NodeJS.ProcessEnv;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** The Temporal server's log level (default `warn`); its log goes to `<dir>/temporal/server.log`. */
  serverLogLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/** One toolgate process slot of the cluster: it can be SIGKILLed and started again with the same settings. */
export interface ClusterMember {
  readonly name: string;
  /** The process now running, undefined while it is down. */
  readonly process: ManagedProcess | undefined;
  /** Its pid (undefined while down); Temporal's worker identity is `<pid>@<host>`. */
  readonly pid: number | undefined;
  /** SIGKILL: no shutdown, no goodbye. */
  kill(): Promise<void>;
  /** Starts it (again), resolving when it is ready; returns how long that took, ms. */
  start(): Promise<number>;
}

/** A worker slot: a member with its Prometheus endpoint (TOOLGATE_METRICS_ADDRESS; the port stays the same across restarts). */
export interface ClusterWorker extends ClusterMember {
  readonly metricsUrl: string;
}

/** An API slot: a member with its base URL (the port stays the same across restarts). */
export interface ClusterApi extends ClusterMember {
  readonly url: string;
}

/** A running cluster. */
export interface Cluster {
  /** The temporary directory holding everything (removed by close). */
  dir: string;
  /** The secrets directory `toolgate keys init` filled (the token issuer's key included). */
  secretsDir: string;
  postgres: { port: number; socketDir: string };
  temporal: { address: string; version: string };
  workers: ClusterWorker[];
  apis: ClusterApi[];
  /** How long each start-up step took, ms. */
  timings: Record<string, number>;
  /** Mints an approver token the APIs trust (the local issuer's key from the secrets directory). */
  approverToken(claims: ApproverClaims): Promise<string>;
  /** Mints an agent token the APIs trust. */
  agentToken(claims: AgentClaims): Promise<string>;
  /** A Temporal client with the codec keys: the ops view, for assertions only. */
  ops: Client;
  /** Key files found in a toolgate process's own state directory: none unless something created one silently. */
  createdKeyFiles(): string[];
  /** The worker member whose pid is `pid`, if any. */
  workerByPid(pid: number): ClusterMember | undefined;
  /** Stops everything (APIs, workers, Temporal, PostgreSQL) and removes the directory. */
  close(): Promise<void>;
}

/** Which key files each role gets, by variable (files under `<secrets>/keys/`). */
export const WORKER_SECRETS = [
  'TOOLGATE_TRUSTED_REQUEST_KEYS',
  'TOOLGATE_TRUSTED_DECISION_KEYS',
  'TOOLGATE_WORKER_SEAL_KEY_FILE',
  'TOOLGATE_LINK_PRIVATE_KEY_FILE',
  'TOOLGATE_CODEC_KEYS_FILE',
] as const;
/** See {@link WORKER_SECRETS}. The inbox session key is shared by the APIs, as replicas behind one address must. */
export const API_SECRETS = [
  'TOOLGATE_TOKEN_PUBLIC_KEY_FILE',
  'TOOLGATE_REQUEST_SIGNING_KEY_FILE',
  'TOOLGATE_DECISION_SIGNING_KEY_FILE',
  'TOOLGATE_LINK_PUBLIC_KEY_FILE',
  'TOOLGATE_SESSION_KEY_FILE',
  'TOOLGATE_CODEC_KEYS_FILE',
] as const;

/** Raised when the machine lacks something the cluster needs; the message says what to do. */
export class ClusterSetupError extends Error {
  override readonly name = 'ClusterSetupError';
}

// ---------------------------------------------------------------------------------------------
// Small process helpers

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Runs a command to completion; throws with its output when it fails. */
async function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const display = [command, ...args].join(' ');
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.length > 100_000) output = output.slice(-50_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`\`${display}\` could not start: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolveRun(output);
      else reject(new Error(`\`${display}\` exited with ${code ?? signal}:\n${output.trim().split('\n').slice(-30).join('\n')}`));
    });
  });
}

/** Runs a PostgreSQL program: as the `postgres` user when we are root (initdb and postgres refuse root). */
function pgCommand(bin: string, program: string, args: string[]): [string, string[]] {
  const path = join(bin, program);
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** The directory of initdb/pg_ctl: TOOLGATE_PG_BIN, else Debian's newest /usr/lib/postgresql/<v>/bin, else `pg_config --bindir`. */
function findPostgresBin(): string | undefined {
  const given = process.env.TOOLGATE_PG_BIN;
  if (given) return existsSync(join(given, 'initdb')) ? given : undefined;
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, 'bin', 'initdb')) && existsSync(join(base, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], 'bin');
  }
  const r = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const dir = r.status === 0 ? r.stdout.trim() : '';
  return dir && existsSync(join(dir, 'initdb')) ? dir : undefined;
}

/**
 * PostgreSQL's binaries, installing Debian's `postgresql` package with apt-get when they are
 * missing and we are root on a machine with apt-get (as scripts/ensure-browser.mjs does for
 * Chromium); otherwise a clear error.
 */
export async function ensurePostgres(log: (line: string) => void = () => undefined): Promise<string> {
  const found = findPostgresBin();
  if (found) return found;
  if (process.env.TOOLGATE_PG_BIN)
    throw new ClusterSetupError(`TOOLGATE_PG_BIN is set to ${process.env.TOOLGATE_PG_BIN}, but initdb is not there (unset it to use the system's PostgreSQL)`);
  const hint =
    'Install PostgreSQL from your system packages (Debian/Ubuntu: `sudo apt-get install -y postgresql`), or set TOOLGATE_PG_BIN to the directory holding initdb and pg_ctl.';
  const aptGet = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).stdout.trim();
  if (!isRoot() || !aptGet) {
    throw new ClusterSetupError(
      `no PostgreSQL server binaries found (TOOLGATE_PG_BIN, /usr/lib/postgresql/*/bin, pg_config --bindir)${aptGet ? '; not root, so it is not installed automatically' : '; apt-get is not available here'}.\n${hint}`,
    );
  }
  const started = Date.now();
  log(`no PostgreSQL found; installing Debian's \`postgresql\` package with apt-get ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run(aptGet, ['update'], { env, timeoutMs: 600_000 });
  await run(aptGet, ['install', '-y', '--no-install-recommends', 'postgresql'], { env, timeoutMs: 900_000 });
  const installed = findPostgresBin();
  if (!installed) throw new ClusterSetupError(`apt-get installed postgresql, but no initdb is found afterwards.\n${hint}`);
  log(`installed postgresql in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return installed;
}

/** A private PostgreSQL instance started by {@link startPostgres}. */
export interface Postgres {
  port: number;
  socketDir: string;
  dataDir: string;
  bin: string;
  stop(): Promise<void>;
}

/**
 * Starts a private PostgreSQL (initdb under `<dir>/postgres`, loopback TCP on a free port, trust
 * authentication for {@link PG_USER}); `stop()` stops it. `bin` comes from {@link ensurePostgres}.
 */
export async function startPostgres(bin: string, dir: string): Promise<Postgres> {
  const home = join(dir, 'postgres');
  const dataDir = join(home, 'data');
  const socketDir = join(home, 'run');
  mkdirSync(socketDir, { recursive: true });
  if (isRoot()) {
    const pg = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    if (pg.status !== 0)
      throw new ClusterSetupError(
        "running as root, PostgreSQL must run as another user, and there is no `postgres` user (Debian's postgresql package creates it)",
      );
    const uid = Number(pg.stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    // The postgres user must reach its directory through ours (mkdtemp makes it 0700).
    chmodSync(dir, 0o711);
    for (const path of [home, socketDir]) chownSync(path, uid, gid);
  }
  const port = await findFreePort();
  const [initdb, initdbArgs] = pgCommand(bin, 'initdb', ['-D', dataDir, '-U', PG_USER, '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
  await run(initdb, initdbArgs, { cwd: home });
  // Loopback only, trust only there (initdb's --auth=trust writes local + 127.0.0.1/32 + ::1 lines);
  // enough connections for four Temporal services' pools.
  const options = `-h 127.0.0.1 -p ${port} -k ${socketDir} -c max_connections=300 -c shared_buffers=64MB`;
  const [pgCtl, startArgs] = pgCommand(bin, 'pg_ctl', ['-D', dataDir, '-l', join(home, 'postgres.log'), '-w', '-t', '60', '-o', options, 'start']);
  await run(pgCtl, startArgs, { cwd: home });
  return {
    port,
    socketDir,
    dataDir,
    bin,
    async stop() {
      const [cmd, args] = pgCommand(bin, 'pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
      await run(cmd, args, { cwd: home }).catch(async () => {
        const [immediate, immediateArgs] = pgCommand(bin, 'pg_ctl', ['-D', dataDir, '-m', 'immediate', 'stop']);
        await run(immediate, immediateArgs, { cwd: home }).catch(() => undefined);
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Temporal

async function applySchema(paths: TemporalServerPaths, pg: Postgres): Promise<void> {
  const common = ['--ep', '127.0.0.1', '-p', String(pg.port), '-u', PG_USER, '--pl', 'postgres12'];
  for (const [db, schema] of [
    [TEMPORAL_DB, 'temporal'],
    [VISIBILITY_DB, 'visibility'],
  ] as const) {
    await run(paths.sqlTool, [...common, '--db', db, 'create-database']);
    await run(paths.sqlTool, [...common, '--db', db, 'setup-schema', '-v', '0.0']);
    await run(paths.sqlTool, [...common, '--db', db, 'update-schema', '-d', join(paths.schemaDir, schema, 'versioned')]);
  }
  // toolgate's own database, for the workers' shared rate-limit counters (the table is created on first use).
  await run(paths.sqlTool, [...common, '--db', RATE_LIMIT_DB, 'create-database']);
}

interface TemporalPorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
}

/** The server's configuration: PostgreSQL stores, four services on loopback, 4 history shards. */
function serverConfig(pg: Postgres, ports: TemporalPorts, dynamicConfigFile: string, logLevel: string): string {
  const store = (db: string, maxConns: number): string => `
      sql:
        pluginName: postgres12
        databaseName: ${db}
        connectAddr: "127.0.0.1:${pg.port}"
        connectProtocol: tcp
        user: ${PG_USER}
        password: ""
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: 1h`;
  const service = (grpc: number, membership: number, http?: number): string => `
    rpc:
      grpcPort: ${grpc}
      membershipPort: ${membership}
      bindOnLocalHost: true${http === undefined ? '' : `\n      httpPort: ${http}`}`;
  return `# Written by test/cluster/cluster.ts: a Temporal server on PostgreSQL, every service on loopback.
log:
  stdout: true
  level: ${logLevel}
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: 4
  datastores:
    postgres-default:${store(TEMPORAL_DB, 20)}
    postgres-visibility:${store(VISIBILITY_DB, 10)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
services:
  frontend:${service(ports.frontend, ports.frontendMembership, ports.frontendHttp)}
  history:${service(ports.history, ports.historyMembership)}
  matching:${service(ports.matching, ports.matchingMembership)}
  worker:${service(ports.worker, ports.workerMembership)}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:${ports.frontend}"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: ${JSON.stringify(dynamicConfigFile)}
  pollInterval: 10s
`;
}

/**
 * Dynamic configuration: the defaults, except the visibility rate per frontend (10/s by default)
 * which the approvers' inbox and listing would hit in the tests' bursts. Nothing test-only such as
 * forcing the search-attribute cache: the cluster waits for the attributes instead.
 */
const DYNAMIC_CONFIG = `frontend.namespaceRPS.visibility:
  - value: 200
    constraints: {}
`;

interface TemporalServer {
  address: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/** Spawns a long-running process whose output is appended to `logFile` and kept (the tail) for failure messages. */
function spawnLogged(name: string, command: string, args: string[], logFile: string, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ManagedProcess {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  return manage(name, child, { log: createWriteStream(logFile, { flags: 'a' }) });
}

async function temporalCli(address: string, args: string[]): Promise<string> {
  return run(requireTemporalCli(), [...args, '--address', address, '--namespace', CLUSTER_NAMESPACE], { timeoutMs: 60_000 });
}

/** Whether `port` can be bound on 127.0.0.1 right now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolveFree(true)));
  });
}

/**
 * A free loopback port below 32768. The server records each service's port in the
 * `cluster_membership` table as a SMALLINT, so an ephemeral port (32768 and up, what binding port 0
 * gives on Linux) makes it exit with "value out of range for type smallint".
 */
async function findFreeLowPort(taken: Set<number>): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (taken.has(port) || !(await portIsFree(port))) continue;
    taken.add(port);
    return port;
  }
  throw new Error('no free loopback port between 20000 and 32000');
}

async function startTemporal(paths: TemporalServerPaths, pg: Postgres, dir: string, logLevel: string, onSpawn: (pid: number) => void): Promise<TemporalServer> {
  const home = join(dir, 'temporal');
  mkdirSync(home, { recursive: true });
  const taken = new Set<number>();
  const ports: TemporalPorts = {
    frontend: await findFreeLowPort(taken),
    frontendHttp: await findFreeLowPort(taken),
    frontendMembership: await findFreeLowPort(taken),
    history: await findFreeLowPort(taken),
    historyMembership: await findFreeLowPort(taken),
    matching: await findFreeLowPort(taken),
    matchingMembership: await findFreeLowPort(taken),
    worker: await findFreeLowPort(taken),
    workerMembership: await findFreeLowPort(taken),
  };
  const dynamicConfigFile = join(home, 'dynamicconfig.yaml');
  writeFileSync(dynamicConfigFile, DYNAMIC_CONFIG);
  const configFile = join(home, 'config.yaml');
  writeFileSync(configFile, serverConfig(pg, ports, dynamicConfigFile, logLevel));
  const server = spawnLogged('temporal-server', paths.server, ['--config-file', configFile, '--allow-no-auth', 'start'], join(home, 'server.log'), {
    cwd: home,
  });
  if (server.child.pid) onSpawn(server.child.pid);
  const address = `127.0.0.1:${ports.frontend}`;
  try {
    // `until` retries through errors: an exited server must end the wait at once, hence the race.
    const exited = server.exited.then((code) => {
      throw new ClusterSetupError(`the Temporal server exited (${code}) during start-up`);
    });
    const serving = until(
      'the Temporal frontend to serve',
      120_000,
      async () => {
        const health = await run(requireTemporalCli(), ['operator', 'cluster', 'health', '--address', address], { timeoutMs: 10_000 }).catch(() => '');
        return /SERVING/.test(health) ? true : undefined;
      },
      500,
    );
    exited.catch(() => undefined);
    await Promise.race([serving, exited]);
  } catch (err) {
    await server.kill();
    throw new Error(`${(err as Error).message}\nserver log tail:\n${server.output().slice(-4000)}`, { cause: err });
  }
  return { address, process: server, stop: async () => void (await server.stop(15_000)) };
}

/** Creates the namespace with an explicit retention and registers toolgate's search attributes, grouped by type. */
async function prepareNamespace(address: string): Promise<void> {
  await temporalCli(address, [
    'operator',
    'namespace',
    'create',
    '--retention',
    CLUSTER_RETENTION,
    '--description',
    'toolgate (production-topology test cluster)',
  ]);
  // Namespace caches refresh every few seconds: wait until the frontend knows it.
  await until(
    'the namespace to be served',
    60_000,
    async () => {
      const out = await temporalCli(address, ['operator', 'namespace', 'describe', '-o', 'json']);
      return /"state":\s*"(NAMESPACE_STATE_)?REGISTERED"/i.test(out) ? true : undefined;
    },
    500,
  );
  // One attribute per call: the CLI takes one --type for all its --name flags.
  for (const key of Object.values(searchAttributes)) {
    const type = SEARCH_ATTRIBUTE_TYPE_NAMES[key.type];
    if (!type) throw new Error(`no server type name for search attribute type ${key.type}`);
    await until(
      `search attribute ${key.name} registered`,
      60_000,
      async () => {
        await temporalCli(address, ['operator', 'search-attribute', 'create', '--type', type, '--name', key.name]);
        return true;
      },
      1_000,
    );
  }
  const listed = await temporalCli(address, ['operator', 'search-attribute', 'list', '-o', 'json']);
  const missing = Object.values(searchAttributes).filter((key) => !listed.includes(`"${key.name}"`));
  if (missing.length > 0)
    throw new ClusterSetupError(`search attributes not registered: ${missing.map((key) => key.name).join(', ')}\n${listed.slice(0, 2000)}`);
  // Registered is not yet usable everywhere: a visibility query naming every attribute proves the frontend's view.
  const query = Object.values(searchAttributes)
    .map((key) => (key.type === 'INT' ? `${key.name} = 0` : key.type === 'DATETIME' ? `${key.name} > '2000-01-01T00:00:00Z'` : `${key.name} = 'x'`))
    .join(' AND ');
  await until(
    'the search attributes to be queryable',
    60_000,
    async () => {
      await temporalCli(address, ['workflow', 'count', '--query', query]);
      return true;
    },
    1_000,
  );
}

// ---------------------------------------------------------------------------------------------
// toolgate processes

/** The variables a toolgate process must not inherit from whoever started the cluster. */
function scrubbedInheritance(): NodeJS.ProcessEnv {
  const scrub: NodeJS.ProcessEnv = {};
  for (const name of Object.keys(process.env)) {
    // Node skips undefined values when it builds a child's environment.
    if (name.startsWith('TOOLGATE_') || name.startsWith('TEMPORAL_')) scrub[name] = undefined;
  }
  return scrub;
}

/**
 * A slot whose `start` spawns the process and waits until `ready` resolves; if the process exits
 * first or `ready` fails, it is killed and the start fails with its output.
 */
function member(
  name: string,
  spawnProcess: () => ManagedProcess,
  ready: (proc: ManagedProcess) => Promise<unknown>,
  track: (pid: number | undefined) => void,
): ClusterMember {
  let current: ManagedProcess | undefined;
  return {
    name,
    get process() {
      return current;
    },
    get pid() {
      return current?.child.pid;
    },
    async kill() {
      const proc = current;
      current = undefined;
      await proc?.kill();
    },
    async start() {
      if (current) throw new Error(`${name} is already running`);
      const started = Date.now();
      const proc = spawnProcess();
      track(proc.child.pid);
      try {
        // `until` retries through errors, so an early exit is raced rather than checked inside it.
        const exited = proc.exited.then((code) => {
          throw new Error(`${name} exited (${code}) before it was ready:\n${proc.output().slice(-4000)}`);
        });
        exited.catch(() => undefined);
        await Promise.race([ready(proc), exited]);
      } catch (err) {
        await proc.kill();
        throw err;
      }
      current = proc;
      return Date.now() - started;
    },
  };
}

/**
 * The watchdog: a shell that waits for `parent` to exit and then SIGKILLs every pid listed in
 * `pidFile` and stops PostgreSQL immediately. It exists for the case where the test runner dies
 * without running close(); close() kills it first.
 */
function startWatchdog(parent: number, pidFile: string, pg: Postgres, dir: string): ChildProcess {
  const [pgCtl, pgArgs] = pgCommand(pg.bin, 'pg_ctl', ['-D', pg.dataDir, '-m', 'immediate', 'stop']);
  const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;
  const script = [
    `while kill -0 ${parent} 2>/dev/null; do sleep 1; done`,
    `for pid in $(cat ${quote(pidFile)} 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done`,
    `${[pgCtl, ...pgArgs].map(quote).join(' ')} >/dev/null 2>&1`,
    `rm -rf ${quote(dir)}`,
  ].join('\n');
  const watchdog = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  return watchdog;
}

/**
 * Starts the whole cluster (see the module comment); resolves when both APIs answer /healthz and
 * both workers poll. Throws after stopping whatever it had started.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const log = options.log ?? (() => undefined);
  const timings: Record<string, number> = {};
  const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    log(`${name} ...`);
    const value = await work();
    timings[name] = Date.now() - started;
    log(`${name}: ${timings[name]} ms`);
    return value;
  };
  const startedAll = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-cluster-'));
  const pidFile = join(dir, 'pids');
  const pids = new Set<number>();
  const track = (pid: number | undefined): void => {
    if (pid === undefined) return;
    pids.add(pid);
    writeFileSync(pidFile, `${[...pids].join('\n')}\n`);
  };
  const cleanups: (() => Promise<unknown>)[] = [];
  let watchdog: ChildProcess | undefined;
  const cleanup = async (): Promise<void> => {
    for (const stepFn of cleanups.reverse()) await stepFn().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`));
    cleanups.length = 0;
    if (watchdog?.pid && watchdog.exitCode === null) {
      try {
        process.kill(watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const paths = await step('build (or reuse) the Temporal server', () => buildTemporalServer());
    const pgBin = await step('find (or install) PostgreSQL', () => ensurePostgres(log));
    const pg = await step('initdb + start PostgreSQL', () => startPostgres(pgBin, dir));
    cleanups.push(() => pg.stop());
    watchdog = startWatchdog(process.pid, pidFile, pg, dir);
    await step('create databases + apply the schema (temporal-sql-tool)', () => applySchema(paths, pg));
    const temporal = await step('start the Temporal server', () => startTemporal(paths, pg, dir, options.serverLogLevel ?? 'warn', track));
    cleanups.push(() => temporal.stop());
    await step(`create namespace ${CLUSTER_NAMESPACE} (retention ${CLUSTER_RETENTION}) + search attributes`, () => prepareNamespace(temporal.address));

    // Every key of the deployment, once; then each role is pointed at its own files.
    const secretsDir = join(dir, 'secrets');
    await step('toolgate keys init', async () => {
      const init = spawnToolgate('keys-init', ['keys', 'init', '--dir', secretsDir], scrubbedInheritance());
      const code = await init.exited;
      if (code !== 0) throw new Error(`toolgate keys init exited with ${code}:\n${init.output()}`);
    });
    const tokenKeys = defaultKeyPaths(secretsDir);
    const linkKeys = defaultLinkKeyPaths(secretsDir);
    const trustKeys = defaultTrustKeyPaths(secretsDir);
    const codecFile = defaultKeyringFile(secretsDir);
    const sessionKeyFile = join(secretsDir, 'keys', 'inbox-session.key');
    writeFileSync(sessionKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const workerSecrets: Record<(typeof WORKER_SECRETS)[number], string> = {
      TOOLGATE_TRUSTED_REQUEST_KEYS: trustKeys.request.publicKeyFile,
      TOOLGATE_TRUSTED_DECISION_KEYS: trustKeys.decision.publicKeyFile,
      TOOLGATE_WORKER_SEAL_KEY_FILE: trustKeys.sealFile,
      TOOLGATE_LINK_PRIVATE_KEY_FILE: linkKeys.privateKeyFile,
      TOOLGATE_CODEC_KEYS_FILE: codecFile,
    };
    const apiSecrets: Record<(typeof API_SECRETS)[number], string> = {
      TOOLGATE_TOKEN_PUBLIC_KEY_FILE: tokenKeys.publicKeyFile,
      TOOLGATE_REQUEST_SIGNING_KEY_FILE: trustKeys.request.privateKeyFile,
      TOOLGATE_DECISION_SIGNING_KEY_FILE: trustKeys.decision.privateKeyFile,
      TOOLGATE_LINK_PUBLIC_KEY_FILE: linkKeys.publicKeyFile,
      TOOLGATE_SESSION_KEY_FILE: sessionKeyFile,
      TOOLGATE_CODEC_KEYS_FILE: codecFile,
    };

    const apiCount = options.apis ?? 2;
    const workerCount = options.workers ?? 2;
    const apiPorts = await Promise.all(Array.from({ length: apiCount }, () => findFreePort()));
    const apiUrls = apiPorts.map((port) => `http://127.0.0.1:${port}`);
    const workerMetricsPorts = await Promise.all(Array.from({ length: workerCount }, () => findFreePort()));
    const stateDirs: string[] = [];
    const baseEnv = (name: string): NodeJS.ProcessEnv => {
      const stateDir = join(dir, 'processes', name);
      mkdirSync(stateDir, { recursive: true });
      stateDirs.push(stateDir);
      return {
        ...scrubbedInheritance(),
        ...options.env,
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: CLUSTER_NAMESPACE,
        TOOLGATE_STATE_DIR: stateDir,
      };
    };
    const processes: ClusterMember[] = [];
    cleanups.push(async () => {
      for (const proc of processes) await proc.kill();
    });
    const workers = Array.from({ length: workerCount }, (_, i) => {
      const name = `worker-${i + 1}`;
      const env = {
        ...baseEnv(name),
        ...workerSecrets,
        TOOLGATE_POLICY: options.policy,
        // Rate limits are counted in PostgreSQL, shared by the workers (trust auth: no password here).
        TOOLGATE_RATE_LIMIT_STORE: `postgres://${PG_USER}@127.0.0.1:${pg.port}/${RATE_LIMIT_DB}`,
        // Links and review URLs in notifications point at the first API (any would do).
        TOOLGATE_PUBLIC_URL: apiUrls[0],
        TOOLGATE_LOG_LEVEL: 'info',
        // Each worker's Prometheus endpoint (its counters and the Temporal SDK's), on loopback.
        TOOLGATE_METRICS_ADDRESS: `127.0.0.1:${workerMetricsPorts[i]}`,
      };
      const slot = member(
        name,
        () => spawnToolgate(name, ['worker'], env),
        (worker) => waitForOutput(worker, /"msg":"worker running"/, 120_000),
        track,
      );
      processes.push(slot);
      return Object.assign(slot, { metricsUrl: `http://127.0.0.1:${workerMetricsPorts[i]}/metrics` });
    });
    const apis = apiPorts.map((port, i): ClusterApi => {
      const name = `api-${String.fromCharCode(97 + i)}`;
      const url = apiUrls[i] as string;
      const env = { ...baseEnv(name), ...apiSecrets, TOOLGATE_API_HOST: '127.0.0.1', TOOLGATE_API_PORT: String(port), TOOLGATE_LOG_LEVEL: 'warn' };
      const slot = member(
        name,
        () => spawnToolgate(name, ['api'], env),
        () => until(`${name} /healthz`, 120_000, async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined)),
        track,
      );
      processes.push(slot);
      return Object.assign(slot, { url });
    });
    await step(`start ${workerCount} workers + ${apiCount} APIs`, async () => {
      // All settle before a failure is thrown, so nothing that came up is left behind unkilled.
      const results = await Promise.allSettled(processes.map((p) => p.start()));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    });

    const tokenPrivateKeyPem = await readFile(tokenKeys.privateKeyFile, 'utf8');
    const connection = await Connection.connect({ address: temporal.address });
    cleanups.push(() => connection.close());
    const ops = new Client({
      connection,
      namespace: CLUSTER_NAMESPACE,
      dataConverter: dataConverterFor(await loadKeyring({ env: { TOOLGATE_CODEC_KEYS_FILE: codecFile } })),
    });
    timings['cluster start, total'] = Date.now() - startedAll;
    return {
      dir,
      secretsDir,
      postgres: { port: pg.port, socketDir: pg.socketDir },
      temporal: { address: temporal.address, version: paths.home.replace(/.*temporal-server-v/, '') },
      workers,
      apis,
      timings,
      approverToken: (claims) => issueApproverToken(claims, { privateKeyPem: tokenPrivateKeyPem }),
      agentToken: (claims) => issueAgentToken(claims, { privateKeyPem: tokenPrivateKeyPem }),
      ops,
      createdKeyFiles: () =>
        stateDirs.flatMap((stateDir) => {
          const keys = join(stateDir, 'keys');
          return existsSync(keys) ? readdirSync(keys).map((file) => join(keys, file)) : [];
        }),
      workerByPid: (pid) => workers.find((w) => w.pid === pid),
      close: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Who runs this (for messages): PostgreSQL runs as `postgres` when this is root. */
export function clusterUser(): string {
  return isRoot() ? 'root (PostgreSQL as postgres)' : userInfo().username;
}

/** The repository root (processes run from there). */
export { REPO_ROOT };
