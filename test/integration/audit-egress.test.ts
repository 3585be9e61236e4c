/**
 * What leaves the gateway, and what it remembers, on a real Temporal server: a canary secret in
 * arguments, in a tool result and in a thrown tool error never appears in the dumped history (real
 * `temporal workflow show`), the logs, the approval API or the agent's result; the codec endpoint
 * decodes for ops only, and for tenant ops only their tenant's payloads; results of another tenant
 * and blocked destinations are refused; the audit record answers the four questions for approved,
 * denied, expired and edited requests, and says whether the request's admission and each vote
 * verify against the keys recorded in the history — a request started around the front door, by
 * a raw Temporal client, is on record as denied and unverified; an export of real records
 * verifies and a flipped byte does not.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { AuditRecord } from '../../src/audit/record-types.js';
import { ToolExecutionFailed } from '../../src/client/index.js';
import { createLogger } from '../../src/logger.js';
import { WORKFLOW_TYPE, searchAttributes, type RequestStatus, type ToolOutcome, type ToolRequestInput } from '../../src/shared/index.js';
import { requireTemporalCli } from '../../src/temporal/cli.js';
import { ToolRejectedError } from '../../src/tools/types.js';
import { startGateway, startTemporal, testCodecKeysEnv, type GatewayEnv, waitForState } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { startToolService, type ToolService } from '../helpers/tool-service.js';
import { runToolgate } from '../helpers/processes.js';

/** A unique OpenAI-shaped key per run: the redactor's openai_key rule must catch it everywhere. */
const CANARY = `sk-proj-CANARY${process.pid}${Date.now().toString(36)}${'x7Q'.repeat(12)}`;
/** A word only the thrown error carries, to prove failure messages are stored encrypted. */
const ERROR_WORD = `kaboom${process.pid}`;

function policyYaml(loopbackUrl: string): string {
  return (
    policy()
      .plan('manager', { groups: ['manager'] })
      .plan('quick_expiry', { groups: ['manager'], expiresAfter: '1s' })
      .tool('leaky_lookup', { risk: 'medium', approval: 'manager' })
      .tool('failing_write')
      .tool('foreign_lookup')
      .tool('internal_http')
      .tool('slow_approval', { risk: 'high', approval: 'quick_expiry' })
      .codeTool('leaky_lookup', { runAs: 'svc-lookup', egress: { redact: ['secrets', 'pii'] }, args: argsOf({ note: 'string', customer: 'string' }) })
      .codeTool('failing_write', { runAs: 'svc-writer', args: argsOf({ note: 'string' }) })
      .codeTool('foreign_lookup', { runAs: 'svc-lookup', args: argsOf() })
      .manifest('internal_http', {
        run_as: 'svc-internal',
        // Written out rather than httpTool: no egress section, so the default (loopback refused) applies.
        adapter: { type: 'http', url: `${loopbackUrl}/internal` },
        args: argsOf(),
      })
      .codeTool('slow_approval', { runAs: 'svc-slow', args: argsOf() })
      // Low risk, allowed and idempotent: these run as local activities, in the workflow task that decided them.
      .tool('quick_lookup')
      .tool('quick_failing')
      .codeTool('quick_lookup', { runAs: 'svc-quick', idempotent: true, egress: { redact: ['secrets', 'pii'] }, args: argsOf({ note: 'string' }) })
      .codeTool('quick_failing', { runAs: 'svc-quick', idempotent: true, args: argsOf({ note: 'string' }) })
      .yaml()
  );
}

const bot = { id: 'triage-bot', type: 'agent' as const, roles: ['agent_runtime'] };
let seq = 0;
function request(tool: string, args: Record<string, unknown> = {}, extra: Partial<ToolRequestInput> = {}): ToolRequestInput {
  seq += 1;
  return { requestId: `ae-${process.pid}-${Date.now()}-${seq}`, actor: bot, tenant: 'acme', environment: 'production', tool, args, ...extra };
}

/** Runs the real `toolgate` CLI against the test server with the test keys; stdout also to `stdoutFile` when given. */
async function toolgate(args: string[], env: NodeJS.ProcessEnv, stdoutFile?: string): Promise<{ code: number | null; out: string; err: string }> {
  const result = await runToolgate(args, env);
  if (stdoutFile) await writeFile(stdoutFile, result.out);
  return result;
}

describe('egress and audit on a real Temporal server', { timeout: 240_000 }, () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  let service: ToolService;
  let logs = '';
  let stateDir: string;
  const processEnv = (): NodeJS.ProcessEnv => ({
    TEMPORAL_ADDRESS: env.address,
    TOOLGATE_CODEC_KEYS: testCodecKeysEnv,
    TOOLGATE_STATE_DIR: stateDir,
    TOOLGATE_LOG_LEVEL: 'warn',
  });

  const pendingStatus = (requestId: string, notDigest?: string): Promise<RequestStatus> => waitForState(gw, requestId, 'pending_approval', { notDigest });
  const decide = (requestId: string, token: string, body: Record<string, unknown>) => gw.api('POST', `/v1/approvals/${requestId}/decision`, { token, body });
  const historyDump = (workflowId: string): string => {
    const run = spawnSync(requireTemporalCli(), ['workflow', 'show', '-o', 'json', '--address', env.address, '-w', workflowId], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    return run.stdout;
  };
  /** The audit record through the API; `tenant` only for ops:all reading another tenant's request. */
  const auditOf = async (requestId: string, token: string, tenant?: string): Promise<AuditRecord> => {
    const res = await gw.api('GET', `/v1/audit/${requestId}${tenant ? `?tenant=${tenant}` : ''}`, { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as AuditRecord;
  };

  const ids: Record<string, { requestId: string; workflowId: string }> = {};
  const taskQueue = `audit-egress-${process.pid}`;

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'toolgate-audit-'));
    env = await startTemporal();
    service = await startToolService('ok');
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logs += chunk.toString();
        callback();
      },
    });
    gw = await startGateway(env, {
      taskQueue,
      policy: policyYaml(service.url),
      logger: createLogger('test', 'debug', sink),
      tools: {
        leaky_lookup: async ({ args }) => ({
          customer: args.customer,
          apiKey: `${CANARY}`,
          contact: 'write to jane.doe@example.com',
          echo: args.note,
          tenant: 'acme',
        }),
        failing_write: async () => {
          throw new ToolRejectedError(`${ERROR_WORD}: the upstream said no, credentials ${CANARY}`);
        },
        foreign_lookup: async () => ({
          rows: [
            { id: 1, tenant: 'acme' },
            { id: 2, tenant: 'globex' },
          ],
        }),
        slow_approval: async () => ({ ok: true }),
        quick_lookup: async ({ args }) => ({ apiKey: CANARY, contact: 'write to jane.doe@example.com', echo: args.note }),
        quick_failing: async () => {
          throw new ToolRejectedError(`${ERROR_WORD}: no such ticket, credentials ${CANARY}`);
        },
      },
    });
  });
  after(async () => {
    await gw?.close();
    await service?.close();
    await env?.teardown();
    await rm(stateDir, { recursive: true, force: true });
  });

  test('a canary in arguments, result and thrown error leaks nowhere', async () => {
    // 1. Arguments: an approver sees them redacted.
    const leaky = await gw.gateway.start(request('leaky_lookup', { note: `please use ${CANARY}`, customer: 'c-1' }, { reason: `ticket mentions ${CANARY}` }));
    ids.approved = leaky;
    const status = await pendingStatus(leaky.requestId);
    const maria = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    const view = await gw.api('GET', `/v1/approvals/${leaky.requestId}`, { token: maria });
    assert.equal(view.status, 200);
    assert.ok(!JSON.stringify(view.body).includes(CANARY), 'the approval view shows the canary');
    assert.match(JSON.stringify(view.body.args), /\[REDACTED:openai_key\]/);
    const list = await gw.api('GET', '/v1/approvals?status=pending', { token: maria });
    assert.ok(!JSON.stringify(list.body).includes(CANARY), 'the approval list shows the canary');
    const decided = await decide(leaky.requestId, maria, { decision: 'approve', digest: status.digest, reason: 'looks fine' });
    assert.equal(decided.status, 200);
    assert.ok(!JSON.stringify(decided.body).includes(CANARY));

    // 2. Result: the agent gets it redacted, and the outcome records the egress event.
    const outcome = (await leaky.outcome()) as Extract<ToolOutcome, { status: 'completed' }>;
    assert.equal(outcome.status, 'completed');
    const result = outcome.result as Record<string, unknown>;
    assert.ok(!JSON.stringify(result).includes(CANARY), 'the agent received the canary');
    assert.equal(result.contact, 'write to [REDACTED:email]');
    assert.equal(result.customer, 'c-1');
    assert.ok((outcome.egress?.redactions.openai_key ?? 0) >= 1 && (outcome.egress?.bytes ?? 0) > 0, JSON.stringify(outcome.egress));
    assert.ok(!JSON.stringify(await leaky.result()).includes(CANARY));

    // 3. Thrown error: the agent's error and the outcome carry it redacted.
    const failing = await gw.gateway.start(request('failing_write', { note: CANARY }));
    ids.failed = failing;
    const failure = await failing.result().then(
      () => assert.fail('expected the tool to fail'),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof ToolExecutionFailed);
    assert.equal(failure.outcome.error.type, 'ToolRejected');
    assert.match(failure.message, new RegExp(ERROR_WORD));
    assert.ok(!failure.message.includes(CANARY), 'the agent received the canary in the error');
    assert.match(failure.outcome.error.message, /credentials \[REDACTED:openai_key\]/);
    assert.ok(!JSON.stringify(failure.outcome).includes(CANARY));
    assert.ok(!JSON.stringify(failure.toToolResult()).includes(CANARY));

    // 4. The history as Temporal stores it (real CLI, no codec): no canary, no error text either.
    for (const { workflowId } of [leaky, failing]) {
      const dump = historyDump(workflowId);
      const encrypted = Buffer.from('binary/encrypted').toString('base64');
      assert.ok(dump.length > 1000 && (dump.includes(encrypted) || dump.includes('binary/encrypted')), 'the dump holds encrypted payloads');
      assert.ok(!dump.includes(CANARY), `the stored history of ${workflowId} holds the canary`);
      assert.ok(!dump.includes('jane.doe@example.com'));
      assert.ok(!dump.includes(ERROR_WORD), 'a failure message is stored in clear');
      assert.ok(!dump.includes('triage-bot'), 'the request input is stored in clear');
    }

    // 5. The logs (worker and API, with the tool error logged): no canary, but they did log.
    assert.match(logs, /tool executed/);
    assert.match(logs, /tool rejected the call/);
    assert.ok(!logs.includes(CANARY), 'the logs hold the canary');

    // 6. The audit record, for ops: no canary either.
    const ops = await gw.token({ sub: 'otto', tenant: 'acme', groups: ['ops'] });
    assert.ok(!JSON.stringify(await auditOf(leaky.requestId, ops)).includes(CANARY));
    assert.ok(!JSON.stringify(await auditOf(failing.requestId, ops)).includes(CANARY));
  });

  test("the codec endpoint decodes stored payloads for ops only, tenant ops only their tenant's, with CORS for the UI origin", async () => {
    /** The body of a decode call for a request's stored start input, as the Temporal UI would send it. */
    const startInputBody = async (workflowId: string) => {
      const history = await gw.ops.workflow.getHandle(workflowId).fetchHistory();
      const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      assert.ok(input?.data);
      return {
        payloads: [
          {
            metadata: Object.fromEntries(Object.entries(input.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
            data: Buffer.from(input.data).toString('base64'),
          },
        ],
      };
    };
    const body = await startInputBody(ids.approved!.workflowId);
    assert.equal((await gw.api('POST', '/codec/decode', { body })).status, 401);
    const maria = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    assert.equal((await gw.api('POST', '/codec/decode', { body, token: maria })).status, 401);
    const ops = await gw.token({ sub: 'otto', tenant: 'acme', groups: ['ops'] });
    const decoded = await gw.api('POST', '/codec/decode', { body, token: ops });
    assert.equal(decoded.status, 200);
    const clear = Buffer.from(decoded.body.payloads[0].data, 'base64').toString('utf8');
    assert.match(clear, /"tool":"leaky_lookup"/);

    // Another tenant's payload: acme's ops get 403 (and nothing decoded); globex's ops decode it, and not acme's.
    const globex = await gw.gateway.start(request('foreign_lookup', {}, { tenant: 'globex' }));
    await globex.outcome();
    const globexBody = await startInputBody(globex.workflowId);
    const refused = await gw.api('POST', '/codec/decode', { body: globexBody, token: ops });
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.ok(!JSON.stringify(refused.body ?? {}).includes('foreign_lookup'));
    const globexOps = await gw.token({ sub: 'gus', tenant: 'globex', groups: ['ops'] });
    const own = await gw.api('POST', '/codec/decode', { body: globexBody, token: globexOps });
    assert.equal(own.status, 200);
    assert.match(Buffer.from(own.body.payloads[0].data, 'base64').toString('utf8'), /"tenant":"globex"/);
    assert.equal((await gw.api('POST', '/codec/decode', { body, token: globexOps })).status, 403);

    const preflight = await fetch(`${gw.apiUrl}/codec/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1:8233', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'http://127.0.0.1:8233');
    const stranger = await fetch(`${gw.apiUrl}/codec/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(stranger.headers.get('access-control-allow-origin'), null);
  });

  test('a tool run in the workflow task (low risk, allowed, idempotent): the same identity, key, egress filter and record as an activity', async () => {
    const ops = await gw.token({ sub: 'otto', tenant: 'acme', groups: ['ops'] });
    const quick = await gw.gateway.start(request('quick_lookup', { note: `see ${CANARY}` }));
    const outcome = await quick.outcome();
    assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
    assert.ok(outcome.status === 'completed' && !JSON.stringify(outcome.result).includes(CANARY), 'the result left with the canary');
    assert.equal(outcome.status === 'completed' && (outcome.result as { contact: string }).contact, 'write to [REDACTED:email]');
    const record = await auditOf(quick.requestId, ops);
    assert.deepEqual(
      { runAs: record.ranAs?.runAs, key: record.ranAs?.idempotencyKey, attempts: record.ranAs?.attempts },
      { runAs: 'svc-quick', key: `toolgate:${quick.workflowId}`, attempts: 1 },
    );
    assert.match(record.answers.underWhichIdentity, /^svc-quick \(idempotency key toolgate:/);
    assert.match(record.answers.whatItProduced, /^completed: .*redacted .*openai_key×1/);
    assert.ok(
      record.timeline.some((t) => t.event === 'tool executed in the workflow task as svc-quick (1 attempt(s))'),
      JSON.stringify(record.timeline),
    );

    const failing = await gw.gateway.start(request('quick_failing', { note: 'x' }));
    const failed = await failing.outcome();
    assert.equal(failed.status, 'failed', JSON.stringify(failed));
    assert.equal(failed.status === 'failed' && failed.error.type, 'ToolRejected');
    assert.match(failed.status === 'failed' ? failed.error.message : '', /credentials \[REDACTED:openai_key\]/);
    const failedRecord = await auditOf(failing.requestId, ops);
    assert.equal(failedRecord.ranAs?.runAs, 'svc-quick');
    assert.ok(
      failedRecord.timeline.some((t) => t.event === 'tool failed in the workflow task as svc-quick: ToolRejected'),
      JSON.stringify(failedRecord.timeline),
    );
    assert.ok(!JSON.stringify(failedRecord).includes(CANARY));

    // Stored: a local activity's marker, no execution activity, and nothing in clear.
    for (const { workflowId } of [quick, failing]) {
      const { events } = await gw.ops.workflow.getHandle(workflowId).fetchHistory();
      assert.ok(!(events ?? []).some((e) => e.activityTaskScheduledEventAttributes), 'an activity was scheduled');
      const dump = historyDump(workflowId);
      assert.ok(
        !dump.includes(CANARY) && !dump.includes('jane.doe@example.com') && !dump.includes(ERROR_WORD),
        `the stored history of ${workflowId} holds clear text`,
      );
    }
  });

  test("another tenant's record in a result is withheld (the tool acted), and a blocked destination is never contacted", async () => {
    const foreign = await gw.gateway.start(request('foreign_lookup'));
    const outcome = await foreign.outcome();
    assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
    assert.equal(outcome.status === 'completed' && outcome.withheld?.code, 'tenant_mismatch');
    assert.equal(outcome.status === 'completed' && outcome.result, null);
    assert.match(outcome.status === 'completed' ? (outcome.withheld?.reason ?? '') : '', /\$\.rows\[1\]\.tenant belongs to tenant "globex"/);
    const audit = await gw.api('GET', `/v1/audit/${foreign.requestId}`, { token: await gw.token({ sub: 'olga', tenant: 'acme', groups: ['ops'] }) });
    assert.equal(audit.status, 200, JSON.stringify(audit.body));
    assert.equal(audit.body.outcome.withheld.code, 'tenant_mismatch');
    assert.match(audit.body.answers.whatItProduced, /the tool acted\), result withheld: tenant_mismatch/);
    assert.ok(!JSON.stringify(outcome).includes('"id":2'));

    const callsBefore = service.calls;
    const internal = await gw.gateway.start(request('internal_http'));
    const blocked = await internal.outcome();
    assert.equal(blocked.status, 'failed');
    assert.equal(blocked.status === 'failed' && blocked.error.type, 'ToolRejected');
    assert.match(blocked.status === 'failed' ? blocked.error.message : '', /destination blocked by egress policy: .*127\.0\.0\.1 .*loopback/);
    assert.equal(service.calls, callsBefore, 'the loopback service was contacted');
  });

  describe('the audit record answers the four questions', () => {
    test('approved: who asked, which rule and which person allowed it, as whom it ran, what it produced', async () => {
      const ops = await gw.token({ sub: 'otto', tenant: 'acme', groups: ['ops'] });
      const record = await auditOf(ids.approved!.requestId, ops);
      assert.equal(record.status, 'completed');
      assert.deepEqual(record.initiatedBy.actor, bot);
      assert.equal(record.initiatedBy.tenant, 'acme');
      assert.equal(record.initiatedBy.reason, 'ticket mentions [REDACTED:openai_key]');
      assert.equal(record.decision?.outcome, 'approve');
      assert.equal(record.decision?.rule, 'tool:leaky_lookup');
      assert.match(record.decision?.policyDigest ?? '', /^[a-f0-9]{64}$/);
      assert.match(record.proposal.toolDigest ?? '', /^[a-f0-9]{64}$/);
      assert.equal(record.approvals.length, 1);
      assert.deepEqual(
        {
          who: record.approvals[0]!.who,
          decision: record.approvals[0]!.decision,
          tier: record.approvals[0]!.tier,
          via: record.approvals[0]!.via,
          digest: record.approvals[0]!.digest,
        },
        { who: 'maria', decision: 'approve', tier: 0, via: 'api', digest: record.proposal.digest },
      );
      assert.equal(record.ranAs?.runAs, 'svc-lookup');
      assert.equal(record.ranAs?.idempotencyKey, `toolgate:${ids.approved!.workflowId}`);
      assert.equal(record.ranAs?.attempts, 1);
      assert.equal(record.outcome?.status, 'completed');
      assert.match(record.outcome?.result ?? '', /\[REDACTED:email\]/);
      assert.ok((record.outcome?.egress?.redactions.openai_key ?? 0) >= 1);
      assert.match(record.answers.whoInitiated, /^agent triage-bot \(tenant acme, production\)/);
      assert.match(record.answers.whoAllowed, /policy rule tool:leaky_lookup decided approve.*approved by maria \(tier 0, via api/);
      // Trust: the front door's assertion and maria's signed decision verify against the keys recorded in the history.
      assert.deepEqual(record.admission, { present: true, verified: true, kid: gw.keys.request.kid });
      assert.deepEqual(
        record.trustAnchors.map((t) => [t.requestKeys, t.decisionKeys]),
        [[[gw.keys.request.kid], [gw.keys.decision.kid]]],
      );
      assert.deepEqual(
        record.approvals.map((a) => [a.who, a.verified, a.kid]),
        [['maria', true, gw.keys.decision.kid]],
      );
      assert.equal(record.decision?.sealed, true);
      assert.match(
        record.answers.whoInitiated,
        new RegExp(`identity from a verified agent credential \\(front-door assertion signed with key ${gw.keys.request.kid}\\)$`),
      );
      assert.match(record.answers.whoAllowed, /approved by maria \(tier 0, via api, [^)]*verified decision\)/);
      assert.match(record.answers.underWhichIdentity, /^svc-lookup \(idempotency key toolgate:/);
      assert.match(record.answers.whatItProduced, /^completed: .*\(\d+ bytes, redacted .*openai_key×1/);
      assert.ok(record.timeline.some((t) => /maria approved/.test(t.event)));
    });

    test('denied: nobody allowed it and it never left', async () => {
      const handle = await gw.gateway.start(request('leaky_lookup', {}, { actor: { id: 'intruder', type: 'agent', roles: ['visitor'] } }));
      assert.equal((await handle.outcome()).status, 'denied');
      const ops = await gw.token({ sub: 'otto', tenant: 'acme', groups: ['ops'] });
      const record = await auditOf(handle.requestId, ops);
      assert.equal(record.status, 'denied');
      assert.equal(record.initiatedBy.actor.id, 'intruder');
      assert.equal(record.admission.verified, true, 'the front door admitted it: policy denied it');
      assert.deepEqual(
        { outcome: record.decision?.outcome, rule: record.decision?.rule, code: record.decision?.code },
        { outcome: 'deny', rule: 'check:role_not_allowed', code: 'role_not_allowed' },
      );
      assert.deepEqual(record.approvals, []);
      assert.equal(record.ranAs, null);
      assert.match(record.answers.whoAllowed, /^nobody: policy rule check:role_not_allowed decided deny/);
      assert.equal(record.answers.underWhichIdentity, 'it never left: no execution');
      assert.match(record.answers.whatItProduced, /^denied: role_not_allowed/);
    });

    test('expired: the plan waited, nobody decided, it never left; a refused attempt is on record', async () => {
      const handle = await gw.gateway.start(request('slow_approval'));
      const status = await pendingStatus(handle.requestId);
      const self = await gw.token({ sub: 'triage-bot', tenant: 'acme', groups: ['manager'] });
      assert.equal((await decide(handle.requestId, self, { decision: 'approve', digest: status.digest })).status, 403);
      assert.equal((await handle.outcome()).status, 'expired');
      const ops = await gw.token({ sub: 'root', tenant: 'globex', groups: ['ops:all'] });
      const record = await auditOf(handle.requestId, ops, 'acme');
      assert.equal(record.status, 'expired');
      assert.equal(record.decision?.outcome, 'approve');
      assert.deepEqual(record.approvals, []);
      assert.equal(record.refusals.length, 1);
      assert.deepEqual(
        { who: record.refusals[0]!.who, code: record.refusals[0]!.code, decision: record.refusals[0]!.decision, verified: record.refusals[0]!.verified },
        { who: 'triage-bot', code: 'self_approval', decision: 'approve', verified: true },
      );
      assert.equal(record.ranAs, null);
      assert.match(record.answers.whoAllowed, /nobody decided before expiry/);
      assert.match(record.answers.whatItProduced, /^expired: expired: no decision before /);
    });

    test('edited: the editor, both digests, the arguments that ran', async () => {
      const handle = await gw.gateway.start(request('leaky_lookup', { customer: 'c-7', note: 'first' }));
      const first = await pendingStatus(handle.requestId);
      const maria = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      assert.equal(
        (await decide(handle.requestId, maria, { decision: 'edit', digest: first.digest, args: { customer: 'c-8', note: 'fixed' }, reason: 'wrong customer' }))
          .status,
        200,
      );
      assert.equal((await handle.outcome()).status, 'completed');
      const ops = await gw.token({ sub: 'otto', tenant: 'acme', groups: ['ops'] });
      const record = await auditOf(handle.requestId, ops);
      assert.equal(record.edits.length, 1);
      assert.equal(record.edits[0]!.editor, 'maria');
      assert.equal(record.edits[0]!.fromDigest, first.digest);
      assert.ok(record.edits[0]!.toDigest && record.edits[0]!.toDigest !== first.digest);
      assert.deepEqual(record.proposal.args, { customer: 'c-8', note: 'fixed' });
      assert.equal(record.proposal.digest, record.edits[0]!.toDigest);
      assert.deepEqual(
        record.approvals.map((a) => [a.who, a.via, a.digest]),
        [['maria', 'edit', record.edits[0]!.toDigest]],
      );
      assert.deepEqual([record.edits[0]!.verified, record.approvals[0]!.verified, record.approvals[0]!.kid], [true, true, gw.keys.decision.kid]);
      assert.equal(record.ranAs?.runAs, 'svc-lookup');
      assert.match(record.answers.whoAllowed, /approved by maria \(tier 0, via edit.*arguments edited by maria/);
    });

    test('a request started around the front door (a raw Temporal client) is on record as denied and unverified', async () => {
      const forged = {
        requestId: 'forged-1',
        actor: { id: 'maria', type: 'agent', roles: ['agent_runtime'] },
        tenant: 'acme',
        environment: 'production',
        tool: 'leaky_lookup',
        args: { customer: 'c-9' },
      };
      const handle = await gw.ops.workflow.start(WORKFLOW_TYPE, {
        taskQueue,
        workflowId: 'toolreq/acme/forged-1',
        args: [{ request: forged, admission: 'x.y.z' }],
        typedSearchAttributes: [
          { key: searchAttributes.tool, value: forged.tool },
          { key: searchAttributes.tenant, value: forged.tenant },
          { key: searchAttributes.actor, value: forged.actor.id },
        ],
      });
      const outcome = (await handle.result()) as ToolOutcome;
      assert.deepEqual({ status: outcome.status, code: outcome.status === 'denied' && outcome.code }, { status: 'denied', code: 'unverified_request' });
      const ops = await gw.token({ sub: 'otto', tenant: 'acme', groups: ['ops'] });
      const record = await auditOf('forged-1', ops);
      assert.equal(record.status, 'denied');
      assert.equal(record.workflowId, 'toolreq/acme/forged-1');
      assert.equal(record.initiatedBy.actor.id, 'maria', 'the record shows what the forger claimed');
      assert.equal(record.admission.present, true);
      assert.equal(record.admission.verified, false);
      assert.equal(record.admission.kid, undefined);
      assert.equal(record.admission.problem?.code, 'malformed');
      assert.equal(record.decision?.code, 'unverified_request');
      assert.equal(record.outcome?.error?.type, 'unverified_request');
      assert.deepEqual(record.approvals, []);
      assert.equal(record.ranAs, null);
      assert.match(record.answers.whoInitiated, /^agent maria \(tenant acme, production\) .*identity NOT verified: no valid front-door assertion \(malformed/);
      assert.match(record.answers.whoAllowed, /^nobody: policy rule check:request_assertion decided deny/);
      assert.match(record.answers.whatItProduced, /^denied: unverified_request: the request was not admitted by toolgate's front door/);
    });

    test('GET /v1/audit is for ops of the tenant (or ops:all, naming another tenant) only', async () => {
      const { requestId } = ids.approved!;
      assert.equal((await gw.api('GET', `/v1/audit/${requestId}`)).status, 401);
      const maria = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      assert.equal((await gw.api('GET', `/v1/audit/${requestId}`, { token: maria })).status, 403);
      const otherOps = await gw.token({ sub: 'gus', tenant: 'globex', groups: ['ops'] });
      assert.equal((await gw.api('GET', `/v1/audit/${requestId}`, { token: otherOps })).status, 404);
      assert.equal((await gw.api('GET', `/v1/audit/${requestId}?tenant=acme`, { token: otherOps })).status, 404);
      const allOps = await gw.token({ sub: 'root', tenant: 'globex', groups: ['ops:all'] });
      // Request ids are namespaced per tenant: ops:all of globex finds acme's request only by naming acme.
      assert.equal((await gw.api('GET', `/v1/audit/${requestId}`, { token: allOps })).status, 404);
      const named = await gw.api('GET', `/v1/audit/${requestId}?tenant=acme`, { token: allOps });
      assert.equal(named.status, 200);
      assert.equal((named.body as AuditRecord).workflowId, ids.approved!.workflowId);
      assert.equal((await gw.api('GET', '/v1/audit/no-such-request?tenant=acme', { token: allOps })).status, 404);
    });
  });

  test('toolgate audit show, export and verify on real records; a flipped byte fails verification', async () => {
    const shown = await toolgate(['audit', 'show', ids.approved!.requestId, '--tenant', 'acme'], processEnv());
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /who initiated: +agent triage-bot .*identity from a verified agent credential/);
    assert.match(shown.out, /under which identity: +svc-lookup/);
    assert.match(shown.out, /admission: front-door assertion, verified \(key /);
    assert.match(shown.out, /vote: maria approve .*, verified \(key /);
    assert.ok(!shown.out.includes(CANARY));
    const byWorkflowId = await toolgate(['audit', 'show', ids.approved!.workflowId, '--json'], processEnv());
    assert.equal(byWorkflowId.code, 0, byWorkflowId.err);
    assert.equal((JSON.parse(byWorkflowId.out) as AuditRecord).requestId, ids.approved!.requestId);
    const noTenant = await toolgate(['audit', 'show', ids.approved!.requestId], processEnv());
    assert.notEqual(noTenant.code, 0);
    assert.match(noTenant.err, /--tenant is required/);

    const keys = await toolgate(['audit', 'keygen', '--out', stateDir], processEnv());
    assert.equal(keys.code, 0, keys.err);
    const exportFile = join(stateDir, 'audit.jsonl');
    const started = Date.now();
    const exported = await toolgate(
      ['audit', 'export', '--key', join(stateDir, 'audit-signing.key.pem'), '--tenant', 'acme', '--checkpoint-every', '2'],
      processEnv(),
      exportFile,
    );
    const exportMs = Date.now() - started;
    assert.equal(exported.code, 0, exported.err);
    assert.match(exported.err, /audit export: done, \d+ records/);
    const lines = (await readFile(exportFile, 'utf8')).trimEnd().split('\n');
    const records = lines.filter((l) => l.startsWith('{"seq"')).map((l) => JSON.parse(l).record as AuditRecord);
    assert.ok(records.length >= 6, `only ${records.length} records exported`);
    assert.ok(records.every((r) => r.initiatedBy.tenant === 'acme'));
    assert.ok(records.some((r) => r.requestId === ids.approved!.requestId && r.workflowId === ids.approved!.workflowId && r.admission.verified));
    assert.ok(records.some((r) => r.workflowId === 'toolreq/acme/forged-1' && r.status === 'denied' && !r.admission.verified));
    assert.ok(!lines.join('\n').includes(CANARY));

    const pub = join(stateDir, 'audit-signing.pub.pem');
    const verified = await toolgate(['audit', 'verify', exportFile, '--key', pub], processEnv());
    assert.equal(verified.code, 0, verified.out + verified.err);
    assert.match(verified.out, new RegExp(`^ok: ${records.length} records`));

    // Flip one byte inside the third record's content.
    const tampered = [...lines];
    const target = tampered.findIndex((l) => l.startsWith('{"seq":2,'));
    tampered[target] = tampered[target]!.replace('"status":"', '"status":"X');
    const tamperedFile = join(stateDir, 'tampered.jsonl');
    await writeFile(tamperedFile, `${tampered.join('\n')}\n`);
    const refused = await toolgate(['audit', 'verify', tamperedFile, '--key', pub], processEnv());
    assert.equal(refused.code, 1);
    assert.match(refused.out, new RegExp(`FAILED at line ${target + 1} \\(record seq 2\\): hash does not match the record`));
    process.stderr.write(`audit export of ${records.length} real records: ${exportMs} ms (CLI start included)\n`);
  });
});
