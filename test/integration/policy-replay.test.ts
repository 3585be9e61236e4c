/**
 * `toolgate policy replay` on a real Temporal server: 22 real requests across two tenants (allowed,
 * approved, edited, rejected, pending, denied by a rule and by role, one rate-limited, one whose
 * admission was forged) are replayed under a stricter and a looser candidate policy, written to
 * files. The counts are checked exactly, per tenant too; the exit codes through the real CLI; and
 * the replay changes nothing: no history grows, no workflow starts, no tool runs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { runPolicyReplay } from '../../src/cli/policy-commands.js';
import { readRecordedRequest } from '../../src/cli/policy-replay-source.js';
import { WORKFLOW_TYPE, searchAttributes, workflowIdFor, type RequestState, type ToolRequestInput } from '../../src/shared/index.js';
import { eventually, startGateway, startTemporal, testCodecKeysEnv, waitForState, type GatewayEnv } from '../helpers/gateway-env.js';
import { BASE as RECORDED, LOOSER, STRICTER, policyYaml } from '../fixtures/policy-versions.js';
import { runToolgate as cli } from '../helpers/processes.js';

const taskQueue = `policy-replay-${process.pid}`;
let seq = 0;
const request = (tenant: string, tool: string, args: Record<string, unknown>, actor = 'bot-a', roles = ['agent_runtime']): ToolRequestInput => ({
  requestId: `replay-${process.pid}-${++seq}`,
  actor: { id: actor, type: 'agent', roles },
  tenant,
  environment: 'production',
  tool,
  args,
});

/** The non-zero counts of a JSON report. */
const nonZero = (counts: Record<string, number>) => Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));

describe('policy replay on a real server', { timeout: 300_000 }, () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  let dir: string;
  const ran: Record<string, number> = { lookup: 0, refund: 0, deploy: 0 };
  const workflowIds: string[] = [];
  const files = { stricter: '', looser: '' };
  const cliEnv = (): NodeJS.ProcessEnv => ({
    TEMPORAL_ADDRESS: env.address,
    TOOLGATE_CODEC_KEYS: testCodecKeysEnv,
    TOOLGATE_STATE_DIR: dir,
    TOOLGATE_LOG_LEVEL: 'warn',
  });
  const query = `WorkflowType = '${WORKFLOW_TYPE}'`;

  /** Runs the command in this process against the harness's client; returns the exit code and the parsed JSON report. */
  async function replay(paths: string[], options: Record<string, string | boolean> = {}) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runPolicyReplay(
      paths,
      { json: true, ...options },
      { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, client: gw.ops },
    );
    assert.notEqual(code, 2, err.join(''));
    return { code, report: JSON.parse(out.join('')), err: err.join('') };
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'toolgate-replay-'));
    files.stricter = join(dir, 'stricter.yaml');
    files.looser = join(dir, 'looser.yaml');
    await writeFile(files.stricter, policyYaml(STRICTER));
    await writeFile(files.looser, policyYaml(LOOSER));
    env = await startTemporal();
    const tool = (name: string) => async () => {
      ran[name] = (ran[name] ?? 0) + 1;
      return { ok: true };
    };
    gw = await startGateway(env, {
      taskQueue,
      policy: policyYaml(RECORDED),
      tools: { lookup: tool('lookup'), refund: tool('refund'), deploy: tool('deploy') },
    });

    const settled: Promise<unknown>[] = [];
    const submit = async (r: ToolRequestInput, state: RequestState) => {
      const handle = await gw.gateway.start(r);
      workflowIds.push(handle.workflowId);
      await waitForState(gw, handle.requestId, state, { tenant: r.tenant });
      return handle;
    };
    const decideAs = async (tenant: string, requestId: string, body: Record<string, unknown>) => {
      const token = await gw.token({ sub: 'maria', tenant, groups: ['manager'] });
      const res = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { token, body });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    };

    for (const tenant of ['acme', 'globex']) {
      // Lookups: allowed (two actors in acme, one in globex; each within the limit of 2 an hour).
      for (const actor of tenant === 'acme' ? ['bot-a', 'bot-a', 'bot-b', 'bot-b'] : ['bot-c', 'bot-c'])
        await submit(request(tenant, 'lookup', {}, actor), 'completed');
      // Small refunds: allowed by rule `small`.
      for (let i = 0; i < 2; i++) await submit(request(tenant, 'refund', { amount: 50 }), 'completed');
      // Refunds of 500 need a manager.
      const refunds = [];
      for (let i = 0; i < (tenant === 'acme' ? 3 : 1); i++) refunds.push(await submit(request(tenant, 'refund', { amount: 500 }), 'pending_approval'));
      if (tenant === 'acme') {
        const [approved, edited] = refunds;
        await decideAs(tenant, approved!.requestId, { decision: 'approve', digest: (await gw.status(approved!.requestId, tenant)).digest });
        // Edited down to 50: policy judges it again (a second decision, allow) and it runs.
        await decideAs(tenant, edited!.requestId, { decision: 'edit', digest: (await gw.status(edited!.requestId, tenant)).digest, args: { amount: 50 } });
        settled.push(approved!.outcome(), edited!.outcome());
        // The third stays pending: running requests are replayed too.
      } else {
        await decideAs(tenant, refunds[0]!.requestId, { decision: 'reject', digest: (await gw.status(refunds[0]!.requestId, tenant)).digest, reason: 'no' });
        settled.push(refunds[0]!.outcome().catch(() => 'rejected'));
      }
      await submit(request(tenant, 'refund', { amount: 50_000 }), 'denied'); // rule huge
      await submit(request(tenant, 'deploy', {}), 'denied'); // role not allowed
      await submit(request(tenant, 'deploy', {}, 'release-bot', ['deployer']), 'pending_approval'); // stays pending
    }
    // Over the limit: denied by the rate limit, which is not policy's verdict.
    const limited = await submit(request('acme', 'lookup', {}, 'bot-a'), 'denied');
    assert.equal((await gw.status(limited.requestId, 'acme')).decision?.code, 'rate_limited');
    // Started straight on Temporal with a forged admission: policy never evaluates it.
    const forged = workflowIdFor('acme', `replay-${process.pid}-forged`);
    const handle = await gw.ops.workflow.start(WORKFLOW_TYPE, {
      taskQueue,
      workflowId: forged,
      args: [{ request: { ...request('acme', 'lookup', {}), requestId: `replay-${process.pid}-forged` }, admission: 'forged.assertion.value' }],
      typedSearchAttributes: [{ key: searchAttributes.tenant, value: 'acme' }],
    });
    workflowIds.push(forged);
    const outcome = (await handle.result()) as { status: string; code?: string };
    assert.deepEqual([outcome.status, outcome.code], ['denied', 'unverified_request']);
    await Promise.all(settled);
    // Visibility catches up with every start and every close.
    await eventually(async () => ((await gw.ops.workflow.count(query)).count === 22 ? true : undefined), 'visibility to list the 22 requests');
    await eventually(
      async () => ((await gw.ops.workflow.count(`${query} AND ExecutionStatus = 'Running'`)).count === 3 ? true : undefined),
      'visibility to see the 3 pending ones running',
    );
  });

  after(async () => {
    await gw?.close();
    await env?.teardown();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the recorded set is what the test assumes: 22 requests, 12 tool runs', () => {
    assert.equal(workflowIds.length, 22);
    // 6 lookups, 4 small refunds, the approved one and the edited one.
    assert.deepEqual(ran, { lookup: 6, refund: 6, deploy: 0 });
  });

  test('stricter and looser candidates: exact counts; per tenant; nothing changes anywhere', async () => {
    const lengths = async () => Promise.all(workflowIds.map(async (id) => (await gw.ops.workflow.getHandle(id).describe()).historyLength));
    const before = await lengths();
    const ranBefore = { ...ran };

    const stricter = await replay([files.stricter]);
    assert.equal(stricter.code, 0);
    assert.equal(stricter.report.total, 22);
    assert.deepEqual(nonZero(stricter.report.counts), {
      unchanged: 4, // huge refunds (2), deploys denied by role (2; now by environment: a denial either way)
      'allow->approve': 4, // small refunds
      'allow->deny': 2, // globex lookups
      'approve->deny': 2, // deploys in production
      // Refunds of 500 (4): approved, rejected, pending — and the edited one, whose FIRST decision
      // (on the admitted 500) is compared; its re-evaluation after the edit (allow) is not.
      plan: 4,
      risk: 4, // acme lookups
      not_comparable: 2,
    });
    assert.deepEqual(stricter.report.notComparable, { rate_limited: 1, unverified_request: 1 });
    assert.equal(stricter.report.examples.plan[0].detail, 'plan manager → finance (differs in name, groups)');
    assert.match(stricter.err, /policy replay: 22\/22 \(100\.0%\), [\d.]+\/s, done in/);

    const looser = await replay([files.looser]);
    assert.deepEqual(nonZero(looser.report.counts), {
      unchanged: 10, // lookups (6), small refunds (4)
      'approve->allow': 6, // refunds of 500 (4), deploys by deployers (2)
      'deny->allow': 2, // deploys by the runtime
      'deny->approve': 2, // huge refunds: a manager now
      not_comparable: 2,
    });

    // One tenant: visibility's filter, checked against the request's own tenant.
    const acme = await replay([files.stricter], { tenant: 'acme' });
    assert.deepEqual(nonZero(acme.report.counts), { unchanged: 2, 'allow->approve': 2, 'approve->deny': 1, plan: 3, risk: 4, not_comparable: 2 });
    const globex = await replay([files.stricter], { tenant: 'globex' });
    assert.deepEqual(nonZero(globex.report.counts), { unchanged: 2, 'allow->approve': 2, 'allow->deny': 2, 'approve->deny': 1, plan: 1 });
    for (const kind of Object.keys(globex.report.examples)) for (const e of globex.report.examples[kind]) assert.equal(e.tenant, 'globex');

    // A window that ends before any request started: nothing to replay.
    const empty = await replay([files.stricter], { since: '2020-01-01', until: '2020-01-02' });
    assert.equal(empty.report.total, 0);

    // Read-only: no history grew, no workflow started, no tool ran.
    assert.deepEqual(await lengths(), before);
    assert.equal((await gw.ops.workflow.count(query)).count, 22);
    assert.deepEqual(ran, ranBefore);
  });

  test('a history that is gone by the time it is read is counted, not fatal', async () => {
    const gone = await readRecordedRequest(gw.ops, { workflowId: workflowIdFor('acme', 'never-existed'), startTime: new Date('2026-01-01T00:00:00Z') });
    assert.equal(gone.unreadable?.code, 'history_gone');
    assert.equal(gone.startedAt, '2026-01-01T00:00:00.000Z');
  });

  test('the CLI: --fail-on decides the exit code; usage and policy errors exit 2', async () => {
    const widening = await cli(['policy', 'replay', '--since', '1d', '--fail-on', 'allow-widening', files.looser], cliEnv());
    assert.equal(widening.code, 1, widening.err);
    assert.match(widening.out, /\napprove → allow\s+6\s+27\.3%  FORBIDDEN\n/);
    assert.match(widening.out, /\ndeny → allow\s+2\s+9\.1%  FORBIDDEN\n/);
    assert.match(widening.out, /FORBIDDEN: 8 request\(s\) in approve → allow, deny → allow \(--fail-on approve->allow,deny->allow\)/);
    assert.match(widening.out, /approve → allow: 6, first 3:\n {2}toolreq\/(acme|globex)\/replay-/);
    assert.match(widening.err, /policy replay: 22\/22/);

    const stricterOk = await cli(['policy', 'replay', '--fail-on', 'widening', '--json', files.stricter], cliEnv());
    assert.equal(stricterOk.code, 0, stricterOk.err);
    assert.equal(JSON.parse(stricterOk.out).forbidden, 0);
    const tightening = await cli(['policy', 'replay', '--tenant', 'globex', '--fail-on', 'tightening', files.stricter], cliEnv());
    assert.equal(tightening.code, 1, tightening.err);
    assert.match(tightening.out, /FORBIDDEN: 5 request\(s\) in allow → approve, allow → deny, approve → deny/);

    const badFlag = await cli(['policy', 'replay', '--fail-on', 'looser', files.looser], cliEnv());
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.err, /--fail-on: "looser" is not a kind of change/);
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, policyYaml({ ...STRICTER, refundApproval: 'treasury' }));
    const badPolicy = await cli(['policy', 'replay', broken], cliEnv());
    assert.equal(badPolicy.code, 2);
    assert.match(badPolicy.err, /broken\.yaml:\d+:\d+: tools\.refund\.approval: .*treasury/);
    const unreachable = await cli(['policy', 'replay', files.looser], { ...cliEnv(), TEMPORAL_ADDRESS: '127.0.0.1:1' });
    assert.equal(unreachable.code, 2);
    assert.match(unreachable.err, /cannot reach Temporal at 127\.0\.0\.1:1/);
  });
});
