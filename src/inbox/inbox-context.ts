/**
 * What every route of the inbox shares: the options, the signed-in session (a sealed, HttpOnly
 * cookie holding the approver's bearer token), the other sealed cookies (sign-in, OIDC, flash),
 * calls to the JSON approval API with the session's token, and the checks every form post passes
 * (CSRF token, not cross-site). Built once per router by `createInboxContext`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { decodeJwt } from 'jose';
import type { Logger } from 'pino';
import type { ApproverVerifier } from '../auth/tokens.js';
import type { Approver } from '../shared/index.js';
import { jsonBodyOf } from '../shared/json-body.js';
import { InboxOidc, type InboxOidcOptions } from './oidc.js';
import { messagePage, type Flash, type Frame } from './page-frame.js';
import { CookieSealer, parseCookies, serializeCookie } from './session.js';

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

/** Cookie names (a stable contract with the browser tests). */
export const INBOX_COOKIES = { session: 'tg_inbox_session', signin: 'tg_inbox_signin', oidc: 'tg_inbox_oidc', flash: 'tg_inbox_flash' } as const;

/** The signed-in session, as sealed in its cookie. */
export interface Session {
  token: string;
  approver: Approver;
  csrf: string;
  exp: number;
}

/** A request of the inbox, with its session once the session middleware opened it. */
export type InboxRequest = Request & { inboxSession?: Session };

/** A fresh random token (CSRF tokens). */
export const randomToken = () => randomBytes(32).toString('base64url');
/** Whether a posted token equals the expected one (in constant time). */
export const sameToken = (a: unknown, b: string): boolean => {
  if (typeof a !== 'string' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
};

/** The JSON API's answer: status and parsed body (undefined when not JSON). */
export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** A JSON body's fields (an empty record when it is not an object). */
export const fieldsOf = (body: unknown): Record<string, unknown> =>
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

/** The shared helpers of the inbox's routes, bound to `options`. */
export function createInboxContext(options: InboxOptions) {
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
  /** Answers with a page that only says something (refused, not found, unavailable), linking back to the list. */
  const messageReply = (req: Request, res: Response, status: number, title: string, text: { heading: string; message: string }) =>
    html(res, status, messagePage(frameOf(req, res, title), { ...text, backHref: `${baseOf(req)}/` }));

  const api = async (session: Session, method: string, path: string, body?: unknown): Promise<ApiAnswer> => {
    const response = await fetch(`${apiBase}${path}`, {
      method,
      headers: { authorization: `Bearer ${session.token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      redirect: 'error',
      signal: AbortSignal.timeout(apiTimeoutMs),
    });
    return { status: response.status, body: await jsonBodyOf(response) };
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
      messageReply(req, res, 403, 'Refused', {
        heading: 'This form cannot be accepted',
        message: 'The form is missing its security token or comes from another site. Reload the page and try again.',
      });
      return false;
    }
    return true;
  };

  return {
    logger,
    oidc,
    baseOf,
    clearCookie,
    sealInto,
    openFrom,
    setFlash,
    frameOf,
    html,
    messageReply,
    api,
    apiError,
    signInHref,
    reauthenticate,
    startSession,
    requireSession,
    checkForm,
  };
}

/** The shared helpers of the inbox's routes (see `createInboxContext`). */
export type InboxContext = ReturnType<typeof createInboxContext>;
