/**
 * The shape of a policy file (`version: 1`), as zod schemas. Every object is strict, so an
 * unknown or misspelled key is a load error rather than a silently ignored setting.
 */
import { z } from 'zod';
import { EgressConfigSchema } from '../egress/config.js';
import { IDENTIFIER_PATTERN, PREVIEW_BOUNDS, RISK_LEVELS } from '../shared/index.js';
import { MANIFEST_KEY_ID_PATTERN, MANIFEST_SIGNATURE_PATTERN, MAX_MANIFEST_SIGNATURES } from './manifest-signatures.js';

/** The reserved approval name meaning "no human approval needed". */
export const NO_APPROVAL = 'none';

const name = (what: string) =>
  z.string({ error: `${what} must be a string` }).regex(IDENTIFIER_PATTERN, {
    error: `${what} must be 1-128 characters of letters, digits and . _ : @ -, starting with a letter or digit`,
  });

const names = (what: string) => z.array(name(what), { error: `must be a list of ${what}s` });

const risk = z.enum(RISK_LEVELS, { error: `must be one of ${RISK_LEVELS.join(', ')}` });

const approvalRef = z.string({ error: `must be "${NO_APPROVAL}" or the name of a plan under approvals` }).min(1);

const duration = z.string({ error: 'must be a duration string such as 30m, 2h or 500ms' }).min(1);

/** One ordered rule of a tool: when the CEL condition holds, it decides. */
export const RuleSchema = z.strictObject(
  {
    name: name('rule name'),
    when: z.string({ error: 'must be a CEL expression (quote it if YAML reads it as another type)' }).min(1),
    effect: z.enum(['deny', 'allow'], { error: 'must be deny or allow' }).optional(),
    risk: risk.optional(),
    approval: approvalRef.optional(),
    reason: z.string({ error: 'must be a string' }).max(2000).optional(),
  },
  { error: 'must be a rule mapping (name, when, effect, risk, approval, reason)' },
);
export type RuleDocument = z.infer<typeof RuleSchema>;

/** Who may call a tool, where, and what it takes. */
export const ToolPolicySchema = z.strictObject(
  {
    risk,
    approval: approvalRef,
    allowed_roles: names('role'),
    environments: names('environment').optional(),
    tenants: names('tenant').optional(),
    rules: z.array(RuleSchema, { error: 'must be a list of rules' }).optional(),
  },
  { error: 'must be a tool policy mapping (risk, approval, allowed_roles, ...)' },
);
export type ToolPolicyDocument = z.infer<typeof ToolPolicySchema>;

/** One escalation tier of an approval plan. */
export const EscalationSchema = z.strictObject(
  {
    after: duration,
    groups: names('group').min(1, { error: 'must name at least one group' }),
  },
  { error: 'must be an escalation tier mapping (after, groups)' },
);

/** A named approval plan. */
export const ApprovalPlanSchema = z.strictObject(
  {
    groups: names('group').optional(),
    all_of: names('group').optional(),
    min_approvals: z.int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }).max(100).optional(),
    rejections_to_deny: z.int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }).max(100).optional(),
    // Bounded so a request's history is bounded (docs/approvals.md, "History bounds").
    escalation: z.array(EscalationSchema, { error: 'must be a list of tiers' }).max(10, { error: 'at most 10 escalation tiers' }).optional(),
    remind_every: duration.optional(),
    expires_after: duration,
    /**
     * The end user in the conversation (the request's first `onBehalfOf` principal) may confirm the
     * call through the agent framework; with it, `groups` may be empty (then only the end user can).
     */
    end_user: z.boolean({ error: 'must be true or false' }).optional(),
  },
  {
    error: 'must be an approval plan mapping (groups, all_of, min_approvals, rejections_to_deny, escalation, remind_every, expires_after, end_user)',
  },
);
export type ApprovalPlanDocument = z.infer<typeof ApprovalPlanSchema>;

const CodeAdapterSchema = z.strictObject({
  type: z.literal('code'),
  handler: z.string({ error: 'must be a string' }).min(1).optional(),
});

const HttpAdapterSchema = z.strictObject({
  type: z.literal('http'),
  url: z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' }),
  method: z.enum(['POST', 'PUT', 'PATCH', 'DELETE'], { error: 'must be one of POST, PUT, PATCH, DELETE' }).optional(),
  timeout: duration.optional(),
  headers: z.record(z.string(), z.string({ error: 'header values must be strings' })).optional(),
});

/**
 * The adapter of a dry-run preview: a code handler (named: it may be the tool's own handler, which
 * then sees `context.preview`) or an HTTP endpoint (sent `Toolgate-Preview: 1`). Its timeout is the
 * preview's own (`preview.timeout`), never the adapter's; MCP tools have no preview mode to call.
 */
const PreviewAdapterSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('code'),
      handler: z.string({ error: 'must name the code handler that answers the preview' }).min(1),
    }),
    z.strictObject({
      type: z.literal('http'),
      url: z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' }),
      method: z.enum(['POST', 'PUT', 'PATCH', 'DELETE'], { error: 'must be one of POST, PUT, PATCH, DELETE' }).optional(),
      headers: z.record(z.string(), z.string({ error: 'header values must be strings' })).optional(),
    }),
  ],
  { error: 'must be a preview adapter: type code with a handler, or type http with a url (set the timeout on preview.timeout)' },
);

/**
 * A tool's dry-run preview: called with the request's arguments before approvers are asked, its
 * redacted, size-limited answer shown to them and covered by the digest they approve.
 */
export const PreviewSchema = z.strictObject(
  {
    adapter: PreviewAdapterSchema,
    /** At most PREVIEW_BOUNDS.maxTimeoutMs (checked at load). @default 5s */
    timeout: duration.optional(),
    max_bytes: z
      .int({ error: 'must be a whole number of bytes' })
      .min(PREVIEW_BOUNDS.minMaxBytes, { error: `must be at least ${PREVIEW_BOUNDS.minMaxBytes}` })
      .max(PREVIEW_BOUNDS.maxMaxBytes, { error: `must be at most ${PREVIEW_BOUNDS.maxMaxBytes} (64 KiB)` })
      .optional(),
  },
  { error: 'must be a preview mapping (adapter, timeout, max_bytes)' },
);
export type PreviewDocument = z.infer<typeof PreviewSchema>;

/** The pin of a downstream MCP tool: SHA-256 hex of its canonical definition, written by `toolgate tools pin`. */
export const PIN_PATTERN = /^[a-f0-9]{64}$/;

const McpAdapterSchema = z.strictObject({
  type: z.literal('mcp'),
  server: name('server'),
  tool: z.string({ error: 'must be the downstream tool name' }).min(1).max(256),
  pin: z
    .string({ error: 'must be the 64 hex characters written by `toolgate tools pin`' })
    .regex(PIN_PATTERN, { error: 'must be the 64 hex characters written by `toolgate tools pin`' })
    .optional(),
  timeout: duration.optional(),
});

/** How a tool is executed. */
export const AdapterSchema = z.discriminatedUnion('type', [CodeAdapterSchema, HttpAdapterSchema, McpAdapterSchema], {
  error: 'must be an adapter with type code, http or mcp',
});

/** A downstream MCP server: a command to spawn (stdio) or a Streamable HTTP URL. */
export const McpServerSchema = z.union(
  [
    z.strictObject({
      command: z.string({ error: 'must be a string' }).min(1),
      args: z.array(z.string({ error: 'args must be strings' })).optional(),
      env: z.record(z.string(), z.string({ error: 'env values must be strings' })).optional(),
      cwd: z.string({ error: 'must be a string' }).min(1).optional(),
    }),
    z.strictObject({
      url: z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' }),
      headers: z.record(z.string(), z.string({ error: 'header values must be strings' })).optional(),
    }),
  ],
  { error: 'must be a stdio server {command, args, env, cwd} or a Streamable HTTP server {url, headers}' },
);
export type McpServerDocument = z.infer<typeof McpServerSchema>;

/**
 * One signature of a manifest entry (written by `toolgate manifest sign`): the role it signs as,
 * the key's id and the Ed25519 signature over the entry's digest (see manifest-signatures.ts).
 */
export const ManifestSignatureSchema = z.strictObject(
  {
    role: name('role'),
    key: z
      .string({ error: 'must be a key id such as k-0123456789abcdef' })
      .regex(MANIFEST_KEY_ID_PATTERN, { error: 'must be a key id: k- and 16 hex digits (as toolgate manifest sign writes it)' }),
    sig: z
      .string({ error: 'must be a base64url Ed25519 signature' })
      .regex(MANIFEST_SIGNATURE_PATTERN, { error: 'must be a base64url Ed25519 signature (86 characters, as toolgate manifest sign writes it)' }),
  },
  { error: 'must be a signature mapping (role, key, sig)' },
);

/** Most arguments an undo may derive: each is a CEL expression compiled at load. */
export const MAX_UNDO_ARGS = 64;

/**
 * How a completed call of the tool is rolled back: another tool of the policy (`tool`), called
 * with arguments derived by CEL expressions over the original's `args`, its `result` (null when it
 * returned nothing) and its `request_id`. Part of the entry's digest.
 */
export const UndoSchema = z.strictObject(
  {
    tool: name('tool name'),
    args: z
      .record(
        z.string({ error: 'argument names must be strings' }).min(1, { error: 'argument names must not be empty' }).max(256),
        z.string({ error: 'must be a CEL expression (quote it if YAML reads it as another type)' }).min(1, { error: 'must be a CEL expression' }),
        { error: 'must be a map of argument name to CEL expression' },
      )
      .refine((args) => Object.keys(args).length <= MAX_UNDO_ARGS, { error: `at most ${MAX_UNDO_ARGS} arguments` }),
  },
  { error: 'must be an undo mapping (tool, args)' },
);
export type UndoDocument = z.infer<typeof UndoSchema>;

/** A tool's contract: identity, adapter and argument schema. */
export const ManifestEntrySchema = z.strictObject(
  {
    description: z.string({ error: 'must be a string' }).max(4000).optional(),
    run_as: name('run_as'),
    idempotent: z.boolean({ error: 'must be true or false' }).optional(),
    adapter: AdapterSchema,
    args: z.record(z.string(), z.unknown(), { error: 'must be a JSON Schema object' }),
    /** What may leave: redaction rules, result size, tenant field, reachable hosts (see src/egress). */
    egress: EgressConfigSchema.optional(),
    /** A dry-run call shown to approvers before they decide (part of the entry's digest). */
    preview: PreviewSchema.optional(),
    /** Signatures over the entry's digest (not part of it), checked when the deployment configures manifest signers. */
    signatures: z
      .array(ManifestSignatureSchema, { error: 'must be a list of signatures (role, key, sig)' })
      .max(MAX_MANIFEST_SIGNATURES, { error: `at most ${MAX_MANIFEST_SIGNATURES} signatures` })
      .optional(),
    /** The tool that rolls a completed call back, and how its arguments are derived (part of the entry's digest). */
    undo: UndoSchema.optional(),
  },
  { error: 'must be a manifest entry mapping (description, run_as, idempotent, adapter, args, egress, preview, signatures, undo)' },
);
export type ManifestEntryDocument = z.infer<typeof ManifestEntrySchema>;

/** A rate limit: at most `rate` requests per window for each actor, tenant, tool or actor and tool. */
export const RateLimitSchema = z.strictObject(
  {
    per: z.enum(['actor', 'tenant', 'tool', 'actor_tool'], { error: 'must be one of actor, tenant, tool, actor_tool' }),
    rate: z
      .string({ error: 'must be a rate such as "20/1m"' })
      .regex(/^\d{1,9}\/\d+(ms|s|m|h|d)?$/, { error: 'must be a rate such as "20/1m" (count/duration)' }),
    burst: z.int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }).max(1_000_000).optional(),
    tools: names('tool').optional(),
    risk: z.array(z.enum(['low', 'medium', 'high', 'critical'], { error: 'must be one of low, medium, high, critical' })).optional(),
  },
  { error: 'must be a rate limit mapping (per, rate, burst, tools, risk)' },
);
export type RateLimitDocument = z.infer<typeof RateLimitSchema>;

/**
 * A break-glass rule: who may ask to override a denial of these tools (`groups`), who is the
 * second person that approves it (`groups` too, never the asker), who is always told (`notify`)
 * and how long the second person has (`expires_after`, 1m..1h, checked at load).
 */
export const BreakGlassSchema = z.strictObject(
  {
    tools: names('tool').min(1, { error: 'must name at least one tool' }),
    groups: names('group').min(1, { error: 'must name at least one group' }),
    notify: names('group').min(1, { error: 'must name at least one group: an override is always notified' }),
    expires_after: duration,
    environments: names('environment').min(1, { error: 'must name at least one environment (or leave environments out)' }).optional(),
  },
  { error: 'must be a break-glass rule mapping (tools, groups, notify, expires_after, environments)' },
);
export type BreakGlassDocument = z.infer<typeof BreakGlassSchema>;

/** One policy file; several files are merged into one policy. */
export const PolicyFileSchema = z.strictObject(
  {
    version: z.literal(1, { error: 'must be 1' }),
    tools: z.record(name('tool name'), ToolPolicySchema, { error: 'must be a map of tool name to tool policy' }).optional(),
    approvals: z.record(name('approval plan name'), ApprovalPlanSchema, { error: 'must be a map of plan name to approval plan' }).optional(),
    manifest: z.record(name('tool name'), ManifestEntrySchema, { error: 'must be a map of tool name to manifest entry' }).optional(),
    mcp_servers: z.record(name('server name'), McpServerSchema, { error: 'must be a map of server name to MCP server' }).optional(),
    limits: z.record(name('limit name'), RateLimitSchema, { error: 'must be a map of limit name to rate limit' }).optional(),
    break_glass: z.record(name('break-glass rule name'), BreakGlassSchema, { error: 'must be a map of rule name to break-glass rule' }).optional(),
  },
  { error: 'a policy file must be a YAML mapping with version: 1 and any of tools, approvals, manifest, mcp_servers, limits, break_glass' },
);
export type PolicyFileDocument = z.infer<typeof PolicyFileSchema>;
