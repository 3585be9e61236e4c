/**
 * The loaded, compiled form of a policy: what `decide()` reads. Everything here is built once at
 * load time so a decision is a few map lookups and the tool's own rules.
 */
import type { RateLimitRule } from './limits.js';
import type { EgressConfig } from '../egress/config.js';
import type { ApprovalPlan, ManifestSigner, Risk } from '../shared/index.js';
import type { ArgsValidator } from './args-schema.js';
import type { Condition } from './condition.js';

/** A tool's contract from the manifest: identity, adapter and the digest that names this version of it. */
export interface ToolManifestEntry {
  name: string;
  description?: string;
  runAs: string;
  idempotent: boolean;
  adapter:
    | { type: 'code'; handler: string }
    | { type: 'http'; url: string; method: 'POST' | 'PUT' | 'PATCH' | 'DELETE'; timeoutMs: number; headers: Record<string, string> }
    | McpAdapter;
  /** SHA-256 hex of the RFC 8785 canonical JSON of `{ name, manifest }` (the entry as written, without its `signatures`: see `manifestDigest`). */
  digest: string;
  /**
   * The entry's `egress:` block as written (defaults applied by `resolveEgress`): what the
   * execution activity filters results and destinations with. Part of `digest`. @default {}
   */
  egress: EgressConfig;
  /** The entry's `args` JSON Schema as written: what approvers' edit forms are built from. */
  argsSchema?: Record<string, unknown>;
  /**
   * The verified signers of `digest`, sorted by role (see manifest-signatures.ts); absent when the
   * deployment configures no manifest signers or the entry carries no signature.
   */
  signers?: ManifestSigner[];
  /** The entry's dry-run preview (`preview:`), shown to approvers before they decide; part of `digest`. */
  preview?: ToolPreview;
  /**
   * How a completed call is rolled back (`undo:` as written; part of `digest`): the undo tool, and
   * a CEL expression per argument over the original's `args`, `result` and `request_id`. Derive the
   * arguments with `deriveUndoArgs` (src/policy/undo.ts).
   */
  undo?: { tool: string; args: Record<string, string> };
}

/** An undo argument's CEL expression, compiled: returns the CEL value or throws. */
export type UndoExpression = (input: { args: Record<string, unknown>; result: unknown; request_id: string }) => unknown;

/**
 * A break-glass rule (`break_glass.<name>`), resolved: a denial of one of `tools` (in one of
 * `environments`, when listed) may be overridden by a member of `groups`, approved by another
 * member of `groups` within `expiresAfterMs`, and `notify` is always told.
 */
export interface BreakGlassRule {
  name: string;
  /** The tools whose denials it may override (each a tool of the policy). */
  tools: readonly string[];
  /** Who may ask for the override, and who may be the second person. */
  groups: readonly string[];
  /** Groups notified when the override is asked for and when it ends, whatever its outcome. */
  notify: readonly string[];
  /** The second person's window, between 1 minute and 1 hour. */
  expiresAfterMs: number;
  /** Only in these environments; absent: any environment. */
  environments?: readonly string[];
}

/**
 * A tool's dry-run preview, resolved: the adapter called with `preview: true` (code) or
 * `Toolgate-Preview: 1` (http), under the tool's `run_as`, at most once per approval round.
 */
export interface ToolPreview {
  /** An http preview's `timeoutMs` is the preview's own, so the HTTP adapter stops at it too. */
  adapter: { type: 'code'; handler: string } | Extract<ToolManifestEntry['adapter'], { type: 'http' }>;
  /** At most PREVIEW_BOUNDS.maxTimeoutMs. */
  timeoutMs: number;
  /** What approvers are shown of the answer, in UTF-8 bytes (redacted first, then cut). */
  maxBytes: number;
}

/** How to reach a downstream MCP server. */
export type McpServerConnection =
  | { transport: 'stdio'; command: string; args: string[]; env: Record<string, string>; cwd?: string }
  | { transport: 'http'; url: string; headers: Record<string, string> };

/** A tool served by a downstream MCP server, with the server resolved from `mcp_servers`. */
export interface McpAdapter {
  type: 'mcp';
  /** The server's name under `mcp_servers`. */
  server: string;
  /** The tool's name on that server. */
  tool: string;
  /** SHA-256 hex of the pinned definition; absent until `toolgate tools pin` wrote it. */
  pin?: string;
  timeoutMs: number;
  connection: McpServerConnection;
  /**
   * The code-handler name a worker without native MCP dispatch looks up, `mcp:<server>/<tool>`:
   * register `mcpToolHandlers(policy)` under it (see src/mcp/executor.ts).
   */
  handler: string;
}

/** One rule of a tool, with its condition compiled. */
export interface CompiledRule {
  name: string;
  /** `<tool>/<rule name>`, the `rule` of decisions it makes. */
  id: string;
  condition: Condition;
  effect?: 'deny' | 'allow';
  risk?: Risk;
  approval?: string;
  reason?: string;
}

/** One tool's policy and contract, ready for `decide()`. */
export interface CompiledTool {
  name: string;
  risk: Risk;
  /** `none` or the name of an approval plan. */
  approval: string;
  allowedRoles: ReadonlySet<string>;
  environments?: ReadonlySet<string>;
  tenants?: ReadonlySet<string>;
  rules: readonly CompiledRule[];
  manifest: ToolManifestEntry;
  validateArgs: ArgsValidator;
  /** The compiled expressions of `manifest.undo.args`, by argument name (absent without `undo`). */
  undoArgs?: ReadonlyMap<string, UndoExpression>;
}

/** What one file contributed, for `policy check` summaries. */
export interface PolicyFileSummary {
  file: string;
  tools: string[];
  approvals: string[];
  manifest: string[];
}

/** A validated, compiled policy set. */
export interface LoadedPolicy {
  /** SHA-256 hex over the RFC 8785 canonical JSON of the merged document. */
  digest: string;
  /** The files it was loaded from, in load order. */
  files: string[];
  /** Every tool name, sorted. */
  toolNames: string[];
  /** The manifest entry of `tool`, or undefined when the policy does not know it. */
  manifest(tool: string): ToolManifestEntry | undefined;
  /** Compiled tools by name (read by `decide()`). */
  readonly tools: ReadonlyMap<string, CompiledTool>;
  /** Resolved approval plans by name (read by `decide()`). */
  readonly plans: ReadonlyMap<string, ApprovalPlan>;
  /** What each file defined. */
  readonly summaries: readonly PolicyFileSummary[];
  /** Downstream MCP servers by name (from `mcp_servers`). */
  readonly mcpServers: ReadonlyMap<string, McpServerConnection>;
  /** Rate limits (from `limits`), enforced when a request is evaluated. */
  readonly limits: readonly RateLimitRule[];
  /** Break-glass rules (from `break_glass`) by name, in name order: read by `decide()` for `override` requests. */
  readonly breakGlass: ReadonlyMap<string, BreakGlassRule>;
}
