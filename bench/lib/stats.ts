/** Latency samples and their summary: percentiles, throughput and ratios to a baseline. */

/** A latency distribution in milliseconds, with the throughput it was measured at. */
export interface LatencySummary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
  /** Completed operations per second over the measured wall time. */
  throughput: number;
}

/** The value at quantile `q` (0..1) of sorted samples, nearest-rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** Summarises latency samples (ms) taken over `wallMs` of wall time. */
export function summarize(samples: readonly number[], wallMs: number): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    p50: round(quantile(sorted, 0.5)),
    p95: round(quantile(sorted, 0.95)),
    p99: round(quantile(sorted, 0.99)),
    mean: round(sorted.length ? sum / sorted.length : Number.NaN),
    max: round(sorted[sorted.length - 1] ?? Number.NaN),
    throughput: round(wallMs > 0 ? (sorted.length * 1000) / wallMs : Number.NaN),
  };
}

/** `value / baseline`, rounded to two decimals (NaN when the baseline is zero or missing). */
export function ratio(value: number, baseline: number): number {
  return baseline > 0 && Number.isFinite(value) ? Math.round((value / baseline) * 100) / 100 : Number.NaN;
}

/** Rounds to four significant decimals, enough for ms latencies down to 0.1 µs. */
export function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  return Math.round(value * 10_000) / 10_000;
}

/** Milliseconds since `start` (a `performance.now()` reading). */
export function since(start: number): number {
  return performance.now() - start;
}
