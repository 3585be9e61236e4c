/**
 * The wire contract of toolgate: requests, policy decisions, approval plans, outcomes.
 *
 * Every type here is defined once as a zod schema and inferred with `z.infer`, so the client SDK,
 * the HTTP API, the activities and the workflow agree on one shape. This module is pure (no I/O)
 * because the workflow bundle imports it.
 */
import { z } from 'zod';

/** Identifiers that travel in workflow ids, URLs and search attributes. */
export const IDENTIFIER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

const identifier = (what: string) =>
  z.string({ error: `${what} must be a string` }).regex(IDENTIFIER_PATTERN, {
    error: `${what} must be 1-128 characters of letters, digits and . _ : @ -, starting with a letter or digit`,
  });

/** Who asks for a tool call. */
export const ActorSchema = z.strictObject({
  id: identifier('actor.id'),
  type: z.enum(['agent', 'human', 'service'], { error: 'actor.type must be one of agent, human, service' }),
  roles: z.array(identifier('actor.roles[]')).max(64).default([]),
});
export type Actor = z.infer<typeof ActorSchema>;

/** Someone on whose behalf the actor acts (a user behind an agent, a service behind a user). */
export const PrincipalSchema = z.strictObject({
  id: identifier('onBehalfOf[].id'),
  type: z.enum(['agent', 'human', 'service'], { error: 'onBehalfOf[].type must be one of agent, human, service' }),
});
export type Principal = z.infer<typeof PrincipalSchema>;

/** Risk classes, ordered from least to most dangerous. */
export const RISK_LEVELS = ['low', 'medium', 'high', 'critical'] as const;
export const RiskSchema = z.enum(RISK_LEVELS, { error: `risk must be one of ${RISK_LEVELS.join(', ')}` });
export type Risk = z.infer<typeof RiskSchema>;

/** Largest accepted `args` object, measured as JSON text. */
export const MAX_ARGS_BYTES = 256 * 1024;

/** Deepest nesting of objects and arrays accepted in `args`. */
export const MAX_ARGS_DEPTH = 64;

/**
 * Why `args` is not JSON data within the limits, or undefined. The walk comes first and is
 * iterative: `JSON.stringify` recurses (deep nesting overflows the stack), loops on cycles and
 * expands shared references, and it throws on BigInt; none of that may escape as a crash.
 */
function argsProblem(args: unknown): string | undefined {
  const pending: [unknown, number][] = [[args, 0]];
  let nodes = 0;
  while (pending.length > 0) {
    const [value, depth] = pending.pop() as [unknown, number];
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_ARGS_DEPTH) return `args must nest at most ${MAX_ARGS_DEPTH} levels deep`;
    for (const [key, item] of Object.entries(value)) {
      if (++nodes > MAX_ARGS_BYTES) return `args must serialize to at most ${MAX_ARGS_BYTES} bytes of JSON`;
      // Canonical JSON (the digests approvals bind to) has no form for a lone surrogate.
      if (!key.isWellFormed() || (typeof item === 'string' && !item.isWellFormed())) return 'args must hold well-formed Unicode text (no lone surrogates)';
      pending.push([item, depth + 1]);
    }
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(args);
  } catch (error) {
    return `args must be JSON data: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
  }
  if (text === undefined || text.length > MAX_ARGS_BYTES) return `args must serialize to at most ${MAX_ARGS_BYTES} bytes of JSON`;
  return undefined;
}

const argsSchema = z.record(z.string(), z.unknown(), { error: 'args must be an object' }).superRefine((value, ctx) => {
  const problem = argsProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * Kinds of content nobody vouches for, as an agent runtime labels where an argument's value came
 * from: retrieved documents (RAG), web pages, earlier tools' outputs, files users uploaded, e-mail.
 */
export const PROVENANCE_KINDS = ['retrieved_document', 'web_page', 'tool_output', 'user_upload', 'email', 'other'] as const;
export type ProvenanceKind = (typeof PROVENANCE_KINDS)[number];

/** Bounds of a request's provenance (it travels in the signed request and in every history). */
export const PROVENANCE_LIMITS = Object.freeze({ paths: 64, pathChars: 256, sources: 100, sourceChars: 256, modelChars: 256 });

/** One step of an argument path: an object key, or an array index. */
export type ArgPathSegment = string | number;

/** Keys written `.key` in an argument path; any other key is written `["key"]` (JSON string syntax). */
const PLAIN_PATH_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * Reads an argument path — `args.to`, `args.items[0].url`, `args["reply to"]`, or `args` for all
 * of them — into its steps. Only the canonical spelling (what `formatArgPath` writes) is accepted,
 * so one argument has one name in the signed request, in policy and in the record.
 */
export function parseArgPath(path: string): { segments: ArgPathSegment[] } | { error: string } {
  if (!path.startsWith('args')) return { error: 'an argument path starts with "args" (args.to, args.items[0].url)' };
  const segments: ArgPathSegment[] = [];
  let at = 4;
  while (at < path.length) {
    const rest = path.slice(at);
    const name = /^\.([A-Za-z_][A-Za-z0-9_-]*)/.exec(rest);
    const index = /^\[(0|[1-9][0-9]{0,8})\]/.exec(rest);
    const quoted = /^\[("(?:[^"\\]|\\.)*")\]/.exec(rest);
    const step = name ?? index ?? quoted;
    if (!step) return { error: `cannot read the path at character ${at + 1}: write .name, [index] or ["key"] (args.to, args.items[0].url)` };
    if (name) segments.push(name[1] as string);
    else if (index) segments.push(Number(index[1]));
    else {
      try {
        segments.push(JSON.parse(quoted?.[1] as string) as string);
      } catch {
        return { error: `the key at character ${at + 2} is not a JSON string` };
      }
    }
    at += step[0].length;
  }
  const canonical = formatArgPath(segments);
  if (canonical !== path) return { error: `write this path as ${canonical}` };
  return { segments };
}

/** Writes an argument path in its one canonical spelling (`args.items[0].url`, `args["reply to"]`). */
export function formatArgPath(segments: readonly ArgPathSegment[]): string {
  return `args${segments.map((step) => (typeof step === 'number' ? `[${step}]` : PLAIN_PATH_KEY.test(step) ? `.${step}` : `[${JSON.stringify(step)}]`)).join('')}`;
}

/** Whether `args` holds a value at `segments` (an own key of an object, an index of an array). */
export function hasArgPath(args: unknown, segments: readonly ArgPathSegment[]): boolean {
  let value: unknown = args;
  for (const step of segments) {
    if (typeof step === 'number') {
      if (!Array.isArray(value) || step >= value.length) return false;
      value = value[step];
    } else {
      if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, step)) return false;
      value = (value as Record<string, unknown>)[step];
    }
  }
  return true;
}

const provenanceText = (what: string, max: number) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, { error: `${what} must not be empty` })
    .max(max, { error: `${what} must be at most ${max} characters` })
    .refine((text) => text.isWellFormed(), { error: `${what} must be well-formed Unicode text (no lone surrogates)` });

/**
 * What the agent runtime says about the content behind a request: which arguments came from
 * untrusted content (`untrusted`: argument path → kinds), and how the prompt was assembled
 * (`prompt`: model, SHA-256 of the system prompt, ids of the retrieved sources).
 *
 * A claim from outside the trust boundary: the front door signs it with the request, so nobody
 * can change it after admission, but it is only as honest as the runtime that made it. Policy
 * may use it to be stricter (an argument flagged untrusted needs approval), never to grant more:
 * an argument without a flag is not thereby trusted.
 */
export const ProvenanceSchema = z.strictObject(
  {
    untrusted: z
      .record(
        z.string(),
        z
          .array(
            z.enum(PROVENANCE_KINDS, {
              error: (issue) =>
                `${JSON.stringify(String(issue.input).slice(0, 40))} is not a kind of untrusted content; allowed: ${PROVENANCE_KINDS.join(', ')}`,
            }),
            { error: `each argument path must map to a list of kinds (${PROVENANCE_KINDS.join(', ')})` },
          )
          .min(1, { error: `list at least one kind (${PROVENANCE_KINDS.join(', ')})` })
          .refine((kinds) => new Set(kinds).size === kinds.length, { error: 'lists a kind twice' }),
        { error: 'provenance.untrusted must be an object of argument paths (args.to) to lists of kinds' },
      )
      .superRefine((untrusted, ctx) => {
        const paths = Object.keys(untrusted);
        if (paths.length > PROVENANCE_LIMITS.paths)
          ctx.addIssue({ code: 'custom', message: `provenance.untrusted may flag at most ${PROVENANCE_LIMITS.paths} argument paths` });
        for (const path of paths.slice(0, PROVENANCE_LIMITS.paths + 1)) {
          if (path.length > PROVENANCE_LIMITS.pathChars) {
            ctx.addIssue({ code: 'custom', path: [path.slice(0, 64)], message: `an argument path must be at most ${PROVENANCE_LIMITS.pathChars} characters` });
            continue;
          }
          const parsed = parseArgPath(path);
          if ('error' in parsed) ctx.addIssue({ code: 'custom', path: [path], message: `not an argument path: ${parsed.error}` });
        }
      })
      .optional(),
    prompt: z
      .strictObject(
        {
          model: provenanceText('provenance.prompt.model', PROVENANCE_LIMITS.modelChars).optional(),
          systemPromptDigest: z
            .string({ error: 'provenance.prompt.systemPromptDigest must be a string' })
            .regex(/^[a-f0-9]{64}$/, { error: 'provenance.prompt.systemPromptDigest must be the SHA-256 of the system prompt as 64 lowercase hex characters' })
            .optional(),
          sources: z
            .array(provenanceText('provenance.prompt.sources[]', PROVENANCE_LIMITS.sourceChars), {
              error: 'provenance.prompt.sources must be a list of source ids',
            })
            .max(PROVENANCE_LIMITS.sources, { error: `provenance.prompt.sources may list at most ${PROVENANCE_LIMITS.sources} ids` })
            .optional(),
        },
        { error: 'provenance.prompt must be an object with model, systemPromptDigest and sources' },
      )
      .optional(),
  },
  { error: 'provenance must be an object with untrusted and prompt' },
);
export type Provenance = z.infer<typeof ProvenanceSchema>;

/** Every flagged path of a request must name an argument it has: a flag on nothing would guard nothing. */
function checkProvenancePaths(request: { args?: unknown; provenance?: Provenance }, ctx: z.RefinementCtx): void {
  const untrusted = request.provenance?.untrusted;
  if (!untrusted || request.args === null || typeof request.args !== 'object') return;
  for (const path of Object.keys(untrusted).slice(0, PROVENANCE_LIMITS.paths)) {
    const parsed = parseArgPath(path);
    if ('segments' in parsed && !hasArgPath(request.args, parsed.segments)) {
      ctx.addIssue({ code: 'custom', path: ['provenance', 'untrusted', path], message: `${path} is not an argument of this request` });
    }
  }
}

/** The kinds of linked request: a break-glass override of a denial, or the rollback of a completed request. */
export const LINK_KINDS = ['override', 'rollback'] as const;
export type LinkKind = (typeof LINK_KINDS)[number];

/**
 * What ties a request to an earlier one of the same tenant: an override re-runs a denied request
 * (same tool, arguments and actor) under a break-glass rule; a rollback runs the undo tool the
 * original's manifest names. `by` is the person who asked, as the approval API authenticated them:
 * neither they nor the original's requesters may approve it.
 */
export const RequestLinkSchema = z.strictObject({
  kind: z.enum(LINK_KINDS, { error: `link.kind must be one of ${LINK_KINDS.join(', ')}` }),
  requestId: identifier('link.requestId'),
  /** The original request's tool. */
  tool: identifier('link.tool'),
  by: z.strictObject({ id: identifier('link.by.id'), groups: z.array(identifier('link.by.groups[]')).max(64) }),
  reason: z
    .string({ error: 'link.reason must be a string' })
    .trim()
    .min(1, { error: 'link.reason must say why (1-2000 characters)' })
    .max(2000, { error: 'link.reason must be at most 2000 characters' })
    .refine((text) => text.isWellFormed(), { error: 'link.reason must be well-formed Unicode text (no lone surrogates)' }),
});
export type RequestLink = z.infer<typeof RequestLinkSchema>;

/** The fields of a tool request; the exported schemas add the checks across fields. */
const toolRequestFields = z.strictObject({
  requestId: identifier('requestId').optional(),
  actor: ActorSchema,
  tenant: identifier('tenant'),
  environment: identifier('environment'),
  tool: identifier('tool'),
  args: argsSchema.default({}),
  /** The chain of principals behind the actor, nearest first; none of them may approve the request. */
  onBehalfOf: z.array(PrincipalSchema).max(8, { error: 'onBehalfOf may list at most 8 principals' }).optional(),
  reason: z
    .string()
    .max(2000, { error: 'reason must be at most 2000 characters' })
    .refine((text) => text.isWellFormed(), { error: 'reason must be well-formed Unicode text (no lone surrogates)' })
    .optional(),
  // It travels as an HTTP header (x-toolgate-trace-id) to http tools: only what every header can carry.
  traceId: z
    .string()
    .max(256, { error: 'traceId must be at most 256 characters' })
    .regex(/^[\x21-\x7e]+$/, { error: 'traceId must be 1 to 256 visible ASCII characters (no spaces or control characters), as it is sent as an HTTP header' })
    .optional(),
  /**
   * The agent runtime's account of untrusted content behind the request (see `ProvenanceSchema`):
   * signed with the request, shown to approvers, kept in the record. Policy reads it through
   * `provenance`, `untrusted(path)` and `untrusted_any()`, to be stricter only.
   */
  provenance: ProvenanceSchema.optional(),
  /**
   * Set only by the approval API, never by an agent (the front door's body has no such field): this
   * request overrides the denial of `link.requestId` (break-glass) or rolls back that completed
   * request with its manifest's undo tool. Signed with the rest of the request.
   */
  link: RequestLinkSchema.optional(),
});

/** A tool call as an agent submits it; `requestId` may be left out and is then generated. */
export const ToolRequestInputSchema = toolRequestFields.superRefine(checkProvenancePaths);
export type ToolRequestInput = z.input<typeof ToolRequestInputSchema>;

/** A validated tool call with its idempotency key (`requestId`) fixed. */
export const ToolRequestSchema = toolRequestFields.extend({ requestId: identifier('requestId') }).superRefine(checkProvenancePaths);
export type ToolRequest = z.infer<typeof ToolRequestSchema>;

/**
 * The input of the toolRequest workflow: the request, and the front door's signed assertion that
 * it admitted exactly this request for the identity its credential carries. A workflow whose
 * assertion does not verify ends as `unverified_request` without evaluating or executing anything.
 */
export interface ToolRequestStart {
  request: ToolRequest;
  /** The front door's request assertion (compact JWS, see src/shared/assertions.ts). */
  admission: string;
}

/** Why a request was refused before any approval or execution. */
export const DENIAL_CODES = [
  'invalid_request',
  'unknown_tool',
  'invalid_arguments',
  'environment_not_allowed',
  'tenant_not_allowed',
  'role_not_allowed',
  'rule_denied',
  'policy_unavailable',
  'rate_limited',
  'kill_switch',
  'unverified_request',
  'manifest_changed',
  /** A break-glass override that no break-glass rule of the policy allows (or a request that was not denied). */
  'override_refused',
  /** A rollback the original's manifest does not allow (no undo tool, or not this one). */
  'rollback_refused',
] as const;
export type DenialCode = (typeof DENIAL_CODES)[number];

/** One step of an approval plan's escalation: after `afterMs` from the request, `groups` are notified and may approve. */
export interface EscalationTier {
  afterMs: number;
  groups: string[];
}

/**
 * A resolved approval plan, carried inside the decision so the workflow needs nothing else.
 * Approval is reached when at least `minApprovals` distinct people approved and, when `allOf` is
 * set, each listed group was filled by a different person.
 */
export interface ApprovalPlan {
  name: string;
  groups: string[];
  allOf: string[];
  minApprovals: number;
  /** Distinct rejections that end the request. @default 1 */
  rejectionsToDeny: number;
  escalation: EscalationTier[];
  expiresAfterMs: number;
  /** Re-notify the eligible groups at this interval while the request waits; absent = no reminders. */
  remindEveryMs?: number;
  /**
   * The end user in the conversation (the request's first `onBehalfOf` principal) may confirm the
   * call through the agent framework (channel `end_user`): their confirmation alone satisfies the
   * plan, and their refusal rejects it. Never counted as an approver's vote. Absent = not accepted.
   */
  endUser?: true;
}

/**
 * A break-glass override of a denial, as policy granted it to a linked `override` request: which
 * rule allowed it, what it overrides, who asked and why, and the groups that are always notified.
 */
export interface OverrideGrant {
  /** The break-glass rule's name. */
  breakGlass: string;
  deniedRule: string;
  deniedCode: DenialCode;
  deniedReasons: string[];
  /** The person who asked for the override (`link.by.id`). */
  by: string;
  reason: string;
  /** Groups notified of the override (security), whatever its outcome. */
  notify: string[];
}

/** The policy's verdict on one request. */
export interface PolicyDecision {
  outcome: 'allow' | 'deny' | 'approve';
  tool: string;
  risk: Risk;
  /** The rule that decided, `tool:<name>` for the tool's defaults, or the check that refused. */
  rule: string;
  reasons: string[];
  code?: DenialCode;
  policyDigest: string;
  approval?: ApprovalPlan;
  /** The identity the side effect runs as (from the tool manifest). */
  runAs?: string;
  /** The digest of the tool's manifest entry: its identity, not just its name. */
  toolDigest?: string;
  /**
   * Who signed that manifest entry, verified against the deployment's trusted keys when the
   * policy was loaded (co-signed manifests; absent when the entry carries no verified signature).
   */
  toolSigners?: ManifestSigner[];
  /**
   * Set when a break-glass rule turned a denial of a linked `override` request into an approval
   * round by a second person: the decision is then `approve` with the rule's plan.
   */
  override?: OverrideGrant;
}

/** A verified signer of a tool's manifest entry: the role it signed as and its key id (`k-<16 hex>`). */
export interface ManifestSigner {
  role: string;
  key: string;
}

/**
 * What an approver signs off: everything that determines the side effect. Its `digest`
 * (SHA-256 over RFC 8785 canonical JSON) binds approvals to this exact request.
 */
export interface Proposal {
  requestId: string;
  workflowId: string;
  tenant: string;
  environment: string;
  actor: Actor;
  /** The actor followed by the principals it acts for. */
  actorChain: Principal[];
  tool: { name: string; digest: string };
  args: Record<string, unknown>;
  policyDigest: string;
  decision: { outcome: PolicyDecision['outcome']; risk: Risk; rule: string };
  approval: ApprovalPlan | null;
  /**
   * The request's provenance (untrusted arguments, prompt metadata), when it has one: approvers
   * see it and sign it with the rest. Absent otherwise, so earlier proposals keep their digests.
   */
  provenance?: Provenance;
  /**
   * The tool's dry-run preview, when its manifest declares one: what the call says it would do,
   * redacted and cut, or why there is no answer. Approvers see it and sign it with the rest;
   * absent for tools without a preview, so their proposals keep their digests.
   */
  preview?: ProposalPreview;
  /** The earlier request this one overrides or rolls back, who asked and why (linked requests only). */
  link?: RequestLink;
  /** The break-glass grant, on an override: approvers sign that they override this denial. */
  override?: OverrideGrant;
}

/**
 * What a tool's dry-run preview answered, as approvers are shown it: `ok` with the answer
 * (redacted with every rule; when `truncated`, the answer's text cut to the manifest's
 * `preview.max_bytes`; `bytes` is its JSON size before redaction), or `failed` / `timed_out`
 * with a redacted message. Either way the approval goes on.
 */
export type ProposalPreview =
  | { status: 'ok'; result: unknown; bytes: number; truncated?: boolean; redactions?: Record<string, number>; at: string }
  | { status: 'failed' | 'timed_out'; message: string; at: string };

/**
 * How a shadow policy's decision compares with the enforced policy's own decision (before kill
 * switches and rate limits): `agree`, or a kind of change as `toolgate policy replay` names them
 * (`allow->deny`, `plan`, `risk`, …, see src/policy/replay.ts).
 */
export type ShadowDisagreementKind = `${PolicyDecision['outcome']}->${PolicyDecision['outcome']}` | 'plan' | 'risk';

/**
 * A candidate policy's decision on a live request, recorded beside the enforced one and never
 * acted on. `unavailable`: the shadow policy could not decide (not loaded); `not_comparable`: no
 * enforced policy was in force, so there is nothing to compare with.
 */
export type ShadowDecision =
  | {
      kind: 'agree' | 'not_comparable' | ShadowDisagreementKind;
      policyDigest: string;
      outcome: PolicyDecision['outcome'];
      rule: string;
      risk: Risk;
      /** The approval plan's name, for `approve`. */
      plan?: string;
      /** The denial code, for `deny`. */
      code?: DenialCode;
      /** What differs, for `plan` and `risk`. */
      detail?: string;
    }
  | { kind: 'unavailable'; reason: string };

/** The result of the policy activity: the decision, and the proposal with its digest when there is one. */
export interface Evaluation {
  decision: PolicyDecision;
  proposal?: Proposal;
  digest?: string;
  /**
   * The shadow policy's decision on the same request, when the worker runs one. Informational:
   * nothing reads it to decide, approve or execute. Inside the evaluation, so the seal covers it.
   */
  shadow?: ShadowDecision;
  /**
   * Set when policy asks for approval and the tool declares a dry-run preview: the preview's
   * timeout. The workflow then runs the preview (activity `previewTool`) before approvers are
   * asked, and approvals bind to the proposal with the preview in it.
   */
  previewTimeoutMs?: number;
}

/** An approver as the API has authenticated them. */
export const ApproverSchema = z.strictObject({
  id: identifier('approver.id'),
  tenant: identifier('approver.tenant'),
  groups: z.array(identifier('approver.groups[]')).max(64),
});
export type Approver = z.infer<typeof ApproverSchema>;

/** The proposal digest a decision or an end user's answer is bound to. */
const proposalDigestField = z
  .string({ error: 'digest must be a string' })
  .regex(/^[a-f0-9]{64}$/, { error: 'digest must be the 64 hex characters of the proposal digest' });

/** Why someone decided as they did (optional, shown in the record). */
const decisionReasonField = z
  .string()
  .max(2000, { error: 'reason must be at most 2000 characters' })
  .refine((text) => text.isWellFormed(), { error: 'reason must be well-formed Unicode text (no lone surrogates)' })
  .optional();

/** The body of `POST /v1/approvals/:id/preview`: edited arguments to judge, against the proposal the approver read. */
export const PreviewBodySchema = z.strictObject({
  digest: proposalDigestField,
  args: argsSchema,
});

/** An approver's decision as the HTTP API accepts it. */
export const DecisionBodySchema = z
  .strictObject({
    decision: z.enum(['approve', 'reject', 'edit'], { error: 'decision must be "approve", "reject" or "edit"' }),
    digest: proposalDigestField,
    reason: decisionReasonField,
    /** The changed arguments, for `edit` only: they replace the proposal's arguments. */
    args: argsSchema.optional(),
  })
  .refine((body) => (body.decision === 'edit') === (body.args !== undefined), {
    error: 'args must be given with decision "edit", and only then',
    path: ['args'],
  });
export type DecisionBody = z.infer<typeof DecisionBodySchema>;

/**
 * How a decision reached the gateway: the approval API, a one-click link, or the end user in the
 * conversation through the agent framework's own confirmation (relayed by the front door).
 */
export type DecisionChannel = 'api' | 'link' | 'end_user';

/**
 * The end user's answer to a plan that accepts it (`endUser`), relayed by the agent runtime:
 * `approve` confirms, `reject` declines, `edit` adjusts the arguments (policy judges them again and
 * the adjusted call counts as confirmed when the new plan accepts the end user too). Recorded as
 * "confirmed by the end user", never as an approver's vote.
 */
export interface EndUserConfirmation {
  /** The end user's id (the request's first `onBehalfOf` principal, canonical form). */
  principal: string;
  decision: 'approve' | 'reject' | 'edit';
  digest: string;
  at: string;
  reason?: string;
}

/** The body of `POST /v1/tool-requests/:id/confirmation`: the end user's answer, bound to the digest they were shown. */
export const ConfirmationBodySchema = z
  .strictObject({
    decision: z.enum(['confirm', 'decline', 'adjust'], { error: 'decision must be "confirm", "decline" or "adjust"' }),
    digest: proposalDigestField,
    reason: decisionReasonField,
    /** The adjusted arguments, for `adjust` only. */
    args: argsSchema.optional(),
  })
  .refine((body) => (body.decision === 'adjust') === (body.args !== undefined), {
    error: 'args must be given with decision "adjust", and only then',
    path: ['args'],
  });
export type ConfirmationBody = z.infer<typeof ConfirmationBodySchema>;

/** A decision with the approver who made it, as the workflow has verified it (and as the approval rules judge it). */
export interface DecideInput extends DecisionBody {
  approver: Approver;
  /** @default 'api' */
  via?: DecisionChannel;
  /** The single-use nonce (`jti`) of the one-click link the decision came through. */
  linkNonce?: string;
}

/**
 * The argument of the `decide` update: only the approval API's signed decision assertion. The
 * workflow takes the decision, the approver and everything else from the verified assertion.
 */
export interface DecideUpdateInput {
  assertion: string;
}

/**
 * A decision attempt the gateway refused, kept in the request's record. Only attempts of
 * authenticated approvers are recorded (capped per request and per approver); anonymous or
 * unverifiable attempts go to logs and metrics.
 */
export interface RefusalRecord {
  /** The verified approver id (null only in records of requests from before signed decisions). */
  approverId: string | null;
  /** An id the caller claimed but that could not be verified. */
  claimedId?: string;
  tenant?: string;
  via: DecisionChannel;
  decision?: string;
  digest?: string;
  /** A stable code: digest_mismatch, not_eligible, self_approval, wrong_tenant, duplicate_vote, not_pending, link_reused, invalid_token, ... */
  code: string;
  message: string;
  at: string;
}

/** An approver's change of the arguments, which opened a new approval round. */
export interface EditRecord {
  editorId: string;
  at: string;
  fromDigest: string;
  toDigest?: string;
  args: Record<string, unknown>;
  reason?: string;
}

/** One recorded vote. */
export interface ApprovalRecord {
  approverId: string;
  groups: string[];
  decision: 'approve' | 'reject';
  reason?: string;
  digest: string;
  at: string;
  tier: number;
  /** @default 'api' */
  via?: DecisionChannel | 'edit';
}

/** One notification sent to approver groups. */
export interface NotificationRecord {
  /** `override`: the groups a break-glass rule names (security) are told an override round opened; they get no decision link. */
  kind: 'requested' | 'escalated' | 'reminder' | 'outcome' | 'override';
  tier: number;
  groups: string[];
  at: string;
}

/** Where a request stands. */
export const REQUEST_STATES = [
  'evaluating',
  'pending_approval',
  'reevaluating',
  'executing',
  'completed',
  'denied',
  'rejected',
  'expired',
  'failed',
  'outcome_unknown',
] as const;
export type RequestState = (typeof REQUEST_STATES)[number];

/** A snapshot of one request, served by the status query. */
export interface RequestStatus {
  requestId: string;
  workflowId: string;
  state: RequestState;
  tenant: string;
  environment: string;
  tool: string;
  actor: Actor;
  /** The principals the actor acts for; like the actor, none of them may approve. */
  onBehalfOf?: Principal[];
  reason?: string;
  traceId?: string;
  decision?: PolicyDecision;
  proposal?: Proposal;
  digest?: string;
  /** ISO time after which the request can no longer be approved. */
  expiresAt?: string;
  /** Index of the escalation tier reached; 0 before any escalation. */
  tier: number;
  /** Groups whose members may approve at this moment. */
  eligibleGroups: string[];
  /** Every accepted vote, across approval rounds (each vote names the digest it approved). */
  approvals: ApprovalRecord[];
  /** Refused decision attempts of authenticated approvers, within the history bounds (see HISTORY_BOUNDS). */
  refusals: RefusalRecord[];
  /** Refused attempts beyond the bounds, which are logged but not recorded (counted only by requests from before signed decisions). */
  refusalsDropped: number;
  /** Edits before approval; each opened a new round with a new digest. */
  edits: EditRecord[];
  notifications: NotificationRecord[];
  /** The kill order that denied the request, if one did. */
  killedBy?: KillOrder;
  /** The earlier request this one overrides or rolls back (set by the approval API, signed with the request). */
  link?: RequestLink;
  /** The end user's answers through the agent framework, across rounds (bounded like votes). */
  confirmations?: EndUserConfirmation[];
  outcome?: ToolOutcome;
}

/** What left the gateway with a result: its JSON size before redaction and the replacements per redaction rule. */
export interface EgressEvent {
  bytes: number;
  redactions: Record<string, number>;
}

/** Why the result of a tool that acted is not returned. */
export interface ResultWithheld {
  /** `tenant_mismatch` (a record of another tenant), `result_too_large` (above the tool's limit or the adapter's). */
  code: 'tenant_mismatch' | 'result_too_large';
  reason: string;
}

/** What the side effect produced and who it ran as. */
export interface Execution {
  runAs: string;
  idempotencyKey: string;
  startedAt: string;
  finishedAt: string;
  attempts: number;
}

interface OutcomeBase {
  requestId: string;
  workflowId: string;
  tool: string;
  tenant: string;
  actor: Actor;
  risk: Risk;
  rule: string;
  policyDigest: string;
  digest?: string;
  approvals: ApprovalRecord[];
  /** The end user's confirmation the call ran on, when a plan accepted one (never an approver's vote). */
  confirmation?: EndUserConfirmation;
  /** The break-glass override this request ran under, when it did. */
  override?: OverrideGrant;
}

/** The end of a tool request, as the agent receives it. */
export type ToolOutcome =
  | (OutcomeBase & {
      status: 'completed';
      result: unknown;
      /** The arguments executed: the approved proposal's. */
      args: Record<string, unknown>;
      execution: Execution;
      /** Who changed the arguments before approving, when someone did. */
      editedBy?: string[];
      /** The proposal that was approved and executed (its digest is `digest`). */
      proposal?: Proposal;
      /** The egress filter's account of the result (size, redactions); absent in histories from before egress filtering. */
      egress?: EgressEvent;
      /**
       * The tool acted, but its result may not leave the gateway (another tenant's record, too
       * large): `result` is null and this says why. The side effect happened; do not repeat it.
       */
      withheld?: ResultWithheld;
    })
  | (OutcomeBase & { status: 'denied'; code: DenialCode; reasons: string[] })
  | (OutcomeBase & { status: 'rejected'; rejectedBy: string; reason?: string })
  | (OutcomeBase & { status: 'expired'; expiresAt: string })
  | (OutcomeBase & { status: 'failed'; error: { type: string; message: string }; execution?: Execution })
  | (OutcomeBase & { status: 'outcome_unknown'; error: { type: string; message: string }; execution?: Execution });

/** A kill switch: while it is on, requests in its scope are refused and pending ones denied. */
export interface KillSwitch {
  id: string;
  tenant: string;
  /** Only this tool; absent = every tool of the tenant. */
  tool?: string;
  reason: string;
  by: string;
  at: string;
}

/** The order to deny a request because a kill switch covers it. */
export interface KillOrder {
  switchId: string;
  reason: string;
  by: string;
  at: string;
}

/** Formats zod issues as `field: message` lines, the shape every edge of toolgate reports. */
export function formatIssues(error: z.ZodError, prefix = ''): string[] {
  return error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    return `${path || '(root)'}: ${issue.message}`;
  });
}

/** A request as its agent sees it through the agent API: where it stands, and its outcome once it has one. */
export interface AgentRequestView {
  requestId: string;
  state: RequestState;
  tool?: string;
  /** Where to read the request again (agent API path). */
  statusUrl?: string;
  /** While it waits for approval: until when, and which groups may decide. */
  expiresAt?: string;
  eligibleGroups?: string[];
  message?: string;
  outcome?: ToolOutcome;
  /** The tool's result, when it completed. */
  result?: unknown;
  /**
   * While it waits under a plan that accepts the end user's confirmation: what to show them (the
   * arguments, the dry-run preview when there is one) and the digest their answer is bound to.
   * Answer with `POST /v1/tool-requests/:id/confirmation`.
   */
  endUserConfirmation?: { digest: string; args: Record<string, unknown>; preview?: ProposalPreview; plan: string };
}
