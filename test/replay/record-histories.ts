/**
 * Records the workflow histories the replay test checks: one run of each path through the
 * toolRequest workflow (approve, reject, edit, escalate, expire, deny), on a real dev server.
 *
 *   npm run record:histories              # rewrites test/histories/v2/*.json, v3/*.json and v4/*.json
 *   npm run record:histories -- preview   # records only the paths named (here: v3/preview.json)
 *
 * Record again only for a deliberate, patched() change of the workflow, and keep the old files:
 * histories of runs still in flight must go on replaying. A new path goes into a new set (v3: the
 * dry-run preview; v4: local execution, end-user confirmation, break-glass override, rollback),
 * recorded on its own, so the committed ones stay as they are.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { requireTemporalCli } from '../../src/temporal/cli.js';
import { readFileSync } from 'node:fs';
import { WORKFLOW_TYPE, workflowIdFor, type ToolRequestInput } from '../../src/shared/index.js';
import { ToolRejectedError } from '../../src/tools/types.js';
import { RECORDING_POLICY } from '../fixtures/replay/recording-policy.js';
import { argsOf, policy as policyFile } from '../helpers/policy-builder.js';

/**
 * Histories of the current workflow (v2: visibility-only listing; v3 and v4: the paths added
 * since, each set under its own policy). Those of earlier versions stay where they are: v0 (before
 * the trust boundary), v1 (before the waiting attributes).
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

/**
 * The v4 paths' policy, again its own (and its own task queue): `lookup_order` and
 * `lookup_missing` are low risk, allowed and idempotent, so policy marks them `localExecution` and
 * they run as a local activity; `set_priority` waits for its end user's confirmation;
 * `deploy_service` is denied by a rule a break-glass override may lift; `close_ticket` names an
 * undo tool, `reopen_ticket`, that a person of support may ask for and another approves.
 */
const v4Policy = policyFile()
  .plan('confirm', { endUser: true, minApprovals: 1 })
  .plan('release', { groups: ['release_managers'] })
  .plan('support_review', { groups: ['support'] })
  .tool('lookup_order')
  .tool('lookup_missing')
  .tool('set_priority', { approval: 'confirm' })
  .tool('deploy_service', {
    risk: 'high',
    approval: 'release',
    rules: [{ name: 'change_freeze', when: 'true', effect: 'deny', risk: 'critical', reason: 'deploys are frozen' }],
  })
  .tool('close_ticket')
  .tool('reopen_ticket', { risk: 'medium', approval: 'support_review', roles: ['support'] })
  .breakGlass('change_freeze', { tools: ['deploy_service'], groups: ['sre-oncall'], notify: ['security'], expiresAfter: '15m' })
  .codeTool('lookup_order', { runAs: 'svc-orders', idempotent: true, args: argsOf({ order_id: 'string' }) })
  .codeTool('lookup_missing', { runAs: 'svc-orders', idempotent: true, args: argsOf({ order_id: 'string' }) })
  .codeTool('set_priority', { runAs: 'svc-tickets', args: argsOf({ ticket: 'string', priority: 'string' }) })
  .codeTool('deploy_service', { runAs: 'svc-deployer', args: argsOf({ service: 'string' }) })
  .codeTool('close_ticket', {
    runAs: 'svc-tickets',
    args: argsOf({ ticket_id: 'string' }, { required: ['ticket_id'] }),
    undo: { tool: 'reopen_ticket', args: { ticket_id: 'args.ticket_id', note: '"rolled back " + request_id', closed_at: 'result.closed_at' } },
  })
  .codeTool('reopen_ticket', { runAs: 'svc-tickets', args: argsOf({ ticket_id: 'string', note: 'string', closed_at: 'string' }) })
  .yaml();
/** Which set each path's history belongs to (v2 unless named here). */
const SET_OF: Record<string, string> = { preview: 'v3', local: 'v4', 'local-failed': 'v4', 'end-user': 'v4', override: 'v4', rollback: 'v4' };

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
const v4Gw = await startGateway(env, {
  taskQueue: 'record-v4',
  policy: v4Policy,
  tools: {
    lookup_order: async ({ args }) => ({ order: args.order_id, status: 'shipped' }),
    lookup_missing: async ({ args }) => {
      throw new ToolRejectedError(`no such order: ${String(args.order_id)}`, { status: 404 });
    },
    set_priority: async ({ args }) => ({ ticket: args.ticket, priority: args.priority }),
    deploy_service: async ({ args }) => ({ deployed: args.service }),
    close_ticket: async ({ args }) => ({ closed_at: `2030-01-01T00:00:00Z#${String(args.ticket_id)}` }),
    reopen_ticket: async ({ args }) => ({ reopened: args.ticket_id }),
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
/** Asks for a request linked to `requestId` (`override` or `rollback`) as `sub`; the linked request's id. */
const linked = async (kind: 'override' | 'rollback', requestId: string, sub: string, groups: string[], reason: string): Promise<string> => {
  const res = await v4Gw.api('POST', `/v1/approvals/${requestId}/${kind}`, { token: await v4Gw.token({ sub, tenant: 'acme', groups }), body: { reason } });
  if (res.status !== 202) throw new Error(`${requestId} ${kind}: ${res.status} ${JSON.stringify(res.body)}`);
  return (res.body as { requestId: string }).requestId;
};
/** The outcome of a request that only ops can see (a linked one: no agent started it). */
const outcomeOf = async (requestId: string): Promise<{ status: string }> =>
  (await v4Gw.ops.workflow.getHandle(workflowIdFor('acme', requestId)).result()) as { status: string };
/** Fails the recording when a path did not end as it should: a wrong history must not be committed. */
const expectStatus = (name: string, outcome: { status: string }, status: string) => {
  if (outcome.status !== status) throw new Error(`${name}: expected ${status}, got ${JSON.stringify(outcome)}`);
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
    // v4: an allowed, low-risk, idempotent tool runs as a local activity in the first workflow task.
    local: async () => {
      const h = await v4Gw.gateway.start(request('local', 'lookup_order', { order_id: 'O-1' }));
      expectStatus('local', await h.outcome(), 'completed');
      return h.workflowId;
    },
    // v4: the same path, the tool refusing: the failure comes back from the local activity's marker.
    'local-failed': async () => {
      const h = await v4Gw.gateway.start(request('local-failed', 'lookup_missing', { order_id: 'O-404' }));
      expectStatus('local-failed', await h.outcome(), 'failed');
      return h.workflowId;
    },
    // v4: a plan with end_user: true, confirmed by the end user the agent acts for.
    'end-user': async () => {
      const h = await v4Gw.gateway.start({
        ...request('end-user', 'set_priority', { ticket: 'T-1', priority: 'urgent' }),
        onBehalfOf: [{ type: 'human', id: 'Ana' }],
      });
      await pending(h.requestId, undefined, v4Gw);
      const digest = (await h.status()).endUserConfirmation?.digest;
      if (!digest) throw new Error('end-user: the agent view carries nothing to confirm');
      await h.confirm({ decision: 'confirm', digest, reason: 'yes, urgent' });
      expectStatus('end-user', await h.outcome(), 'completed');
      return h.workflowId;
    },
    // v4: a break-glass override of a denial — the linked request's history, asked by one member
    // of the break-glass group and approved by a second.
    override: async () => {
      const original = await v4Gw.gateway.start(request('override', 'deploy_service', { service: 'web' }));
      expectStatus('override original', await original.outcome(), 'denied');
      const id = await linked('override', original.requestId, 'sam', ['sre-oncall'], 'prod is down; the fix must ship');
      await decide(id, 'lee', ['sre-oncall'], { decision: 'approve', digest: (await pending(id, undefined, v4Gw)).digest }, v4Gw);
      expectStatus('override', await outcomeOf(id), 'completed');
      return workflowIdFor('acme', id);
    },
    // v4: the rollback of a completed request — the linked undo request, asked by one person of
    // support and approved by another.
    rollback: async () => {
      const original = await v4Gw.gateway.start(request('rollback', 'close_ticket', { ticket_id: 'T-1' }));
      expectStatus('rollback original', await original.outcome(), 'completed');
      const id = await linked('rollback', original.requestId, 'sam', ['support'], 'closed by mistake');
      await decide(id, 'lee', ['support'], { decision: 'approve', digest: (await pending(id, undefined, v4Gw)).digest }, v4Gw);
      expectStatus('rollback', await outcomeOf(id), 'completed');
      return workflowIdFor('acme', id);
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
    const OUT = join(HISTORIES, SET_OF[name] ?? 'v2');
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
  await v4Gw.close();
  await previewGw.close();
  await gw.close();
  await env.teardown();
}
