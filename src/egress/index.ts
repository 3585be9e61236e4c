/** Egress filtering: what a tool produced is size-checked, tenant-checked and redacted before it leaves. */
import { resolveEgress, type EgressConfig } from './config.js';
import { redactValue, resolveRules, type RedactionHits } from './redact.js';
import { assertResultSize } from './size.js';
import { assertTenantOwnership } from './tenant.js';

export * from './config.js';
export * from './destinations.js';
export * from './redact.js';
export * from './size.js';
export * from './tenant.js';

/** What leaves the gateway after filtering, with what was done to it. */
export interface FilteredResult<T = unknown> {
  value: T;
  /** JSON size of the result before redaction, in bytes. */
  bytes: number;
  /** Replacements per redaction rule (the egress event for the audit record). */
  redactions: RedactionHits;
}

/**
 * Filters a tool result for the requesting tenant: refuses it when too large
 * (`ResultTooLargeError`) or when it holds another tenant's record (`TenantMismatchError`), then
 * returns a redacted copy.
 */
export function filterResult<T>(value: T, options: { tenant: string; egress?: EgressConfig }): FilteredResult<T> {
  const egress = resolveEgress(options.egress);
  const bytes = assertResultSize(value, egress.maxResultBytes);
  assertTenantOwnership(value, options.tenant, egress.tenantFields);
  const { value: redacted, hits } = redactValue(value, { rules: resolveRules(egress.redact) });
  return { value: redacted, bytes, redactions: hits };
}
