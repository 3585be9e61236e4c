/**
 * Closed-loop rounds over several systems, interleaved: each round runs every system once, in an
 * order rotated by one each round so no system always runs right after another, and drift (other
 * work on the machine, the server's caches) hits them alike. Warm-up rounds run but are not kept.
 */
import { status } from './progress.js';
import { since, summarize, type LatencySummary } from './stats.js';
import type { ResultRow } from './types.js';

/**
 * Runs `warmup + iterations` rounds of `measure(system, round)` over `systems`, showing progress
 * as `label`, and returns each system's kept measurements, in `systems`' order.
 */
export async function interleavedRounds<S, M>(
  label: string,
  systems: readonly S[],
  counts: { warmup: number; iterations: number },
  measure: (system: S, round: number) => Promise<M>,
): Promise<M[][]> {
  const kept = systems.map(() => [] as M[]);
  const total = counts.warmup + counts.iterations;
  for (let round = 0; round < total; round++) {
    status(`${label}: round ${round + 1}/${total}`);
    for (let s = 0; s < systems.length; s++) {
      const index = (s + round) % systems.length;
      const system = systems[index] as S;
      const value = await measure(system, round);
      if (round >= counts.warmup) kept[index]?.push(value);
    }
  }
  return kept;
}

/** {@link interleavedRounds} of systems that make one call per round, each call timed in ms. */
export function timedRounds<S extends { call(round: number): Promise<unknown> }>(
  label: string,
  systems: readonly S[],
  counts: { warmup: number; iterations: number },
): Promise<number[][]> {
  return interleavedRounds(label, systems, counts, async (system, round) => {
    const t0 = performance.now();
    await system.call(round);
    return since(t0);
  });
}

/** Each system's latency summary; calls ran one at a time, so its throughput is calls over their summed time. */
export function summariesOf(samples: number[][]): LatencySummary[] {
  return samples.map((kept) =>
    summarize(
      kept,
      kept.reduce((a, b) => a + b, 0),
    ),
  );
}

/** The latency and throughput columns of a result row. */
export function latencyColumns(s: LatencySummary, throughputUnit: string): Pick<ResultRow, 'p50' | 'p95' | 'p99' | 'throughput' | 'throughputUnit'> {
  return { p50: s.p50, p95: s.p95, p99: s.p99, throughput: s.throughput, throughputUnit };
}
