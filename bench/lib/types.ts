/** The shape of results: one entry per scenario, rows per system, goals with their verdicts. */

/** One system measured in a scenario (toolgate, a baseline, a peer). */
export interface ResultRow {
  system: string;
  /** Latency percentiles in ms (absent for scenarios that measure rates or memory). */
  p50?: number;
  p95?: number;
  p99?: number;
  /** Operations per second (or the scenario's own rate unit). */
  throughput?: number;
  throughputUnit?: string;
  /** The row's primary metric divided by the baseline's, measured in the same run. */
  ratio?: number;
  /** Anything else worth showing in the table. */
  note?: string;
  /** Raw extra numbers for the JSON. */
  extra?: Record<string, unknown>;
}

/** One goal of the issue and whether this run met it. */
export interface GoalResult {
  goal: string;
  value: number;
  limit: number;
  met: boolean;
}

/** A scenario's results. */
export interface ScenarioResult {
  id: number;
  name: string;
  /** The baseline the ratios are relative to. */
  baseline: string;
  /** What the ratio column compares. */
  ratioOf: string;
  rows: ResultRow[];
  goals: GoalResult[];
  notes: string[];
  durationMs: number;
}

/** How big each scenario runs. */
export interface BenchSizes {
  name: 'full' | 'tiny';
  overhead: { warmup: number; iterations: number };
  approval: { warmup: number; iterations: number };
  throughput: { stepSeconds: number; startRate: number; factor: number; maxSteps: number; drainSeconds: number; refineSteps: number };
  policy: { sizes: number[]; decisions: number; maxSecondsPerEngine: number };
  pending: { n: number; maxCachedWorkflows: number; checkpoints: number; concurrency: number; budgetSeconds: number };
  /** Scenario 6: synthetic records, and at most `realRecords` real ones built from the server's closed requests. */
  audit: { records: number; realRecords: number };
  /**
   * Scenario 7: `n` pending requests, `eligible` of them (at most one page of 50) for the measured
   * approver; created `concurrency` at once within `budgetSeconds`; `iterations` measured listings
   * per system after `warmup`; the old way (a query per workflow) `oldIterations` times within `oldBudgetSeconds`.
   */
  listing: {
    n: number;
    eligible: number;
    concurrency: number;
    warmup: number;
    iterations: number;
    budgetSeconds: number;
    oldIterations: number;
    oldBudgetSeconds: number;
  };
}

/** Checks `value` against `limit` with `op` and names the goal. */
export function goal(name: string, value: number, op: '<=' | '<' | '>=', limit: number): GoalResult {
  const met = Number.isFinite(value) && (op === '<=' ? value <= limit : op === '<' ? value < limit : value >= limit);
  return { goal: `${name} ${op} ${limit}`, value, limit, met };
}
