/**
 * The pieces under the agent integrations: request ids from tool-call ids, agent tokens, the
 * manifest's MCP section, tool identity digests, and the worker-side MCP executor refusing a
 * tool that no longer matches its pin.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { SignJWT, exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { requestIdForToolCall } from '../../src/adapters/core.js';
import { AgentTokenVerifier, issueAgentToken } from '../../src/auth/agent-tokens.js';
import { issueApproverToken } from '../../src/auth/tokens.js';
import { callMcpTool } from '../../src/mcp/executor.js';
import { toolDefinitionDigest } from '../../src/mcp/identity.js';
import { PolicyLoadError, parsePolicy } from '../../src/policy/index.js';
import { IDENTIFIER_PATTERN } from '../../src/shared/index.js';
import { ToolRejectedError } from '../../src/tools/types.js';

const MCP_POLICY = (adapter: string, servers = 'mcp_servers:\n  orders: { url: "http://127.0.0.1:9/mcp" }\n') => `version: 1
${servers}tools:
  lookup: { risk: low, approval: none, allowed_roles: [r] }
manifest:
  lookup:
    run_as: svc
    adapter: ${adapter}
    args: { type: object }
`;

describe('request ids from tool-call ids', () => {
  test('the same call in the same scope is the same id; scopes keep conversations apart', () => {
    assert.equal(requestIdForToolCall('conv-1', 'call_abc'), 'conv-1:call_abc');
    assert.notEqual(requestIdForToolCall('conv-1', 'call_abc'), requestIdForToolCall('conv-2', 'call_abc'));
  });

  test('ids that are not valid request ids are hashed into valid, stable ones', () => {
    const odd = requestIdForToolCall('conv 1', 'toolu_01/ä+'.repeat(20));
    assert.match(odd, IDENTIFIER_PATTERN);
    assert.equal(odd, requestIdForToolCall('conv 1', 'toolu_01/ä+'.repeat(20)));
  });
});

describe('agent tokens', async () => {
  const keys = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const privateKeyPem = await exportPKCS8(keys.privateKey);
  const verifier = await AgentTokenVerifier.fromPublicKeyPem(await exportSPKI(keys.publicKey));

  test('a valid token names the agent, its tenant and roles', async () => {
    const token = await issueAgentToken({ sub: 'bot', tenant: 'acme', roles: ['agent_runtime'] }, { privateKeyPem });
    assert.deepEqual(await verifier.verify(token), { id: 'bot', type: 'agent', tenant: 'acme', roles: ['agent_runtime'] });
  });

  test('an approver token signed by the same key is refused (typ and audience differ)', async () => {
    const approver = await issueApproverToken({ sub: 'maria', tenant: 'acme', groups: ['manager'] }, { privateKeyPem });
    await assert.rejects(verifier.verify(approver), /agent token/);
  });

  test('expired tokens, and tokens without type agent, are refused with the reason', async () => {
    const expired = await issueAgentToken({ sub: 'bot', tenant: 'acme', roles: [] }, { privateKeyPem, ttlSeconds: -120 });
    await assert.rejects(verifier.verify(expired), /expired/);
    const human = await new SignJWT({ tenant: 'acme', roles: [], type: 'human' })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'toolgate-agent+jwt' })
      .setSubject('bot')
      .setIssuer('toolgate-local')
      .setAudience('toolgate-agents')
      .setExpirationTime('5m')
      .sign(keys.privateKey);
    await assert.rejects(verifier.verify(human), /type claim must be "agent"/);
  });
});

describe('the manifest\'s MCP section', () => {
  test('an mcp adapter resolves its server', () => {
    const policy = parsePolicy([{ file: 'p.yaml', text: MCP_POLICY('{ type: mcp, server: orders, tool: lookup_order }') }]);
    const adapter = policy.manifest('lookup')?.adapter;
    assert.equal(adapter?.type, 'mcp');
    assert.ok(adapter?.type === 'mcp');
    assert.deepEqual(adapter.connection, { transport: 'http', url: 'http://127.0.0.1:9/mcp', headers: {} });
    assert.equal(adapter.timeoutMs, 60_000);
  });

  test('an unknown server, a malformed pin and a malformed server are located errors', () => {
    const issues = (text: string) => {
      try {
        parsePolicy([{ file: 'p.yaml', text }]);
      } catch (err) {
        assert.ok(err instanceof PolicyLoadError);
        return err.issues.map((i) => `${i.path}: ${i.message}`).join('\n');
      }
      assert.fail('expected a load error');
    };
    assert.match(issues(MCP_POLICY('{ type: mcp, server: billing, tool: x }')), /manifest\.lookup\.adapter\.server: MCP server "billing" is not defined; add it under mcp_servers \(defined: orders\)/);
    assert.match(issues(MCP_POLICY('{ type: mcp, server: orders, tool: x, pin: abc }')), /adapter\.pin: must be the 64 hex characters/);
    assert.match(issues(MCP_POLICY('{ type: mcp, server: orders, tool: x }', 'mcp_servers:\n  orders: { url: 42 }\n')), /mcp_servers\.orders/);
  });

  test('policies without MCP servers keep their digest; a server change changes it', () => {
    const plain = `version: 1\ntools:\n  t: { risk: low, approval: none, allowed_roles: [r] }\nmanifest:\n  t: { run_as: s, adapter: { type: code }, args: { type: object } }\n`;
    const a = parsePolicy([{ file: 'a.yaml', text: plain }]).digest;
    const b = parsePolicy([{ file: 'a.yaml', text: `${plain}mcp_servers:\n  x: { command: echo }\n` }]).digest;
    assert.notEqual(a, b);
    assert.equal(parsePolicy([{ file: 'a.yaml', text: plain }]).digest, a);
  });
});

describe('tool identity', () => {
  test('the digest covers name, description, input schema and annotations, and not key order', () => {
    const tool = { name: 'x', description: 'd', inputSchema: { type: 'object' as const, properties: { a: { type: 'string' } } }, annotations: { readOnlyHint: true } };
    const reordered = { annotations: { readOnlyHint: true }, inputSchema: { properties: { a: { type: 'string' } }, type: 'object' as const }, description: 'd', name: 'x' };
    assert.equal(toolDefinitionDigest(tool), toolDefinitionDigest(reordered));
    assert.notEqual(toolDefinitionDigest(tool), toolDefinitionDigest({ ...tool, description: 'd!' }));
    assert.notEqual(toolDefinitionDigest(tool), toolDefinitionDigest({ ...tool, annotations: { readOnlyHint: false } }));
  });

  test('the worker-side executor refuses a downstream tool that does not match its pin, before calling it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-exec-'));
    try {
      const connection = {
        transport: 'stdio' as const,
        command: process.execPath,
        args: ['--import', 'tsx', resolve('test/fixtures/mcp-downstream.ts')],
        env: { DOWNSTREAM_STATE: dir },
      };
      const context = { args: { orderId: 'A-1' }, idempotencyKey: 'k-1', runAs: 'svc', requestId: 'r-1', tenant: 'acme', tool: 'lookup', attempt: 1 };
      const adapter = { type: 'mcp' as const, server: 'orders', tool: 'lookup_order', timeoutMs: 10_000, connection, handler: 'mcp:orders/lookup_order' };
      await assert.rejects(callMcpTool({ ...adapter, pin: 'a'.repeat(64) }, context), (err: unknown) => err instanceof ToolRejectedError && /changed since it was pinned/.test(err.message));
      await assert.rejects(callMcpTool(adapter, context), /not pinned/);
      await writeFile(join(dir, 'effects.jsonl'), '');
      const pin = toolDefinitionDigest({
        name: 'lookup_order',
        description: 'Look up an order by id.',
        inputSchema: { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] },
        annotations: { readOnlyHint: true },
      });
      const result = await callMcpTool({ ...adapter, pin }, context);
      assert.deepEqual(result.structuredContent, { orderId: 'A-1', status: 'shipped', total: 120 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
