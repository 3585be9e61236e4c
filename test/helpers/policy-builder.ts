/**
 * A typed builder of policy files for tests, instead of inline YAML: the document is built as an
 * object whose types come from the policy schema (src/policy/document.ts), so a misspelled key is a
 * compile error in the test rather than a load error at run time, and serialized with `yaml`.
 *
 * ```ts
 * const POLICY = policy()
 *   .plan('manager', { groups: ['manager'] })
 *   .tool('refund', { risk: 'high', approval: 'manager' })
 *   .codeTool('refund', { runAs: 'svc-payments', args: argsOf({ amount: 'integer' }) })
 *   .yaml();
 * ```
 *
 * Tests of the policy language itself (parsing, error messages, the YAML text) keep their YAML:
 * this builder produces only valid-looking documents and says nothing about how YAML is read.
 */
import { stringify } from 'yaml';
import type {
  ApprovalPlanDocument,
  BreakGlassDocument,
  ManifestEntryDocument,
  McpServerDocument,
  PolicyFileDocument,
  RateLimitDocument,
  RuleDocument,
  ToolPolicyDocument,
} from '../../src/policy/document.js';
import type { Risk } from '../../src/shared/index.js';

/** The roles a tool allows when a test does not say: the test agents' usual role. */
export const DEFAULT_ROLES: readonly string[] = ['agent_runtime'];
/** How long an approval plan waits when a test does not say: longer than any test runs. */
export const DEFAULT_EXPIRES_AFTER = '1h';

/** A JSON Schema, as a manifest's `args` takes it. */
export type JsonSchema = Record<string, unknown>;
/** A property of {@link argsOf}: a JSON type name, or a whole schema. */
export type PropertySpec = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | JsonSchema;

/**
 * An object schema with these properties, e.g. `argsOf({ amount: 'integer', note: { type: 'string', maxLength: 80 } }, { required: ['amount'] })`.
 * `extra` is merged in as is (required, additionalProperties, ...).
 */
export function argsOf(properties: Record<string, PropertySpec> = {}, extra: JsonSchema = {}): JsonSchema {
  return {
    type: 'object',
    properties: Object.fromEntries(Object.entries(properties).map(([key, spec]) => [key, typeof spec === 'string' ? { type: spec } : spec])),
    ...extra,
  };
}

/** Who may call a tool (the `tools:` entry). Defaults: risk low, approval none, roles {@link DEFAULT_ROLES}. */
export interface ToolSpec {
  risk?: Risk;
  /** An approval plan's name, or `none`. */
  approval?: string;
  /** `allowed_roles`. */
  roles?: string[];
  environments?: string[];
  tenants?: string[];
  rules?: RuleDocument[];
}

/** An approval plan (the `approvals:` entry). Defaults: expires after {@link DEFAULT_EXPIRES_AFTER}. */
export interface PlanSpec {
  groups?: string[];
  allOf?: string[];
  minApprovals?: number;
  rejectionsToDeny?: number;
  escalation?: { after: string; groups: string[] }[];
  remindEvery?: string;
  expiresAfter?: string;
  endUser?: boolean;
}

/** The adapter-independent part of a manifest entry. Defaults: run as `svc-<tool>`, args `{ type: object }`. */
export interface ManifestSpec {
  runAs?: string;
  args?: JsonSchema;
  description?: string;
  idempotent?: boolean;
  egress?: ManifestEntryDocument['egress'];
  preview?: ManifestEntryDocument['preview'];
  undo?: ManifestEntryDocument['undo'];
  signatures?: ManifestEntryDocument['signatures'];
}

/** A break-glass rule. */
export interface BreakGlassSpec {
  tools: string[];
  groups: string[];
  notify: string[];
  expiresAfter: string;
  environments?: string[];
}

/** Sets `key` on `target` only when `value` is defined: the document then has no `key: null`, as hand-written YAML would not. */
function put<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}

/** Builds one policy file (see the module comment). Every method returns the builder; a later call for the same name replaces the earlier entry. */
export class PolicyBuilder {
  private readonly doc: PolicyFileDocument = { version: 1 };

  /** The `tools:` entry of `name` (who may call it, with which risk and approval). */
  tool(name: string, spec: ToolSpec = {}): this {
    const entry: ToolPolicyDocument = {
      risk: spec.risk ?? 'low',
      approval: spec.approval ?? 'none',
      allowed_roles: spec.roles ?? [...DEFAULT_ROLES],
    };
    put(entry, 'environments', spec.environments);
    put(entry, 'tenants', spec.tenants);
    put(entry, 'rules', spec.rules);
    (this.doc.tools ??= {})[name] = entry;
    return this;
  }

  /** The approval plan `name`. */
  plan(name: string, spec: PlanSpec = {}): this {
    const entry: ApprovalPlanDocument = { expires_after: spec.expiresAfter ?? DEFAULT_EXPIRES_AFTER };
    put(entry, 'groups', spec.groups);
    put(entry, 'all_of', spec.allOf);
    put(entry, 'min_approvals', spec.minApprovals);
    put(entry, 'rejections_to_deny', spec.rejectionsToDeny);
    put(entry, 'escalation', spec.escalation);
    put(entry, 'remind_every', spec.remindEvery);
    put(entry, 'end_user', spec.endUser);
    (this.doc.approvals ??= {})[name] = entry;
    return this;
  }

  /** A manifest entry run by a code handler registered with the worker (`handler` names another handler than the tool's own). */
  codeTool(name: string, spec: ManifestSpec & { handler?: string } = {}): this {
    return this.manifestEntry(name, spec, spec.handler === undefined ? { type: 'code' } : { type: 'code', handler: spec.handler });
  }

  /**
   * A manifest entry run by an HTTP endpoint. Test endpoints listen on loopback, which egress
   * refuses by default, so `egress` defaults to `{ allow_private: true }` (give `egress` to test egress itself).
   */
  httpTool(name: string, url: string, spec: ManifestSpec & { method?: 'POST' | 'PUT' | 'PATCH' | 'DELETE'; timeout?: string } = {}): this {
    const adapter: ManifestEntryDocument['adapter'] = { type: 'http', url };
    put(adapter, 'method', spec.method);
    put(adapter, 'timeout', spec.timeout);
    return this.manifestEntry(name, { egress: { allow_private: true }, ...spec }, adapter);
  }

  /** A manifest entry as written (any adapter, e.g. mcp), for what the shorthands do not cover. */
  manifest(name: string, entry: ManifestEntryDocument): this {
    (this.doc.manifest ??= {})[name] = entry;
    return this;
  }

  /** A downstream MCP server. */
  mcpServer(name: string, server: McpServerDocument): this {
    (this.doc.mcp_servers ??= {})[name] = server;
    return this;
  }

  /** A rate limit. */
  limit(name: string, limit: RateLimitDocument): this {
    (this.doc.limits ??= {})[name] = limit;
    return this;
  }

  /** A break-glass rule (its `expiresAfter` must be 1m..1h: the product's bound, checked at load). */
  breakGlass(name: string, spec: BreakGlassSpec): this {
    const entry: BreakGlassDocument = { tools: spec.tools, groups: spec.groups, notify: spec.notify, expires_after: spec.expiresAfter };
    put(entry, 'environments', spec.environments);
    (this.doc.break_glass ??= {})[name] = entry;
    return this;
  }

  /** The document (a copy: later calls do not change it). */
  document(): PolicyFileDocument {
    return structuredClone(this.doc);
  }

  /** The document as YAML, what `startGateway({ policy })` and `PolicyStore.fromSources` read. */
  yaml(): string {
    // No anchors and aliases for an object used twice: hand-written policies have none, and the
    // loader counts aliases against its limit.
    return stringify(this.doc, { aliasDuplicateObjects: false });
  }

  /** The YAML text, so a builder reads where a string is expected in a template. */
  toString(): string {
    return this.yaml();
  }

  private manifestEntry(name: string, spec: ManifestSpec, adapter: ManifestEntryDocument['adapter']): this {
    const entry: ManifestEntryDocument = { run_as: spec.runAs ?? `svc-${name}`, adapter, args: spec.args ?? { type: 'object' } };
    put(entry, 'description', spec.description);
    put(entry, 'idempotent', spec.idempotent);
    put(entry, 'egress', spec.egress);
    put(entry, 'preview', spec.preview);
    put(entry, 'undo', spec.undo);
    put(entry, 'signatures', spec.signatures);
    return this.manifest(name, entry);
  }
}

/** A new, empty policy file (`version: 1`). */
export function policy(): PolicyBuilder {
  return new PolicyBuilder();
}
