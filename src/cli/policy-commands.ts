/**
 * `toolgate policy replay`: the what-if of a policy change. Past requests, found through
 * visibility and read from their histories, are decided again under candidate policy files and
 * the differences counted (src/policy/replay.ts). Read-only: it lists workflows and reads
 * histories, and nothing else — it never starts, signals, updates or queries a workflow, never
 * executes a tool and never writes to a history.
 */
import { Client, Connection, WorkflowNotFoundError, isGrpcServiceError } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { Command } from 'commander';
import { dataConverterFor, loadKeyring } from '../codec/index.js';
import { loadConfig } from '../config.js';
import { PolicyLoadError, loadPolicy, type LoadedPolicy } from '../policy/index.js';
import {
  DEFAULT_EXAMPLES,
  MAX_EXAMPLES,
  formatReplayReport,
  parseFailOn,
  recordedFromHistory,
  replayDecisions,
  type ReplayEntry,
  type ReplayKind,
  type ReplayReport,
  type ReplaySource,
} from '../policy/replay.js';
import { IDENTIFIER_PATTERN, parseRequestWorkflowId } from '../shared/index.js';
import { exportQuery } from './audit-commands.js';
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';

/** Exit codes of `policy replay`. */
export const REPLAY_EXIT = { ok: 0, forbidden: 1, error: 2 } as const;

/** Histories read at once unless told otherwise. */
export const DEFAULT_REPLAY_CONCURRENCY = 8;
/** Most histories read at once. */
export const MAX_REPLAY_CONCURRENCY = 64;
/**
 * Events asked for per history page. The first decision is among a history's first dozen events
 * (start, trust anchors, policy), so one small page usually holds all a replay needs and the rest
 * of a long history (votes, edits, execution) is never transferred.
 */
export const HISTORY_PAGE_EVENTS = 32;

/** A usage error: a flag's value is not what it must be. Exit code 2. */
export class ReplayUsageError extends ToolgateError {
  override readonly name = 'ReplayUsageError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('invalid_usage', message, options);
  }
}

const UNITS_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/**
 * A point in time for `--since`/`--until`: a duration back from `now` (`7d`, `12h`, `30m`, `90s`,
 * `2w`) or an ISO 8601 date or time. Throws a usage error naming the flag.
 */
export function parseReplayTime(flag: string, value: string, now: number): string {
  const relative = /^(\d{1,6})([smhdw])$/.exec(value.trim());
  if (relative) return new Date(now - Number(relative[1]) * UNITS_MS[relative[2] as keyof typeof UNITS_MS]).toISOString();
  // Only date-shaped text: Date.parse accepts "1" or "March" too.
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value.trim()) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms))
    throw new ReplayUsageError(
      `${flag} must be a duration back from now (7d, 12h, 30m, 90s, 2w) or an ISO 8601 time such as 2026-01-31 or 2026-01-31T12:00:00Z; got "${value}"`,
    );
  return new Date(ms).toISOString();
}

function wholeNumber(flag: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ReplayUsageError(`${flag} must be a whole number from ${min} to ${max}; got "${value}"`);
  return n;
}

/** The options of `policy replay` as commander passes them (strings, validated here). */
export interface ReplayCliOptions {
  since?: string;
  until?: string;
  tenant?: string;
  failOn?: string;
  examples?: string;
  concurrency?: string;
  json?: boolean;
}

/** The validated settings of one replay. */
export interface ReplaySettings {
  since: string;
  until?: string;
  tenant?: string;
  failOn: ReplayKind[];
  examples: number;
  concurrency: number;
  json: boolean;
}

/** Validates every option; a usage error names the flag and what it expects. */
export function replaySettings(options: ReplayCliOptions, now: number): ReplaySettings {
  const since = parseReplayTime('--since', options.since ?? '7d', now);
  const until = options.until === undefined ? undefined : parseReplayTime('--until', options.until, now);
  if (until !== undefined && Date.parse(until) <= Date.parse(since)) throw new ReplayUsageError(`--until (${until}) must be after --since (${since})`);
  if (Date.parse(since) > now) throw new ReplayUsageError(`--since (${since}) is in the future: no request started after it yet`);
  if (options.tenant !== undefined && !IDENTIFIER_PATTERN.test(options.tenant)) {
    throw new ReplayUsageError(`--tenant must be a tenant id (1-128 letters, digits and . _ : @ -); got "${options.tenant}"`);
  }
  let failOn: ReplayKind[] = [];
  if (options.failOn !== undefined) {
    try {
      failOn = parseFailOn(options.failOn);
    } catch (err) {
      throw new ReplayUsageError((err as Error).message);
    }
  }
  return {
    since,
    ...(until === undefined ? {} : { until }),
    ...(options.tenant === undefined ? {} : { tenant: options.tenant }),
    failOn,
    examples: options.examples === undefined ? DEFAULT_EXAMPLES : wholeNumber('--examples', options.examples, 0, MAX_EXAMPLES),
    concurrency: options.concurrency === undefined ? DEFAULT_REPLAY_CONCURRENCY : wholeNumber('--concurrency', options.concurrency, 1, MAX_REPLAY_CONCURRENCY),
    json: options.json === true,
  };
}

/**
 * Maps `fn` over `source` with at most `concurrency` calls in flight, yielding results in source
 * order (so "the first examples" are the same on every run). Holds at most `concurrency` items;
 * pulls the next item only when there is room, so a slow consumer slows the listing too. The
 * first failure stops it (the calls still in flight are awaited, never left to reject unseen).
 */
export async function* mapOrdered<T, R>(source: AsyncIterable<T>, concurrency: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  type Settled = { ok: true; value: R } | { ok: false; error: unknown };
  const window: Promise<Settled>[] = [];
  const iterator = source[Symbol.asyncIterator]();
  let exhausted = false;
  try {
    for (;;) {
      while (!exhausted && window.length < concurrency) {
        const next = await iterator.next();
        if (next.done) exhausted = true;
        else
          window.push(
            fn(next.value).then(
              (value) => ({ ok: true, value }),
              (error: unknown) => ({ ok: false, error }),
            ),
          );
      }
      const head = window.shift();
      if (!head) return;
      const settled = await head;
      if (!settled.ok) throw settled.error;
      yield settled.value;
    }
  } finally {
    await Promise.all(window);
    if (!exhausted) await iterator.return?.();
  }
}

const GRPC_NOT_FOUND = 5;

/** Whether reading a history failed because the workflow (its history) no longer exists. */
function isGone(err: unknown): boolean {
  // Deleted by retention between the listing and the read: gRPC status NOT_FOUND (5; @grpc/grpc-js
  // is not a direct dependency, so its enum is not imported).
  return err instanceof WorkflowNotFoundError || (isGrpcServiceError(err) && (err.code as number) === GRPC_NOT_FOUND);
}

/**
 * The recorded request of one workflow: its history read page by page, only as far as the first
 * policy decision (see {@link HISTORY_PAGE_EVENTS}).
 */
export async function readRecordedRequest(client: Client, execution: { workflowId: string; runId?: string; startTime?: Date }): Promise<ReplayEntry> {
  const { workflowId, runId } = execution;
  const namespace = client.options.namespace;
  async function* events(): AsyncGenerator<temporal.api.history.v1.IHistoryEvent> {
    let nextPageToken: Uint8Array | undefined;
    do {
      const response = await client.workflowService.getWorkflowExecutionHistory({
        namespace,
        execution: { workflowId, ...(runId ? { runId } : {}) },
        maximumPageSize: HISTORY_PAGE_EVENTS,
        ...(nextPageToken ? { nextPageToken } : {}),
      });
      yield* response.history?.events ?? [];
      nextPageToken = response.nextPageToken && response.nextPageToken.length > 0 ? response.nextPageToken : undefined;
    } while (nextPageToken);
  }
  try {
    return await recordedFromHistory(events(), client.options.loadedDataConverter, { workflowId, ...(runId ? { runId } : {}) });
  } catch (err) {
    if (!isGone(err)) throw err;
    return {
      workflowId,
      ...(runId ? { runId } : {}),
      startedAt: execution.startTime?.toISOString() ?? '',
      unreadable: { code: 'history_gone', message: 'the history was deleted (retention) after the request was listed' },
    };
  }
}

/**
 * The requests of a time window (by start time) through visibility, running ones included: a
 * running request's first decision is already in its history (one still being evaluated counts as
 * `not_decided`). Histories are read `concurrency` at a time, in listing order. Needs a client
 * with the codec keys of the tenants replayed.
 */
export function temporalReplaySource(client: Client, settings: Pick<ReplaySettings, 'since' | 'until' | 'tenant' | 'concurrency'>): ReplaySource {
  const query = exportQuery(settings);
  async function* listed() {
    for await (const execution of client.workflow.list({ query, pageSize: 500 })) {
      const parsed = parseRequestWorkflowId(execution.workflowId);
      // Only toolgate request ids (as `audit export`); and a tenant's requests by their id too,
      // since the starter of an unverified workflow chose its search attributes.
      if (!parsed || (settings.tenant !== undefined && parsed.tenant !== undefined && parsed.tenant !== settings.tenant)) continue;
      yield { workflowId: execution.workflowId, runId: execution.runId, startTime: execution.startTime };
    }
  }
  return {
    count: async () => (await client.workflow.count(query)).count,
    entries: () => mapOrdered(listed(), settings.concurrency, (execution) => readRecordedRequest(client, execution)),
  };
}

/** Where progress goes: stderr, updated in place on a terminal. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Progress of a replay on stderr: one line rewritten in place on a terminal (at most ten times a
 * second), otherwise a line every `everyMs` (logs stay readable). Shows done/total, rate and ETA.
 */
export class ReplayProgress {
  private last = 0;
  private readonly started: number;
  private readonly everyMs: number;

  constructor(
    private readonly out: ProgressStream,
    private readonly total: number | undefined,
    private readonly clock: () => number = Date.now,
    everyMs?: number,
  ) {
    this.started = clock();
    // The first line too waits one interval: a short replay writes only its final line.
    this.last = this.started;
    this.everyMs = everyMs ?? (out.isTTY ? 100 : 5000);
  }

  /** The progress line for `done` entries at `now`. */
  line(done: number, now = this.clock()): string {
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = done / seconds;
    const total = this.total === undefined ? '' : `/${this.total}`;
    const percent = this.total ? ` (${Math.min(100, (100 * done) / this.total).toFixed(1)}%)` : '';
    const eta = this.total !== undefined && rate > 0 && done < this.total ? `, ETA ${duration(((this.total - done) / rate) * 1000)}` : '';
    return `policy replay: ${done}${total}${percent}, ${rate.toFixed(rate < 10 ? 1 : 0)}/s${eta}`;
  }

  /** Called after each entry; writes only when the interval has passed. */
  tick(done: number): void {
    const now = this.clock();
    if (now - this.last < this.everyMs) return;
    this.last = now;
    this.out.write(this.out.isTTY ? `\r\x1b[K${this.line(done, now)}` : `${this.line(done, now)}\n`);
  }

  /** The final line. */
  finish(done: number): void {
    const now = this.clock();
    this.out.write(`${this.out.isTTY ? '\r\x1b[K' : ''}${this.line(done, now)}, done in ${duration(now - this.started)}\n`);
  }
}

/** What a replay writes to and reads from; tests give a client and buffers. */
export interface ReplayIo {
  stdout: { write(text: string): unknown };
  stderr: ProgressStream;
  /** A client with the codec keys; without one, the command connects as the configuration says (TEMPORAL_ADDRESS, TOOLGATE_CODEC_KEYS…). */
  client?: Client;
  /** A source instead of visibility (tests, and the audit archive once it can be read as one). */
  source?: ReplaySource;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

/** The JSON document of `--json`: the report and what was replayed. */
export interface ReplayJson extends ReplayReport {
  window: { since: string; until?: string };
  tenant?: string;
  elapsedMs: number;
  ratePerSecond: number;
}

/**
 * Runs `policy replay` and returns its exit code: 0 no forbidden change, 1 forbidden changes
 * found, 2 a usage, policy, configuration or connection error (written to stderr).
 */
export async function runPolicyReplay(paths: string[], options: ReplayCliOptions, io: ReplayIo): Promise<number> {
  const now = io.now ?? Date.now;
  const fail = (message: string): number => {
    io.stderr.write(`toolgate policy replay: ${message}\n`);
    return REPLAY_EXIT.error;
  };
  let settings: ReplaySettings;
  try {
    settings = replaySettings(options, now());
  } catch (err) {
    if (err instanceof ReplayUsageError) return fail(err.message);
    throw err;
  }
  if (paths.length === 0) return fail('name at least one candidate policy file or directory');

  let candidate: LoadedPolicy;
  try {
    candidate = await loadPolicy(paths);
  } catch (err) {
    // The loader's own message: every issue with file, line, column and field.
    if (err instanceof PolicyLoadError) return fail(`the candidate ${err.message}`);
    throw err;
  }

  let client = io.client;
  let connection: Connection | undefined;
  if (!io.source && !client) {
    try {
      const config = loadConfig(io.env ?? process.env);
      const dataConverter = dataConverterFor(await loadKeyring({ stateDir: config.stateDir, env: io.env ?? process.env }));
      try {
        connection = await Connection.connect({ address: config.temporalAddress });
      } catch (err) {
        return fail(`cannot reach Temporal at ${config.temporalAddress}: ${(err as Error).message}`);
      }
      client = new Client({ connection, namespace: config.namespace, dataConverter });
    } catch (err) {
      return fail((err as Error).message);
    }
  }

  let done = 0;
  const started = now();
  try {
    const source = io.source ?? temporalReplaySource(client as Client, settings);
    let total: number | undefined;
    try {
      total = await source.count();
    } catch (err) {
      // Only progress needs the total (a visibility store without counting); if Temporal is
      // unreachable, the listing fails next and says so.
      io.stderr.write(`toolgate policy replay: cannot count the requests (${(err as Error).message}); progress without a total\n`);
    }
    const progress = new ReplayProgress(io.stderr, total, now);
    let report: ReplayReport;
    try {
      report = await replayDecisions(source.entries(), candidate, {
        examples: settings.examples,
        failOn: settings.failOn,
        onProgress: (n) => {
          done = n;
          progress.tick(n);
        },
      });
    } catch (err) {
      return fail(`stopped after ${done} request(s): ${(err as Error).message}`);
    }
    progress.finish(report.total);
    const elapsedMs = now() - started;
    if (settings.json) {
      const json: ReplayJson = {
        window: { since: settings.since, ...(settings.until ? { until: settings.until } : {}) },
        ...(settings.tenant ? { tenant: settings.tenant } : {}),
        ...report,
        elapsedMs,
        ratePerSecond: elapsedMs > 0 ? Math.round((report.total * 1000) / elapsedMs) : report.total,
      };
      io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    } else {
      io.stdout.write(
        formatReplayReport(report, {
          window: `started ${settings.since} – ${settings.until ?? 'now'}`,
          ...(settings.tenant ? { tenant: settings.tenant } : {}),
        }),
      );
    }
    return report.forbidden > 0 ? REPLAY_EXIT.forbidden : REPLAY_EXIT.ok;
  } finally {
    await connection?.close();
  }
}

/** Adds `replay` to the `policy` command group. */
export function registerPolicyCommands(policy: Command): void {
  policy
    .command('replay')
    .description(
      'Decide past requests again under candidate policy files and report what would change (read-only: never executes a tool, never writes to a history). ' +
        'Exit 0: no forbidden change; 1: forbidden changes (--fail-on); 2: usage, policy or connection error',
    )
    .argument('<paths...>', 'candidate policy files or directories')
    .option('--since <time>', 'requests started at or after this: a duration back from now (7d, 12h, 30m) or an ISO 8601 time', '7d')
    .option('--until <time>', 'requests started before this (same forms; default: now)')
    .option('--tenant <tenant>', 'only this tenant')
    .option(
      '--fail-on <kinds>',
      'exit 1 when any request falls in these (comma-separated): allow->approve, allow->deny, approve->deny, approve->allow, deny->allow, deny->approve, plan, risk, not_comparable; groups tightening, widening, allow-widening, any',
    )
    .option('--examples <k>', `examples shown per kind (0-${MAX_EXAMPLES})`, String(DEFAULT_EXAMPLES))
    .option('--concurrency <n>', `histories read at once (1-${MAX_REPLAY_CONCURRENCY})`, String(DEFAULT_REPLAY_CONCURRENCY))
    .option('--json', 'print the report as JSON')
    // Usage errors commander finds itself (unknown flag, no path) exit 2 like ours; help exits 0.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : REPLAY_EXIT.error))
    .action(async (paths: string[], options: ReplayCliOptions) => {
      try {
        process.exitCode = await runPolicyReplay(paths, options, { stdout: process.stdout, stderr: process.stderr });
      } catch (err) {
        // Whatever went wrong is not a finding: never exit 1, which means "forbidden changes".
        process.stderr.write(`toolgate policy replay: ${(err as Error).message}
`);
        process.exitCode = REPLAY_EXIT.error;
      }
    });
}
