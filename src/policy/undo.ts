/**
 * Rollback: a manifest entry's `undo:` names the tool that reverses a completed call of it and how
 * that tool's arguments are derived, one CEL expression per argument over
 *   args        the original's arguments (map)
 *   result      the original's result (dyn; null when it returned nothing)
 *   request_id  the original's request id (string)
 * The expressions are compiled when the policy loads (same structural budget as rule conditions);
 * the approval API derives the arguments with `deriveUndoArgs` and starts the rollback request,
 * which `decide()` then judges under the undo tool's own policy.
 */
import { Environment } from '@marcbachmann/cel-js';
import { MAX_ARGS_BYTES, MAX_ARGS_DEPTH } from '../shared/index.js';
import { CEL_LIMITS, describe, parseAndCheck, toCelValue } from './condition.js';
import type { LoadedPolicy, UndoExpression } from './model.js';
import { ToolgateError } from '../errors.js';

/** Why no rollback can be derived: the tool declares no undo, or an argument's expression failed. */
export type UndoUnavailableCode = 'no_undo' | 'evaluation_failed';

/** Thrown by `deriveUndoArgs`; the message names the tool and, for `evaluation_failed`, the argument. */
export class UndoUnavailable extends ToolgateError {
  declare readonly code: UndoUnavailableCode;
  /** The undo argument whose expression failed (for `evaluation_failed`). */
  readonly argument?: string;

  constructor(code: UndoUnavailableCode, message: string, argument?: string) {
    super(code, message);
    this.name = 'UndoUnavailable';
    if (argument !== undefined) this.argument = argument;
  }
}

// Undo arguments build JSON values, whose objects mix types (`{"id": args.id, "days": 3}`): literals need not be homogeneous.
const environment = new Environment({ limits: { ...CEL_LIMITS }, homogeneousAggregateLiterals: false })
  .registerVariable('args', 'map', { description: "The original request's arguments" })
  .registerVariable('result', 'dyn', { description: "The original request's result; null when it returned nothing" })
  .registerVariable('request_id', 'string', { description: "The original request's id" });

/** CEL types that have no JSON form: an expression that always yields one can never derive an argument. */
const NOT_JSON: Readonly<Record<string, string>> = {
  bytes: 'bytes are not JSON; use string(...) to decode UTF-8 text',
  uint: 'uint is not JSON; use int(...)',
  type: 'a type is not a JSON value',
  'google.protobuf.Timestamp': 'a timestamp is not JSON; use string(...) for its RFC 3339 text',
  'google.protobuf.Duration': 'a duration is not JSON; use string(...) or int(...)',
};

/** Parses and type-checks one undo argument's expression; returns it compiled or a one-line reason it is invalid. */
export function compileUndoExpression(expression: string): { expression: UndoExpression } | { error: string } {
  const parsed = parseAndCheck(environment, expression);
  if ('error' in parsed) return parsed;
  const { compiled, checked } = parsed;
  const notJson = NOT_JSON[String(checked.type)];
  if (notJson !== undefined) return { error: `the expression evaluates to ${String(checked.type)}: ${notJson}` };
  return { expression: (input) => compiled(input) as unknown };
}

/** What a completed request contributes to its rollback. */
export interface UndoInput {
  /** The original's arguments (as it ran them). */
  args: Record<string, unknown>;
  /** The original's result; null or undefined when it returned nothing. */
  result: unknown;
  requestId: string;
}

/**
 * The rollback of a completed call of `originalTool`: the undo tool its manifest names and the
 * arguments its expressions derive, as plain JSON (CEL ints become numbers, maps objects).
 * Throws `UndoUnavailable` with code `no_undo` when the tool (or its manifest) declares no undo,
 * `evaluation_failed` when an expression fails or yields what JSON cannot hold (named in the message).
 */
export function deriveUndoArgs(policy: LoadedPolicy, originalTool: string, input: UndoInput): { tool: string; args: Record<string, unknown> } {
  const tool = policy.tools.get(originalTool);
  if (!tool) throw new UndoUnavailable('no_undo', `tool ${originalTool} is not defined in the policy, so it has no undo`);
  const undo = tool.manifest.undo;
  if (!undo || !tool.undoArgs) throw new UndoUnavailable('no_undo', `the manifest of tool ${originalTool} declares no undo tool, so it cannot be rolled back`);
  const context = {
    args: toCelValue(input.args ?? {}) as Record<string, unknown>,
    result: input.result === undefined ? null : toCelValue(input.result),
    request_id: input.requestId,
  };
  const args: [string, unknown][] = [];
  for (const [name, expression] of tool.undoArgs) {
    const failed = (why: string) =>
      new UndoUnavailable(
        'evaluation_failed',
        `undo argument ${name} of ${originalTool} (${JSON.stringify(undo.args[name] ?? '')}) cannot be derived: ${why}`,
        name,
      );
    let value: unknown;
    try {
      value = expression(context);
    } catch (error) {
      throw failed(describe(error));
    }
    try {
      args.push([name, fromCelValue(value, 1)]);
    } catch (error) {
      throw failed(describe(error));
    }
  }
  const derived = Object.fromEntries(args);
  const size = JSON.stringify(derived).length;
  if (size > MAX_ARGS_BYTES) {
    throw new UndoUnavailable('evaluation_failed', `the undo arguments of ${originalTool} serialize to ${size} bytes, more than ${MAX_ARGS_BYTES}`);
  }
  return { tool: undo.tool, args: derived };
}

/** A CEL value as plain JSON: ints to numbers (exact only), maps to objects; anything else JSON cannot hold throws. */
function fromCelValue(value: unknown, depth: number): unknown {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    if (!value.isWellFormed()) throw new Error('the value holds a lone surrogate, which JSON text cannot carry');
    return value;
  }
  if (typeof value === 'bigint') {
    const number = Number(value);
    if (!Number.isSafeInteger(number)) throw new Error(`the integer ${value} is beyond what a JSON number holds exactly (±2^53)`);
    return number;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`the number ${value} has no JSON form`);
    return value;
  }
  if (depth > MAX_ARGS_DEPTH) throw new Error(`the value nests deeper than ${MAX_ARGS_DEPTH} levels`);
  if (Array.isArray(value)) return value.map((item) => fromCelValue(item, depth + 1));
  if (value instanceof Map) {
    return Object.fromEntries([...value].map(([key, item]) => [mapKey(key), fromCelValue(item, depth + 1)]));
  }
  if (typeof value === 'object') {
    const prototype = Object.getPrototypeOf(value) as unknown;
    if (prototype === Object.prototype || prototype === null) {
      // fromEntries defines own properties, so a `__proto__` key stays a plain key.
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [mapKey(key), fromCelValue(item, depth + 1)]));
    }
    const kind = (value as { constructor?: { name?: unknown } }).constructor?.name;
    throw new Error(`a ${typeof kind === 'string' && kind !== '' ? kind : 'non-JSON'} value has no JSON form; convert it with int(), double() or string()`);
  }
  throw new Error(`a ${typeof value} has no JSON form`);
}

function mapKey(key: unknown): string {
  if (typeof key === 'string') {
    if (!key.isWellFormed()) throw new Error('a map key holds a lone surrogate, which JSON text cannot carry');
    return key;
  }
  if (typeof key === 'bigint' || typeof key === 'boolean' || typeof key === 'number') return String(key);
  throw new Error(`a map key of type ${typeof key} has no JSON form`);
}
