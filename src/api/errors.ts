/** The error answers of toolgate's HTTP APIs: one shape, `{ error: { code, message, fields? } }`. */
import { ServiceError } from '@temporalio/client';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';

/** An error answer: a status, a stable code, a sentence, and the fields at fault. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields?: string[],
    /** Seconds for a Retry-After header. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** The last middleware of an API: HttpErrors as they are, body-parser errors as 4xx on the body, anything else a logged 500. */
export function errorHandler(logger: Logger, what: string) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    if (err instanceof HttpError) {
      res.status(err.status);
      if (err.status === 401) res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      if (err.retryAfter !== undefined) res.set('Retry-After', String(err.retryAfter));
      res.json({ error: { code: err.code, message: err.message, ...(err.fields ? { fields: err.fields } : {}) } });
      return;
    }
    const status = (err as { status?: number }).status;
    if (status && status >= 400 && status < 500) {
      // The body as a whole is at fault (malformed JSON, too large, wrong encoding): the field is the root.
      res.status(status).json({ error: { code: 'invalid_body', message: `request body: ${(err as Error).message}`, fields: ['(root)'] } });
      return;
    }
    if (isTemporalUnavailable(err)) {
      res
        .status(503)
        .set('Retry-After', '5')
        .json({ error: { code: 'worker_unavailable', message: 'the gateway could not reach a worker in time; retry shortly' } });
      return;
    }
    logger.error({ err, path: req.path }, `unhandled ${what} error`);
    res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
  };
}

/** True for a Temporal call that timed out or found no one to answer (typically: no free worker). */
export function isTemporalUnavailable(err: unknown): boolean {
  const code = (err as { code?: number }).code ?? (err as { cause?: { code?: number } }).cause?.code;
  if (code === 4 || code === 14) return true; // DEADLINE_EXCEEDED, UNAVAILABLE
  return err instanceof ServiceError && /deadline|timed? ?out|unavailable/i.test(err.message);
}
