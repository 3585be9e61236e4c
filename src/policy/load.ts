/**
 * Loading a policy set: read the YAML files, validate each against the document schema, merge
 * them, check cross-references (approval plans, manifest entries), compile CEL conditions and
 * argument schemas, and compute the policy digest. Every problem becomes a located `PolicyIssue`;
 * if there is any, nothing is returned.
 */
import { parseRate, type RateLimitRule } from './limits.js';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { msToNumber } from '../temporal/internals.js';
import canonicalize from 'canonicalize';
import type { z } from 'zod';
import { EXECUTION_BOUNDS, PREVIEW_BOUNDS, type ApprovalPlan, type EscalationTier } from '../shared/index.js';
import { ArgsSchemaCompiler } from './args-schema.js';
import { BREAK_GLASS_BOUNDS } from './break-glass.js';
import { compileCondition } from './condition.js';
import {
  NO_APPROVAL,
  PolicyFileSchema,
  type ApprovalPlanDocument,
  type BreakGlassDocument,
  type ManifestEntryDocument,
  type McpServerDocument,
  type PolicyFileDocument,
  type PreviewDocument,
  type ToolPolicyDocument,
} from './document.js';
import { PolicyLoadError, type PolicyIssue } from './errors.js';
import { manifestDigest, verifyManifestSignatures, type ManifestTrust } from './manifest-signatures.js';
import type {
  BreakGlassRule,
  CompiledRule,
  CompiledTool,
  LoadedPolicy,
  McpServerConnection,
  PolicyFileSummary,
  ToolManifestEntry,
  ToolPreview,
  UndoExpression,
} from './model.js';
import { MAX_POLICY_FILE_BYTES, readYaml, type YamlSource } from './source.js';
import { compileUndoExpression } from './undo.js';

/** One policy file's text and the name used in issues. */
export interface PolicySource {
  file: string;
  text: string;
}

/** How a policy is loaded beyond its files: the deployment's settings that the files must not control. */
export interface PolicyLoadOptions {
  /**
   * The trusted manifest signers and required roles (`TOOLGATE_MANIFEST_SIGNERS`,
   * `TOOLGATE_MANIFEST_REQUIRE`). With it, every manifest signature must verify and every
   * required role must have signed each entry, or the policy does not load. Without it,
   * signatures are not checked and no signer is recorded.
   */
  manifestTrust?: ManifestTrust;
}

interface ValidFile {
  source: YamlSource;
  raw: Record<string, Record<string, unknown> | undefined>;
  data: PolicyFileDocument;
}

interface Defined<T> {
  source: YamlSource;
  value: T;
  raw: unknown;
}

type Section = 'tools' | 'approvals' | 'manifest' | 'mcp_servers' | 'limits' | 'break_glass';

/** A manifest entry, built: the entry, its argument validator and its compiled undo expressions. */
interface BuiltManifest {
  entry: ToolManifestEntry;
  validate: CompiledTool['validateArgs'];
  undoArgs?: ReadonlyMap<string, UndoExpression>;
}

/** Parses and validates policy sources held in memory; throws `PolicyLoadError` listing every issue. */
export function parsePolicy(sources: PolicySource[], options: PolicyLoadOptions = {}): LoadedPolicy {
  if (sources.length === 0) {
    throw new PolicyLoadError([{ file: '(none)', path: '(policy)', message: 'no policy files to load; pass at least one .yaml file or directory' }]);
  }
  const issues: PolicyIssue[] = [];
  const files: ValidFile[] = [];
  for (const { file, text } of sources) {
    const read = readYaml(file, text);
    issues.push(...read.issues);
    if (!read.source) continue;
    const parsed = PolicyFileSchema.safeParse(read.source.value);
    if (!parsed.success) {
      issues.push(...zodIssues(read.source, parsed.error));
      continue;
    }
    files.push({ source: read.source, raw: read.source.value as ValidFile['raw'], data: parsed.data });
  }
  if (issues.length > 0) throw new PolicyLoadError(issues);

  const tools = merge(files, 'tools', (file) => file.data.tools, issues);
  const approvals = merge(files, 'approvals', (file) => file.data.approvals, issues);
  const manifests = merge(files, 'manifest', (file) => file.data.manifest, issues);
  const servers = merge(files, 'mcp_servers', (file) => file.data.mcp_servers, issues);
  const limitDocs = merge(files, 'limits', (file) => file.data.limits, issues);
  const breakGlassDocs = merge(files, 'break_glass', (file) => file.data.break_glass, issues);
  const limits: RateLimitRule[] = [];
  for (const [name, { source, value }] of limitDocs) {
    try {
      const { count, windowMs } = parseRate(value.rate);
      for (const tool of value.tools ?? []) {
        if (!tools.has(tool)) issues.push(source.issue(['limits', name, 'tools'], `tool "${tool}" is not defined under tools`));
      }
      limits.push({
        name,
        per: value.per,
        count,
        windowMs,
        burst: value.burst ?? count,
        ...(value.tools ? { tools: value.tools } : {}),
        ...(value.risk ? { risk: value.risk } : {}),
      });
    } catch (err) {
      issues.push(source.issue(['limits', name, 'rate'], `must be a rate such as "20/1m": ${(err as Error).message}`));
    }
  }
  const mcpServers = new Map<string, McpServerConnection>();
  for (const [name, server] of servers) mcpServers.set(name, resolveMcpServer(server.value));

  const plans = new Map<string, ApprovalPlan>();
  for (const [name, plan] of approvals) {
    const resolved = resolvePlan(name, plan, issues);
    if (resolved) plans.set(name, resolved);
  }

  const compiler = new ArgsSchemaCompiler();
  const entries = new Map<string, BuiltManifest>();
  for (const [name, manifest] of manifests) {
    if (!tools.has(name)) {
      issues.push(
        manifest.source.issue(['manifest', name], `manifest entry "${name}" has no policy under tools; add tools.${name} or remove the entry`, { key: true }),
      );
    }
    const built = buildManifest(name, manifest, compiler, issues, mcpServers, options.manifestTrust, servers);
    if (built) entries.set(name, built);
  }
  for (const [name, manifest] of manifests) checkUndoTarget(name, manifest, tools, manifests, issues);
  const breakGlass = resolveBreakGlass(breakGlassDocs, tools, issues);

  const compiled = new Map<string, CompiledTool>();
  for (const [name, tool] of tools) {
    const built = compileTool(name, tool, approvals, issues);
    const manifest = entries.get(name);
    if (!manifests.has(name)) {
      issues.push(
        tool.source.issue(['tools', name], `tool "${name}" has no manifest entry; add manifest.${name} with run_as, adapter and args`, { key: true }),
      );
    }
    const declared = manifests.get(name);
    if (declared?.value.preview && !mayNeedApproval(tool.value)) {
      issues.push(
        declared.source.issue(
          ['manifest', name, 'preview'],
          `tool "${name}" never asks for approval (approval ${NO_APPROVAL} and no rule sets a plan), and a preview runs only before approvers decide; remove the preview or require an approval`,
        ),
      );
    }
    if (built && manifest) {
      compiled.set(name, {
        ...built,
        manifest: manifest.entry,
        validateArgs: manifest.validate,
        ...(manifest.undoArgs ? { undoArgs: manifest.undoArgs } : {}),
      });
    }
  }
  if (issues.length > 0) throw new PolicyLoadError(issues);

  const merged = {
    version: 1,
    tools: Object.fromEntries([...tools].map(([name, tool]) => [name, tool.raw])),
    approvals: Object.fromEntries([...approvals].map(([name, plan]) => [name, plan.raw])),
    manifest: Object.fromEntries([...manifests].map(([name, manifest]) => [name, manifest.raw])),
    // Only present when used, so the digest of policies without MCP servers is unchanged.
    ...(servers.size > 0 ? { mcp_servers: Object.fromEntries([...servers].map(([name, server]) => [name, server.raw])) } : {}),
    ...(limitDocs.size > 0 ? { limits: Object.fromEntries([...limitDocs].map(([name, limit]) => [name, limit.raw])) } : {}),
    // Likewise: policies without break-glass rules keep the digest they had before the section existed.
    ...(breakGlassDocs.size > 0 ? { break_glass: Object.fromEntries([...breakGlassDocs].map(([name, rule]) => [name, rule.raw])) } : {}),
  };
  const toolNames = [...compiled.keys()].sort();
  const summaries: PolicyFileSummary[] = files.map((file) => ({
    file: file.source.file,
    tools: Object.keys(file.data.tools ?? {}),
    approvals: Object.keys(file.data.approvals ?? {}),
    manifest: Object.keys(file.data.manifest ?? {}),
  }));
  return {
    digest: sha256(canonicalJson(merged)),
    files: files.map((file) => file.source.file),
    toolNames,
    manifest: (tool) => compiled.get(tool)?.manifest,
    tools: compiled,
    plans,
    summaries,
    mcpServers,
    limits,
    breakGlass,
  };
}

/** The policy files at `paths` as the loader reads them (directories expanded); unreadable files are a `PolicyLoadError`. */
export async function readPolicySources(paths: readonly string[]): Promise<PolicySource[]> {
  const { files, issues } = await expandPaths([...paths], isPolicyFile);
  const sources: PolicySource[] = [];
  for (const file of files) {
    const read = await readSource(file);
    if ('issue' in read) issues.push(read.issue);
    else sources.push(read);
  }
  if (issues.length > 0) throw new PolicyLoadError(issues);
  return sources;
}

/**
 * Reads policy files and directories (a directory contributes its `*.yaml`/`*.yml` files, sorted,
 * without `*.test.yaml`) and parses them; throws `PolicyLoadError` for unreadable files too.
 */
export async function loadPolicy(paths: string[], options: PolicyLoadOptions = {}): Promise<LoadedPolicy> {
  const sources = await readPolicySources(paths);
  if (sources.length === 0) {
    throw new PolicyLoadError([{ file: paths.join(', ') || '(none)', path: '(policy)', message: 'no policy files found; expected .yaml or .yml files' }]);
  }
  return parsePolicy(sources, options);
}

/** True for policy YAML file names (not test files). */
export function isPolicyFile(name: string): boolean {
  return /\.ya?ml$/.test(name) && !/\.test\.ya?ml$/.test(name);
}

/** Expands files and directories into a file list; directories contribute sorted matching entries. */
export async function expandPaths(paths: string[], matches: (name: string) => boolean): Promise<{ files: string[]; issues: PolicyIssue[] }> {
  const files: string[] = [];
  const issues: PolicyIssue[] = [];
  for (const path of paths) {
    try {
      const info = await stat(path);
      if (info.isDirectory()) {
        const names = (await readdir(path)).filter(matches).sort();
        files.push(...names.map((name) => join(path, name)));
      } else {
        files.push(path);
      }
    } catch (error) {
      issues.push({ file: path, path: '(file)', message: `cannot read: ${errorText(error)}` });
    }
  }
  return { files, issues };
}

/** Reads one file as UTF-8 after checking its size; returns the source or a located issue. */
export async function readSource(file: string): Promise<PolicySource | { issue: PolicyIssue }> {
  try {
    const info = await stat(file);
    if (info.size > MAX_POLICY_FILE_BYTES) {
      return {
        issue: {
          file,
          line: 1,
          column: 1,
          path: '(file)',
          message: `file is ${info.size} bytes; policy files may be at most ${MAX_POLICY_FILE_BYTES} bytes (1 MiB)`,
        },
      };
    }
    const bytes = await readFile(file);
    try {
      return { file, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
    } catch {
      // Decoding would silently turn the bad bytes into U+FFFD: refuse, and say where they are.
      const lossy = bytes.toString('utf8');
      const before = lossy.slice(0, Math.max(lossy.indexOf('\uFFFD'), 0));
      const line = before.split('\n').length;
      return {
        issue: { file, line, column: before.length - before.lastIndexOf('\n'), path: '(file)', message: 'the file is not valid UTF-8 here; save it as UTF-8' },
      };
    }
  } catch (error) {
    return { issue: { file, path: '(file)', message: `cannot read: ${errorText(error)}` } };
  }
}

/** Maps zod issues to located policy issues (unknown keys are reported at the key itself). */
export function zodIssues(source: YamlSource, error: z.ZodError): PolicyIssue[] {
  const out: PolicyIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path.filter((part): part is string | number => typeof part !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(source.issue([...path, key], `unknown key "${key}"`, { key: true }));
    } else if (issue.code === 'invalid_key') {
      const inner = issue.issues[0]?.message ?? issue.message;
      out.push(source.issue(path, `invalid name: ${inner}`, { key: true }));
    } else if (isMissing(source.value, path)) {
      out.push(source.issue(path, 'is required'));
    } else {
      out.push(source.issue(path, issue.message));
    }
  }
  return out;
}

function isMissing(value: unknown, path: readonly (string | number)[]): boolean {
  let node: unknown = value;
  for (const [index, part] of path.entries()) {
    if (node === null || typeof node !== 'object') return false;
    const has = Object.hasOwn(node, part);
    if (!has) return index === path.length - 1;
    node = (node as Record<string | number, unknown>)[part];
  }
  return false;
}

function merge<T>(
  files: ValidFile[],
  section: Section,
  pick: (file: ValidFile) => Record<string, T> | undefined,
  issues: PolicyIssue[],
): Map<string, Defined<T>> {
  const out = new Map<string, Defined<T>>();
  for (const file of files) {
    for (const [name, value] of Object.entries(pick(file) ?? {})) {
      const first = out.get(name);
      if (first) {
        const kind = {
          approvals: 'approval plan',
          tools: 'tool',
          mcp_servers: 'MCP server',
          manifest: 'manifest entry',
          limits: 'rate limit',
          break_glass: 'break-glass rule',
        }[section];
        issues.push(
          file.source.issue([section, name], `${kind} "${name}" is defined in both ${first.source.file} and ${file.source.file}; define it once`, {
            key: true,
          }),
        );
        continue;
      }
      out.set(name, { source: file.source, value, raw: file.raw[section]?.[name] });
    }
  }
  return out;
}

function resolvePlan(name: string, { source, value: plan }: Defined<ApprovalPlanDocument>, issues: PolicyIssue[]): ApprovalPlan | undefined {
  const at = (...path: (string | number)[]) => ['approvals', name, ...path];
  const before = issues.length;
  if (name === NO_APPROVAL) issues.push(source.issue(at(), `"${NO_APPROVAL}" is reserved (it means no approval); choose another plan name`, { key: true }));
  const groups = plan.groups ?? [];
  const allOf = plan.all_of ?? [];
  const endUser = plan.end_user === true;
  // The end user alone may satisfy an end_user plan, so it needs no group; any other plan does.
  if (groups.length === 0 && allOf.length === 0 && !endUser) {
    issues.push(source.issue(at(), 'must list groups or all_of (or set end_user: true): nobody could approve this plan'));
  }
  const minApprovals = plan.min_approvals ?? Math.max(1, allOf.length);
  if (minApprovals < allOf.length) {
    issues.push(source.issue(at('min_approvals'), `must be at least ${allOf.length} (one distinct person per all_of group)`));
  }
  const expiresAfterMs = duration(source, at('expires_after'), plan.expires_after, issues);
  const escalation: EscalationTier[] = [];
  let previous = 0;
  for (const [index, tier] of (plan.escalation ?? []).entries()) {
    const afterMs = duration(source, at('escalation', index, 'after'), tier.after, issues);
    if (afterMs === undefined) continue;
    if (afterMs <= previous) issues.push(source.issue(at('escalation', index, 'after'), 'must be later than the previous escalation tier'));
    if (expiresAfterMs !== undefined && afterMs >= expiresAfterMs) {
      issues.push(source.issue(at('escalation', index, 'after'), `must be earlier than expires_after (${plan.expires_after})`));
    }
    previous = afterMs;
    escalation.push({ afterMs, groups: [...tier.groups] });
  }
  const remindEveryMs = plan.remind_every === undefined ? undefined : duration(source, at('remind_every'), plan.remind_every, issues);
  if (remindEveryMs !== undefined && remindEveryMs < 1000) issues.push(source.issue(at('remind_every'), 'must be at least 1s'));
  if (issues.length > before || expiresAfterMs === undefined) return undefined;
  return {
    name,
    groups: [...groups],
    allOf: [...allOf],
    minApprovals,
    rejectionsToDeny: plan.rejections_to_deny ?? 1,
    escalation,
    expiresAfterMs,
    ...(remindEveryMs === undefined ? {} : { remindEveryMs }),
    // Only when set, so the plans (and proposal digests) of existing policies keep their shape.
    ...(endUser ? { endUser: true as const } : {}),
  };
}

/**
 * An adapter's own timeout, at most EXECUTION_BOUNDS.maxToolTimeoutMs: an attempt must end
 * within its activity's timeout, or the next attempt could start while it still runs.
 */
function adapterTimeout(source: YamlSource, path: (string | number)[], text: string, issues: PolicyIssue[]): number {
  const ms = duration(source, path, text, issues);
  if (ms !== undefined && ms > EXECUTION_BOUNDS.maxToolTimeoutMs) {
    issues.push(source.issue(path, `"${text}" is longer than the longest adapter timeout, ${EXECUTION_BOUNDS.maxToolTimeoutMs / 1000}s`));
  }
  return ms ?? 0;
}

function duration(source: YamlSource, path: (string | number)[], text: string, issues: PolicyIssue[]): number | undefined {
  let ms: number;
  try {
    ms = msToNumber(text as Parameters<typeof msToNumber>[0]);
  } catch {
    issues.push(source.issue(path, `"${text}" is not a duration; use a number with a unit such as 500ms, 30s, 30m, 2h or 1d`));
    return undefined;
  }
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    issues.push(source.issue(path, `"${text}" must be a positive whole number of milliseconds`));
    return undefined;
  }
  return ms;
}

function compileTool(
  name: string,
  { source, value: tool }: Defined<ToolPolicyDocument>,
  approvals: ReadonlyMap<string, unknown>,
  issues: PolicyIssue[],
): Omit<CompiledTool, 'manifest' | 'validateArgs'> | undefined {
  const before = issues.length;
  const checkPlan = (plan: string, path: (string | number)[]) => {
    if (plan !== NO_APPROVAL && !approvals.has(plan)) {
      const known = [...approvals.keys()];
      issues.push(
        source.issue(
          path,
          `approval plan "${plan}" is not defined under approvals (known: ${known.length > 0 ? known.join(', ') : 'none'}; or use "${NO_APPROVAL}")`,
        ),
      );
    }
  };
  checkPlan(tool.approval, ['tools', name, 'approval']);
  const seen = new Set<string>();
  const rules: CompiledRule[] = [];
  for (const [index, rule] of (tool.rules ?? []).entries()) {
    const at = (...path: string[]) => ['tools', name, 'rules', index, ...path];
    if (seen.has(rule.name)) issues.push(source.issue(at('name'), `rule name "${rule.name}" is used twice in tool ${name}; rule names must be unique`));
    seen.add(rule.name);
    if (rule.effect === undefined && rule.risk === undefined && rule.approval === undefined) {
      issues.push(source.issue(at(), 'a rule must set at least one of effect, risk, approval'));
    }
    if (rule.approval !== undefined) checkPlan(rule.approval, at('approval'));
    if (rule.effect === 'deny' && rule.approval !== undefined) issues.push(source.issue(at('approval'), 'a deny rule cannot set an approval plan'));
    if (rule.effect === 'allow' && rule.approval !== undefined && rule.approval !== NO_APPROVAL) {
      issues.push(source.issue(at('approval'), `effect: allow means approval ${NO_APPROVAL}; remove effect or approval`));
    }
    const compiled = compileCondition(rule.when);
    if ('error' in compiled) {
      issues.push(source.issue(at('when'), compiled.error));
      continue;
    }
    rules.push({
      name: rule.name,
      id: `${name}/${rule.name}`,
      condition: compiled.condition,
      ...(rule.effect !== undefined && { effect: rule.effect }),
      ...(rule.risk !== undefined && { risk: rule.risk }),
      ...(rule.approval !== undefined && { approval: rule.approval }),
      ...(rule.reason !== undefined && { reason: rule.reason }),
    });
  }
  if (issues.length > before) return undefined;
  return {
    name,
    risk: tool.risk,
    approval: tool.approval,
    allowedRoles: new Set(tool.allowed_roles),
    ...(tool.environments && { environments: new Set(tool.environments) }),
    ...(tool.tenants && { tenants: new Set(tool.tenants) }),
    rules,
  };
}

function buildManifest(
  name: string,
  { source, value: manifest, raw }: Defined<ManifestEntryDocument>,
  compiler: ArgsSchemaCompiler,
  issues: PolicyIssue[],
  mcpServers: ReadonlyMap<string, McpServerConnection> = new Map(),
  trust?: ManifestTrust,
  serverDocs: ReadonlyMap<string, { raw: unknown }> = new Map(),
): BuiltManifest | undefined {
  const at = (...path: (string | number)[]) => ['manifest', name, ...path];
  const before = issues.length;
  let adapter: ToolManifestEntry['adapter'];
  if (manifest.adapter.type === 'code') {
    adapter = { type: 'code', handler: manifest.adapter.handler ?? name };
  } else if (manifest.adapter.type === 'mcp') {
    const timeoutMs = adapterTimeout(source, at('adapter', 'timeout'), manifest.adapter.timeout ?? '60s', issues);
    const connection = mcpServers.get(manifest.adapter.server);
    if (!connection) {
      const known = [...mcpServers.keys()];
      issues.push(
        source.issue(
          at('adapter', 'server'),
          `MCP server "${manifest.adapter.server}" is not defined; add it under mcp_servers${known.length > 0 ? ` (defined: ${known.join(', ')})` : ''}`,
        ),
      );
      return undefined;
    }
    adapter = {
      type: 'mcp',
      server: manifest.adapter.server,
      tool: manifest.adapter.tool,
      ...(manifest.adapter.pin !== undefined && { pin: manifest.adapter.pin }),
      timeoutMs,
      connection,
      handler: `mcp:${manifest.adapter.server}/${manifest.adapter.tool}`,
    };
  } else {
    const timeoutMs = adapterTimeout(source, at('adapter', 'timeout'), manifest.adapter.timeout ?? '10s', issues);
    adapter = { type: 'http', url: manifest.adapter.url, method: manifest.adapter.method ?? 'POST', timeoutMs, headers: { ...manifest.adapter.headers } };
  }
  const schema = compiler.compile(manifest.args);
  if ('problems' in schema) {
    for (const problem of schema.problems) issues.push(source.issue(at('args', ...problem.path), problem.message));
  }
  let digest = '';
  try {
    digest = manifestDigest(name, raw, manifest.adapter.type === 'mcp' ? (serverDocs.get(manifest.adapter.server)?.raw ?? null) : undefined);
  } catch (error) {
    issues.push(source.issue(at(), `cannot be represented as JSON: ${errorText(error)}`));
  }
  const preview = manifest.preview ? resolvePreview(source, at('preview'), manifest.preview, issues) : undefined;
  let undoArgs: Map<string, UndoExpression> | undefined;
  if (manifest.undo) {
    undoArgs = new Map();
    for (const [arg, text] of Object.entries(manifest.undo.args)) {
      const compiled = compileUndoExpression(text);
      if ('error' in compiled) issues.push(source.issue(at('undo', 'args', arg), compiled.error));
      else undoArgs.set(arg, compiled.expression);
    }
  }
  let signers: ToolManifestEntry['signers'];
  if (trust && digest !== '') {
    const verified = verifyManifestSignatures(name, digest, manifest.signatures, trust);
    for (const problem of verified.problems) issues.push(source.issue(at(...problem.path), problem.message, { key: problem.path.length === 0 }));
    if (verified.signers.length > 0) signers = verified.signers;
  }
  if (issues.length > before || 'problems' in schema) return undefined;
  const entry: ToolManifestEntry = {
    name,
    ...(manifest.description !== undefined && { description: manifest.description }),
    runAs: manifest.run_as,
    // Declared, never assumed: a tool that does not say it deduplicates is never called twice.
    idempotent: manifest.idempotent ?? false,
    adapter,
    digest,
    egress: manifest.egress ?? {},
    ...(manifest.args && typeof manifest.args === 'object' ? { argsSchema: manifest.args } : {}),
    ...(signers ? { signers } : {}),
    ...(preview ? { preview } : {}),
    ...(manifest.undo ? { undo: { tool: manifest.undo.tool, args: { ...manifest.undo.args } } } : {}),
  };
  return { entry, validate: schema.validate, ...(undoArgs ? { undoArgs } : {}) };
}

/**
 * An entry's `undo.tool` must be another tool of the policy with a manifest entry, and the
 * arguments it derives must be ones that tool takes (when its schema lists them): otherwise every
 * rollback would be refused, which is better said when the policy loads.
 */
function checkUndoTarget(
  name: string,
  { source, value: manifest }: Defined<ManifestEntryDocument>,
  tools: ReadonlyMap<string, unknown>,
  manifests: ReadonlyMap<string, Defined<ManifestEntryDocument>>,
  issues: PolicyIssue[],
): void {
  const undo = manifest.undo;
  if (!undo) return;
  const at = (...path: (string | number)[]) => ['manifest', name, 'undo', ...path];
  if (undo.tool === name) {
    issues.push(source.issue(at('tool'), `a tool cannot be its own undo; name the tool that reverses ${name}`));
    return;
  }
  const target = manifests.get(undo.tool);
  if (!tools.has(undo.tool) || !target) {
    issues.push(source.issue(at('tool'), `tool "${undo.tool}" is not defined in the policy (it needs tools.${undo.tool} and manifest.${undo.tool})`));
    return;
  }
  const schema = target.value.args;
  const properties = schema['properties'];
  const closed = !('additionalProperties' in schema) && !('unevaluatedProperties' in schema) && !('patternProperties' in schema);
  if (closed && properties !== null && typeof properties === 'object') {
    for (const arg of Object.keys(undo.args)) {
      if (!Object.hasOwn(properties, arg)) issues.push(source.issue(at('args', arg), `tool ${undo.tool} takes no argument "${arg}"`, { key: true }));
    }
  }
  const required = schema['required'];
  if (Array.isArray(required)) {
    const missing = required.filter((arg): arg is string => typeof arg === 'string' && !Object.hasOwn(undo.args, arg));
    if (missing.length > 0) issues.push(source.issue(at('args'), `must derive the arguments tool ${undo.tool} requires: ${missing.join(', ')}`));
  }
}

/**
 * The `break_glass:` rules, resolved and in name order (the order `decide()` tries them in): each
 * names tools of the policy and gives its second person 1m..1h.
 */
function resolveBreakGlass(
  docs: ReadonlyMap<string, Defined<BreakGlassDocument>>,
  tools: ReadonlyMap<string, unknown>,
  issues: PolicyIssue[],
): Map<string, BreakGlassRule> {
  const out = new Map<string, BreakGlassRule>();
  for (const name of [...docs.keys()].sort()) {
    const { source, value: rule } = docs.get(name) as Defined<BreakGlassDocument>;
    const at = (...path: (string | number)[]) => ['break_glass', name, ...path];
    const before = issues.length;
    for (const [index, tool] of rule.tools.entries()) {
      if (!tools.has(tool)) issues.push(source.issue(at('tools', index), `tool "${tool}" is not defined under tools`));
    }
    const expiresAfterMs = duration(source, at('expires_after'), rule.expires_after, issues);
    const { minExpiresAfterMs, maxExpiresAfterMs } = BREAK_GLASS_BOUNDS;
    if (expiresAfterMs !== undefined && (expiresAfterMs < minExpiresAfterMs || expiresAfterMs > maxExpiresAfterMs)) {
      // An override is an emergency: the second person answers now or the request expires.
      issues.push(source.issue(at('expires_after'), `"${rule.expires_after}" must be between 1m and 1h`));
    }
    if (issues.length > before || expiresAfterMs === undefined) continue;
    out.set(name, {
      name,
      tools: [...rule.tools],
      groups: [...rule.groups],
      notify: [...rule.notify],
      expiresAfterMs,
      ...(rule.environments ? { environments: [...rule.environments] } : {}),
    });
  }
  return out;
}

/** A `preview:` block resolved: its timeout at most PREVIEW_BOUNDS.maxTimeoutMs, defaults applied. */
function resolvePreview(source: YamlSource, path: (string | number)[], preview: PreviewDocument, issues: PolicyIssue[]): ToolPreview | undefined {
  const text = preview.timeout ?? `${PREVIEW_BOUNDS.defaultTimeoutMs}ms`;
  const timeoutMs = duration(source, [...path, 'timeout'], text, issues);
  if (timeoutMs === undefined) return undefined;
  if (timeoutMs > PREVIEW_BOUNDS.maxTimeoutMs) {
    // Approvers are not asked until the preview answered or gave up: it must give up soon.
    issues.push(source.issue([...path, 'timeout'], `"${text}" is longer than a preview may take, ${PREVIEW_BOUNDS.maxTimeoutMs / 1000}s`));
    return undefined;
  }
  const { adapter } = preview;
  return {
    adapter:
      adapter.type === 'code'
        ? { type: 'code', handler: adapter.handler }
        : { type: 'http', url: adapter.url, method: adapter.method ?? 'POST', timeoutMs, headers: { ...adapter.headers } },
    timeoutMs,
    maxBytes: preview.max_bytes ?? PREVIEW_BOUNDS.defaultMaxBytes,
  };
}

/**
 * Whether policy can ever send `tool` to approval: its default plan is not `none`, or a rule sets a
 * plan. A preview runs only then (the workflow calls it only for an `approve` decision).
 */
function mayNeedApproval(tool: ToolPolicyDocument): boolean {
  return tool.approval !== NO_APPROVAL || (tool.rules ?? []).some((rule) => rule.approval !== undefined && rule.approval !== NO_APPROVAL);
}

function resolveMcpServer(server: McpServerDocument): McpServerConnection {
  if ('url' in server) return { transport: 'http', url: server.url, headers: { ...server.headers } };
  return {
    transport: 'stdio',
    command: server.command,
    args: [...(server.args ?? [])],
    env: { ...server.env },
    ...(server.cwd !== undefined && { cwd: server.cwd }),
  };
}

function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('value has no JSON representation');
  return text;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
