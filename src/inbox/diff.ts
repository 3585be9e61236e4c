/**
 * A leaf-level diff of two JSON values, for the edit preview: what the approver's edit changes,
 * path by path (`amount`, `items[2].sku`), so a reviewer sees every changed value, not two blobs.
 */

/** One changed leaf. */
export interface DiffRow {
  path: string;
  kind: 'added' | 'removed' | 'changed';
  before?: unknown;
  after?: unknown;
}

const SIMPLE_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (SIMPLE_KEY.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

/** Leaves of `value` by path; empty objects and arrays count as leaves so their appearance shows. */
function leaves(value: unknown, path = '', out = new Map<string, unknown>(), depth = 0): Map<string, unknown> {
  if (depth > 64 || value === null || typeof value !== 'object') {
    out.set(path || '(root)', value);
    return out;
  }
  const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((item, index) => [index, item]) : Object.entries(value);
  if (entries.length === 0) out.set(path || '(root)', value);
  for (const [key, item] of entries) leaves(item, join(path, key), out, depth + 1);
  return out;
}

/** The rows that differ between `before` and `after`, in the order of `after` then removed paths. */
export function diffJson(before: unknown, after: unknown): DiffRow[] {
  const old = leaves(before);
  const now = leaves(after);
  const rows: DiffRow[] = [];
  for (const [path, value] of now) {
    if (!old.has(path)) rows.push({ path, kind: 'added', after: value });
    else if (JSON.stringify(old.get(path)) !== JSON.stringify(value)) rows.push({ path, kind: 'changed', before: old.get(path), after: value });
  }
  for (const [path, value] of old) if (!now.has(path)) rows.push({ path, kind: 'removed', before: value });
  return rows;
}
