/**
 * Per-request lanes for decisions: Temporal takes only a few updates in flight per workflow
 * (10 by default), so a burst of decisions on one request waits here, a few at a time, instead
 * of being refused by the server. A lane's queue is bounded: beyond it, callers are told to
 * retry rather than piling up without end.
 */
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';

/** A lane refused a caller because its queue is full. */
export class LaneFullError extends ToolgateError {
  override readonly name = 'LaneFullError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('busy', message, options);
  }
}

/** Runs at most `concurrency` tasks per key at once, queueing up to `maxQueued` more per key. */
export class Lanes {
  private readonly lanes = new Map<string, { active: number; waiting: (() => void)[] }>();

  constructor(
    private readonly concurrency: number,
    private readonly maxQueued: number,
  ) {}

  /** Runs `task` in the lane of `key` when a place is free; throws `LaneFullError` when the queue is full. */
  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { active: 0, waiting: [] };
      this.lanes.set(key, lane);
    }
    if (lane.active >= this.concurrency) {
      if (lane.waiting.length >= this.maxQueued) throw new LaneFullError(`more than ${this.maxQueued} decisions are waiting for this request`);
      await new Promise<void>((resolve) => lane.waiting.push(resolve));
    } else {
      lane.active += 1;
    }
    try {
      return await task();
    } finally {
      const next = lane.waiting.shift();
      if (next)
        next(); // the place passes to the next caller directly
      else {
        lane.active -= 1;
        if (lane.active === 0) this.lanes.delete(key);
      }
    }
  }
}
