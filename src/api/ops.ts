/**
 * Who counts as ops: an approver token (same issuer, same checks) whose groups include `ops`
 * (their own tenant) or `ops:all` (every tenant). Ops may read audit records and use the codec
 * endpoint that shows decrypted payloads in the Temporal UI.
 */
import type { Request } from 'express';
import type { Approver } from '../shared/index.js';

/** The group that makes an approver ops for their own tenant. */
export const OPS_GROUP = 'ops';
/** The group that makes an approver ops for every tenant. */
export const OPS_ALL_TENANTS_GROUP = 'ops:all';

/** What an ops caller may see: their tenant, or every tenant. */
export interface OpsScope {
  approver: Approver;
  allTenants: boolean;
}

/** The ops scope of an approver, or undefined when they are not ops. */
export function opsScope(approver: Approver): OpsScope | undefined {
  if (approver.groups.includes(OPS_ALL_TENANTS_GROUP)) return { approver, allTenants: true };
  if (approver.groups.includes(OPS_GROUP)) return { approver, allTenants: false };
  return undefined;
}

/** Whether an ops scope covers a tenant. */
export function opsCovers(scope: OpsScope, tenant: string): boolean {
  return scope.allTenants || scope.approver.tenant === tenant;
}

/** The bearer token of a request, or undefined. */
export function bearerToken(req: Request): string | undefined {
  const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(req.get('authorization') ?? '');
  return match?.[1];
}
