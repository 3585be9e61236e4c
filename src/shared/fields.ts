/**
 * The building blocks of the wire contract's zod schemas: identifiers (what travels in workflow ids,
 * URLs and search attributes), the bounded JSON `args` object, and the `field: message` form every
 * edge reports zod issues in. Pure (no I/O): the shared module is imported across the workflow
 * boundary (types only; see src/shared/index.ts).
 */
import { z } from 'zod';

/** Identifiers that travel in workflow ids, URLs and search attributes. */
export const IDENTIFIER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/** A string field holding an identifier (see `IDENTIFIER_PATTERN`); `what` names it in the error. */
export const identifier = (what: string) =>
  z.string({ error: `${what} must be a string` }).regex(IDENTIFIER_PATTERN, {
    error: `${what} must be 1-128 characters of letters, digits and . _ : @ -, starting with a letter or digit`,
  });

/** Largest accepted `args` object, measured as JSON text. */
export const MAX_ARGS_BYTES = 256 * 1024;

/** Deepest nesting of objects and arrays accepted in `args`. */
export const MAX_ARGS_DEPTH = 64;

/**
 * Why `args` is not JSON data within the limits, or undefined. The walk comes first and is
 * iterative: `JSON.stringify` recurses (deep nesting overflows the stack), loops on cycles and
 * expands shared references, and it throws on BigInt; none of that may escape as a crash.
 */
function argsProblem(args: unknown): string | undefined {
  const pending: [unknown, number][] = [[args, 0]];
  let nodes = 0;
  while (pending.length > 0) {
    const [value, depth] = pending.pop() as [unknown, number];
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_ARGS_DEPTH) return `args must nest at most ${MAX_ARGS_DEPTH} levels deep`;
    for (const [key, item] of Object.entries(value)) {
      if (++nodes > MAX_ARGS_BYTES) return `args must serialize to at most ${MAX_ARGS_BYTES} bytes of JSON`;
      // Canonical JSON (the digests approvals bind to) has no form for a lone surrogate.
      if (!key.isWellFormed() || (typeof item === 'string' && !item.isWellFormed())) return 'args must hold well-formed Unicode text (no lone surrogates)';
      pending.push([item, depth + 1]);
    }
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(args);
  } catch (error) {
    return `args must be JSON data: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
  }
  if (text === undefined || text.length > MAX_ARGS_BYTES) return `args must serialize to at most ${MAX_ARGS_BYTES} bytes of JSON`;
  return undefined;
}

/** A tool call's arguments: a JSON object within `MAX_ARGS_BYTES` and `MAX_ARGS_DEPTH`. */
export const argsSchema = z.record(z.string(), z.unknown(), { error: 'args must be an object' }).superRefine((value, ctx) => {
  const problem = argsProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
/** Formats zod issues as `field: message` lines, the shape every edge of toolgate reports. */
export function formatIssues(error: z.ZodError, prefix = ''): string[] {
  return error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    return `${path || '(root)'}: ${issue.message}`;
  });
}
