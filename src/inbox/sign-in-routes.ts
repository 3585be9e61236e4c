/**
 * The inbox's sign-in routes: paste a token, or sign in with the identity provider (OIDC code +
 * PKCE); sign out; and the way in from an expired one-click link.
 */
import type express from 'express';
import { decodeJwt } from 'jose';
import { IDENTIFIER_PATTERN } from '../shared/index.js';
import { INBOX_COOKIES, randomToken, safeNext, sameToken, type InboxContext, type InboxRequest } from './inbox-context.js';
import type { PendingSignIn } from './oidc.js';
import { messagePage } from './page-frame.js';
import { signInPage } from './sign-in-page.js';

/** Adds the sign-in routes to `router`. */
export function mountSignInRoutes(router: express.Router, context: InboxContext): void {
  const { logger, oidc, baseOf, clearCookie, sealInto, openFrom, frameOf, html, signInHref, startSession, checkForm } = context;

  router.get('/signin', (req: InboxRequest, res) => {
    const next = safeNext(baseOf(req), req.query.next);
    if (req.inboxSession) {
      res.redirect(303, next);
      return;
    }
    const csrf = randomToken();
    sealInto(req, res, 'signin', { csrf }, 30 * 60_000);
    html(res, 200, signInPage(frameOf(req, res, 'Sign in'), { next, csrf, oidc: oidc !== undefined }));
  });

  router.post('/signin', async (req: InboxRequest, res) => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(baseOf(req), form.next);
    const pre = openFrom<{ csrf: string }>(req, 'signin');
    const again = (status: number, error: string) => {
      const csrf = randomToken();
      sealInto(req, res, 'signin', { csrf }, 30 * 60_000);
      html(res, status, signInPage(frameOf(req, res, 'Sign in'), { next, csrf, oidc: oidc !== undefined, error }));
    };
    // Login CSRF: the form must be the one this browser was just given.
    if (!pre || req.get('sec-fetch-site') === 'cross-site' || !sameToken(form.csrf, pre.csrf)) {
      again(403, 'The sign-in form expired or did not come from this page; try again.');
      return;
    }
    const token = typeof form.token === 'string' ? form.token.trim() : '';
    if (!/^[A-Za-z0-9._~+/=-]{1,8192}$/.test(token)) {
      again(400, 'Paste the whole token (three dot-separated parts).');
      return;
    }
    try {
      await startSession(req, res, token);
    } catch (err) {
      logger.warn({ event: 'inbox_signin_refused', reason: (err as Error).message }, 'inbox sign-in refused');
      again(401, `This token cannot sign you in: ${(err as Error).message}`);
      return;
    }
    clearCookie(req, res, INBOX_COOKIES.signin);
    res.redirect(303, next);
  });

  router.get('/signin/oidc', async (req, res) => {
    const next = safeNext(baseOf(req), req.query.next);
    if (!oidc) {
      res.redirect(303, signInHref(req, next));
      return;
    }
    let started;
    try {
      started = await oidc.start(next);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'inbox: the identity provider could not be reached');
      html(
        res,
        503,
        messagePage(frameOf(req, res, 'Sign-in unavailable'), {
          heading: 'Sign-in is unavailable',
          message: 'The identity provider could not be reached; try again shortly.',
        }),
      );
      return;
    }
    sealInto(req, res, 'oidc', started.pending, 10 * 60_000);
    res.redirect(302, started.url.href);
  });

  router.get('/signin/callback', async (req, res) => {
    const pending = openFrom<PendingSignIn>(req, 'oidc');
    clearCookie(req, res, INBOX_COOKIES.oidc);
    if (!oidc || !pending) {
      html(
        res,
        400,
        messagePage(frameOf(req, res, 'Sign-in failed'), {
          heading: 'Sign-in failed',
          message: 'This sign-in was not started here or took too long; start again.',
          backHref: `${baseOf(req)}/signin`,
        }),
      );
      return;
    }
    const query = new URLSearchParams(req.url.slice(req.url.indexOf('?') + 1 || req.url.length));
    try {
      const idToken = await oidc.finish(query, pending);
      await startSession(req, res, idToken);
    } catch (err) {
      logger.warn({ event: 'inbox_oidc_refused', reason: (err as Error).message }, 'inbox OIDC sign-in refused');
      html(
        res,
        401,
        messagePage(frameOf(req, res, 'Sign-in failed'), { heading: 'Sign-in failed', message: (err as Error).message, backHref: `${baseOf(req)}/signin` }),
      );
      return;
    }
    res.redirect(303, safeNext(baseOf(req), pending.next));
  });

  router.post('/signout', (req: InboxRequest, res) => {
    const session = req.inboxSession;
    if (session && !checkForm(req, res, session)) return;
    clearCookie(req, res, INBOX_COOKIES.session);
    res.redirect(303, `${baseOf(req)}/signin`);
  });

  /**
   * From an expired (or otherwise refused) one-click link: its request id is read WITHOUT
   * verifying the link — it only builds the path to sign in to; nothing else is taken from it.
   */
  router.get('/from-link/:token', (req, res) => {
    let requestId: unknown;
    try {
      requestId = decodeJwt(String(req.params.token)).request_id;
    } catch {
      requestId = undefined;
    }
    if (typeof requestId !== 'string' || !IDENTIFIER_PATTERN.test(requestId)) {
      res.redirect(303, signInHref(req, `${baseOf(req)}/`));
      return;
    }
    res.redirect(303, signInHref(req, `${baseOf(req)}/requests/${encodeURIComponent(requestId)}`));
  });
}
