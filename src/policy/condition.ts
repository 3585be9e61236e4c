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
 */
import { Environment } from '@marcbachmann/cel-js';
import { normalizePath, parseShellLine } from './shell.js';

/** The variables a rule condition sees. */
export interface ConditionInput {
  args: Record<string, unknown>;
  actor: { id: string; type: string; roles: string[] };
  tenant: string;
  environment: string;
  tool: string;
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

const environment = new Environment({
  limits: { maxAstNodes: 2000, maxDepth: 64, maxListElements: 500, maxMapEntries: 500, maxCallArguments: 16 },
})
  .registerVariable('args', 'map', { description: 'The tool arguments' })
  .registerVariable('actor', 'map', { description: 'The caller: id, type and roles' })
  .registerVariable('tenant', 'string', { description: 'The tenant of the request' })
  .registerVariable('environment', 'string', { description: 'The environment of the request' })
  .registerVariable('tool', 'string', { description: 'The tool name' })
  .registerType('ShellCommand', { ctor: ShellCommandValue, fields: { name: 'string', args: 'list<string>', argv: 'list<string>' } })
  .registerType('ShellLine', { ctor: ShellLineValue, fields: { simple: 'bool', commands: 'list<ShellCommand>', words: 'list<string>', reasons: 'list<string>' } })
  .registerFunction('shell(string): ShellLine', (line: string) => shellValue(line), {
    description: 'A shell command line parsed by a bash parser: {simple, commands: [{name, args, argv}], words, reasons}',
  })
  .registerFunction('normpath(string): string', (path: string) => normalizePath(path), {
    description: 'A path normalised lexically: // and /./ collapsed, a/.. folded, no trailing /',
  });

/** Parses and type-checks `expression`; returns the condition or a one-line reason it is invalid. */
export function compileCondition(expression: string): { condition: Condition } | { error: string } {
  let compiled: ReturnType<typeof environment.parse>;
  try {
    compiled = environment.parse(expression);
  } catch (error) {
    return { error: `invalid CEL expression: ${describe(error)}` };
  }
  const checked = compiled.check();
  if (!checked.valid) return { error: `invalid CEL expression: ${describe(checked.error)}` };
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return { error: `CEL expression must evaluate to bool, but it evaluates to ${String(checked.type)}` };
  }
  return { condition: (input): unknown => compiled(input) as unknown };
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
