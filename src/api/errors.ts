/** The error answers of toolgate's HTTP APIs: one shape, `{ error: { code, message, fields? } }`, the status from src/errors.ts. */
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { formatIssues } from '../shared/fields.js';
import { ToolgateError, httpStatusOf, type ErrorCode } from '../errors.js';
import { GrpcStatus, grpcStatusOf, isTemporalUnavailable, temporalUnavailability } from '../temporal/errors.js';

export { GrpcStatus, grpcStatusOf, isTemporalUnavailable, temporalUnavailability };

/** What an {@link HttpError} may carry besides its code and message. */
export interface HttpErrorOptions {
  /** The input fields at fault. */
  fields?: readonly string[];
  /** Seconds for a Retry-After header. */
  retryAfter?: number;
  /** The error this answer was raised for (logged, never sent). */
  cause?: unknown;
}

/**
 * An error answer: a stable code, a sentence, and the fields at fault; its status is the code's
 * in `ERROR_HTTP_STATUS` (src/errors.ts). Write `new HttpError(code, message, { fields, retryAfter, cause })`;
 * the older form `new HttpError(status, code, message, fields?, retryAfter?)` is still accepted,
 * and test/unit/errors.test.ts checks that every status written that way is the table's.
 */
export class HttpError extends ToolgateError {
  /** The HTTP status of the answer. */
  readonly status: number;
  /** Seconds for a Retry-After header (absent unless given). */
  declare readonly retryAfter?: number;

  constructor(code: ErrorCode, message: string, options?: HttpErrorOptions);
  constructor(status: number, code: ErrorCode, message: string, fields?: readonly string[], retryAfter?: number);
  constructor(...args: [ErrorCode, string, HttpErrorOptions?] | [number, ErrorCode, string, (readonly string[])?, number?]) {
    // The older form states the status; the newer one takes the table's.
    const [status, code, message, options]: [number, ErrorCode, string, HttpErrorOptions] =
      typeof args[0] === 'number'
        ? [args[0], args[1], args[2], { fields: args[3], retryAfter: args[4] }]
        : [httpStatusOf(args[0]), args[0], args[1], args[2] ?? {}];
    super(code, message, {
      ...(options.fields === undefined ? {} : { fields: options.fields }),
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
    this.status = status;
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }
}

/**
 * The body parsed by `schema`, or a 400 `invalid_body` naming every field at fault (`field: what
 * was expected`, the shape every edge of toolgate reports).
 */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  const issues = formatIssues(parsed.error);
  throw new HttpError('invalid_body', issues.join('; '), { fields: fieldsOfIssues(issues) });
}

/** The distinct fields named by `formatIssues` lines. */
export function fieldsOfIssues(issues: readonly string[]): string[] {
  return [...new Set(issues.map((issue) => issue.split(':')[0] ?? ''))];
}

/** Seconds a client is asked to wait before retrying a 503 about Temporal or its workers. */
const TEMPORAL_RETRY_AFTER_SECONDS = 5;

/**
 * The last middleware of an API: HttpErrors as they are, other ToolgateErrors by their code's
 * status (their message only below 500), body-parser errors as 4xx on the body, Temporal out of
 * reach as 503, anything else a logged 500.
 */
export function errorHandler(logger: Logger, what: string) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    if (err instanceof HttpError) {
      res.status(err.status);
      if (err.status === 401) res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      if (err.retryAfter !== undefined) res.set('Retry-After', String(err.retryAfter));
      res.json({ error: { code: err.code, message: err.message, ...(err.fields ? { fields: err.fields } : {}) } });
      return;
    }
    const unavailableAnswer = temporalUnavailable(err);
    if (unavailableAnswer) {
      res
        .status(unavailableAnswer.status)
        .set('Retry-After', String(unavailableAnswer.retryAfter))
        .json({ error: { code: unavailableAnswer.code, message: unavailableAnswer.message } });
      return;
    }
    if (err instanceof ToolgateError) {
      const status = httpStatusOf(err.code);
      if (status < 500) {
        res.status(status).json({ error: { code: err.code, message: err.message, ...(err.fields ? { fields: err.fields } : {}) } });
        return;
      }
      // The gateway's own trouble: logged in full, answered without the message (it may name keys, files or hosts).
      logger.error({ err, path: req.path }, `${what} error ${err.code}`);
      if (status === 503) {
        res
          .status(503)
          .set('Retry-After', String(TEMPORAL_RETRY_AFTER_SECONDS))
          .json({ error: { code: err.code, message: 'temporarily unavailable; retry shortly' } });
      } else {
        res.status(status).json({ error: { code: 'internal', message: 'internal error' } });
      }
      return;
    }
    const status = (err as { status?: number }).status;
    if (status && status >= 400 && status < 500) {
      // The body as a whole is at fault (malformed JSON, too large, wrong encoding): the field is the root.
      res.status(status).json({ error: { code: 'invalid_body', message: `request body: ${(err as Error).message}`, fields: ['(root)'] } });
      return;
    }
    logger.error({ err, path: req.path }, `unhandled ${what} error`);
    res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
  };
}

/**
 * The 503 answer for a Temporal call that could not be answered (`temporal_unavailable` when the
 * server is out of reach, `worker_unavailable` when no worker answered in time), or undefined.
 */
export function temporalUnavailable(err: unknown): HttpError | undefined {
  switch (temporalUnavailability(err)) {
    case 'temporal_unavailable':
      return new HttpError('temporal_unavailable', 'the gateway cannot reach Temporal; retry shortly', {
        retryAfter: TEMPORAL_RETRY_AFTER_SECONDS,
        cause: err,
      });
    case 'worker_unavailable':
      return new HttpError('worker_unavailable', 'the gateway could not reach a worker in time; retry shortly', {
        retryAfter: TEMPORAL_RETRY_AFTER_SECONDS,
        cause: err,
      });
    default:
      return undefined;
  }
}
