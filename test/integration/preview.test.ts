/**
 * Dry-run previews on a real Temporal server, through the front door and the approval API: a
 * tool's preview runs before approvers are asked, under the tool's identity and in preview mode,
 * and its redacted answer is on the approval view, the link page, the notification and the audit
 * record, inside the digest approvers sign. A preview that fails or hangs is shown as such and
 * the request can still be approved, rejected, killed and expire on time.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { canonicalDigest } from '../../src/approvals/digest.js';
import { buildAuditRecord } from '../../src/audit/record.js';
import { formatAuditRecord } from '../../src/audit/record-format.js';
import { killSignal, type Proposal, type RequestStatus, type ToolRequestInput } from '../../src/shared/index.js';
import type { ToolContext } from '../../src/tools/types.js';
import { eventually, startGateway, startTemporal, waitForState, type GatewayEnv } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { startWebhookReceiver } from '../helpers/tool-service.js';

/** A secret a rule redacts (a GitHub token shape) and one a secret assignment gives away. */
const TOKEN = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789';
const PASSWORD = 'hunter2-very-secret';

/** A loopback HTTP tool: `/preview` answers a diff, `/act` acts; every call is recorded with its headers. */
async function startHttpTool(): Promise<{ url: string; calls: { path: string; headers: IncomingHttpHeaders; body: unknown }[]; close(): Promise<void> }> {
  const calls: { path: string; headers: IncomingHttpHeaders; body: unknown }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      calls.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
      const answer = req.url === '/preview' ? { diff: '- max_connections: 100\n+ max_connections: 400' } : { applied: true };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The policy of these tests; reconfigure calls the loopback test tool (httpTool allows private egress). */
function policyYaml(httpUrl: string): string {
  const approved = (plan: string) => ({ risk: 'high', approval: plan }) as const;
  return policy()
    .plan('manager', { groups: ['manager'] })
    .plan('short', { groups: ['manager'], expiresAfter: '2s' })
    .tool('purge', approved('manager'))
    .tool('reconfigure', approved('manager'))
    .tool('flaky', approved('manager'))
    .tool('stuck', approved('manager'))
    .tool('stuck_short', approved('short'))
    .tool('stalled', approved('manager'))
    .codeTool('purge', {
      preview: { adapter: { type: 'code', handler: 'purge' }, timeout: '2s', max_bytes: 1024 },
      args: argsOf({ older_than_days: 'integer' }, { required: ['older_than_days'] }),
    })
    .httpTool('reconfigure', `${httpUrl}/act`, {
      runAs: 'svc-config',
      preview: { adapter: { type: 'http', url: `${httpUrl}/preview` }, timeout: '2s' },
      args: argsOf({ max_connections: 'integer' }),
    })
    .codeTool('flaky', { handler: 'flaky', preview: { adapter: { type: 'code', handler: 'flaky' }, timeout: '2s' } })
    .codeTool('stuck', { handler: 'stuck', preview: { adapter: { type: 'code', handler: 'stuck' }, timeout: '1s' } })
    .codeTool('stuck_short', { runAs: 'svc-stuck', handler: 'stuck', preview: { adapter: { type: 'code', handler: 'stuck' }, timeout: '8s' } })
    .codeTool('stalled', { handler: 'stalled', preview: { adapter: { type: 'code', handler: 'stalled' }, timeout: '1s' } })
    .yaml();
}

let seq = 0;
function request(tool: string, args: Record<string, unknown> = {}): ToolRequestInput {
  seq += 1;
  return {
    requestId: `pv-${process.pid}-${Date.now()}-${seq}`,
    actor: { id: 'ops-bot', type: 'agent', roles: ['agent_runtime'] },
    tenant: 'acme',
    environment: 'production',
    tool,
    args,
  };
}

/** The proposal as it was before the preview was added: what a digest "without the preview" is computed over. */
function withoutPreview(proposal: Proposal): Proposal {
  const rest: Proposal = { ...proposal };
  delete rest.preview;
  return rest;
}

describe('dry-run previews', { timeout: 240_000 }, () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  let http: Awaited<ReturnType<typeof startHttpTool>>;
  let webhook: Awaited<ReturnType<typeof startWebhookReceiver>>;
  /** Every call of a code handler: which tool, whether as a preview, as whom, with what. */
  const calls: { tool: string; preview: boolean; runAs: string; args: Record<string, unknown>; attempt: number; requestId: string }[] = [];
  const record = (context: ToolContext) =>
    calls.push({
      tool: context.tool,
      preview: context.preview === true,
      runAs: context.runAs,
      args: context.args,
      attempt: context.attempt,
      requestId: context.requestId,
    });
  let maria = '';
  const pending = (requestId: string, notDigest?: string): Promise<RequestStatus> => waitForState(gw, requestId, 'pending_approval', { notDigest });
  const decide = (requestId: string, body: Record<string, unknown>) => gw.api('POST', `/v1/approvals/${requestId}/decision`, { token: maria, body });
  const callsOf = (requestId: string) => calls.filter((call) => call.requestId === requestId);

  before(async () => {
    env = await startTemporal();
    http = await startHttpTool();
    webhook = await startWebhookReceiver();
    gw = await startGateway(env, {
      taskQueue: `preview-${process.pid}`,
      policy: policyYaml(http.url),
      webhooks: [webhook.url],
      tools: {
        async purge(context) {
          record(context);
          const days = Number(context.args.older_than_days);
          if (context.preview)
            return {
              summary: `would delete 3,214 rows older than ${days} days`,
              connection: `token ${TOKEN}`,
              sample: Array.from({ length: 200 }, (_, i) => `row-${i}`),
            };
          return { deleted: 3214 };
        },
        async flaky(context) {
          record(context);
          if (context.preview) throw new Error(`cannot count the rows: password=${PASSWORD}`);
          return 'done';
        },
        async stalled(context) {
          record(context);
          if (context.preview) {
            // Blocks the whole worker process (as a stalled worker would) past the activity's
            // start-to-close timeout (1s + 2s): the activity itself never answers in time.
            const until = Date.now() + 4_000;
            while (Date.now() < until) {
              /* stalled */
            }
            return 'too late';
          }
          return 'done';
        },
        async stuck(context) {
          record(context);
          // Ignores its signal on purpose: the preview must be given up all the same.
          if (context.preview) return new Promise(() => {});
          return 'done';
        },
      },
    });
    maria = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
  });
  after(async () => {
    await gw?.close();
    await http?.close();
    await webhook?.close();
    await env?.teardown();
  });

  test('a code preview is on the approval view, the link page, the notification and the audit record, inside the digest', async () => {
    const handle = await gw.gateway.start(request('purge', { older_than_days: 30 }));
    const status = await pending(handle.requestId);
    const proposal = status.proposal as Proposal;
    const preview = proposal.preview;
    assert.equal(preview?.status, 'ok', JSON.stringify(preview));
    assert.ok(preview?.status === 'ok' && preview.truncated, 'the answer is longer than max_bytes: 1024, so it is cut');
    assert.ok(Buffer.byteLength(preview.result as string, 'utf8') <= 1024, 'cut to max_bytes');
    assert.match(preview.result as string, /would delete 3,214 rows older than 30 days/);
    assert.doesNotMatch(JSON.stringify(proposal), new RegExp(TOKEN), 'the secret never enters the history');
    assert.match(preview.result as string, /\[REDACTED:/);

    // The preview ran once, before anyone was asked, as the tool's identity and in preview mode.
    assert.deepEqual(callsOf(handle.requestId), [
      { tool: 'purge', preview: true, runAs: 'svc-purge', args: { older_than_days: 30 }, attempt: 1, requestId: handle.requestId },
    ]);

    // The digest approvers sign is over the proposal with the preview; without it is another digest.
    assert.equal(canonicalDigest(proposal), status.digest);
    const blind = canonicalDigest(withoutPreview(proposal));
    assert.notEqual(blind, status.digest);
    const refused = await decide(handle.requestId, { decision: 'approve', digest: blind });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'digest_mismatch', JSON.stringify(refused.body));

    const view = await gw.api('GET', `/v1/approvals/${handle.requestId}`, { token: maria });
    assert.equal(view.status, 200);
    assert.equal(view.body.preview.status, 'ok');
    assert.equal(view.body.preview.truncated, true);
    assert.match(view.body.preview.text, /would delete 3,214 rows/);
    assert.doesNotMatch(JSON.stringify(view.body), new RegExp(TOKEN));
    assert.deepEqual(view.body.proposal.preview.status, 'ok');
    assert.equal(view.body.digest, status.digest);

    const link = await gw.links.mintLink({
      requestId: handle.requestId,
      digest: status.digest ?? '',
      approver: { id: 'maria', tenant: 'acme', groups: ['manager'] },
    });
    const page = await (await fetch(`${gw.apiUrl}/v1/links/${link.token}`)).text();
    assert.match(page, /<dt>preview \(dry run\)<\/dt><dd><pre>\{[^<]*would delete 3,214 rows/);
    assert.doesNotMatch(page, new RegExp(TOKEN));

    const requested = await eventually(
      async () => webhook.received.find((event) => event.requestId === handle.requestId && event.kind === 'requested'),
      'the requested notification',
    );
    const shown = requested.preview as { status: string; headline: string; text: string; truncated: boolean };
    assert.equal(shown.headline, 'preview (dry run)');
    assert.equal(shown.status, 'ok');
    assert.match(shown.text, /would delete 3,214 rows/);
    assert.doesNotMatch(JSON.stringify(requested), new RegExp(TOKEN));

    const approved = await decide(handle.requestId, { decision: 'approve', digest: status.digest });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'completed');
    assert.equal(outcome.digest, status.digest);
    assert.deepEqual(
      callsOf(handle.requestId).map((call) => call.preview),
      [true, false],
      'one preview, then the real call (not in preview mode)',
    );

    const audit = await buildAuditRecord(gw.ops, 'acme', handle.requestId);
    assert.equal(audit.proposal.preview?.status, 'ok');
    assert.match(audit.proposal.preview?.text ?? '', /would delete 3,214 rows/);
    assert.equal(audit.proposal.digest, status.digest);
    assert.ok(
      audit.timeline.some((entry) => /^dry-run preview called as svc-purge$/.test(entry.event)),
      JSON.stringify(audit.timeline),
    );
    assert.ok(
      audit.timeline.some((entry) => /^dry-run preview answered: .*would delete 3,214 rows/.test(entry.event)),
      JSON.stringify(audit.timeline),
    );
    const text = formatAuditRecord(audit);
    assert.match(text, /\n {2}preview \(dry run\): .*would delete 3,214 rows/);
    assert.doesNotMatch(text, new RegExp(TOKEN));
  });

  test('an http preview gets Toolgate-Preview: 1 as the tool identity; the real call does not, and only after approval', async () => {
    const handle = await gw.gateway.start(request('reconfigure', { max_connections: 400 }));
    const status = await pending(handle.requestId);
    const mine = () => http.calls.filter((call) => (call.headers['x-toolgate-request-id'] as string) === handle.requestId);
    assert.deepEqual(
      mine().map((call) => call.path),
      ['/preview'],
      'only the preview before approval',
    );
    const [previewCall] = mine();
    assert.equal(previewCall!.headers['toolgate-preview'], '1');
    assert.equal(previewCall!.headers['x-toolgate-run-as'], 'svc-config');
    assert.deepEqual((previewCall!.body as { args: unknown }).args, { max_connections: 400 });
    assert.notEqual(previewCall!.headers['idempotency-key'], `toolgate:${handle.workflowId}`, "the preview never uses the execution's idempotency key");
    const preview = status.proposal?.preview;
    assert.equal(preview?.status, 'ok');
    assert.deepEqual(preview?.status === 'ok' ? preview.result : undefined, { diff: '- max_connections: 100\n+ max_connections: 400' });

    assert.equal((await decide(handle.requestId, { decision: 'approve', digest: status.digest })).status, 200);
    assert.equal((await handle.outcome()).status, 'completed');
    assert.deepEqual(
      mine().map((call) => call.path),
      ['/preview', '/act'],
    );
    assert.equal(mine()[1]!.headers['toolgate-preview'], undefined);
  });

  test('a failing preview is shown as failed, redacted, and the request can still be rejected', async () => {
    const handle = await gw.gateway.start(request('flaky'));
    const status = await pending(handle.requestId);
    const preview = status.proposal?.preview;
    assert.equal(preview?.status, 'failed', JSON.stringify(preview));
    assert.match(preview?.status === 'failed' ? preview.message : '', /cannot count the rows: password=\[REDACTED:/);
    assert.doesNotMatch(JSON.stringify(status), new RegExp(PASSWORD));
    const view = await gw.api('GET', `/v1/approvals/${handle.requestId}`, { token: maria });
    assert.equal(view.body.preview.status, 'failed');
    assert.equal(view.body.canDecide, true);
    assert.equal((await decide(handle.requestId, { decision: 'reject', digest: status.digest, reason: 'no count, no purge' })).status, 200);
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'rejected');
    assert.deepEqual(
      callsOf(handle.requestId).map((call) => call.preview),
      [true],
      'nothing ran but the preview',
    );
  });

  test('a hanging preview is given up at its timeout, shown as timed out, and the request can still be approved', async () => {
    const startedAt = Date.now();
    const handle = await gw.gateway.start(request('stuck'));
    const status = await pending(handle.requestId);
    const waited = Date.now() - startedAt;
    const preview = status.proposal?.preview;
    assert.equal(preview?.status, 'timed_out', JSON.stringify(preview));
    assert.ok(waited >= 1000 && waited < 6000, `approvers were asked ${waited} ms after the request (preview timeout 1s)`);
    const requested = await eventually(
      async () => webhook.received.find((event) => event.requestId === handle.requestId && event.kind === 'requested'),
      'the requested notification',
    );
    assert.equal((requested.preview as { headline: string }).headline, 'preview (dry run) timed out');
    assert.equal((await decide(handle.requestId, { decision: 'approve', digest: status.digest })).status, 200);
    assert.equal((await handle.outcome()).status, 'completed');
    const audit = await buildAuditRecord(gw.ops, 'acme', handle.requestId);
    assert.equal(audit.proposal.preview?.status, 'timed_out');
  });

  test('a preview activity that never answers (its worker stalled) is recorded as timed out by the worker, and the request goes on', async () => {
    const handle = await gw.gateway.start(request('stalled'));
    const status = await pending(handle.requestId);
    const preview = status.proposal?.preview;
    assert.equal(preview?.status, 'timed_out', JSON.stringify(preview));
    assert.match(preview?.status === 'timed_out' ? preview.message : '', /^no worker ran the preview within its time/);
    assert.equal(canonicalDigest(status.proposal), status.digest);
    assert.equal((await decide(handle.requestId, { decision: 'approve', digest: status.digest })).status, 200);
    assert.equal((await handle.outcome()).status, 'completed', "the worker's seal on the recorded failure lets the approved request run");
    const audit = await buildAuditRecord(gw.ops, 'acme', handle.requestId);
    assert.ok(
      audit.timeline.some((entry) => /^dry-run preview timed out: no worker ran the preview/.test(entry.event)),
      JSON.stringify(audit.timeline),
    );
  });

  test('a request expires on time while its preview still hangs', async () => {
    const startedAt = Date.now();
    const handle = await gw.gateway.start(request('stuck_short'));
    const outcome = await handle.outcome();
    const took = Date.now() - startedAt;
    assert.equal(outcome.status, 'expired');
    // Expiry (2s) comes long before the preview's own timeout (8s): the preview does not delay it.
    assert.ok(took < 6000, `expired after ${took} ms`);
    const expiresAt = outcome.status === 'expired' ? Date.parse(outcome.expiresAt) : NaN;
    assert.ok(expiresAt - startedAt >= 1500 && expiresAt - startedAt < 4000, `expiry set ${expiresAt - startedAt} ms after the request`);
    const status = await gw.status(handle.requestId);
    assert.equal(status.proposal?.preview, undefined, 'no preview answered');
    assert.equal(status.notifications.length, 0, 'nobody was asked');
  });

  test('a kill order denies a request while its preview runs', async () => {
    const handle = await gw.gateway.start(request('stuck_short'));
    await eventually(async () => (callsOf(handle.requestId).length > 0 ? true : undefined), 'the preview to start');
    await gw.ops.workflow.getHandle(handle.workflowId).signal(killSignal, { switchId: 'ks-1', reason: 'incident', by: 'ops', at: new Date().toISOString() });
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'denied');
    assert.equal(outcome.status === 'denied' ? outcome.code : '', 'kill_switch');
  });

  test("an edit previews the new arguments again, and the edit counts as nobody's approval until it is read", async () => {
    const handle = await gw.gateway.start(request('purge', { older_than_days: 30 }));
    const first = await pending(handle.requestId);
    const edited = await decide(handle.requestId, { decision: 'edit', digest: first.digest, args: { older_than_days: 90 } });
    assert.equal(edited.status, 200, JSON.stringify(edited.body));
    const second = await pending(handle.requestId, first.digest);
    const preview = second.proposal?.preview;
    assert.match(preview?.status === 'ok' ? String(preview.result) : '', /older than 90 days/);
    assert.equal(canonicalDigest(second.proposal), second.digest);
    assert.deepEqual(
      callsOf(handle.requestId).map((call) => [call.preview, call.args.older_than_days]),
      [
        [true, 30],
        [true, 90],
      ],
    );
    assert.deepEqual(
      second.approvals.filter((vote) => vote.digest === second.digest),
      [],
      'the editor has not read the new preview: no vote yet',
    );
    assert.equal((await decide(handle.requestId, { decision: 'approve', digest: second.digest })).status, 200);
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'completed');
    assert.deepEqual(outcome.status === 'completed' ? outcome.args : undefined, { older_than_days: 90 });
  });
});
