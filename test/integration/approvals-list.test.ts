/**
 * "Waiting for me" comes from visibility alone: it answers with no worker running (so no
 * workflow was asked), pages with the server's page token, follows escalation (a group becomes
 * eligible at its tier), leaves out requests the approver already voted on, their own agent's
 * requests, other groups' and other tenants'.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { ToolRequestInput } from '../../src/shared/index.js';
import { eventually, waitForState } from '../helpers/gateway-env.js';
import { decide, getJson, type ApiErrorBody } from '../helpers/http.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { useGateway } from '../helpers/use-gateway.js';

const POLICY = policy()
  .plan('two_managers', { groups: ['manager'], minApprovals: 2 })
  .plan('sre_then_director', { groups: ['sre'], escalation: [{ after: '3s', groups: ['director'] }] })
  .tool('refund', { risk: 'high', approval: 'two_managers' })
  .tool('deploy', { risk: 'high', approval: 'sre_then_director' })
  .codeTool('refund', { runAs: 'svc-payments', args: argsOf({ n: 'integer' }) })
  .codeTool('deploy', { runAs: 'svc-deploy', args: argsOf({ n: 'integer' }) })
  .yaml();

let seq = 0;
const request = (tool: string, tenant = 'acme', actor = 'bot'): ToolRequestInput => ({
  requestId: `list-${process.pid}-${Date.now()}-${++seq}`,
  actor: { id: actor, type: 'agent', roles: ['agent_runtime'] },
  tenant,
  environment: 'production',
  tool,
  args: { n: seq },
});

/** A page of `GET /v1/approvals` (the fields these tests read). */
interface ListPage {
  items: Array<{ requestId: string; tier: number; eligibleGroups: string[]; approvals: number; expiresAt?: string }>;
  nextPageToken?: string;
}

describe('waiting for me, from visibility alone', { timeout: 180_000 }, () => {
  const ids: Record<string, string[]> = { refunds: [], deploy: [], globex: [], own: [] };
  const { gw } = useGateway({
    taskQueue: `list-${process.pid}`,
    policy: POLICY,
    tools: { refund: async () => ({ ok: true }), deploy: async () => ({ ok: true }) },
  });

  before(async () => {
    for (let i = 0; i < 7; i++) ids.refunds!.push((await gw.gateway.start(request('refund'))).requestId);
    ids.deploy!.push((await gw.gateway.start(request('deploy'))).requestId);
    ids.globex!.push((await gw.gateway.start(request('refund', 'globex'))).requestId);
    ids.own!.push((await gw.gateway.start(request('refund', 'acme', 'maria'))).requestId);
    for (const id of [...ids.refunds!, ...ids.deploy!, ...ids.own!]) await waitForState(gw, id, 'pending_approval');
    await waitForState(gw, ids.globex![0]!, 'pending_approval', { tenant: 'globex' });
  });

  /** Every page of the list, following page tokens. */
  const allPages = async (token: string, limit: number): Promise<{ pages: number; ids: string[]; items: ListPage['items'] }> => {
    const items: ListPage['items'] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const answer = await getJson<ListPage>(gw, `/v1/approvals?limit=${limit}${pageToken ? `&pageToken=${pageToken}` : ''}`, { token });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      items.push(...answer.body.items);
      pageToken = answer.body.nextPageToken;
      pages += 1;
    } while (pageToken && pages < 20);
    return { pages, ids: items.map((item) => item.requestId).sort(), items };
  };

  test('a manager sees the refunds of their tenant, in pages, and not their own agent request, other groups or tenants; without any worker', async () => {
    const maria = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    await eventually(async () => ((await allPages(maria, 50)).ids.length === ids.refunds!.length ? true : undefined), 'visibility to list every refund');
    await gw.stopWorker();
    try {
      const listed = await allPages(maria, 3);
      assert.deepEqual(listed.ids, [...ids.refunds!].sort(), "exactly the acme refunds, not maria's own, not deploy, not globex");
      assert.ok(listed.pages >= 3, `paged: ${listed.pages} pages of 3`);
      assert.ok(listed.items.every((item) => item.expiresAt && item.eligibleGroups.includes('manager')));
      const bad = await getJson<ApiErrorBody>(gw, '/v1/approvals?pageToken=not*a*token', { token: maria });
      assert.equal(bad.status, 400);
      assert.deepEqual(bad.body.error?.fields, ['pageToken']);
      // Made-up tokens are refused at once, not retried against the server for many seconds.
      for (const forgedToken of ['AAAA', 'QUJD', Buffer.from('[1]').toString('base64url')]) {
        const started = Date.now();
        const forged = await gw.api('GET', `/v1/approvals?pageToken=${forgedToken}`, { token: maria });
        assert.equal(forged.status, 400, `${forgedToken}: ${JSON.stringify(forged.body)}`);
        assert.ok(Date.now() - started < 1_000, `${forgedToken} answered in ${Date.now() - started} ms`);
      }
    } finally {
      await gw.startWorker();
    }
  });

  test("a vote takes the request off the voter's list and leaves it on the others'", async () => {
    const maria = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    const omar = await gw.token({ sub: 'omar', tenant: 'acme', groups: ['manager'] });
    const id = ids.refunds![0]!;
    const status = await gw.status(id);
    const voted = await decide(gw, id, maria, { decision: 'approve', digest: status.digest ?? '' });
    assert.equal(voted.status, 200, JSON.stringify(voted.body));
    await eventually(async () => (!(await allPages(maria, 50)).ids.includes(id) ? true : undefined), "the voted request to leave maria's list");
    const others = await allPages(omar, 50);
    const item = others.items.find((entry) => entry.requestId === id);
    assert.ok(item, 'still waiting for another manager');
    assert.equal(item.approvals, 1);
  });

  test('escalation: the director sees the deploy only once its tier is reached', async () => {
    const director = await gw.token({ sub: 'dora', tenant: 'acme', groups: ['director'] });
    const sre = await gw.token({ sub: 'sam', tenant: 'acme', groups: ['sre'] });
    const id = ids.deploy![0]!;
    assert.ok((await allPages(sre, 50)).ids.includes(id));
    const escalated = await eventually(
      async () => {
        const page = await allPages(director, 50);
        return page.items.find((entry) => entry.requestId === id);
      },
      'the deploy to reach the director after the 3 s tier',
      30_000,
    );
    assert.equal(escalated.tier, 1);
    assert.deepEqual([...escalated.eligibleGroups].sort(), ['director', 'sre']);
  });
});
