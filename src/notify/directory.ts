/**
 * The approver directory: who the approvers of each tenant are, their groups, and where each of
 * them personally receives notifications. Notifications use it to mint one link per eligible
 * person and deliver it to that person's own target. It is a YAML file, e.g.
 *
 * ```yaml
 * version: 1
 * tenants:
 *   acme:
 *     - { id: maria, groups: [manager], name: Maria Lopez, notify: "slack=https://hooks.example/T1/B2/xyz" }
 *     - { id: sam, groups: [support_lead], notify: "json=https://inbox.example/sam" }
 *     - { id: lee, groups: [manager] }
 * ```
 *
 * `notify` takes the syntax of `TOOLGATE_WEBHOOKS` entries (`slack=URL`, `json=URL` or a bare URL,
 * https or loopback). An approver without it receives no link: a decision link is a bearer
 * credential, so it goes to its approver's own target or nowhere.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { formatPolicyIssue, type PolicyIssue } from '../policy/errors.js';
import { zodIssues } from '../policy/sections.js';
import { readYaml } from '../policy/source.js';
import { canonicalId, sameIdentity } from '../shared/identity.js';
import { IDENTIFIER_PATTERN } from '../shared/index.js';
import { describeTarget, parseWebhookTarget, sameDestination, WebhookTargetError, type WebhookTarget } from './targets.js';
import { ToolgateError } from '../errors.js';

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
    // Parsed here rather than after the schema so a bad target is reported together with every
    // other problem of the file, located at its own `notify` field.
    notify: z
      .string({ error: 'must be a webhook target: slack=https://..., json=https://... or a bare https URL' })
      .transform((value, ctx): WebhookTarget => {
        try {
          return parseWebhookTarget(value);
        } catch (err) {
          if (!(err instanceof WebhookTargetError)) throw err;
          ctx.issues.push({ code: 'custom', message: err.message, input: value });
          return z.NEVER;
        }
      })
      .optional(),
  },
  { error: 'must be an approver mapping (id, groups, name, email, notify)' },
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
  /** Where this approver alone receives notifications, with their own decision link. */
  notify?: WebhookTarget;
}

/** The approver directory could not be read or is invalid; `issues` name the file, line and field. */
export class ApproverDirectoryError extends ToolgateError {
  override readonly name = 'ApproverDirectoryError';

  constructor(
    /** Every problem found, located in the file. */
    readonly issues: readonly PolicyIssue[],
    options?: { cause?: unknown },
  ) {
    super('approver_directory_invalid', `approver directory is invalid:\n${issues.map((issue) => `  ${formatPolicyIssue(issue)}`).join('\n')}`, options);
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

  /** Every approver, of every tenant, who has a personal `notify` target. */
  withPersonalTargets(): (DirectoryEntry & { notify: WebhookTarget })[] {
    return [...this.byTenant.values()].flat().filter((entry): entry is DirectoryEntry & { notify: WebhookTarget } => entry.notify !== undefined);
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
  // Personal targets seen so far, to refuse one target shared by two people: whoever reads it
  // would hold both people's links and could count as two approvers.
  const targets: { target: WebhookTarget; id: string; tenant: string }[] = [];
  for (const [tenant, approvers] of Object.entries(parsed.data.tenants)) {
    // Ids are compared in canonical form: `Maria` and `maria` are one person, who must not get
    // two entries (and so two links) for one request.
    const seen = new Map<string, string>();
    approvers.forEach((approver, index) => {
      const first = seen.get(canonicalId(approver.id));
      if (first === undefined) seen.set(canonicalId(approver.id), approver.id);
      else {
        const same = first === approver.id ? `approver ${approver.id} is listed twice` : `approver ${approver.id} is the same person as ${first}, listed twice`;
        problems.push(source.issue(['tenants', tenant, index, 'id'], `${same} in tenant ${tenant}`));
      }
      if (approver.notify) {
        const notify = approver.notify;
        const other = targets.find((seenTarget) => sameDestination(seenTarget.target, notify) && !sameIdentity(seenTarget.id, approver.id));
        if (other) {
          problems.push(
            source.issue(
              ['tenants', tenant, index, 'notify'],
              `this target (${describeTarget(notify)}/…) is also the target of approver ${other.id} in tenant ${other.tenant}; ` +
                'decision links go to one person each, so every approver needs their own target',
            ),
          );
        }
        targets.push({ target: notify, id: approver.id, tenant });
      }
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
