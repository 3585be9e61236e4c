/**
 * Rule conditions: CEL expressions compiled once at load time with `@marcbachmann/cel-js`.
 *
 * Numbers: CEL distinguishes `int` from `double`, JSON does not. Before evaluation every integral
 * JSON number that is a safe integer becomes a BigInt (a CEL `int`); other numbers stay `double`.
 * So `args.amount > 100`, `args.amount + 1 > 100` and `args.amount in [100, 200]` work for whole
 * amounts, comparisons between int and double work (`args.price > 1` with 1.5), and mixed
 * arithmetic needs an explicit conversion: `double(args.amount) * 1.5`.
 */
import { Environment } from '@marcbachmann/cel-js';

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

const environment = new Environment({
  limits: { maxAstNodes: 2000, maxDepth: 64, maxListElements: 500, maxMapEntries: 500, maxCallArguments: 16 },
})
  .registerVariable('args', 'map', { description: 'The tool arguments' })
  .registerVariable('actor', 'map', { description: 'The caller: id, type and roles' })
  .registerVariable('tenant', 'string', { description: 'The tenant of the request' })
  .registerVariable('environment', 'string', { description: 'The environment of the request' })
  .registerVariable('tool', 'string', { description: 'The tool name' });

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
