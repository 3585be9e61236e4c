/**
 * `toolgate policy replay`: the what-if of a policy change. Past requests, found through
 * visibility and read from their histories, are decided again under candidate policy files and
 * the differences counted (src/policy/replay.ts). Read-only: it lists workflows and reads
 * histories, and nothing else — it never starts, signals, updates or queries a workflow, never
 * executes a tool and never writes to a history.
 */
import { Client, Connection } from '@temporalio/client';
import type { Command } from 'commander';
import { dataConverterFor, loadKeyring } from '../codec/index.js';
import { loadConfig } from '../config.js';
import { PolicyLoadError, loadPolicy, type LoadedPolicy } from '../policy/index.js';
import { DEFAULT_EXAMPLES, MAX_EXAMPLES, formatReplayReport, replayDecisions, type ReplayReport, type ReplaySource } from '../policy/replay.js';
import {
  DEFAULT_REPLAY_CONCURRENCY,
  MAX_REPLAY_CONCURRENCY,
  REPLAY_EXIT,
  ReplayUsageError,
  replaySettings,
  type ReplayCliOptions,
  type ReplaySettings,
} from './policy-replay-settings.js';
import { temporalReplaySource } from './policy-replay-source.js';

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
