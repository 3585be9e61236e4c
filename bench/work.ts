/**
 * The tiny piece of work every system in the overhead scenarios does: the toolgate code tool, the
 * bare activities and the direct call all run exactly this function.
 */
import { createHash } from 'node:crypto';

/** Input of the shared work: what the benchmark's tool receives as arguments. */
export interface WorkInput {
  n: number;
  text: string;
}

/** Hashes the input: a few microseconds of real CPU, no I/O. */
export function benchWork(input: WorkInput): { n: number; digest: string } {
  return { n: input.n, digest: createHash('sha256').update(`${input.n}:${input.text}`).digest('hex') };
}
