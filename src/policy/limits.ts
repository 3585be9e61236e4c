/**
 * Rate limits from policy (`limits:`), enforced with token buckets when a request is evaluated.
 * Buckets live in the worker's memory: each worker process enforces the limits on the requests
 * it evaluates (with N workers, up to N times the rate), and a restart refills them.
 */
import { msToNumber } from '@temporalio/common';
import type { Risk, ToolRequest } from '../shared/index.js';

/** A compiled rate limit. */
export interface RateLimitRule {
  name: string;
  per: 'actor' | 'tenant' | 'tool' | 'actor_tool';
  /** Requests allowed per window. */
  count: number;
  windowMs: number;
  /** Bucket size: how many may come at once. @default count */
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
  key: string;
  retryAfterMs: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets for the limits of a policy, keyed by limit and scope. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly maxBuckets = 100_000) {}

  /**
   * Takes one token from every limit that applies to the request; when one is empty nothing is
   * taken and the limit is returned.
   */
  take(rules: readonly RateLimitRule[], request: ToolRequest, risk: Risk, now = Date.now()): RateLimited | undefined {
    const applicable = rules.filter((rule) => (!rule.tools || rule.tools.includes(request.tool)) && (!rule.risk || rule.risk.includes(risk)));
    const buckets: Bucket[] = [];
    for (const rule of applicable) {
      const key = scopeKey(rule, request);
      const bucket = this.refill(`${rule.name}\u0000${key}`, rule, now);
      if (bucket.tokens < 1) {
        return { rule, key, retryAfterMs: Math.ceil(((1 - bucket.tokens) * rule.windowMs) / rule.count) };
      }
      buckets.push(bucket);
    }
    for (const bucket of buckets) bucket.tokens -= 1;
    return undefined;
  }

  private refill(id: string, rule: RateLimitRule, now: number): Bucket {
    let bucket = this.buckets.get(id);
    if (!bucket) {
      if (this.buckets.size >= this.maxBuckets) this.buckets.delete(this.buckets.keys().next().value as string);
      bucket = { tokens: rule.burst, at: now };
      this.buckets.set(id, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(rule.burst, bucket.tokens + ((now - bucket.at) * rule.count) / rule.windowMs);
    bucket.at = now;
    return bucket;
  }
}

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
