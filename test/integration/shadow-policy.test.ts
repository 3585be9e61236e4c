/**
 * Shadow policy on a real Temporal dev server: nine live requests through the front door under an
 * enforced policy, with a stricter candidate loaded in shadow. Their outcomes are exactly those of
 * the same requests on a gateway without a shadow; the five disagreements are listed through
 * visibility with the documented query (SDK and `temporal workflow list`), each with its kind, and
 * counted once in `toolgate_shadow_disagreements_total` — not again when a restarted worker
 * replays a history, nor by the replayer, which also proves the new histories deterministic. The
 * audit record shows the shadow decision.
 *
 * Then `toolgate worker` itself with TOOLGATE_SHADOW_POLICY: a shadow file that does not load is
 * recorded as unavailable while requests are enforced; fixed in place, it is reloaded and decides;
 * on a namespace without the search attribute the worker runs without a shadow rather than stall.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { buildAuditRecord } from '../../src/audit/record.js';
import { formatAuditRecord } from '../../src/audit/record-format.js';
import { dataConverterFor } from '../../src/codec/index.js';
import { workflowMetricsSinks } from '../../src/metrics.js';
import type { RuleDocument } from '../../src/policy/document.js';
import { PolicyStore } from '../../src/policy/store.js';
import { SEARCH_ATTRIBUTE_CLI_ARGS, SHADOW_DISAGREEMENTS_QUERY, searchAttributes, type RequestState, type ToolRequestInput } from '../../src/shared/index.js';
import { requireTemporalCli } from '../../src/temporal/cli.js';
import { startDevServer } from '../../src/temporal/dev-server.js';
import {
  eventually,
  startGateway,
  startTemporal,
  testDataConverter,
  waitForState,
  workflowBundle,
  type GatewayEnv,
  type TestRequestHandle,
} from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import {
  REPO_ROOT,
  TemporalProcess,
  callApi,
  connectClient,
  findFreePort,
  localTokens,
  processKeyring,
  provisionBoundaryKeys,
  startApiProcess,
  startWorkerProcess,
  waitForOutput,
  type GatewayProcessEnv,
  type ManagedProcess,
} from '../helpers/processes.js';

/** The policy in force (`shadow` false), or the stricter candidate loaded in shadow (`shadow` true). */
function policyYaml(shadow: boolean): string {
  const huge: RuleDocument = { name: 'huge', when: 'args.amount > 10000', effect: 'deny' };
  const small: RuleDocument = { name: 'small', when: 'args.amount <= 100', effect: 'allow', risk: 'medium' };
  return policy()
    .tool('ping')
    .tool('lookup', shadow ? { tenants: ['acme'] } : {})
    .tool('report', { risk: shadow ? 'medium' : 'low' })
    .tool('refund', { risk: 'high', approval: shadow ? 'finance' : 'manager', rules: shadow ? [huge] : [huge, small] })
    .tool('deploy', { risk: 'critical', approval: 'release', roles: ['deployer'], ...(shadow && { environments: ['staging'] }) })
    .plan('manager', { groups: ['manager'], expiresAfter: '1h' })
    .plan('finance', { groups: ['finance'], expiresAfter: '1h' })
    .plan('release', { groups: ['release'], expiresAfter: '1h' })
    .codeTool('ping', { runAs: 'svc-ping' })
    .codeTool('lookup', { runAs: 'svc-lookup' })
    .codeTool('report', { runAs: 'svc-report' })
    .codeTool('refund', { runAs: 'svc-payments', args: argsOf({ amount: 'integer' }) })
    .codeTool('deploy', { runAs: 'svc-deploy' })
    .yaml();
}

/** One live request: what it asks, the state it settles in, and how the shadow judges it. */
interface Case {
  name: string;
  tenant: string;
  tool: string;
  args: Record<string, unknown>;
  actor?: { id: string; roles: string[] };
  settles: RequestState;
  /** The approval it waits for before settling, if any. */
  approveAs?: string;
  shadow: string;
}

const CASES: Case[] = [
  { name: 'ping', tenant: 'acme', tool: 'ping', args: {}, settles: 'completed', shadow: 'agree' },
  { name: 'lookup-acme', tenant: 'acme', tool: 'lookup', args: {}, settles: 'completed', shadow: 'agree' },
  { name: 'lookup-globex', tenant: 'globex', tool: 'lookup', args: {}, settles: 'completed', shadow: 'allow->deny' },
  { name: 'report', tenant: 'acme', tool: 'report', args: {}, settles: 'completed', shadow: 'risk' },
  { name: 'refund-small', tenant: 'acme', tool: 'refund', args: { amount: 50 }, settles: 'completed', shadow: 'allow->approve' },
  { name: 'refund-500', tenant: 'acme', tool: 'refund', args: { amount: 500 }, settles: 'completed', approveAs: 'manager', shadow: 'plan' },
  { name: 'refund-huge', tenant: 'acme', tool: 'refund', args: { amount: 20_000 }, settles: 'denied', shadow: 'agree' },
  { name: 'deploy-runtime', tenant: 'acme', tool: 'deploy', args: {}, settles: 'denied', shadow: 'agree' },
  {
    name: 'deploy-deployer',
    tenant: 'acme',
    tool: 'deploy',
    args: {},
    actor: { id: 'release-bot', roles: ['deployer'] },
    settles: 'pending_approval',
    shadow: 'approve->deny',
  },
];
const DISAGREEING = CASES.filter((c) => c.shadow !== 'agree');

function sample(exposition: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('shadow policy on a real server', { timeout: 300_000 }, () => {
  let env: TestWorkflowEnvironment;
  let shadowed: GatewayEnv;
  let plain: GatewayEnv;
  const ran: Record<string, number> = {};
  const handles = new Map<string, TestRequestHandle>();
  const plainHandles = new Map<string, TestRequestHandle>();
  let metricsBefore = '';
  const scrape = async () => (await fetch(`${shadowed.apiUrl}/metrics`)).text();
  const metric = (text: string, c: Case) => sample(text, 'toolgate_shadow_disagreements_total', { tool: c.tool, tenant: c.tenant, kind: c.shadow });

  /** Runs every case on `gw` (request ids prefixed), settling each; the 500 refund is approved after a worker restart when `restart`. */
  async function runCases(gw: GatewayEnv, prefix: string, into: Map<string, TestRequestHandle>, restart: boolean): Promise<void> {
    for (const c of CASES) {
      const request: ToolRequestInput = {
        requestId: `${prefix}-${c.name}-${process.pid}`,
        actor: { id: c.actor?.id ?? 'bot-a', type: 'agent', roles: c.actor?.roles ?? ['agent_runtime'] },
        tenant: c.tenant,
        environment: 'production',
        tool: c.tool,
        args: c.args,
      };
      const handle = await gw.gateway.start(request);
      into.set(c.name, handle);
      if (c.approveAs) {
        const pending = await waitForState(gw, handle.requestId, 'pending_approval', { tenant: c.tenant });
        if (restart) {
          // A new worker has no cached workflow: the approval makes it replay the history from
          // the start, the first decision and its disagreement included.
          await gw.stopWorker();
          await gw.startWorker();
        }
        const token = await gw.token({ sub: 'maria', tenant: c.tenant, groups: [c.approveAs] });
        const res = await gw.api('POST', `/v1/approvals/${handle.requestId}/decision`, { token, body: { decision: 'approve', digest: pending.digest } });
        assert.equal(res.status, 200, JSON.stringify(res.body));
      }
      await waitForState(gw, handle.requestId, c.settles, { tenant: c.tenant });
    }
  }

  before(async () => {
    env = await startTemporal();
    const tool = (name: string) => async () => {
      ran[name] = (ran[name] ?? 0) + 1;
      return { ok: true };
    };
    const tools = { ping: tool('ping'), lookup: tool('lookup'), report: tool('report'), refund: tool('refund'), deploy: tool('deploy') };
    shadowed = await startGateway(env, {
      taskQueue: `shadow-${process.pid}`,
      policy: policyYaml(false),
      shadowPolicy: PolicyStore.fromSources([{ file: 'candidate.yaml', text: policyYaml(true) }]),
      tools,
    });
    plain = await startGateway(env, { taskQueue: `shadow-plain-${process.pid}`, policy: policyYaml(false), tools });
    metricsBefore = await scrape();
    await runCases(shadowed, 'sh', handles, true);
    await runCases(plain, 'pl', plainHandles, false);
  });

  after(async () => {
    await shadowed?.close();
    await plain?.close();
    await env?.teardown();
  });

  test('outcomes are exactly those without a shadow: same states, same decisions, same tool runs', async () => {
    for (const c of CASES) {
      const withShadow = await shadowed.status((handles.get(c.name) as TestRequestHandle).requestId, c.tenant);
      const without = await plain.status((plainHandles.get(c.name) as TestRequestHandle).requestId, c.tenant);
      assert.equal(withShadow.state, c.settles, c.name);
      assert.equal(withShadow.state, without.state, c.name);
      assert.equal(withShadow.outcome?.status, without.outcome?.status, c.name);
      const decided = (s: typeof withShadow) => ({
        outcome: s.decision?.outcome,
        rule: s.decision?.rule,
        risk: s.decision?.risk,
        code: s.decision?.code,
        plan: s.decision?.approval?.name,
      });
      assert.deepEqual(decided(withShadow), decided(without), c.name);
    }
    // Each of the five completed requests ran once on each gateway.
    assert.deepEqual(ran, { ping: 2, lookup: 4, report: 2, refund: 4 });
  });

  test(`the disagreements are listed with the documented query (${SHADOW_DISAGREEMENTS_QUERY}), each with its kind`, async () => {
    assert.equal(SHADOW_DISAGREEMENTS_QUERY, 'ToolgateShadowDisagreement IS NOT NULL');
    await eventually(
      async () => ((await env.client.workflow.count(SHADOW_DISAGREEMENTS_QUERY)).count === DISAGREEING.length ? true : undefined),
      'visibility to list the disagreements',
    );
    const listed = new Map<string, unknown>();
    for await (const w of env.client.workflow.list({ query: SHADOW_DISAGREEMENTS_QUERY }))
      listed.set(w.workflowId, w.typedSearchAttributes.get(searchAttributes.shadowDisagreement));
    const expected = new Map(DISAGREEING.map((c) => [(handles.get(c.name) as TestRequestHandle).workflowId, c.shadow]));
    assert.deepEqual(new Map([...listed].sort()), new Map([...expected].sort()));
    // One kind, one tenant: the attribute combines with the others.
    assert.equal((await env.client.workflow.count(`ToolgateShadowDisagreement = 'plan'`)).count, 1);
    assert.equal((await env.client.workflow.count(`${SHADOW_DISAGREEMENTS_QUERY} AND ToolgateTenant = 'globex'`)).count, 1);
    // Agreement and the gateway without a shadow leave it unset.
    const all = (await env.client.workflow.count(`WorkflowType = 'toolRequest'`)).count;
    assert.equal(all, CASES.length * 2);
    assert.equal((await env.client.workflow.count('ToolgateShadowDisagreement IS NULL')).count, all - DISAGREEING.length);
  });

  test('the same query through the CLI: `temporal workflow list --query`', () => {
    const run = spawnSync(requireTemporalCli(), ['workflow', 'list', '--address', env.address, '--query', SHADOW_DISAGREEMENTS_QUERY, '-o', 'jsonl'], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    const ids = run.stdout
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => (JSON.parse(line) as { execution: { workflowId: string } }).execution.workflowId)
      .sort();
    assert.deepEqual(ids, DISAGREEING.map((c) => (handles.get(c.name) as TestRequestHandle).workflowId).sort());
  });

  test('counted once per disagreement, by tool, tenant and kind; a restart that replays and the replayer count nothing again', async () => {
    const after = await scrape();
    for (const c of DISAGREEING) assert.equal(metric(after, c) - metric(metricsBefore, c), 1, `${c.name}: ${c.shadow}`);
    const total = (text: string) => sample(text, 'toolgate_shadow_disagreements_total', {});
    assert.equal(total(after) - total(metricsBefore), DISAGREEING.length);
    // The replayer, with the metrics sinks registered: every history replays (deterministic), nothing is counted.
    for (const c of DISAGREEING) {
      const { workflowId } = handles.get(c.name) as TestRequestHandle;
      const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
      await Worker.runReplayHistory(
        { workflowBundle: await workflowBundle(), dataConverter: testDataConverter, sinks: workflowMetricsSinks(), replayName: 'shadow' },
        history,
        workflowId,
      );
    }
    assert.equal(total(await scrape()), total(after));
  });

  test('the audit record shows the shadow decision beside the enforced one', async () => {
    const refund = handles.get('refund-500') as TestRequestHandle;
    const record = await buildAuditRecord(env.client, 'acme', refund.requestId);
    assert.equal(record.status, 'completed');
    assert.equal(record.decision?.outcome, 'approve');
    assert.equal(record.decision?.sealed, true);
    assert.equal(record.shadow?.kind, 'plan');
    assert.equal(record.shadow.outcome, 'approve');
    assert.equal(record.shadow.plan, 'finance');
    assert.match(record.shadow.detail ?? '', /^plan manager → finance \(differs in name, groups\)$/);
    const text = formatAuditRecord(record);
    assert.match(
      text,
      /^shadow policy \(recorded, not enforced\): DISAGREES \(plan\): approve by tool:refund, risk high, plan finance, policy [0-9a-f]{12}; plan manager → finance/m,
    );
    assert.match(text, /policy decided approve \(rule tool:refund, risk high\); shadow policy: DISAGREES \(plan\)/);

    const ping = await buildAuditRecord(env.client, 'acme', (handles.get('ping') as TestRequestHandle).requestId);
    assert.equal(ping.shadow?.kind, 'agree');
    assert.match(formatAuditRecord(ping), /^shadow policy \(recorded, not enforced\): agrees: allow by tool:ping/m);
    const plainPing = await buildAuditRecord(env.client, 'acme', (plainHandles.get('ping') as TestRequestHandle).requestId);
    assert.equal(plainPing.shadow, undefined);
    assert.doesNotMatch(formatAuditRecord(plainPing), /shadow/);
  });
});

describe('toolgate worker with TOOLGATE_SHADOW_POLICY', { timeout: 300_000 }, () => {
  /** The shipped policy with read_kb needing a manager: a candidate that disagrees (allow->approve) on every read_kb. */
  const candidate = async () => {
    const shipped = await readFile(join(REPO_ROOT, 'policies', 'support-triage.yaml'), 'utf8');
    const changed = shipped.replace(/(  read_kb:\n    risk: low\n    approval: )none/, '$1manager');
    assert.notEqual(changed, shipped, 'the candidate differs from the shipped policy');
    return changed;
  };
  const agentClaims = { sub: 'support-bot', tenant: 'acme', environment: 'production', roles: ['agent_runtime'] };

  /** Starts `toolgate worker` and `toolgate api` on `address` with the shadow at `shadowDir`; runs `body`; stops them. */
  async function withProcesses(
    address: string,
    shadowDir: string,
    body: (p: { worker: ManagedProcess; apiUrl: string; env: GatewayProcessEnv; agent: string }) => Promise<void>,
  ): Promise<void> {
    const stateDir = await mkdtemp(join(tmpdir(), 'toolgate-shadow-cli-'));
    const processes: ManagedProcess[] = [];
    try {
      const env: GatewayProcessEnv = {
        TEMPORAL_ADDRESS: address,
        TOOLGATE_STATE_DIR: stateDir,
        TOOLGATE_POLICY: join(REPO_ROOT, 'policies'),
        TOOLGATE_SHADOW_POLICY: shadowDir,
        TOOLGATE_API_PORT: String(await findFreePort()),
      };
      await processKeyring(env);
      await provisionBoundaryKeys(env);
      const agent = await (await localTokens(stateDir)).agent(agentClaims);
      const worker = await startWorkerProcess(env);
      processes.push(worker);
      processes.push(await startApiProcess(env));
      await body({ worker, apiUrl: `http://127.0.0.1:${env.TOOLGATE_API_PORT}`, env, agent });
    } finally {
      for (const proc of processes.reverse()) await proc.stop();
      await rm(stateDir, { recursive: true, force: true });
    }
  }

  /** Calls read_kb through the front door; it completes (the enforced policy allows it) whatever the shadow says. */
  const readKb = async (apiUrl: string, agent: string, requestId: string) => {
    const done = await callApi(apiUrl, 'POST', '/v1/tool-requests', { token: agent, body: { requestId, tool: 'read_kb', args: { query: 'vpn' }, wait: 30 } });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.state, 'completed');
  };

  test('a shadow that does not load is recorded as unavailable, requests are enforced; fixed in place, it is reloaded and decides', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-shadow-policy-'));
    const temporal = await TemporalProcess.start(join(dir, 'temporal.db'));
    const shadowDir = join(dir, 'candidate');
    try {
      await mkdir(shadowDir);
      await writeFile(join(shadowDir, 'candidate.yaml'), 'version: 1\ntools: [unclosed\n');
      await withProcesses(temporal.address, shadowDir, async ({ worker, apiUrl, env, agent }) => {
        assert.match(
          worker.output(),
          /"policyRole":"shadow".*"msg":"shadow policy failed to load: requests record it as unavailable; enforcement is unaffected"/,
        );
        const { client, connection } = await connectClient(temporal.address, dataConverterFor(await processKeyring(env)));
        try {
          await readKb(apiUrl, agent, `cli-broken-${process.pid}`);
          const broken = await buildAuditRecord(client, 'acme', `cli-broken-${process.pid}`);
          assert.equal(broken.status, 'completed');
          assert.equal(broken.shadow?.kind, 'unavailable');
          assert.match(broken.shadow.reason, /^the shadow policy is not loaded: .*candidate\.yaml/s);

          // Fixed in place: the worker reloads the shadow like the policy in force.
          await writeFile(join(shadowDir, 'candidate.yaml'), await candidate());
          await waitForOutput(worker, /"policyRole":"shadow".*"msg":"policy reloaded"/, 30_000);
          await readKb(apiUrl, agent, `cli-fixed-${process.pid}`);
          const fixed = await buildAuditRecord(client, 'acme', `cli-fixed-${process.pid}`);
          assert.equal(fixed.status, 'completed');
          assert.equal(fixed.decision?.outcome, 'allow');
          assert.equal(fixed.shadow?.kind, 'allow->approve');
          assert.equal(fixed.shadow.plan, 'manager');
          await eventually(
            async () => ((await client.workflow.count(SHADOW_DISAGREEMENTS_QUERY)).count === 1 ? true : undefined),
            'visibility to list the one disagreement',
          );
        } finally {
          await connection.close();
        }
      });
    } finally {
      await temporal.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a namespace without the search attribute: the worker runs without a shadow and requests do not stall', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-shadow-policy-'));
    await writeFile(join(dir, 'candidate.yaml'), await candidate());
    // Every toolgate attribute but the shadow's.
    const withoutShadow = SEARCH_ATTRIBUTE_CLI_ARGS.filter(
      (arg, i, all) =>
        !arg.startsWith(`${searchAttributes.shadowDisagreement.name}=`) && !all[i + 1]?.startsWith(`${searchAttributes.shadowDisagreement.name}=`),
    );
    assert.equal(withoutShadow.length, SEARCH_ATTRIBUTE_CLI_ARGS.length - 2);
    const server = await startDevServer({ cliPath: requireTemporalCli(), port: 0, ui: false, logLevel: 'error', searchAttributes: withoutShadow });
    try {
      await withProcesses(server.address, dir, async ({ worker, apiUrl, env, agent }) => {
        assert.match(worker.output(), /"msg":"shadow policy disabled: requests are enforced without it"/);
        assert.match(worker.output(), /has no search attribute ToolgateShadowDisagreement: register it/);
        await readKb(apiUrl, agent, `cli-unregistered-${process.pid}`);
        const { client, connection } = await connectClient(server.address, dataConverterFor(await processKeyring(env)));
        try {
          const record = await buildAuditRecord(client, 'acme', `cli-unregistered-${process.pid}`);
          assert.equal(record.status, 'completed');
          assert.equal(record.shadow, undefined);
        } finally {
          await connection.close();
        }
      });
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
