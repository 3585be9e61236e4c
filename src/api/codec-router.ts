/**
 * The remote codec endpoint of the API, mounted at `/codec` (`POST /codec/decode`, `/codec/encode`)
 * for the Temporal UI: the codec router of src/codec/router.ts, answering ops tokens only — tenant
 * ops decode only their tenant's payloads, `ops:all` decodes all — and, in local development
 * only, the dev Temporal UI over loopback.
 */
import type { PayloadCodec } from '@temporalio/common';
import type { Request, Router } from 'express';
import type { Logger } from 'pino';
import type { ApproverVerifier } from '../auth/tokens.js';
import { createCodecRouter } from '../codec/router.js';
import { bearerToken, opsScope } from './ops.js';

/** The codec endpoint's options (`ApiDeps.codec`). */
export interface ApiCodecOptions {
  codec: PayloadCodec;
  uiOrigins?: readonly string[];
  /**
   * Local development only (`toolgate dev` sets it): a codec call without a token is answered
   * for every tenant when it comes from one of these Temporal UI origins over a loopback
   * connection — the dev UI has no login to send a token with. Refused when NODE_ENV is
   * `production`; the browser sets Origin, so another website cannot claim to be the UI.
   */
  devTrustedUiOrigins?: readonly string[];
}

/** The router of `/codec`; throws when the dev-only UI trust is asked for with NODE_ENV=production. */
export function createApiCodecRouter(options: ApiCodecOptions, deps: { verifier: ApproverVerifier; logger: Logger }): Router {
  const { verifier, logger } = deps;
  const devUiOrigins = new Set(options.devTrustedUiOrigins ?? []);
  if (devUiOrigins.size > 0 && process.env.NODE_ENV === 'production') {
    throw new Error('the dev-only codec trust of the local Temporal UI (toolgate dev) is refused when NODE_ENV=production');
  }
  return createCodecRouter({
    codec: options.codec,
    uiOrigins: options.uiOrigins ?? [],
    // Tenant ops decode only their tenant's payloads (each payload is tagged and keyed per tenant); ops:all decodes all.
    authorize: async (req) => {
      const token = bearerToken(req);
      if (!token) {
        const origin = req.get('origin');
        if (devUiOrigins.size > 0 && origin !== undefined && devUiOrigins.has(origin) && isLoopbackAddress(req.socket.remoteAddress) && !proxied(req)) {
          logger.debug({ origin, path: req.path }, 'codec endpoint used by the local dev UI');
          return { allTenants: true };
        }
        return undefined;
      }
      const scope = opsScope(await verifier.verify(token));
      if (!scope) return undefined;
      logger.info({ approver: scope.approver.id, tenant: scope.approver.tenant, allTenants: scope.allTenants, path: req.path }, 'codec endpoint used');
      return scope.allTenants ? { allTenants: true } : { allTenants: false, tenant: scope.approver.tenant };
    },
  });
}

/** Whether a socket's peer is this machine (127.0.0.0/8, ::1, or IPv4-mapped loopback). */
function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || /^(::ffff:)?127\./.test(address);
}

/**
 * Whether a request came through a proxy or tunnel: those connect from loopback on behalf of
 * someone else, so the dev UI's loopback trust must not extend to them. A request naming a Host
 * other than a loopback one, or carrying forwarding headers, is treated as proxied.
 */
function proxied(req: Request): boolean {
  if (req.get('forwarded') !== undefined || req.get('via') !== undefined) return true;
  if (Object.keys(req.headers).some((name) => name.startsWith('x-forwarded-'))) return true;
  const host = (req.get('host') ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return !(host === 'localhost' || host === '::1' || /^127\./.test(host));
}
