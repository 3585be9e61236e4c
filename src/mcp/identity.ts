/**
 * Tool identity of downstream MCP tools: the SHA-256 over the RFC 8785 canonical JSON of a tool's
 * definition (name, description, inputSchema, annotations). The manifest pins it; a tool whose
 * definition changed is refused until someone reviews it and pins it again.
 */
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { canonicalDigest } from '../approvals/digest.js';
import type { McpAdapter } from '../policy/model.js';

/** The pinned identity digest of a downstream tool definition. */
export function toolDefinitionDigest(tool: Pick<Tool, 'name' | 'description' | 'inputSchema' | 'annotations'>): string {
  return canonicalDigest({
    name: tool.name,
    ...(tool.description !== undefined && { description: tool.description }),
    inputSchema: tool.inputSchema,
    ...(tool.annotations !== undefined && { annotations: tool.annotations }),
  });
}

/** Why a downstream tool may not be called as pinned; undefined when it matches its pin. */
export function pinProblem(adapter: Pick<McpAdapter, 'server' | 'tool' | 'pin'>, definition: Tool | undefined): string | undefined {
  const what = `downstream tool ${adapter.tool} on MCP server ${adapter.server}`;
  if (!definition) return `${what} does not exist (any more); it cannot be called`;
  if (!adapter.pin) return `${what} is not pinned; review it and run \`toolgate tools pin\` before it can be called`;
  const digest = toolDefinitionDigest(definition);
  if (digest !== adapter.pin) {
    return `the definition of ${what} changed since it was pinned (pinned sha256 ${adapter.pin.slice(0, 12)}…, now ${digest.slice(0, 12)}…); it is refused until someone reviews the change and runs \`toolgate tools pin\``;
  }
  return undefined;
}
