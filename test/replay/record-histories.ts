/**
 * Records the workflow histories the replay test checks: one run of each path through the
 * toolRequest workflow (approve, reject, edit, escalate, expire, deny), on a real dev server.
 *
 *   npm run record:histories              # rewrites test/histories/v2/*.json and v3/*.json
 *   npm run record:histories -- preview   # records only the paths named (here: v3/preview.json)
 *
 * Record again only for a deliberate, patched() change of the workflow, and keep the old files:
 * histories of runs still in flight must go on replaying. A new path goes into a new set (v3: the
 * dry-run preview), recorded on its own, so the committed ones stay as they are.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { requireTemporalCli } from '../../src/temporal/cli.js';
import { readFileSync } from 'node:fs';
import { WORKFLOW_TYPE, workflowIdFor, type ToolRequestInput } from '../../src/shared/index.js';
import { RECORDING_POLICY } from '../fixtures/replay/recording-policy.js';

/**
 * Histories of the current workflow (v2: visibility-only listing; v3: the paths added since, each
 * under its own policy). Those of earlier versions stay where they are: v0 (before the trust
 * boundary), v1 (before the waiting attributes).
 */
const HISTORIES = join(import.meta.dirname, '..', 'histories');
/** The paths to record (command-line arguments); none: all of them. */
const only = process.argv.slice(2);
// Recorded histories are encrypted as in production, with the committed replay keys (test-only keys, kept in v1/).
process.env.TOOLGATE_TEST_CODEC_KEYS = readFileSync(join(import.meta.dirname, '..', 'histories', 'v1', 'replay-codec-keys.txt'), 'utf8').trim();
const { eventually, startGateway, startTemporal, waitForState } = await import('../helpers/gateway-env.js');

const policy = RECORDING_POLICY;

/**
 * The v3 paths' policy: a tool whose manifest declares a dry-run preview. Its own policy (and task
 * queue), so the v2 histories stay recorded under `policy` above, as test/unit/policy-replay.test.ts
 * expects.
 */
const previewPolicy = `
version: 1
tools:
  purge: { risk: high, approval: manager, allowed_roles: [agent_runtime] }
approvals:
  manager: { groups: [manager], expires_after: 1h }
manifest:
  purge:
    run_as: svc-purge
    adapter: { type: code }
    preview: { adapter: { type: code, handler: purge }, timeout: 2s, max_bytes: 512 }
    args: { type: object, properties: { older_than_days: { type: integer } } }
`;

const env = await startTemporal();
const gw = await startGateway(env, {
  taskQueue: 'record',
  policy,
  tools: { refund: async ({ args }) => ({ refunded: args.amount }), escalating: async () => 'ok', expiring: async () => 'ok' },
});
const previewGw = await startGateway(env, {
  taskQueue: 'record-v3',
  policy: previewPolicy,
  tools: {
    purge: async ({ args, preview }) => (preview ? `would delete 3,214 rows older than ${String(args.older_than_days)} days` : { deleted: 3214 }),
  },
});
const request = (name: string, tool: string, args: Record<string, unknown>): ToolRequestInput => ({
  requestId: `history-${name}`,
  actor: { id: 'bot', type: 'agent', roles: ['agent_runtime'] },
  tenant: 'acme',
  environment: 'production',
  tool,
  args,
});
const pending = (requestId: string, notDigest?: string, on = gw) => waitForState(on, requestId, 'pending_approval', { notDigest });
const decide = async (requestId: string, sub: string, groups: string[], body: Record<string, unknown>, on = gw) => {
  const res = await on.api('POST', `/v1/approvals/${requestId}/decision`, { token: await on.token({ sub, tenant: 'acme', groups }), body });
  if (res.status !== 200) throw new Error(`${requestId}: ${res.status} ${JSON.stringify(res.body)}`);
};

try {
  const runs: Record<string, () => Promise<string>> = {
    // v3: the dry-run preview runs before approval; the approval binds the previewed proposal.
    preview: async () => {
      const h = await previewGw.gateway.start(request('preview', 'purge', { older_than_days: 30 }));
      const s = await pending(h.requestId, undefined, previewGw);
      if (s.proposal?.preview?.status !== 'ok') throw new Error(`preview: expected an answered preview, got ${JSON.stringify(s.proposal?.preview)}`);
      await decide(h.requestId, 'maria', ['manager'], { decision: 'approve', digest: s.digest }, previewGw);
      await h.outcome();
      return h.workflowId;
    },
    approve: async () => {
      const h = await gw.gateway.start(request('approve', 'refund', { amount: 10 }));
      await decide(h.requestId, 'maria', ['manager'], { decision: 'approve', digest: (await pending(h.requestId)).digest });
      await h.outcome();
      return h.workflowId;
    },
    reject: async () => {
      const h = await gw.gateway.start(request('reject', 'refund', { amount: 20 }));
      await decide(h.requestId, 'maria', ['manager'], { decision: 'reject', digest: (await pending(h.requestId)).digest, reason: 'no' });
      await h.outcome();
      return h.workflowId;
    },
    edit: async () => {
      const h = await gw.gateway.start(request('edit', 'refund', { amount: 30 }));
      const first = await pending(h.requestId);
      await decide(h.requestId, 'maria', ['manager'], { decision: 'edit', digest: first.digest, args: { amount: 3000 } });
      const second = await pending(h.requestId, first.digest);
      await decide(h.requestId, 'fiona', ['finance'], { decision: 'approve', digest: second.digest });
      await h.outcome();
      return h.workflowId;
    },
    escalate: async () => {
      const h = await gw.gateway.start(request('escalate', 'escalating', {}));
      const s = await pending(h.requestId);
      await eventually(async () => ((await gw.status(h.requestId)).tier === 1 ? true : undefined), 'escalation');
      await decide(h.requestId, 'dora', ['director'], { decision: 'approve', digest: s.digest });
      await h.outcome();
      return h.workflowId;
    },
    expire: async () => {
      const h = await gw.gateway.start(request('expire', 'expiring', {}));
      await h.outcome();
      return h.workflowId;
    },
    refused: async () => {
      // An authenticated approver outside the group is refused and recorded; then a manager approves.
      const h = await gw.gateway.start(request('refused', 'refund', { amount: 40 }));
      const s = await pending(h.requestId);
      const res = await gw.api('POST', `/v1/approvals/${h.requestId}/decision`, {
        token: await gw.token({ sub: 'sam', tenant: 'acme', groups: ['support'] }),
        body: { decision: 'approve', digest: s.digest },
      });
      if (res.status !== 403) throw new Error(`refused: expected 403, got ${res.status}`);
      await decide(h.requestId, 'maria', ['manager'], { decision: 'approve', digest: s.digest });
      await h.outcome();
      return h.workflowId;
    },
    unverified: async () => {
      // Started straight on Temporal without the front door's assertion: refused before policy.
      const workflowId = workflowIdFor('acme', 'history-unverified');
      const handle = await gw.ops.workflow.start(WORKFLOW_TYPE, {
        taskQueue: 'record',
        workflowId,
        args: [
          {
            request: { ...request('unverified', 'refund', { amount: 1 }), actor: { id: 'bot', type: 'agent', roles: ['agent_runtime'] } },
            admission: 'forged.assertion.value',
          },
        ],
      });
      await handle.result();
      return workflowId;
    },
    deny: async () => {
      const h = await gw.gateway.start(request('deny', 'refund', { amount: 500000 }));
      await h.outcome();
      return h.workflowId;
    },
  };
  const unknown = only.filter((name) => !Object.hasOwn(runs, name));
  if (unknown.length > 0) throw new Error(`no such path: ${unknown.join(', ')} (known: ${Object.keys(runs).join(', ')})`);
  for (const [name, run] of Object.entries(runs)) {
    if (only.length > 0 && !only.includes(name)) continue;
    const OUT = join(HISTORIES, name === 'preview' ? 'v3' : 'v2');
    await mkdir(OUT, { recursive: true });
    const workflowId = await run();
    // The CLI writes the history as protobuf JSON, the format `historyFromJSON` reads back.
    const json = execFileSync(requireTemporalCli(), ['workflow', 'show', '--workflow-id', workflowId, '--address', env.address, '--output', 'json'], {
      encoding: 'utf8',
    });
    await writeFile(join(OUT, `${name}.json`), json.endsWith('\n') ? json : `${json}\n`);
    process.stderr.write(`recorded ${name} (${(JSON.parse(json) as { events: unknown[] }).events.length} events)\n`);
  }
} finally {
  await previewGw.close();
  await gw.close();
  await env.teardown();
}
