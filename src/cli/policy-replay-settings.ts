/** The flags of `toolgate policy replay`, checked and turned into the settings of one replay; its exit codes and bounds. */
import { DEFAULT_EXAMPLES, MAX_EXAMPLES, parseFailOn, type ReplayKind } from '../policy/replay.js';
import { IDENTIFIER_PATTERN } from '../shared/index.js';
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
