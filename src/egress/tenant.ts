/**
 * Tenant ownership of tool results: a result that carries another tenant's id anywhere in it is
 * refused, so a tool bug or a confused deputy cannot hand one tenant's records to another.
 */
import { ToolgateError } from '../errors.js';

/** Field names that hold a record's tenant when a tool names none. */
export const DEFAULT_TENANT_FIELDS: readonly string[] = ['tenant', 'tenant_id', 'tenantId'];

/** Thrown when a result holds a record of another tenant; `path` says where. */
export class TenantMismatchError extends ToolgateError {
  override readonly name = 'TenantMismatchError';
  /** Where the foreign id was found, e.g. `$.rows[3].tenant_id`. */
  readonly path: string;
  /** The tenant the request runs for. */
  readonly expected: string;
  /** The tenant id found in the result. */
  readonly found: string;
  constructor(path: string, expected: string, found: string) {
    super('tenant_mismatch', `result refused: ${path} belongs to tenant "${found}", not to the requesting tenant "${expected}" (egress.tenant_field)`);
    this.path = path;
    this.expected = expected;
    this.found = found;
  }
}

/** The first place in `value` where a tenant field holds another tenant's id, or `null`. */
export function findForeignTenant(value: unknown, tenant: string, fields: readonly string[] = DEFAULT_TENANT_FIELDS): { path: string; found: string } | null {
  const names = new Set(fields);
  const seen = new WeakSet<object>();
  // Iterative walk: a deeply nested result cannot overflow the stack.
  const stack: Array<[unknown, string]> = [[value, '$']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`]);
      continue;
    }
    const entries = Object.entries(v as Record<string, unknown>);
    for (const [key, inner] of entries) {
      if (!names.has(key)) continue;
      if ((typeof inner === 'string' || typeof inner === 'number') && String(inner) !== tenant) {
        return { path: `${path}${propertyPath(key)}`, found: String(inner) };
      }
    }
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, inner] = entries[i]!;
      stack.push([inner, `${path}${propertyPath(key)}`]);
    }
  }
  return null;
}

/** Throws `TenantMismatchError` when `value` holds another tenant's record. */
export function assertTenantOwnership(value: unknown, tenant: string, fields: readonly string[] = DEFAULT_TENANT_FIELDS): void {
  const foreign = findForeignTenant(value, tenant, fields);
  if (foreign) throw new TenantMismatchError(foreign.path, tenant, foreign.found);
}

function propertyPath(key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
