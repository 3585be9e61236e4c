/**
 * One-click links, mounted at `/v1/links`: `GET /:token` shows a confirmation page and changes
 * nothing (link scanners and previews must not approve); `POST /:token` from that page decides,
 * once. The page is src/api/link-page.ts; the tokens are src/approvals/links.ts. A link that does
 * not verify authenticates nobody: it is logged and counted, never recorded in a history.
 */
import express, { type Response } from 'express';
import { decodeJwt } from 'jose';
import { approvalView } from '../approvals/view.js';
import type { VerifiedLink } from '../approvals/links.js';
import { IDENTIFIER_PATTERN } from '../shared/index.js';
import { HttpError } from './errors.js';
import { renderLinkPage, type LinkPageModel } from './link-page.js';
import type { RefusedAtEdge, RequestAccess } from './request-access.js';

/** Verifies one-click link tokens (`LinkVerifier.verifyLink`, or a stand-in in tests). */
export interface LinkVerifierLike {
  verify(token: string, expected?: { requestId?: string }): Promise<VerifiedLink>;
}

/** What the link routes need. */
export interface LinksRouterDeps {
  links: LinkVerifierLike;
  /** Reads and decides requests of the link's approver's tenant. */
  access: RequestAccess;
  refusedAtEdge: RefusedAtEdge;
}

/** The router of `/v1/links`. */
export function createLinksRouter(deps: LinksRouterDeps): express.Router {
  const { links, access, refusedAtEdge } = deps;
  const router = express.Router();
  const send = (res: Response, status: number, model: LinkPageModel) => {
    res
      .status(status)
      .set({
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'no-referrer',
        'X-Frame-Options': 'DENY',
        'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
      })
      .send(renderLinkPage(model));
  };

  const verify = async (token: string, res: Response, attempt?: string, options: { expiredToInbox?: boolean } = {}) => {
    try {
      return await links.verify(token);
    } catch (err) {
      // A link that does not verify authenticates nobody: logged and counted, never recorded in a history.
      refusedAtEdge('link', 'invalid_link', {
        ...unverifiedLinkClaims(token),
        ...(attempt ? { decision: attempt } : {}),
        reason: (err as Error).message,
      });
      // Expiry is judged after the signature: a genuine link that only ran out leads to the inbox's
      // sign-in and then the same request, instead of a dead end. It grants nothing by itself.
      if (options.expiredToInbox && (err as { reason?: string }).reason === 'expired') {
        res.redirect(303, `/inbox/from-link/${encodeURIComponent(token)}`);
        return undefined;
      }
      send(res, 401, { kind: 'error', title: 'This link cannot be used', message: (err as Error).message });
      return undefined;
    }
  };

  router.get('/:token', async (req, res) => {
    const claims = await verify(String(req.params.token), res, undefined, { expiredToInbox: true });
    if (!claims) return;
    const status = await access.loadStatus(claims.requestId, claims.approver, 'link').catch((err: unknown) => {
      if (err instanceof HttpError) return err;
      throw err;
    });
    // Only a request that is not there is "not found"; Temporal or a worker out of reach is said as such (503), never as a missing request.
    if (status instanceof HttpError) {
      const missing = status.code === 'not_found';
      send(res, status.status, {
        kind: 'error',
        title: missing ? 'Request not found' : 'The request cannot be shown right now',
        message: missing ? `no request ${claims.requestId}` : status.message,
      });
      return;
    }
    const view = approvalView(status, claims.approver);
    const changed = status.digest !== claims.digest;
    send(res, 200, {
      kind: 'confirm',
      view,
      approverId: claims.approver.id,
      decisions: claims.decision ? [claims.decision] : ['approve', 'reject'],
      linkExpiresAt: claims.expiresAt,
      ...(changed ? { warning: 'The request changed since this link was sent; it can no longer be decided with this link.' } : {}),
    });
  });

  router.post('/:token', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    const decision = form.decision;
    const claims = await verify(String(req.params.token), res, typeof decision === 'string' ? decision : 'unknown');
    if (!claims) return;
    if (decision !== 'approve' && decision !== 'reject') {
      send(res, 400, { kind: 'error', title: 'No decision', message: 'decision must be "approve" or "reject"' });
      return;
    }
    if (claims.decision && claims.decision !== decision) {
      refusedAtEdge('link', 'invalid_decision', { requestId: claims.requestId, approver: claims.approver.id, decision });
      send(res, 400, { kind: 'error', title: 'Wrong decision', message: `this link can only ${claims.decision}` });
      return;
    }
    try {
      const status = await access.decide(claims.requestId, {
        decision,
        digest: claims.digest,
        approver: claims.approver,
        via: 'link',
        linkNonce: claims.jti,
      });
      send(res, 200, { kind: 'done', title: decision === 'approve' ? 'Approved' : 'Rejected', message: `Recorded for request ${status.requestId}.` });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      send(res, err.status, { kind: 'error', title: 'Not recorded', message: err.message });
    }
  });
  return router;
}

/** The unverified request id and subject of a link token, to record a refused attempt. */
function unverifiedLinkClaims(token: string): { requestId?: string; sub?: string } {
  try {
    const claims = decodeJwt(token);
    const requestId = typeof claims.request_id === 'string' && IDENTIFIER_PATTERN.test(claims.request_id) ? claims.request_id : undefined;
    return { ...(requestId ? { requestId } : {}), ...(typeof claims.sub === 'string' ? { sub: claims.sub.slice(0, 128) } : {}) };
  } catch {
    return {};
  }
}
