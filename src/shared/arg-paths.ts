/**
 * Argument paths (`args.to`, `args.items[0].url`, `args["reply to"]`): how provenance, policy and
 * the record name one argument of a request, in one canonical spelling. Pure (no I/O).
 */

/** One step of an argument path: an object key, or an array index. */
export type ArgPathSegment = string | number;

/** Keys written `.key` in an argument path; any other key is written `["key"]` (JSON string syntax). */
const PLAIN_PATH_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * Reads an argument path — `args.to`, `args.items[0].url`, `args["reply to"]`, or `args` for all
 * of them — into its steps. Only the canonical spelling (what `formatArgPath` writes) is accepted,
 * so one argument has one name in the signed request, in policy and in the record.
 */
export function parseArgPath(path: string): { segments: ArgPathSegment[] } | { error: string } {
  if (!path.startsWith('args')) return { error: 'an argument path starts with "args" (args.to, args.items[0].url)' };
  const segments: ArgPathSegment[] = [];
  let at = 4;
  while (at < path.length) {
    const rest = path.slice(at);
    const name = /^\.([A-Za-z_][A-Za-z0-9_-]*)/.exec(rest);
    const index = /^\[(0|[1-9][0-9]{0,8})\]/.exec(rest);
    const quoted = /^\[("(?:[^"\\]|\\.)*")\]/.exec(rest);
    const step = name ?? index ?? quoted;
    if (!step) return { error: `cannot read the path at character ${at + 1}: write .name, [index] or ["key"] (args.to, args.items[0].url)` };
    if (name) segments.push(name[1] as string);
    else if (index) segments.push(Number(index[1]));
    else {
      try {
        segments.push(JSON.parse(quoted?.[1] as string) as string);
      } catch {
        return { error: `the key at character ${at + 2} is not a JSON string` };
      }
    }
    at += step[0].length;
  }
  const canonical = formatArgPath(segments);
  if (canonical !== path) return { error: `write this path as ${canonical}` };
  return { segments };
}

/** Writes an argument path in its one canonical spelling (`args.items[0].url`, `args["reply to"]`). */
export function formatArgPath(segments: readonly ArgPathSegment[]): string {
  return `args${segments.map((step) => (typeof step === 'number' ? `[${step}]` : PLAIN_PATH_KEY.test(step) ? `.${step}` : `[${JSON.stringify(step)}]`)).join('')}`;
}

/** Whether `args` holds a value at `segments` (an own key of an object, an index of an array). */
export function hasArgPath(args: unknown, segments: readonly ArgPathSegment[]): boolean {
  let value: unknown = args;
  for (const step of segments) {
    if (typeof step === 'number') {
      if (!Array.isArray(value) || step >= value.length) return false;
      value = value[step];
    } else {
      if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, step)) return false;
      value = (value as Record<string, unknown>)[step];
    }
  }
  return true;
}
