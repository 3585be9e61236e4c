/**
 * The audit API, mounted at `/v1/audit`: `GET /:requestId[?tenant=T]` answers the audit record of
 * a request, derived from its history (src/audit/record.ts), to ops only — group `ops` for their
 * own tenant, `ops:all` for every tenant (src/api/ops.ts).
 */
import type { Client } from '@temporalio/client';
import express from 'express';
import type { Logger } from 'pino';
import { buildAuditRecord } from '../audit/record.js';
import { AuditRecordError } from '../audit/record-types.js';
import type { ApproverVerifier } from '../auth/tokens.js';
import { IDENTIFIER_PATTERN, type Approver } from '../shared/index.js';
import { HttpError } from './errors.js';
import { bearerToken, opsCovers, opsScope } from './ops.js';
import { requestIdParam } from './request-access.js';

/** What the audit route needs. */
export interface AuditRouterDeps {
  client: Client;
  verifier: ApproverVerifier;
  logger: Logger;
}

/** The router of `/v1/audit`. */
export function createAuditRouter({ client, verifier, logger }: AuditRouterDeps): express.Router {
  const router = express.Router();
  // The audit record of a request, derived from its history: for ops (group `ops`: their tenant; `ops:all`: every tenant).
  router.get('/:requestId', async (req, res) => {
    const token = bearerToken(req);
    if (!token) throw new HttpError(401, 'unauthenticated', 'Authorization: Bearer <token> is required');
    let approver: Approver;
    try {
      approver = await verifier.verify(token);
    } catch (err) {
      throw new HttpError(401, 'invalid_token', (err as Error).message);
    }
    const scope = opsScope(approver);
    if (!scope) throw new HttpError(403, 'not_ops', 'audit records are for ops: a token with group "ops" (own tenant) or "ops:all"');
    const requestId = requestIdParam(req);
    const tenantParam = req.query.tenant;
    if (tenantParam !== undefined && (typeof tenantParam !== 'string' || !IDENTIFIER_PATTERN.test(tenantParam))) {
      throw new HttpError(400, 'invalid_query', 'tenant must be a tenant id', ['tenant']);
    }
    // Request ids are namespaced per tenant: ops of one tenant read their own; ops:all names the tenant.
    const tenant = typeof tenantParam === 'string' ? tenantParam : approver.tenant;
    if (!opsCovers(scope, tenant)) throw new HttpError(404, 'not_found', `no request ${requestId}`);
    let record;
    try {
      record = await buildAuditRecord(client, tenant, requestId);
    } catch (err) {
      if (err instanceof AuditRecordError) throw new HttpError(404, 'not_found', `no request ${requestId}`);
      throw err;
    }
    if (!opsCovers(scope, record.initiatedBy.tenant)) throw new HttpError(404, 'not_found', `no request ${requestId}`);
    logger.info({ requestId, ops: approver.id }, 'audit record read');
    res.json(record);
  });
  return router;
}
