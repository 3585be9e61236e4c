/**
 * The tool request as it travels: who asks (actor, principals), the request's fields and their
 * checks, the link to an earlier request, and the workflow's start input. Every type is a zod
 * schema inferred with `z.infer`, so the client SDK, the HTTP API, the activities and the workflow
 * agree on one shape. Pure (no I/O).
 */
import { z } from 'zod';
import { hasArgPath, parseArgPath } from './arg-paths.js';
import { argsSchema, identifier } from './fields.js';
import { PROVENANCE_LIMITS, ProvenanceSchema, type Provenance } from './provenance.js';

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
