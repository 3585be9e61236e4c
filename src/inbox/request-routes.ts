/**
 * The inbox's pages of requests: the list of what waits for the signed-in approver, a request's
 * page, the edit preview, and the decision forms' posts, each answered by calling the JSON
 * approval API with the session's token.
 */
import type express from 'express';
import type { Request, Response } from 'express';
import { IDENTIFIER_PATTERN } from '../shared/index.js';
import { diffJson } from './diff.js';
import { argsFromForm, editPreviewPage, type PolicyPreview } from './edit-page.js';
import { fieldsOf, type ApiAnswer, type InboxContext, type InboxRequest, type Session } from './inbox-context.js';
import { listPage } from './list-page.js';
import { messagePage, type Flash, type InboxListItem, type InboxRequestView } from './page-frame.js';
import { requestPage } from './request-page.js';

const DIGEST = /^[a-f0-9]{64}$/;
const PAGE_TOKEN = /^[A-Za-z0-9._~+/=-]{1,2048}$/;

/** Adds the request pages' routes to `router`. */
export function mountRequestRoutes(router: express.Router, context: InboxContext): void {
  const { baseOf, setFlash, frameOf, html, messageReply, api, apiError, reauthenticate, requireSession, checkForm } = context;

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
    messageReply(req, res, 400, 'Not a request', { heading: 'Not a request id', message: 'Request ids are 1-128 letters, digits and . _ : @ -.' });
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
      messageReply(req, res, status, 'Request', {
        heading: answer.status === 404 ? 'Request not found' : 'The request could not be loaded',
        message: apiError(answer),
      });
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
}
