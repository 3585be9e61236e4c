/**
 * Rule conditions: CEL expressions compiled once at load time with `@marcbachmann/cel-js`.
 *
 * Numbers: CEL distinguishes `int` from `double`, JSON does not. Before evaluation every integral
 * JSON number that is a safe integer becomes a BigInt (a CEL `int`); other numbers stay `double`.
 * So `args.amount > 100`, `args.amount + 1 > 100` and `args.amount in [100, 200]` work for whole
 * amounts, comparisons between int and double work (`args.price > 1` with 1.5), and mixed
 * arithmetic needs an explicit conversion: `double(args.amount) * 1.5`.
 *
 * Functions beyond standard CEL, for rules over shell command lines (see src/policy/shell.ts):
 *   shell(string) -> {simple: bool, commands: [{name: string, args: [string], argv: [string]}], words: [string], reasons: [string]}
 *     the line parsed by a real bash parser; `simple` is true only for plain literal commands
 *     joined by ; && || | or newlines, `commands` holds each command's real argv and `words`
 *     every word of the line wherever it stands (redirection targets too).
 *   normpath(string) -> string
 *     lexical path normalisation (`//`, `/./`, `a/..`, a trailing `/`), to match file names
 *     however they are spelled.
 *
 * And for the request's provenance (what the agent runtime says came from untrusted content):
 *   untrusted(string) -> bool
 *     whether the argument at that path (`"args.to"`, `"args.items[0].url"`) is flagged, or holds
 *     or lies inside a flagged value: `untrusted("args.items")` is true when `args.items[0].url`
 *     is flagged, and so is `untrusted("args.items[0].url")` when all of `args.items` is.
 *   untrusted_any() -> bool
 *     whether any argument is flagged.
 * The `provenance` variable holds the claim itself: `provenance.untrusted` (path -> [kind]) and
 * `provenance.prompt` ({model?, systemPromptDigest?, sources}). A flag can only make a rule
 * stricter: its absence says nothing about where a value came from.
 */
import { Environment } from '@marcbachmann/cel-js';
import { parseArgPath, type ArgPathSegment } from '../shared/arg-paths.js';
import { PROVENANCE_LIMITS } from '../shared/provenance.js';
import { normalizePath, parseShellLine } from './shell.js';

/** The request's provenance as rules see it: always present, empty when the request has none. */
export interface CelProvenance {
  untrusted: Record<string, string[]>;
  prompt: { model?: string; systemPromptDigest?: string; sources: string[] };
}

/** The variables a rule condition sees. */
export interface ConditionInput {
  args: Record<string, unknown>;
  actor: { id: string; type: string; roles: string[] };
  tenant: string;
  environment: string;
  tool: string;
  /** @default no provenance: nothing flagged */
  provenance?: CelProvenance;
}

/**
 * A request's provenance for CEL, from whatever the request carries: only well-formed entries
 * (the front door validated it; a recorded history replayed through policy may hold anything).
 */
export function celProvenance(provenance: unknown): CelProvenance {
  const out: CelProvenance = { untrusted: {}, prompt: { sources: [] } };
  if (provenance === null || typeof provenance !== 'object') return out;
  const { untrusted, prompt } = provenance as { untrusted?: unknown; prompt?: unknown };
  if (untrusted !== null && typeof untrusted === 'object' && !Array.isArray(untrusted)) {
    for (const [path, kinds] of Object.entries(untrusted).slice(0, PROVENANCE_LIMITS.paths)) {
      // A flag whose kinds are not a list still flags the path: stricter is the safe reading.
      out.untrusted[path] = Array.isArray(kinds) ? kinds.filter((kind): kind is string => typeof kind === 'string') : [];
    }
  }
  if (prompt !== null && typeof prompt === 'object') {
    const { model, systemPromptDigest, sources } = prompt as Record<string, unknown>;
    if (typeof model === 'string') out.prompt.model = model;
    if (typeof systemPromptDigest === 'string') out.prompt.systemPromptDigest = systemPromptDigest;
    if (Array.isArray(sources)) out.prompt.sources = sources.filter((id): id is string => typeof id === 'string').slice(0, PROVENANCE_LIMITS.sources);
  }
  return out;
}

/** What rules see of a request without provenance: nothing flagged, no prompt metadata. */
const NO_PROVENANCE: CelProvenance = celProvenance(undefined);

/**
 * The flagged paths of the condition being evaluated. CEL functions see only their arguments, so
 * the condition sets this around its (synchronous) evaluation; outside one it is undefined.
 */
let flagged: ArgPathSegment[][] | undefined;

const flaggedCache = new WeakMap<CelProvenance, ArgPathSegment[][]>();

/** The flagged paths of a provenance, as steps; an unreadable path flags every argument (stricter). */
function flaggedPaths(provenance: CelProvenance): ArgPathSegment[][] {
  // Every rule of a tool is evaluated with the same input: read the paths once.
  let paths = flaggedCache.get(provenance);
  if (!paths) {
    paths = Object.keys(provenance.untrusted).map((path) => {
      const parsed = parseArgPath(path);
      return 'segments' in parsed ? parsed.segments : [];
    });
    flaggedCache.set(provenance, paths);
  }
  return paths;
}

/** `untrusted(path)`: the path is flagged, inside a flagged value, or holds one. */
function untrustedAt(path: string): boolean {
  if (!flagged) throw new Error('untrusted() is only available while a rule is evaluated');
  const parsed = parseArgPath(path);
  if ('error' in parsed) throw new Error(`untrusted(${JSON.stringify(path)}): not an argument path: ${parsed.error}`);
  const asked = parsed.segments;
  return flagged.some((steps) => {
    const shorter = Math.min(steps.length, asked.length);
    for (let i = 0; i < shorter; i++) if (steps[i] !== asked[i]) return false;
    return true;
  });
}

/** `untrusted_any()`: some argument is flagged. */
function untrustedAny(): boolean {
  if (!flagged) throw new Error('untrusted_any() is only available while a rule is evaluated');
  return flagged.length > 0;
}

/** A compiled condition: returns whatever the expression evaluates to, or throws. */
export type Condition = (input: ConditionInput) => unknown;

/** CEL values of the `ShellCommand` type (the library reads typed fields from class instances). */
class ShellCommandValue {
  /** The name then the arguments, so a rule can look at every word of the command at once. */
  readonly argv: readonly string[];

  constructor(
    readonly name: string,
    readonly args: readonly string[],
  ) {
    this.argv = Object.freeze([name, ...args]);
  }
}

/** CEL values of the `ShellLine` type returned by `shell()`. */
class ShellLineValue {
  constructor(
    readonly simple: boolean,
    readonly commands: readonly ShellCommandValue[],
    readonly words: readonly string[],
    readonly reasons: readonly string[],
  ) {}
}

const shellValues = new Map<string, ShellLineValue>();

/** `shell(line)`, wrapped for CEL; cached like the parse itself (each rule of a tool asks again). */
function shellValue(line: string): ShellLineValue {
  const known = shellValues.get(line);
  if (known) return known;
  const parsed = parseShellLine(line);
  const value = new ShellLineValue(
    parsed.simple,
    Object.freeze(parsed.commands.map((command) => new ShellCommandValue(command.name, command.args))),
    parsed.words,
    parsed.reasons,
  );
  if (shellValues.size >= 256) shellValues.delete(shellValues.keys().next().value as string);
  shellValues.set(line, value);
  return value;
}

/**
 * The structural budget of every CEL expression of a policy (conditions and undo arguments),
 * enforced when it is parsed: evaluation time grows with the expression, so the expression is bounded.
 */
export const CEL_LIMITS = Object.freeze({ maxAstNodes: 2000, maxDepth: 64, maxListElements: 500, maxMapEntries: 500, maxCallArguments: 16 });

const environment = new Environment({ limits: { ...CEL_LIMITS } })
  .registerVariable('args', 'map', { description: 'The tool arguments' })
  .registerVariable('actor', 'map', { description: 'The caller: id, type and roles' })
  .registerVariable('tenant', 'string', { description: 'The tenant of the request' })
  .registerVariable('environment', 'string', { description: 'The environment of the request' })
  .registerVariable('tool', 'string', { description: 'The tool name' })
  .registerVariable('provenance', 'map', {
    description: 'What the agent runtime says came from untrusted content: {untrusted: {path: [kind]}, prompt: {model?, systemPromptDigest?, sources}}',
  })
  .registerType('ShellCommand', { ctor: ShellCommandValue, fields: { name: 'string', args: 'list<string>', argv: 'list<string>' } })
  .registerType('ShellLine', {
    ctor: ShellLineValue,
    fields: { simple: 'bool', commands: 'list<ShellCommand>', words: 'list<string>', reasons: 'list<string>' },
  })
  .registerFunction('shell(string): ShellLine', (line: string) => shellValue(line), {
    description: 'A shell command line parsed by a bash parser: {simple, commands: [{name, args, argv}], words, reasons}',
  })
  .registerFunction('normpath(string): string', (path: string) => normalizePath(path), {
    description: 'A path normalised lexically: // and /./ collapsed, a/.. folded, no trailing /',
  })
  .registerFunction('untrusted(string): bool', (path: string) => untrustedAt(path), {
    description: 'Whether the agent runtime flagged the argument at this path (args.to) as coming from untrusted content, or a value inside or around it',
  })
  .registerFunction('untrusted_any(): bool', () => untrustedAny(), {
    description: 'Whether the agent runtime flagged any argument as coming from untrusted content',
  });

/**
 * Parses and type-checks `expression` in `env`: the compiled expression and its checked type, or
 * a one-line reason it is invalid. Shared by rule conditions and undo expressions.
 */
export function parseAndCheck(
  env: Environment,
  expression: string,
): { compiled: ReturnType<Environment['parse']>; checked: ReturnType<ReturnType<Environment['parse']>['check']> } | { error: string } {
  let compiled: ReturnType<Environment['parse']>;
  try {
    compiled = env.parse(expression);
  } catch (error) {
    return { error: `invalid CEL expression: ${describe(error)}` };
  }
  const checked = compiled.check();
  if (!checked.valid) return { error: `invalid CEL expression: ${describe(checked.error)}` };
  return { compiled, checked };
}

/** `untrusted("…")` calls with a plain string literal, checked when the policy loads. */
const UNTRUSTED_LITERAL = /\buntrusted\(\s*(?:"((?:[^"\\\n]|\\.)*)"|'((?:[^'\\\n]|\\.)*)')\s*\)/g;

/** Parses and type-checks `expression`; returns the condition or a one-line reason it is invalid. */
export function compileCondition(expression: string): { condition: Condition } | { error: string } {
  const parsed = parseAndCheck(environment, expression);
  if ('error' in parsed) return parsed;
  const { compiled, checked } = parsed;
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return { error: `CEL expression must evaluate to bool, but it evaluates to ${String(checked.type)}` };
  }
  // A misspelt path would make the rule fail on every request (and deny it): refuse it at load.
  for (const match of expression.matchAll(UNTRUSTED_LITERAL)) {
    const literal = match[1] ?? match[2] ?? '';
    if (literal.includes('\\')) continue; // escapes: left to the evaluation
    const parsed = parseArgPath(literal);
    if ('error' in parsed) return { error: `untrusted(${JSON.stringify(literal)}): not an argument path: ${parsed.error}` };
  }
  return {
    condition: (input): unknown => {
      const provenance = input.provenance ?? NO_PROVENANCE;
      const outer = flagged;
      flagged = flaggedPaths(provenance);
      try {
        return compiled(input.provenance ? input : { ...input, provenance }) as unknown;
      } finally {
        flagged = outer;
      }
    },
  };
}

/** Copies a JSON value, turning safe integral numbers into BigInt so CEL sees them as `int`. */
export function toCelValue(value: unknown): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toCelValue);
  if (value !== null && typeof value === 'object') {
    // fromEntries defines own properties, so a `__proto__` argument stays a plain key
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, toCelValue(item)]));
  }
  return value;
}

/** The first line of an error's message, with the column when the CEL library reports one. */
export function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const summary = (error as { summary?: unknown }).summary;
  const range = (error as { range?: { start?: unknown } }).range;
  const text = typeof summary === 'string' ? summary : (error.message.split('\n')[0] ?? error.message);
  return typeof range?.start === 'number' ? `${text} (at character ${range.start + 1})` : text;
}
