/**
 * Rate limits from policy (`limits:`), enforced when a request is evaluated, with counters kept
 * by `rate-limiter-flexible` in a store: PostgreSQL shared by every worker of a deployment (so a
 * limit holds however many workers and API replicas run), or the worker's own memory for
 * `npm start` / `toolgate dev` (one process).
 *
 * Semantics (the library's fixed windows): a limit `rate: count/window` with `burst` (default
 * `count`) allows `burst` requests per scope in a window of `window × burst / count`, the window
 * starting with the scope's first request in it. With the default burst that is exactly `count`
 * per `window`; a larger burst lets that many through at once but keeps the sustained rate at
 * `count` per `window` (the window grows with it), a smaller one spreads them (`10/1m` with
 * burst 2 is 2 per 12 s). As with any fixed window, up to twice the allowance can pass within a
 * short span straddling the end of one window and the start of the next.
 */
import { createHash } from 'node:crypto';
import { msToNumber } from '@temporalio/common';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Pool } from 'pg';
import type { Risk, ToolRequest } from '../shared/index.js';
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';

/** A compiled rate limit. */
export interface RateLimitRule {
  name: string;
  per: 'actor' | 'tenant' | 'tool' | 'actor_tool';
  /** Requests allowed per window. */
  count: number;
  windowMs: number;
  /** How many may come at once (see the module comment for how it shapes the window). @default count */
  burst: number;
  tools?: readonly string[];
  risk?: readonly Risk[];
}

/** Parses `"20/1m"` into a count and a window; throws `RangeError` with what was expected. */
export function parseRate(rate: string): { count: number; windowMs: number } {
  const [countText, windowText] = rate.split('/');
  const count = Number(countText);
  const windowMs = msToNumber(/^\d+$/.test(windowText ?? '') ? `${windowText}ms` : (windowText as string));
  if (!Number.isInteger(count) || count < 1) throw new RangeError('the count must be a whole number of at least 1');
  if (!Number.isFinite(windowMs) || windowMs < 1) throw new RangeError('the window must be a positive duration such as 1m');
  return { count, windowMs };
}

/** A limit that refused a request, and when to try again. */
export interface RateLimited {
  rule: RateLimitRule;
  /** The scope, readable: `tenant/actor`, `tenant`, `tenant/tool` or `tenant/actor/tool`. */
  key: string;
  retryAfterMs: number;
}

/**
 * Where rate-limit counters live. Every worker given the same store enforces the same counters:
 * a limit is a limit of the deployment, not of one process.
 */
export interface RateLimitStore {
  /**
   * Takes one request from every limit in `rules` that applies to `request` (its tool and its
   * `risk` after rules). Resolves with the limit that refused it, or undefined when every one had
   * room. When one refuses, what this call took from the others is given back (see
   * {@link RateLimits.take} for the exact guarantee). Rejects with {@link RateLimitStoreError}
   * when the store cannot be reached: nothing is ever allowed uncounted.
   */
  take(rules: readonly RateLimitRule[], request: ToolRequest, risk: Risk): Promise<RateLimited | undefined>;
  /** Releases the store's connections. */
  close(): Promise<void>;
}

/** The rate-limit store could not answer (PostgreSQL down, unreachable, or refusing): the request must not pass uncounted. */
export class RateLimitStoreError extends ToolgateError {
  override readonly name = 'RateLimitStoreError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('rate_limit_store_unavailable', message, options);
  }
}

/** The table the PostgreSQL store keeps its counters in (created by the library on first use). */
export const RATE_LIMIT_TABLE = 'toolgate_rate_limits';

/** How many scopes the memory store keeps counters for; beyond that the least recently used is forgotten. */
export const MEMORY_STORE_MAX_KEYS = 100_000;

/** The PostgreSQL store's default bound on connecting and on each query (`PostgresRateLimitOptions.timeoutMs`). */
export const DEFAULT_STORE_TIMEOUT_MS = 2_000;

/** What a give-back may take beyond the store's own waits: the event loop, the clock read, the round trip. */
const REFUND_SLACK_MS = 1_000;

/**
 * A counter whose window ends sooner than this is not given back when another limit refuses: a
 * refund that reached the store after the window ended would credit the next window (the
 * library's reward on an expired key starts a new window at -1: one request more than the limit).
 * Keeping the request counted instead only ever refuses more, never allows more.
 *
 * The library fixes `Date.now()` when it builds the reward's query, and on PostgreSQL the query
 * may then wait up to `timeoutMs` for a pool connection and up to `timeoutMs` more to run: the
 * margin is derived from that bound (both waits plus slack), so raising the timeout raises the
 * margin with it. The memory store has no waits: the slack alone.
 */
export function refundMarginMs(storeTimeoutMs: number): number {
  return 2 * storeTimeoutMs + REFUND_SLACK_MS;
}

/**
 * Node's timers cap at 2^31-1 ms (about 24.8 days), and the library's memory store expires each
 * key with a timer: a longer timer would fire at once and drop the counter. The memory store
 * therefore counts a longer window as this long (documented in docs/policy.md, "Rate limits"); PostgreSQL stores
 * expiries and has no such cap.
 */
const MEMORY_MAX_WINDOW_MS = 2 ** 31 - 1;

/** What the library needs for one limit: `points` per window of `windowMs`. */
export function libraryWindow(rule: Pick<RateLimitRule, 'count' | 'windowMs' | 'burst'>): { points: number; windowMs: number } {
  return { points: rule.burst, windowMs: wholeMs((rule.windowMs * rule.burst) / rule.count) };
}

/**
 * The nearest whole number of milliseconds at or above `ms` that survives the library's seconds:
 * it takes the duration in seconds and multiplies by 1000, and PostgreSQL stores the expiry as a
 * bigint, which refuses `1001.0000000000001`. At most a few ms are added.
 */
function wholeMs(ms: number): number {
  let whole = Math.max(1, Math.round(ms));
  while ((whole / 1000) * 1000 !== whole) whole += 1;
  return whole;
}

/** The subset of a library limiter this module uses. */
interface Counter {
  consume(key: string, points?: number): Promise<RateLimiterRes>;
  reward(key: string, points?: number): Promise<RateLimiterRes>;
  delete(key: string): Promise<boolean>;
}

/** A store's counters: one library limiter per distinct (points, window). */
interface Backend {
  /** How close to its window's end a counter is no longer given back (see {@link refundMarginMs}). */
  readonly refundMarginMs: number;
  counter(points: number, windowMs: number): Promise<Counter>;
  /** Called before each consume (the memory store keeps its bound with it). */
  touch?(counter: Counter, key: string): void;
  close(): Promise<void>;
}

/** Options of the PostgreSQL store. */
export interface PostgresRateLimitOptions {
  /** @default RATE_LIMIT_TABLE */
  tableName?: string;
  /** Connections per process. @default 5 */
  poolSize?: number;
  /**
   * Bound on connecting and on each query, so an unreachable database fails an evaluation quickly
   * (and it is retried). Also sets how close to a window's end a give-back is skipped
   * ({@link refundMarginMs}). @default DEFAULT_STORE_TIMEOUT_MS
   */
  timeoutMs?: number;
}

/**
 * The rate limits of a deployment, counted by `rate-limiter-flexible` in memory or in PostgreSQL
 * (see the module comment for the semantics). Build it with {@link RateLimits.memory},
 * {@link RateLimits.postgres} or {@link RateLimits.fromStore}.
 */
export class RateLimits implements RateLimitStore {
  private constructor(
    private readonly backend: Backend,
    /** Where the counters are, for logs: `memory` or `postgresql <host:port/database>`, never credentials. */
    readonly description: string,
  ) {}

  /** Counters in this process's memory, at most `maxKeys` scopes (least recently used forgotten first). */
  static memory(options: { maxKeys?: number } = {}): RateLimits {
    return new RateLimits(new MemoryBackend(options.maxKeys ?? MEMORY_STORE_MAX_KEYS), 'memory');
  }

  /**
   * Counters in PostgreSQL at `url` (`postgres://user:password@host:port/database`), in table
   * {@link RATE_LIMIT_TABLE}, created on first use. Nothing connects until the first request, so
   * a worker starts while the database is down and denies (after retries) until it is back.
   */
  static postgres(url: string, options: PostgresRateLimitOptions = {}): RateLimits {
    return new RateLimits(new PostgresBackend(url, options), `postgresql ${safeLocation(url)}`);
  }

  /** The store `TOOLGATE_RATE_LIMIT_STORE` names: `memory` or a `postgres://` / `postgresql://` URL. */
  /** How close to its window's end a counter taken by a refused request is kept rather than given back (see {@link refundMarginMs}). */
  get refundMarginMs(): number {
    return this.backend.refundMarginMs;
  }

  static fromStore(store: string, options: PostgresRateLimitOptions = {}): RateLimits {
    if (store === 'memory') return RateLimits.memory();
    if (/^postgres(ql)?:\/\//.test(store)) return RateLimits.postgres(store, options);
    throw new RangeError('the rate-limit store must be memory or a postgres:// URL');
  }

  /**
   * Takes one request from each applicable limit, in policy order, stopping at the first that
   * refuses. The library counts each limit atomically (one SQL upsert per counter in PostgreSQL),
   * but there is no transaction across limits: the limits taken before the refusing one (and the
   * refusing one's own overshoot) are given back with the library's `reward`. Between the take
   * and the give-back a concurrent request may see those counters one higher and be refused;
   * no request is ever allowed beyond a limit. A give-back is skipped when its window is about
   * to end (see {@link refundMarginMs}), and one that fails is dropped: both only count too much.
   */
  async take(rules: readonly RateLimitRule[], request: ToolRequest, risk: Risk): Promise<RateLimited | undefined> {
    const applicable = rules.filter((rule) => (!rule.tools || rule.tools.includes(request.tool)) && (!rule.risk || rule.risk.includes(risk)));
    const taken: Taken[] = [];
    try {
      for (const rule of applicable) {
        const { points, windowMs } = libraryWindow(rule);
        const counter = await this.backend.counter(points, windowMs);
        const key = storeKey(rule, request);
        this.backend.touch?.(counter, key);
        let res: RateLimiterRes;
        try {
          res = await counter.consume(key);
        } catch (refusal) {
          if (!(refusal instanceof RateLimiterRes)) throw refusal;
          await refund([...taken, { counter, key, endsAt: Date.now() + refusal.msBeforeNext }], this.backend.refundMarginMs);
          return { rule, key: scopeKey(rule, request), retryAfterMs: Math.max(1, refusal.msBeforeNext) };
        }
        taken.push({ counter, key, endsAt: Date.now() + res.msBeforeNext });
      }
      return undefined;
    } catch (err) {
      await refund(taken, this.backend.refundMarginMs);
      if (err instanceof RateLimitStoreError) throw err;
      throw new RateLimitStoreError(`the rate-limit store (${this.description}) did not answer: ${errorText(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.backend.close();
  }
}

interface Taken {
  counter: Counter;
  key: string;
  endsAt: number;
}

/** Gives back one request to each counter whose window ends later than `marginMs` from now; best effort. */
async function refund(taken: readonly Taken[], marginMs: number): Promise<void> {
  const now = Date.now();
  await Promise.all(taken.filter((t) => t.endsAt - now > marginMs).map((t) => t.counter.reward(t.key).catch(() => undefined)));
}

/** The readable scope of a limit for a request; the tenant is always part of it. */
function scopeKey(rule: RateLimitRule, request: ToolRequest): string {
  switch (rule.per) {
    case 'actor':
      return `${request.tenant}/${request.actor.id}`;
    case 'tenant':
      return request.tenant;
    case 'tool':
      return `${request.tenant}/${request.tool}`;
    case 'actor_tool':
      return `${request.tenant}/${request.actor.id}/${request.tool}`;
  }
}

/**
 * The counter's key in the store: the tenant, then a SHA-256 of the limit (name and numbers, so a
 * changed limit starts fresh counters rather than inheriting a window of another length) and the
 * scope's parts as a JSON array, so no choice of ids can make two scopes or two tenants share a
 * key (`a/b` + `c` vs `a` + `b/c`), and the key fits the table's varchar(255) whatever the ids.
 */
function storeKey(rule: RateLimitRule, request: ToolRequest): string {
  const actor = rule.per === 'actor' || rule.per === 'actor_tool' ? request.actor.id : null;
  const tool = rule.per === 'tool' || rule.per === 'actor_tool' ? request.tool : null;
  const identity = JSON.stringify([rule.name, rule.per, rule.count, rule.windowMs, rule.burst, request.tenant, actor, tool]);
  return `${request.tenant}:${createHash('sha256').update(identity).digest('base64url')}`;
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message || err.name;
  }
  return String(err);
}

/** `host:port/database` of a PostgreSQL URL: what logs may say about it (the URL itself holds a password). */
function safeLocation(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.host}${parsed.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** The memory store: one `RateLimiterMemory` per (points, window), and a bound on the scopes it remembers. */
class MemoryBackend implements Backend {
  /** Nothing waits for a connection or a query here: the slack alone. */
  readonly refundMarginMs = refundMarginMs(0);
  private readonly counters = new Map<string, RateLimiterMemory>();
  /** Scopes by recent use (a Map iterates in insertion order; a touched key is moved to the end). */
  private readonly keys = new Map<string, Counter>();

  constructor(private readonly maxKeys: number) {}

  counter(points: number, windowMs: number): Promise<Counter> {
    const ms = Math.min(windowMs, MEMORY_MAX_WINDOW_MS - (MEMORY_MAX_WINDOW_MS % 1000));
    const id = `${points}/${ms}`;
    let counter = this.counters.get(id);
    if (!counter) {
      counter = new RateLimiterMemory({ points, duration: ms / 1000, keyPrefix: 'toolgate' });
      this.counters.set(id, counter);
    }
    return Promise.resolve(counter);
  }

  /**
   * Keeps at most `maxKeys` scopes: the least recently used one is deleted from its limiter. A
   * forgotten scope starts again with a full allowance, as after a restart; the bound only bites
   * with more live scopes than that, which needs that many distinct agents or tools in a window.
   */
  touch(counter: Counter, key: string): void {
    this.keys.delete(key);
    this.keys.set(key, counter);
    while (this.keys.size > this.maxKeys) {
      const [oldest, owner] = this.keys.entries().next().value as [string, Counter];
      this.keys.delete(oldest);
      void owner.delete(oldest);
    }
  }

  close(): Promise<void> {
    this.keys.clear();
    this.counters.clear();
    return Promise.resolve();
  }
}

/** The PostgreSQL store: a `pg` pool, the library's table, one `RateLimiterPostgres` per (points, window). */
class PostgresBackend implements Backend {
  private pool: Promise<Pool> | undefined;
  private table: Promise<void> | undefined;
  private readonly counters = new Map<string, RateLimiterPostgres>();
  private readonly tableName: string;
  private readonly timeoutMs: number;
  readonly refundMarginMs: number;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly options: PostgresRateLimitOptions,
  ) {
    this.tableName = options.tableName ?? RATE_LIMIT_TABLE;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
    // The same bound the pool gets below: a give-back waits at most this for a connection, and this for its query.
    this.refundMarginMs = refundMarginMs(this.timeoutMs);
  }

  /** The pool, made on first use (`pg` is loaded only by processes that count in PostgreSQL). */
  private connect(): Promise<Pool> {
    this.pool ??= import('pg').then(({ default: pg }) => {
      const timeoutMs = this.timeoutMs;
      const pool = new pg.Pool({
        connectionString: this.url,
        max: this.options.poolSize ?? 5,
        connectionTimeoutMillis: timeoutMs,
        query_timeout: timeoutMs,
        idleTimeoutMillis: 30_000,
        application_name: 'toolgate-rate-limits',
      });
      // An idle connection that breaks (the server restarts) is reported here; without a listener
      // it would crash the worker. The pool drops it, and the next query connects again or fails.
      pool.on('error', () => undefined);
      return pool;
    });
    return this.pool;
  }

  /** Creates the table once per process, through the library (`CREATE TABLE IF NOT EXISTS`); a failure is retried on the next request. */
  private ensureTable(pool: Pool): Promise<void> {
    this.table ??= new Promise<void>((resolve, reject) => {
      // This instance also deletes rows that expired over an hour ago, every 5 minutes (unref'd timer).
      new RateLimiterPostgres(
        { storeClient: pool, storeType: 'pool', tableName: this.tableName, points: 1, duration: 1, clearExpiredByTimeout: true },
        (err?: Error) => (err ? reject(err) : resolve()),
      );
    }).catch((err: unknown) => {
      this.table = undefined;
      throw err;
    });
    return this.table;
  }

  async counter(points: number, windowMs: number): Promise<Counter> {
    if (this.closed) throw new RateLimitStoreError('the rate-limit store is closed');
    const pool = await this.connect();
    await this.ensureTable(pool);
    const id = `${points}/${windowMs}`;
    let counter = this.counters.get(id);
    if (!counter) {
      counter = new RateLimiterPostgres({
        storeClient: pool,
        storeType: 'pool',
        tableName: this.tableName,
        tableCreated: true,
        clearExpiredByTimeout: false,
        points,
        duration: windowMs / 1000,
        keyPrefix: 'toolgate',
      });
      this.counters.set(id, counter);
    }
    return counter;
  }

  async close(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = undefined;
    this.counters.clear();
    if (pool) await (await pool).end();
  }
}
