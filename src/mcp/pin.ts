/**
 * `toolgate tools pin`: connect to each downstream MCP server of the manifest, compute the
 * identity digest of each `mcp` adapter tool's current definition and write it as `pin:` into the
 * policy file that declares the tool, editing the YAML document in place so comments and layout
 * survive.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { isMap, parseDocument } from 'yaml';
import { loadPolicy } from '../policy/load.js';
import { expandPaths, isPolicyFile } from '../policy/policy-files.js';
import type { McpAdapter } from '../policy/model.js';
import { connectDownstream, listDownstreamTools } from './downstream.js';
import { toolDefinitionDigest } from './identity.js';

/** What pinning did for one tool. */
export interface PinResult {
  tool: string;
  server: string;
  file?: string;
  status: 'pinned' | 'unchanged' | 'repinned' | 'missing' | 'unavailable';
  digest?: string;
  previous?: string;
  message?: string;
}

/** Pins the `mcp` tools of the policy at `paths` (all of them, or those named in `only`). */
export async function pinTools(paths: string[], options: { only?: string[] } = {}): Promise<PinResult[]> {
  const policy = await loadPolicy(paths);
  const targets: { tool: string; adapter: McpAdapter }[] = [];
  for (const tool of policy.toolNames) {
    const adapter = policy.manifest(tool)?.adapter;
    if (adapter?.type === 'mcp' && (!options.only || options.only.includes(tool))) targets.push({ tool, adapter });
  }
  const results: PinResult[] = [];
  const byServer = new Map<string, typeof targets>();
  for (const target of targets) byServer.set(target.adapter.server, [...(byServer.get(target.adapter.server) ?? []), target]);
  const digests = new Map<string, string>();
  for (const [server, items] of byServer) {
    let client;
    try {
      client = await connectDownstream(server, items[0]!.adapter.connection);
      const listed = await listDownstreamTools(client);
      for (const { tool, adapter } of items) {
        const definition = listed.find((candidate) => candidate.name === adapter.tool);
        if (!definition) {
          results.push({ tool, server, status: 'missing', message: `server ${server} has no tool ${adapter.tool}` });
          continue;
        }
        digests.set(tool, toolDefinitionDigest(definition));
      }
    } catch (err) {
      for (const { tool } of items) results.push({ tool, server, status: 'unavailable', message: (err as Error).message });
    } finally {
      await client?.close().catch(() => undefined);
    }
  }

  const { files } = await expandPaths(paths, isPolicyFile);
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    const doc = parseDocument(text);
    const manifest = doc.get('manifest');
    if (!isMap(manifest)) continue;
    let changed = false;
    for (const { tool, adapter } of targets) {
      const digest = digests.get(tool);
      if (digest === undefined || !manifest.has(tool)) continue;
      const previous = adapter.pin;
      const status: PinResult['status'] = previous === digest ? 'unchanged' : previous ? 'repinned' : 'pinned';
      if (status !== 'unchanged') {
        doc.setIn(['manifest', tool, 'adapter', 'pin'], digest);
        changed = true;
      }
      results.push({ tool, server: adapter.server, file, status, digest, ...(previous && previous !== digest && { previous }) });
    }
    if (changed) await writeFile(file, doc.toString());
  }
  return results;
}
