/**
 * A `manifest:` entry resolved into what executes the tool: its adapter (code, HTTP or an MCP
 * server's tool), argument validator, digest and verified signers, dry-run preview, and undo
 * (its derived arguments compiled and its target tool checked).
 */
import { EXECUTION_BOUNDS, PREVIEW_BOUNDS } from '../shared/index.js';
import type { ArgsSchemaCompiler } from './args-schema.js';
import type { ManifestEntryDocument, McpServerDocument, PreviewDocument } from './document.js';
import type { PolicyIssue } from './errors.js';
import { manifestDigest, verifyManifestSignatures, type ManifestTrust } from './manifest-signatures.js';
import type { CompiledTool, McpServerConnection, ToolManifestEntry, ToolPreview, UndoExpression } from './model.js';
import { duration, errorText, type Defined } from './sections.js';
import type { YamlSource } from './source.js';
import { compileUndoExpression } from './undo.js';

/** A manifest entry, built: the entry, its argument validator and its compiled undo expressions. */
export interface BuiltManifest {
  entry: ToolManifestEntry;
  validate: CompiledTool['validateArgs'];
  undoArgs?: ReadonlyMap<string, UndoExpression>;
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

/** One manifest entry built, or undefined after reporting its issues. */
export function buildManifest(
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
export function checkUndoTarget(
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

/** An `mcp_servers:` entry as the adapter connects to it. */
export function resolveMcpServer(server: McpServerDocument): McpServerConnection {
  if ('url' in server) return { transport: 'http', url: server.url, headers: { ...server.headers } };
  return {
    transport: 'stdio',
    command: server.command,
    args: [...(server.args ?? [])],
    env: { ...server.env },
    ...(server.cwd !== undefined && { cwd: server.cwd }),
  };
}
