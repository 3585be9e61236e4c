/** The maximum size of a tool result, measured as the UTF-8 bytes of its JSON form. */
import { ToolgateError } from '../errors.js';

/** Result size allowed when a tool's policy sets no `egress.max_result_bytes`. @default 1 MiB */
export const DEFAULT_MAX_RESULT_BYTES = 1024 * 1024;

/** Thrown when a result is larger than the tool's `egress.max_result_bytes`. */
export class ResultTooLargeError extends ToolgateError {
  override readonly name = 'ResultTooLargeError';
  /** Size of the result as JSON, in bytes. */
  readonly bytes: number;
  /** The configured limit. */
  readonly limit: number;
  constructor(bytes: number, limit: number) {
    super('result_too_large', `result of ${bytes} bytes exceeds the tool's limit of ${limit} bytes (egress.max_result_bytes)`);
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** Size of a value as UTF-8 JSON (`undefined` counts as 0). */
export function resultBytes(value: unknown): number {
  const json = JSON.stringify(value);
  return json === undefined ? 0 : Buffer.byteLength(json, 'utf8');
}

/** Throws `ResultTooLargeError` when the value's JSON form exceeds `limit` bytes; returns the size. */
export function assertResultSize(value: unknown, limit: number = DEFAULT_MAX_RESULT_BYTES): number {
  const bytes = resultBytes(value);
  if (bytes > limit) throw new ResultTooLargeError(bytes, limit);
  return bytes;
}
