/**
 * Closed-loop rounds over several systems, interleaved: each round runs every system once, in an
 * order rotated by one each round so no system always runs right after another, and drift (other
 * work on the machine, the server's caches) hits them alike. Warm-up rounds run but are not kept.
 */
import { status } from './progress.js';

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
