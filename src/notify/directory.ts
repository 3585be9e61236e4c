/**
 * The approver directory: who the approvers of each tenant are, their groups, and how to address
 * them. Notifications use it to mint one link per eligible person. It is a YAML file, e.g.
 *
 * ```yaml
 * version: 1
 * tenants:
 *   acme:
 *     - { id: maria, groups: [manager], name: Maria Lopez, email: maria@acme.example }
 *     - { id: sam, groups: [support_lead] }
 * ```
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { formatPolicyIssue, type PolicyIssue } from '../policy/errors.js';
import { zodIssues } from '../policy/load.js';
import { readYaml } from '../policy/source.js';
import { IDENTIFIER_PATTERN } from '../shared/index.js';

const identifier = (what: string) =>
  z.string({ error: `${what} must be a string` }).regex(IDENTIFIER_PATTERN, {
    error: `${what} must be 1-128 characters of letters, digits and . _ : @ -, starting with a letter or digit`,
  });

const EntrySchema = z.strictObject(
  {
    id: identifier('id'),
    groups: z.array(identifier('group'), { error: 'must be a list of groups' }).max(64, { error: 'at most 64 groups' }),
    name: z.string({ error: 'must be a string' }).min(1).max(200).optional(),
    email: z.email({ error: 'must be an email address' }).optional(),
  },
  { error: 'must be an approver mapping (id, groups, name, email)' },
);

const DirectorySchema = z.strictObject(
  {
    version: z.literal(1, { error: 'must be 1' }),
    tenants: z.record(identifier('tenant'), z.array(EntrySchema, { error: 'must be a list of approvers' }), {
      error: 'must map each tenant to its list of approvers',
    }),
  },
  { error: 'must be a mapping with version and tenants' },
);

/** One approver as the directory lists them. */
export interface DirectoryEntry {
  id: string;
  tenant: string;
  groups: string[];
  name?: string;
  email?: string;
}

/** The approver directory could not be read or is invalid; `issues` name the file, line and field. */
export class ApproverDirectoryError extends Error {
  override readonly name = 'ApproverDirectoryError';

  constructor(
    /** Every problem found, located in the file. */
    readonly issues: readonly PolicyIssue[],
    options?: { cause?: unknown },
  ) {
    super(`approver directory is invalid:\n${issues.map((issue) => `  ${formatPolicyIssue(issue)}`).join('\n')}`, options);
  }
}

/** The approvers of every tenant, looked up by tenant and group. */
export class ApproverDirectory {
  private readonly byTenant: Map<string, DirectoryEntry[]>;

  /** A directory of `entries` (ids are unique per tenant). */
  constructor(entries: readonly DirectoryEntry[]) {
    this.byTenant = new Map();
    for (const entry of entries) {
      const list = this.byTenant.get(entry.tenant) ?? [];
      list.push(entry);
      this.byTenant.set(entry.tenant, list);
    }
  }

  /** Members of `tenant` in at least one of `groups`, in directory order. */
  membersOf(tenant: string, groups: readonly string[]): DirectoryEntry[] {
    return (this.byTenant.get(tenant) ?? []).filter((entry) => entry.groups.some((group) => groups.includes(group)));
  }
}

/** Parses directory YAML; throws `ApproverDirectoryError` locating every problem. */
export function parseApproverDirectory(file: string, text: string): ApproverDirectory {
  const { source, issues } = readYaml(file, text);
  if (!source) throw new ApproverDirectoryError(issues);
  const parsed = DirectorySchema.safeParse(source.value);
  if (!parsed.success) throw new ApproverDirectoryError(zodIssues(source, parsed.error));
  const entries: DirectoryEntry[] = [];
  const problems: PolicyIssue[] = [];
  for (const [tenant, approvers] of Object.entries(parsed.data.tenants)) {
    const seen = new Set<string>();
    approvers.forEach((approver, index) => {
      if (seen.has(approver.id)) problems.push(source.issue(['tenants', tenant, index, 'id'], `approver ${approver.id} is listed twice in tenant ${tenant}`));
      seen.add(approver.id);
      entries.push({ ...approver, tenant });
    });
  }
  if (problems.length > 0) throw new ApproverDirectoryError(problems);
  return new ApproverDirectory(entries);
}

/** Reads and validates the directory file. */
export async function loadApproverDirectory(file: string): Promise<ApproverDirectory> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ApproverDirectoryError([{ file, path: '(file)', message: `cannot read: ${(err as Error).message}` }], { cause: err });
  }
  return parseApproverDirectory(file, text);
}
