/**
 * Loading a policy set: read the YAML files, validate each against the document schema, merge
 * them, check cross-references (approval plans, manifest entries), compile CEL conditions and
 * argument schemas, and compute the policy digest. Every problem becomes a located `PolicyIssue`;
 * if there is any, nothing is returned. This file is the sequence; each step has its own module:
 * ./policy-files.ts (reading), ./sections.ts (merging), ./plans.ts, ./compile-tool.ts and
 * ./manifest-entry.ts (compiling).
 */
import { parseRate, type RateLimitRule } from './limits.js';
import { canonicalSha256, type ApprovalPlan } from '../shared/index.js';
import { ArgsSchemaCompiler } from './args-schema.js';
import { compileTool, mayNeedApproval } from './compile-tool.js';
import { NO_APPROVAL, PolicyFileSchema } from './document.js';
import { PolicyLoadError, type PolicyIssue } from './errors.js';
import { buildManifest, checkUndoTarget, resolveMcpServer, type BuiltManifest } from './manifest-entry.js';
import type { ManifestTrust } from './manifest-signatures.js';
import type { CompiledTool, LoadedPolicy, McpServerConnection, PolicyFileSummary } from './model.js';
import { resolveBreakGlass, resolvePlan } from './plans.js';
import { expandPaths, isPolicyFile, readSource, type PolicySource } from './policy-files.js';
import { merge, zodIssues, type ValidFile } from './sections.js';
import { readYaml } from './source.js';

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
    digest: canonicalSha256(merged),
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
