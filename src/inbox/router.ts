/**
 * The approver inbox: a server-rendered front end over the JSON approval API of the same process.
 * It holds no power of its own — every page is answered by calling `/v1/approvals` with the
 * signed-in approver's bearer token, which lives only in a sealed, HttpOnly session cookie. Forms
 * carry a synchronizer CSRF token bound to the session; every response carries a strict CSP.
 */
import { readFileSync } from 'node:fs';
import express, { type NextFunction, type Response } from 'express';
import { createInboxContext, type InboxOptions, type InboxRequest, type Session } from './inbox-context.js';
import { mountRequestRoutes } from './request-routes.js';
import { mountSignInRoutes } from './sign-in-routes.js';
import { INBOX_SCRIPT } from './static/inbox-script.js';

/** The strict Content-Security-Policy of every inbox response. */
export const INBOX_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'";

const INBOX_CSS = readFileSync(new URL('./static/inbox.css', import.meta.url), 'utf8');

/** Creates the inbox router; mount it at `/inbox` on the API app. */
export function createInboxRouter(options: InboxOptions): express.Router {
  const context = createInboxContext(options);
  const { logger, openFrom, messageReply } = context;
  const router = express.Router();

  // Every response of the inbox: a strict CSP, no sniffing, no referrer (pages carry request ids), no framing.
  router.use((_req, res, next) => {
    res.set({
      'Content-Security-Policy': INBOX_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY',
      'Cache-Control': 'no-store',
    });
    next();
  });

  router.get('/static/inbox.css', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').type('text/css').send(INBOX_CSS);
  });
  router.get('/static/inbox.js', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').type('text/javascript').send(INBOX_SCRIPT);
  });

  router.use(express.urlencoded({ extended: false, limit: '600kb', parameterLimit: 200 }));
  router.use((req: InboxRequest, _res, next) => {
    const session = openFrom<Session>(req, 'session');
    if (session && session.exp > Date.now()) req.inboxSession = session;
    next();
  });

  mountSignInRoutes(router, context);
  mountRequestRoutes(router, context);

  // Errors of the inbox are pages, not the API's JSON (a failed fetch to the API lands here too).
  router.use((err: unknown, req: InboxRequest, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const status = (err as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      messageReply(req, res, status, 'Refused', { heading: 'The request was refused', message: (err as Error).message });
      return;
    }
    logger.error({ err: (err as Error)?.message, path: req.path }, 'inbox error');
    messageReply(req, res, 503, 'Unavailable', { heading: 'Something went wrong', message: 'The inbox could not complete this; try again shortly.' });
  });

  return router;
}
