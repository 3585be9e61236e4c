/**
 * The approver inbox: a server-rendered front end over the JSON approval API of the same process.
 * It holds no power of its own — every page is answered by calling `/v1/approvals` with the
 * signed-in approver's bearer token, which lives only in a sealed, HttpOnly session cookie. Forms
 * carry a synchronizer CSRF token bound to the session; every response carries a strict CSP.
 */
import { readFileSync } from 'node:fs';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { decodeJwt } from 'jose';
import type { Logger } from 'pino';
import type { ApproverVerifier } from '../auth/tokens.js';
import { IDENTIFIER_PATTERN, type Approver } from '../shared/index.js';
import { diffJson } from './diff.js';
import { InboxOidc, type InboxOidcOptions, type PendingSignIn } from './oidc.js';
import {
  editPreviewPage,
  listPage,
  messagePage,
  requestPage,
  schemaFields,
  signInPage,
  type Flash,
  type Frame,
  type InboxListItem,
  type InboxRequestView,
  type PolicyPreview,
} from './pages.js';
import { CookieSealer, parseCookies, serializeCookie } from './session.js';
import { INBOX_SCRIPT } from './static/inbox-script.js';

/** What the inbox needs. */
export interface InboxOptions {
  /** Where the JSON approval API of this process answers, e.g. `http://127.0.0.1:8787` (no trailing path). */
  apiBaseUrl: string;
  /** The approver verifier the API uses: a token is checked before it becomes a session. */
  verifier: ApproverVerifier;
  /** At least 32 random bytes; sessions and the other inbox cookies are sealed with keys derived from it. */
  sessionKey: Uint8Array;
  /** Sign-in with an OpenID Connect provider (authorization code + PKCE); without it, only the token form. */
  oidc?: InboxOidcOptions;
  /** Mark cookies Secure (set whenever the inbox is served over https, i.e. always outside local dev). */
  secureCookies: boolean;
  logger: Logger;
  /** Longest session, whatever the token's own expiry, in seconds. @default 43200 (12 h) */
  sessionMaxSeconds?: number;
  /** How long one call to the JSON API may take, in milliseconds (decisions wait for the workflow). @default 60000 */
  apiTimeoutMs?: number;
}

/** The strict Content-Security-Policy of every inbox response. */
export const INBOX_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'";

/** Cookie names (a stable contract with the browser tests). */
export const INBOX_COOKIES = { session: 'tg_inbox_session', signin: 'tg_inbox_signin', oidc: 'tg_inbox_oidc', flash: 'tg_inbox_flash' } as const;

interface Session {
  token: string;
  approver: Approver;
  csrf: string;
  exp: number;
}

type InboxRequest = Request & { inboxSession?: Session };

const INBOX_CSS = readFileSync(new URL('./static/inbox.css', import.meta.url), 'utf8');
const DIGEST = /^[a-f0-9]{64}$/;
const PAGE_TOKEN = /^[A-Za-z0-9._~+/=-]{1,2048}$/;

const randomToken = () => randomBytes(32).toString('base64url');
const sameToken = (a: unknown, b: string): boolean => {
  if (typeof a !== 'string' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
};

/** The JSON API's answer: status and parsed body (undefined when not JSON). */
interface ApiAnswer {
  status: number;
  body: unknown;
}

/** A JSON body's fields (an empty record when it is not an object). */
const fieldsOf = (body: unknown): Record<string, unknown> =>
  body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};

/** Where a `next` parameter may send the browser: only a path under the inbox (no open redirect). */
export function safeNext(base: string, value: unknown): string {
  const home = `${base}/`;
  if (typeof value !== 'string' || value.length > 2048 || !value.startsWith(home) || /[\\\s\x00-\x1f\x7f]/.test(value)) return home;
  let url: URL;
  try {
    url = new URL(value, 'http://inbox.invalid');
  } catch {
    return home;
  }
  // After normalization (`..`, encoded dots) it must still be this origin and under the inbox.
  if (url.origin !== 'http://inbox.invalid' || !url.pathname.startsWith(home)) return home;
  return `${url.pathname}${url.search}`;
}

/** Creates the inbox router; mount it at `/inbox` on the API app. */
export function createInboxRouter(options: InboxOptions): express.Router {
  const { verifier, logger } = options;
  const apiBase = options.apiBaseUrl.replace(/\/+$/, '');
  const sessionMaxMs = (options.sessionMaxSeconds ?? 12 * 3600) * 1000;
  const apiTimeoutMs = options.apiTimeoutMs ?? 60_000;
  const sealers = {
    session: new CookieSealer(options.sessionKey, 'session'),
    signin: new CookieSealer(options.sessionKey, 'signin'),
    oidc: new CookieSealer(options.sessionKey, 'oidc'),
    flash: new CookieSealer(options.sessionKey, 'flash'),
  };
  const oidc = options.oidc ? new InboxOidc(options.oidc) : undefined;
  const router = express.Router();

  const baseOf = (req: Request) => req.baseUrl;
  const setCookie = (req: Request, res: Response, name: string, value: string, maxAgeSeconds: number) =>
    res.append('Set-Cookie', serializeCookie(name, value, { path: baseOf(req) || '/', secure: options.secureCookies, maxAgeSeconds }));
  const clearCookie = (req: Request, res: Response, name: string) => setCookie(req, res, name, '', 0);

  const sealInto = (req: Request, res: Response, kind: keyof typeof sealers, payload: unknown, lifetimeMs: number) => {
    const name = INBOX_COOKIES[kind];
    setCookie(req, res, name, sealers[kind].seal(name, payload, Date.now() + lifetimeMs), Math.floor(lifetimeMs / 1000));
  };
  const openFrom = <T>(req: Request, kind: keyof typeof sealers): T | undefined =>
    sealers[kind].open<T>(INBOX_COOKIES[kind], parseCookies(req.get('cookie')).get(INBOX_COOKIES[kind]));

  const flashOf = (req: Request, res: Response): Flash | undefined => {
    const flash = openFrom<Flash>(req, 'flash');
    if (parseCookies(req.get('cookie')).has(INBOX_COOKIES.flash)) clearCookie(req, res, INBOX_COOKIES.flash);
    return flash;
  };
  const setFlash = (req: Request, res: Response, flash: Flash) => sealInto(req, res, 'flash', flash, 60_000);

  const frameOf = (req: InboxRequest, res: Response, title: string): Frame => {
    const session = req.inboxSession;
    const flash = flashOf(req, res);
    return { base: baseOf(req), title, ...(session ? { approver: session.approver, csrf: session.csrf } : {}), ...(flash ? { flash } : {}) };
  };
  const html = (res: Response, status: number, body: string) => res.status(status).type('html').send(body);

  const api = async (session: Session, method: string, path: string, body?: unknown): Promise<ApiAnswer> => {
    const response = await fetch(`${apiBase}${path}`, {
      method,
      headers: { authorization: `Bearer ${session.token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      redirect: 'error',
      signal: AbortSignal.timeout(apiTimeoutMs),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed };
  };
  const apiError = (answer: ApiAnswer): string => {
    const error = (answer.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    return `${answer.status} ${typeof error?.code === 'string' ? error.code : 'error'}: ${typeof error?.message === 'string' ? error.message : 'the approval API refused the call'}`;
  };

  const signInHref = (req: Request, next: string) => `${baseOf(req)}/signin?next=${encodeURIComponent(safeNext(baseOf(req), next))}`;
  /** The session ended (a token the API no longer accepts): forget it and sign in again, coming back to `next`. */
  const reauthenticate = (req: Request, res: Response, next: string) => {
    clearCookie(req, res, INBOX_COOKIES.session);
    res.redirect(303, signInHref(req, next));
  };

  /** Starts a session for a token the verifier accepts; throws the verifier's error otherwise. */
  const startSession = async (req: Request, res: Response, token: string): Promise<Approver> => {
    const approver = await verifier.verify(token);
    const tokenExp = decodeJwt(token).exp;
    const exp = Math.min(typeof tokenExp === 'number' ? tokenExp * 1000 : Date.now() + sessionMaxMs, Date.now() + sessionMaxMs);
    if (exp <= Date.now() + 5_000) throw new Error('the token expires too soon to sign in with it');
    const session: Session = { token, approver, csrf: randomToken(), exp };
    sealInto(req, res, 'session', session, exp - Date.now());
    logger.info({ event: 'inbox_signin', approver: approver.id, tenant: approver.tenant }, 'approver signed in to the inbox');
    return approver;
  };

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

  /** The signed-in session, or a redirect to sign-in (coming back to `next`) and undefined. */
  const requireSession = (req: InboxRequest, res: Response, next: string): Session | undefined => {
    if (req.inboxSession) return req.inboxSession;
    res.redirect(303, signInHref(req, next));
    return undefined;
  };
  /**
   * A state-changing form post must come from this inbox: the session's CSRF token, and not a
   * cross-site request by the browser's own account (Sec-Fetch-Site, where the browser sends it).
   */
  const checkForm = (req: InboxRequest, res: Response, session: Session): boolean => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    if (req.get('sec-fetch-site') === 'cross-site' || !sameToken(form.csrf, session.csrf)) {
      logger.warn({ event: 'inbox_csrf_refused', approver: session.approver.id, path: req.path }, 'inbox form refused: missing or wrong CSRF token');
      html(
        res,
        403,
        messagePage(frameOf(req, res, 'Refused'), {
          heading: 'This form cannot be accepted',
          message: 'The form is missing its security token or comes from another site. Reload the page and try again.',
          backHref: `${baseOf(req)}/`,
        }),
      );
      return false;
    }
    return true;
  };

  // ---- sign-in ----

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

  // ---- pages ----

  router.get('/', async (req: InboxRequest, res) => {
    const session = requireSession(req, res, req.originalUrl);
    if (!session) return;
    const pageToken = typeof req.query.pageToken === 'string' && PAGE_TOKEN.test(req.query.pageToken) ? req.query.pageToken : undefined;
    const answer = await api(session, 'GET', `/v1/approvals?limit=25${pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ''}`);
    if (answer.status === 401) return reauthenticate(req, res, req.originalUrl);
    const body = fieldsOf(answer.body);
    if (answer.status !== 200 || !Array.isArray(body.items)) {
      html(
        res,
        answer.status >= 500 ? 503 : 502,
        messagePage(frameOf(req, res, 'Unavailable'), { heading: 'The inbox could not be loaded', message: apiError(answer) }),
      );
      return;
    }
    const items = (body.items as InboxListItem[]).filter((item) => typeof item?.requestId === 'string' && IDENTIFIER_PATTERN.test(item.requestId));
    // The new API pages with opaque tokens; the old one answers a single page without one.
    const nextToken = typeof body.nextPageToken === 'string' && PAGE_TOKEN.test(body.nextPageToken) ? body.nextPageToken : undefined;
    html(
      res,
      200,
      listPage(frameOf(req, res, 'Waiting for me'), {
        items,
        ...(nextToken ? { nextHref: `${baseOf(req)}/?pageToken=${encodeURIComponent(nextToken)}` } : {}),
        ...(pageToken ? { firstHref: `${baseOf(req)}/` } : {}),
      }),
    );
  });

  /** The request id of the path, or a 400 page and undefined. */
  const requestIdOf = (req: InboxRequest, res: Response): string | undefined => {
    const requestId = String(req.params.requestId ?? '');
    if (IDENTIFIER_PATTERN.test(requestId)) return requestId;
    html(
      res,
      400,
      messagePage(frameOf(req, res, 'Not a request'), {
        heading: 'Not a request id',
        message: 'Request ids are 1-128 letters, digits and . _ : @ -.',
        backHref: `${baseOf(req)}/`,
      }),
    );
    return undefined;
  };
  const requestPath = (req: Request, requestId: string) => `${baseOf(req)}/requests/${encodeURIComponent(requestId)}`;

  /** The approval view of a request, or an error page / re-sign-in and undefined. */
  const loadView = async (req: InboxRequest, res: Response, session: Session, requestId: string): Promise<InboxRequestView | undefined> => {
    const answer = await api(session, 'GET', `/v1/approvals/${encodeURIComponent(requestId)}`);
    if (answer.status === 401) {
      reauthenticate(req, res, requestPath(req, requestId));
      return undefined;
    }
    if (answer.status !== 200) {
      const status = answer.status === 404 ? 404 : answer.status >= 500 ? 503 : 502;
      html(
        res,
        status,
        messagePage(frameOf(req, res, 'Request'), {
          heading: answer.status === 404 ? 'Request not found' : 'The request could not be loaded',
          message: apiError(answer),
          backHref: `${baseOf(req)}/`,
        }),
      );
      return undefined;
    }
    return answer.body as InboxRequestView;
  };

  router.get('/requests/:requestId', async (req: InboxRequest, res) => {
    const requestId = requestIdOf(req, res);
    if (!requestId) return;
    const session = requireSession(req, res, requestPath(req, requestId));
    if (!session) return;
    const view = await loadView(req, res, session, requestId);
    if (!view) return;
    html(res, 200, requestPage(frameOf(req, res, `${view.tool} ${view.requestId}`), { view, csrf: session.csrf }));
  });

  router.post('/requests/:requestId/edit/preview', async (req: InboxRequest, res) => {
    const requestId = requestIdOf(req, res);
    if (!requestId) return;
    const session = requireSession(req, res, requestPath(req, requestId));
    if (!session || !checkForm(req, res, session)) return;
    const form = (req.body ?? {}) as Record<string, unknown>;
    const back = (message: string) => {
      setFlash(req, res, { kind: 'error', message });
      res.redirect(303, requestPath(req, requestId));
    };
    const view = await loadView(req, res, session, requestId);
    if (!view) return;
    if (form.digest !== view.digest) return back('The request changed since you opened it; review it again before editing.');
    const built = argsFromForm(form, view);
    if ('error' in built) return back(built.error);
    const reason = typeof form.reason === 'string' ? form.reason.trim().slice(0, 2000) : '';
    if (JSON.stringify(built.args).includes('[REDACTED:')) {
      return back('The new arguments still contain [REDACTED:…] placeholders: an edit replaces the arguments, so type the real values.');
    }
    const preview = await policyPreview(session, requestId, view.digest ?? '', built.args);
    if (preview === 'unauthenticated') return reauthenticate(req, res, requestPath(req, requestId));
    html(
      res,
      200,
      editPreviewPage(frameOf(req, res, `Edit ${view.requestId}`), {
        view,
        csrf: session.csrf,
        args: built.args,
        ...(reason ? { reason } : {}),
        diff: diffJson(view.args ?? {}, built.args),
        preview,
      }),
    );
  });

  /**
   * What policy would decide on the edited arguments, from `POST /v1/approvals/:id/preview` when
   * the API offers it; otherwise the page says the edit is judged when submitted.
   */
  const policyPreview = async (
    session: Session,
    requestId: string,
    digest: string,
    args: Record<string, unknown>,
  ): Promise<PolicyPreview | 'unauthenticated'> => {
    let answer: ApiAnswer;
    try {
      answer = await api(session, 'POST', `/v1/approvals/${encodeURIComponent(requestId)}/preview`, { digest, args });
    } catch (err) {
      return {
        kind: 'unavailable',
        message: `The policy preview could not be reached (${(err as Error).message}); policy judges the edit when you submit it.`,
      };
    }
    if (answer.status === 401) return 'unauthenticated';
    if (answer.status === 200 && answer.body && typeof answer.body === 'object') {
      const body = answer.body as { decision?: Record<string, unknown>; eligibleGroups?: unknown; digest?: unknown };
      const decision = body.decision ?? {};
      const strings = (value: unknown) => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined);
      return {
        kind: 'decision',
        ...(typeof decision.outcome === 'string' ? { outcome: decision.outcome } : {}),
        ...(typeof decision.risk === 'string' ? { risk: decision.risk } : {}),
        ...(typeof decision.rule === 'string' ? { rule: decision.rule } : {}),
        ...(strings(decision.reasons) ? { reasons: strings(decision.reasons) } : {}),
        ...(strings(body.eligibleGroups) ? { eligibleGroups: strings(body.eligibleGroups) } : {}),
        ...(typeof body.digest === 'string' ? { digest: body.digest } : {}),
      };
    }
    if (fieldsOf(fieldsOf(answer.body).error).code === 'preview_unavailable') {
      return {
        kind: 'unavailable',
        message:
          'This gateway offers no policy preview: policy judges the edit when you submit it, and the request page then shows its answer (a new approval round, or a denial).',
      };
    }
    return { kind: 'unavailable', message: `The policy preview failed (${apiError(answer)}); policy judges the edit when you submit it.` };
  };

  router.post('/requests/:requestId/decision', async (req: InboxRequest, res) => {
    const requestId = requestIdOf(req, res);
    if (!requestId) return;
    const here = requestPath(req, requestId);
    const session = requireSession(req, res, here);
    if (!session || !checkForm(req, res, session)) return;
    const form = (req.body ?? {}) as Record<string, unknown>;
    const back = (flash: Flash) => {
      setFlash(req, res, flash);
      res.redirect(303, here);
    };
    const decision = form.decision;
    if (decision !== 'approve' && decision !== 'reject' && decision !== 'edit') return back({ kind: 'error', message: 'Choose approve, reject or edit.' });
    if (typeof form.digest !== 'string' || !DIGEST.test(form.digest))
      return back({ kind: 'error', message: 'The form lost the request digest; reload the page.' });
    const reason = typeof form.reason === 'string' ? form.reason.trim() : '';
    if (reason.length > 2000) return back({ kind: 'error', message: 'The reason must be at most 2000 characters.' });
    // Rejections are explained: the requester and the record deserve to know why.
    if (decision === 'reject' && !reason) return back({ kind: 'error', message: 'A rejection needs a reason.' });
    let args: Record<string, unknown> | undefined;
    if (decision === 'edit') {
      try {
        const parsed: unknown = JSON.parse(typeof form.args === 'string' ? form.args : '');
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
        args = parsed as Record<string, unknown>;
      } catch {
        return back({ kind: 'error', message: 'The edited arguments are not a JSON object.' });
      }
    }
    const answer = await api(session, 'POST', `/v1/approvals/${encodeURIComponent(requestId)}/decision`, {
      decision,
      digest: form.digest,
      ...(reason ? { reason } : {}),
      ...(args ? { args } : {}),
    });
    if (answer.status === 401) return reauthenticate(req, res, here);
    if (answer.status === 200) {
      const state = fieldsOf(answer.body).state;
      // A vote is answered when it is recorded, before the request acts on it: only an edit's answer
      // carries the state after policy judged it again.
      const now = decision === 'edit' && typeof state === 'string' ? ` The request is now ${state.replace(/_/g, ' ')}.` : '';
      const done =
        decision === 'approve'
          ? 'Approved. Your vote is recorded.'
          : decision === 'reject'
            ? 'Rejected. Your vote is recorded.'
            : 'Edit submitted; policy judged the new arguments.';
      return back({ kind: 'ok', message: `${done}${now}` });
    }
    return back({ kind: 'error', message: `Not recorded — ${apiError(answer)}` });
  });

  // Errors of the inbox are pages, not the API's JSON (a failed fetch to the API lands here too).
  router.use((err: unknown, req: InboxRequest, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const status = (err as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      html(
        res,
        status,
        messagePage(frameOf(req, res, 'Refused'), { heading: 'The request was refused', message: (err as Error).message, backHref: `${baseOf(req)}/` }),
      );
      return;
    }
    logger.error({ err: (err as Error)?.message, path: req.path }, 'inbox error');
    html(
      res,
      503,
      messagePage(frameOf(req, res, 'Unavailable'), {
        heading: 'Something went wrong',
        message: 'The inbox could not complete this; try again shortly.',
        backHref: `${baseOf(req)}/`,
      }),
    );
  });

  return router;
}

/** The edited arguments from the edit form: the JSON editor, or the schema-guided fields. */
function argsFromForm(form: Record<string, unknown>, view: InboxRequestView): { args: Record<string, unknown> } | { error: string } {
  if (form.mode === 'fields') {
    const fields = schemaFields(view.argsSchema);
    if (!fields) return { error: 'The argument form no longer matches the tool; reload the page.' };
    const args: Record<string, unknown> = {};
    for (const field of fields) {
      const raw = form[`arg.${field.name}`];
      if (typeof raw !== 'string' || raw.trim() === '') {
        if (field.required) return { error: `${field.name} is required.` };
        continue;
      }
      const text = raw.trim();
      if (field.enum) {
        try {
          args[field.name] = JSON.parse(text);
        } catch {
          return { error: `${field.name}: choose one of the listed values.` };
        }
      } else if (field.type === 'string') args[field.name] = raw;
      else if (field.type === 'boolean') args[field.name] = text === 'true';
      else if (field.type === 'number' || field.type === 'integer') {
        const value = Number(text);
        if (!Number.isFinite(value) || (field.type === 'integer' && !Number.isInteger(value)))
          return { error: `${field.name} must be ${field.type === 'integer' ? 'a whole number' : 'a number'}.` };
        args[field.name] = value;
      } else {
        try {
          args[field.name] = JSON.parse(text);
        } catch (err) {
          return { error: `${field.name} is not JSON: ${(err as Error).message}` };
        }
      }
    }
    return { args };
  }
  try {
    const parsed: unknown = JSON.parse(typeof form.args === 'string' ? form.args : '');
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { error: 'The new arguments must be a JSON object.' };
    return { args: parsed as Record<string, unknown> };
  } catch (err) {
    return { error: `The new arguments are not valid JSON: ${(err as Error).message}` };
  }
}
