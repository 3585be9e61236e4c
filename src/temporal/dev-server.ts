import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { msToNumber, msToTs, tsToMs } from './internals.js';
import { ToolgateError } from '../errors.js';

/** Options for {@link startDevServer}. */
export interface DevServerOptions {
  /** Path of the `temporal` CLI binary (see `requireTemporalCli`). */
  cliPath: string;
  /** SQLite file for persistent state; omit for an in-memory server. Its directory is created. */
  dbFile?: string;
  /** IP address the frontend (and UI) bind to; default 127.0.0.1. */
  ip?: string;
  /** Frontend gRPC port; default 7233; 0 picks a free one. */
  port?: number;
  /** Web UI port; default port + 1000 (a free one when `port` is 0); 0 picks a free one. */
  uiPort?: number;
  /** Whether to serve the Web UI; default true (false passes `--headless`). */
  ui?: boolean;
  /** Namespace to create and wait for; default 'default'. */
  namespace?: string;
  /**
   * The namespace's retention (Temporal duration, e.g. `30d`), set once the server is ready;
   * otherwise the dev server's default stays. `toolgate dev` passes `TOOLGATE_RETENTION` here.
   */
  retention?: string;
  /** Extra CLI arguments, e.g. `['--search-attribute', 'ToolgateTool=Keyword']`; the named search attributes are awaited. */
  searchAttributes: string[];
  /** Remote codec endpoint for the Web UI (`--ui-codec-endpoint`). */
  uiCodecEndpoint?: string;
  /** Server log level (`--log-level`); default 'warn'. */
  logLevel?: string;
  /** Receives every line the server prints (stdout and stderr). */
  onOutput?: (line: string) => void;
  /** How long to wait for the server to be ready, in ms; default 60 000. */
  startTimeoutMs?: number;
  /**
   * Run the server in a process group of its own, so a Ctrl-C in the terminal (SIGINT to the
   * foreground group) reaches only the parent, which then stops its own clients first and the
   * server last (`stop()`). The parent still kills it when it exits. Default false: the server
   * shares the parent's group and gets whatever signal the group gets.
   */
  ownProcessGroup?: boolean;
}

/** A running dev server started by {@link startDevServer}. */
export interface DevServer {
  /** Frontend gRPC address, host:port. */
  address: string;
  /** Web UI URL, when the UI is enabled. */
  uiUrl?: string;
  /** Namespace that was awaited. */
  namespace: string;
  /** Process id of the server. */
  pid: number;
  /** Stops the server: SIGTERM, then SIGKILL if it has not exited after 10 s. Safe to call twice. */
  stop(): Promise<void>;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  exited: Promise<number | null>;
  /** Whether the server exited without `stop()` being called (a crash, or a signal sent to it). */
  exitedOnItsOwn(): boolean;
}

/** Thrown when the dev server exits before it is ready or does not become ready in time; the message carries its last output lines. */
export class DevServerStartError extends ToolgateError {
  /** The last lines the server printed. */
  readonly output: string[];

  constructor(message: string, output: string[]) {
    super('dev_server_start_failed', output.length > 0 ? `${message}\n--- last server output ---\n${output.join('\n')}` : message);
    this.name = 'DevServerStartError';
    this.output = output;
  }
}

const DEFAULT_IP = '127.0.0.1';
const DEFAULT_PORT = 7233;
const DEFAULT_START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const OUTPUT_LINES_KEPT = 40;

/** Returns a TCP port that is free on `host` right now (binds port 0 and releases it). */
export async function findFreePort(host: string = DEFAULT_IP): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : undefined;
      server.close(() => (port ? resolvePort(port) : reject(new Error(`could not pick a free port on ${host}`))));
    });
  });
}

/** Extracts the search attribute names from `--search-attribute Name=Type` / `--search-attribute=Name=Type` arguments. */
export function searchAttributeNames(args: readonly string[]): string[] {
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    let pair: string | undefined;
    if (arg === '--search-attribute') pair = args[++i];
    else if (arg.startsWith('--search-attribute=')) pair = arg.slice('--search-attribute='.length);
    const name = pair?.split('=')[0];
    if (name) names.push(name);
  }
  return names;
}

function hostForAddress(ip: string): string {
  if (ip === '0.0.0.0') return '127.0.0.1';
  if (ip === '::') return '[::1]';
  return ip.includes(':') && !ip.startsWith('[') ? `[${ip}]` : ip;
}

/** SQLite pragmas of the file-backed dev server (see the comment where they are passed). */
export const DEV_SQLITE_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'] as const;

/**
 * Starts `temporal server start-dev` and resolves once the frontend serves requests, the namespace
 * exists and the requested search attributes are registered; rejects with {@link DevServerStartError}
 * (carrying the server's last output) if it exits early or is not ready within the timeout.
 */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? DEFAULT_IP;
  const ui = opts.ui ?? true;
  const namespace = opts.namespace ?? 'default';
  const requestedPort = opts.port ?? DEFAULT_PORT;
  const port = requestedPort === 0 ? await findFreePort(ip) : requestedPort;
  let uiPort: number | undefined;
  if (ui) {
    if (opts.uiPort === 0 || (opts.uiPort === undefined && requestedPort === 0)) uiPort = await findFreePort(ip);
    else uiPort = opts.uiPort ?? port + 1000;
  }

  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--log-level', opts.logLevel ?? 'warn'];
  if (opts.dbFile) {
    const dbFile = resolve(opts.dbFile);
    mkdirSync(dirname(dbFile), { recursive: true });
    args.push('--db-filename', dbFile);
    // WAL with synchronous=normal: a commit is durable once in the write-ahead log, without a full
    // fsync per write. It survives a crash of the server process; a power loss may lose the last
    // transactions (not corrupt the file). The default (rollback journal, full sync) costs about
    // 1.7× per workflow on this kind of disk, for a dev server.
    for (const pragma of DEV_SQLITE_PRAGMAS) args.push('--sqlite-pragma', pragma);
  }
  if (uiPort !== undefined) {
    args.push('--ui-port', String(uiPort), '--ui-disable-news-fetch');
    if (opts.uiCodecEndpoint) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);
  } else {
    args.push('--headless');
  }
  if (namespace !== 'default') args.push('--namespace', namespace);
  args.push(...opts.searchAttributes);

  const child = spawn(opts.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, detached: opts.ownProcessGroup ?? false });
  const lastLines: string[] = [];
  const onLine = (line: string): void => {
    lastLines.push(line);
    if (lastLines.length > OUTPUT_LINES_KEPT) lastLines.shift();
    opts.onOutput?.(line);
  };
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split(/\r?\n/);
      partial = parts.pop() ?? '';
      for (const line of parts) if (line !== '') onLine(line);
    });
    stream.on('end', () => {
      if (partial !== '') onLine(partial);
      partial = '';
    });
  }

  let exitedEarly: { code: number | null; signal: NodeJS.Signals | null; error?: Error } | undefined;
  const exited = new Promise<number | null>((resolveExit) => {
    child.once('error', (error) => {
      exitedEarly ??= { code: null, signal: null, error };
      resolveExit(null);
    });
    child.once('exit', (code, signal) => {
      exitedEarly ??= { code, signal };
      resolveExit(code);
    });
  });
  // Never leave an orphaned server behind if the parent exits without calling stop().
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  void exited.then(() => process.removeListener('exit', killOnExit));

  let stopping: Promise<void> | undefined;
  let stopCalled = false;
  const stop = (): Promise<void> => {
    stopCalled = true;
    stopping ??= (async () => {
      // Exited already (on its own, or from the same SIGINT the parent got): nothing to stop.
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      child.kill('SIGTERM');
      const grace = new AbortController();
      const timer = sleep(STOP_GRACE_MS, 'timeout' as const, { signal: grace.signal }).catch(() => 'exited' as const);
      const outcome = await Promise.race([exited.then(() => 'exited' as const), timer]);
      grace.abort();
      if (outcome === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    })();
    return stopping;
  };

  const address = `${hostForAddress(ip)}:${port}`;
  try {
    await waitUntilReady({
      address,
      namespace,
      searchAttributes: searchAttributeNames(opts.searchAttributes),
      timeoutMs: opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
      exited,
      hasExited: () => exitedEarly,
      lastLines,
    });
    if (opts.retention !== undefined) {
      const connection = await Connection.connect({ address, connectTimeout: 5_000 });
      try {
        await setNamespaceRetention(connection, namespace, opts.retention);
      } finally {
        await connection.close();
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    address,
    ...(uiPort !== undefined ? { uiUrl: `http://${hostForAddress(ip)}:${uiPort}` } : {}),
    namespace,
    pid: child.pid ?? -1,
    stop,
    exited,
    exitedOnItsOwn: () => !stopCalled && (child.exitCode !== null || child.signalCode !== null),
  };
}

interface ReadinessCheck {
  address: string;
  namespace: string;
  searchAttributes: string[];
  timeoutMs: number;
  exited: Promise<unknown>;
  hasExited: () => { code: number | null; signal: NodeJS.Signals | null; error?: Error } | undefined;
  lastLines: string[];
}

async function waitUntilReady(check: ReadinessCheck): Promise<void> {
  const deadline = Date.now() + check.timeoutMs;
  let lastProblem = 'not contacted yet';
  let connecting: Promise<Connection> | undefined;
  const giveUp = new AbortController();
  const exitedOrTimedOut = (): Promise<'stop'> =>
    Promise.race([
      check.exited.then(() => 'stop' as const),
      sleep(Math.max(0, deadline - Date.now()), 'stop' as const, { signal: giveUp.signal }).catch(() => 'stop' as const),
    ]);

  // One readiness probe: frontend answers, namespace exists, search attributes are registered.
  const probe = async (): Promise<boolean> => {
    const current = (connecting ??= Connection.connect({ address: check.address, connectTimeout: 2_000 }));
    let connection: Connection;
    try {
      connection = await current;
    } catch (err) {
      connecting = undefined;
      throw err;
    }
    const rpc = <T>(call: () => Promise<T>): Promise<T> => connection.withDeadline(Date.now() + 2_000, call);
    await rpc(() => connection.workflowService.getSystemInfo({}));
    await rpc(() => connection.workflowService.describeNamespace({ namespace: check.namespace }));
    const { customAttributes } = await rpc(() => connection.operatorService.listSearchAttributes({ namespace: check.namespace }));
    const missing = check.searchAttributes.filter((name) => !(customAttributes && name in customAttributes));
    if (missing.length === 0) return true;
    lastProblem = `search attributes not registered yet: ${missing.join(', ')}`;
    return false;
  };

  try {
    const stopped = exitedOrTimedOut();
    for (;;) {
      const exit = check.hasExited();
      if (exit) {
        const how = exit.error ? `could not be started: ${exit.error.message}` : `exited with ${exit.code ?? exit.signal} before it was ready`;
        throw new DevServerStartError(`Temporal dev server ${how}`, [...check.lastLines]);
      }
      if (Date.now() >= deadline) {
        throw new DevServerStartError(`Temporal dev server at ${check.address} was not ready after ${check.timeoutMs} ms (${lastProblem})`, [
          ...check.lastLines,
        ]);
      }
      const attempt = probe().catch((err: unknown) => {
        lastProblem = err instanceof Error ? err.message : String(err);
        return false;
      });
      if ((await Promise.race([attempt, stopped])) === true) return;
      await sleep(100);
    }
  } finally {
    giveUp.abort();
    // A connection may still be on its way; close it whenever it arrives.
    void connecting?.then((connection) => connection.close()).catch(() => undefined);
  }
}

/** The defaults of `toolgate dev` (and of every client looking for it). */
export const DEV_DEFAULTS = Object.freeze({ apiHost: '127.0.0.1', apiPort: 8787, port: 7233, uiPort: 8233, stateDir: '.toolgate' });

/** Where a `toolgate dev` instance runs, for {@link devExportLine}. */
export interface DevInstance {
  /** The API's public URL (TOOLGATE_PUBLIC_URL, or derived from host and port). */
  publicUrl: string;
  apiHost: string;
  apiPort: number;
  /** Whether TOOLGATE_PUBLIC_URL was set explicitly. */
  publicUrlSet: boolean;
  temporalAddress: string;
  port: number;
  uiPort: number;
  /** Absolute state directory. */
  stateDir: string;
}

/** Quotes a value for a POSIX shell when it needs it. */
function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The `export` line another terminal pastes so `npm run demo`, the SDK (`TOOLGATE_URL`) and the
 * CLI (`TEMPORAL_ADDRESS`, keys under `TOOLGATE_STATE_DIR`) find this instance; undefined when the
 * API port, Temporal port, UI port and state directory are all at their defaults (relative to
 * `cwd`), where they find it anyway.
 */
export function devExportLine(instance: DevInstance, cwd: string = process.cwd()): string | undefined {
  const differs =
    instance.apiPort !== DEV_DEFAULTS.apiPort ||
    instance.apiHost !== DEV_DEFAULTS.apiHost ||
    instance.publicUrlSet ||
    instance.port !== DEV_DEFAULTS.port ||
    instance.uiPort !== DEV_DEFAULTS.uiPort ||
    resolve(instance.stateDir) !== resolve(cwd, DEV_DEFAULTS.stateDir);
  if (!differs) return undefined;
  const vars: [string, string][] = [
    ['TOOLGATE_URL', instance.publicUrl],
    ['TOOLGATE_API_PORT', String(instance.apiPort)],
  ];
  // The demo and the CLI derive the URL from these; the SDK and `toolgate mcp` read TOOLGATE_URL.
  if (instance.apiHost !== DEV_DEFAULTS.apiHost) vars.push(['TOOLGATE_API_HOST', instance.apiHost]);
  if (instance.publicUrlSet) vars.push(['TOOLGATE_PUBLIC_URL', instance.publicUrl]);
  vars.push(['TEMPORAL_ADDRESS', instance.temporalAddress]);
  // Absolute: the other terminal may be elsewhere; the local token key and payload key live here.
  vars.push(['TOOLGATE_STATE_DIR', resolve(instance.stateDir)]);
  return `export ${vars.map(([name, value]) => `${name}=${shellQuote(value)}`).join(' ')}`;
}

/**
 * Sets a namespace's retention (how long closed workflows' histories are kept) through
 * UpdateNamespace; only the retention changes. `retention` is a Temporal duration (`30d`, `36h`).
 */
export async function setNamespaceRetention(connection: Connection, namespace: string, retention: string): Promise<void> {
  const ms = msToNumber(retention as Duration);
  await connection.workflowService.updateNamespace({ namespace, config: { workflowExecutionRetentionTtl: msToTs(ms) } });
}

/** A namespace's retention in ms, as the server describes it (undefined when it has none set). */
export async function namespaceRetentionMs(connection: Connection, namespace: string): Promise<number | undefined> {
  const description = await connection.workflowService.describeNamespace({ namespace });
  const ttl = description.config?.workflowExecutionRetentionTtl;
  return ttl ? tsToMs(ttl) : undefined;
}
