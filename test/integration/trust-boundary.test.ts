/**
 * The trust boundary, attacked on a real Temporal server with real HTTP: whoever has Temporal
 * access (a raw client with the codec keys, a rogue worker on the task queue) cannot forge a
 * request or a decision or make a worker act; an agent cannot be someone else; one person is one
 * identity; 600 concurrent decisions count exactly as the plan says; and a flood of refused
 * attempts grows a pending request's history by at most the documented bound.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createRequire } from 'node:module';
import { SignJWT, exportPKCS8, generateKeyPair } from 'jose';
import { ApplicationFailure, type Payload } from '@temporalio/common';
import { Client, WorkflowUpdateFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { GatewayRequestError } from '../../src/client/index.js';
import {
  ASSERTION_AUDIENCE,
  DECISION_ASSERTION_TYP,
  FailureTypes,
  HISTORY_BOUNDS,
  WORKFLOW_TYPE,
  decideUpdate,
  killSignal,
  searchAttributes,
  workflowIdFor,
  type ToolOutcome,
  type ToolRequest,
} from '../../src/shared/index.js';
import { FAILURE_CONVERTER_PATH } from '../../src/codec/index.js';
import { decodeFromPayloadsAtIndex } from '../../src/temporal/internals.js';
import { signingKeyFromPem } from '../../src/trust/keys.js';
import { DecisionSigner, RequestSigner, type DecisionStatement } from '../../src/trust/signers.js';
import {
  eventually,
  refusedAtEdge,
  runtimeWarnings,
  startGateway,
  startTemporal,
  testDataConverter,
  waitForState,
  type GatewayEnv,
} from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { pool } from '../helpers/pool.js';

const require = createRequire(import.meta.url);
const TASK_QUEUE = `trust-${process.pid}`;

/** A fresh schema each time: a shared object would be written as a YAML alias. */
const amount = () => argsOf({ amount: 'number' });
const POLICY = policy()
  .tool('read_kb')
  .tool('refund', { risk: 'high', approval: 'manager' })
  .tool('payout', { risk: 'high', approval: 'two_managers' })
  .tool('wire', { risk: 'critical', approval: 'three_managers' })
  .tool('brief', { risk: 'high', approval: 'quick' })
  .plan('quick', { groups: ['manager'], expiresAfter: '3s' })
  .plan('manager', { groups: ['manager'], expiresAfter: '1h' })
  .plan('two_managers', { groups: ['manager'], minApprovals: 2, expiresAfter: '1h' })
  .plan('three_managers', { groups: ['manager'], minApprovals: 3, expiresAfter: '1h' })
  .codeTool('read_kb', { runAs: 'svc-kb' })
  .codeTool('refund', { runAs: 'svc-payments', args: amount() })
  .codeTool('payout', { runAs: 'svc-payments', args: amount() })
  .codeTool('wire', { runAs: 'svc-payments', args: amount() })
  .codeTool('brief', { runAs: 'svc-payments', args: amount() })
  .yaml();

const bot = { id: 'bot', type: 'agent' as const, roles: ['agent_runtime'] };
let seq = 0;
const nextId = (name: string) => `${name}-${process.pid}-${Date.now()}-${++seq}`;

/** The accepted decide-update inputs of a request, decoded from its history (what an attacker with Temporal access can read). */
async function acceptedAssertions(gw: GatewayEnv, workflowId: string): Promise<string[]> {
  const history = await gw.ops.workflow.getHandle(workflowId).fetchHistory();
  const converter = gw.ops.options.loadedDataConverter;
  const out: string[] = [];
  for (const event of history.events ?? []) {
    const payloads = event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.args?.payloads;
    if (payloads) out.push((await decodeFromPayloadsAtIndex<{ assertion: string }>(converter, 0, payloads)).assertion);
  }
  return out;
}

async function historyLength(gw: GatewayEnv, workflowId: string): Promise<number> {
  return (await gw.ops.workflow.getHandle(workflowId).fetchHistory()).events?.length ?? 0;
}

/** The history length once the workflow is idle (no activity or workflow task pending), so later growth is only what a test caused. */
async function idleHistoryLength(gw: GatewayEnv, workflowId: string): Promise<number> {
  await eventually(async () => {
    const { raw } = await gw.ops.workflow.getHandle(workflowId).describe();
    return (raw.pendingActivities ?? []).length === 0 && !raw.pendingWorkflowTask ? true : undefined;
  }, `${workflowId} to be idle`);
  return historyLength(gw, workflowId);
}

/** Sends `decide` straight to Temporal, as someone with namespace access could; returns the refusal type, or 'accepted'. */
async function rawDecide(gw: GatewayEnv, workflowId: string, input: unknown): Promise<string> {
  try {
    await gw.ops.workflow.getHandle(workflowId).executeUpdate(decideUpdate, { args: [input as { assertion: string }] });
    return 'accepted';
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) return err.cause.type ?? 'ApplicationFailure';
    throw err;
  }
}

describe('the trust boundary on a real Temporal server', { timeout: 900_000 }, () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  const calls = { read_kb: 0, refund: 0, payout: 0, wire: 0, brief: 0 };

  before(async () => {
    env = await startTemporal();
    gw = await startGateway(env, {
      taskQueue: TASK_QUEUE,
      policy: POLICY,
      tools: {
        read_kb: async () => ((calls.read_kb += 1), { ok: true }),
        refund: async () => ((calls.refund += 1), { refunded: true }),
        payout: async () => ((calls.payout += 1), { paid: true }),
        wire: async () => ((calls.wire += 1), { wired: true }),
        brief: async () => ((calls.brief += 1), { done: true }),
      },
    });
  });

  after(async () => {
    await gw?.close();
    await env?.teardown();
  });

  /** An attacker's worker with Temporal access and the codec keys, running the rogue workflow on its own queue. */
  const rogueWorker = async (taskQueue: string) =>
    Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await bundleWorkflowCode({
        workflowsPath: require.resolve('../fixtures/rogue-workflows.ts'),
        failureConverterPath: FAILURE_CONVERTER_PATH,
        logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
      }),
      dataConverter: testDataConverter,
    });

  /** What an approval of `target` by `sub` asserts (before signing). */
  const approvalOf = (target: Awaited<ReturnType<typeof pending>>, sub: string, groups: string[]): DecisionStatement => ({
    sub,
    tenant: 'acme',
    groups,
    request_id: target.handle.requestId,
    workflow_id: target.workflowId,
    run_id: target.runId,
    digest: target.digest,
    decision: 'approve',
    channel: 'api',
  });

  /** A request waiting for approval, submitted through the front door by `bot`. */
  async function pending(tool: keyof typeof calls) {
    const handle = await gw.gateway.start({ requestId: nextId(tool), actor: bot, tenant: 'acme', environment: 'production', tool, args: { amount: 10 } });
    const status = await waitForState(gw, handle.requestId, 'pending_approval');
    const description = await gw.ops.workflow.getHandle(handle.workflowId).describe();
    return { handle, digest: status.digest as string, workflowId: handle.workflowId, runId: description.runId };
  }

  describe('forgery: a raw Temporal client with namespace access and the codec keys', () => {
    /** Starts toolRequest directly on Temporal, the way an attacker with a connection could. */
    async function startRaw(requestId: string, input: unknown): Promise<ToolOutcome> {
      const handle = await gw.ops.workflow.start(WORKFLOW_TYPE, {
        taskQueue: TASK_QUEUE,
        workflowId: workflowIdFor('acme', requestId),
        args: [input],
        typedSearchAttributes: [
          { key: searchAttributes.tenant, value: 'acme' },
          { key: searchAttributes.actor, value: 'ceo' },
          { key: searchAttributes.tool, value: 'refund' },
        ],
      });
      return (await handle.result()) as ToolOutcome;
    }
    const invented = (requestId: string): ToolRequest => ({
      requestId,
      actor: { id: 'ceo', type: 'human', roles: ['agent_runtime'] },
      tenant: 'acme',
      environment: 'production',
      tool: 'read_kb',
      args: {},
    });

    test('a request without a valid front-door assertion ends unverified_request, before policy, with nothing run', async () => {
      const attacker = await signingKeyFromPem(
        await exportPKCS8((await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })).privateKey),
        'attacker',
      );
      const cases: [string, (id: string) => Promise<unknown>][] = [
        ['no assertion', async (id) => ({ request: invented(id) })],
        ['garbage', async (id) => ({ request: invented(id), admission: 'not.a.jws' })],
        [
          "the attacker's own key",
          async (id) => ({ request: invented(id), admission: await new RequestSigner(attacker).sign(invented(id), workflowIdFor('acme', id)) }),
        ],
        [
          'a genuine assertion of another request',
          async (id) => {
            const other = invented(`${id}-other`);
            return { request: invented(id), admission: await gw.keys.requestSigner.sign(other, workflowIdFor('acme', other.requestId)) };
          },
        ],
        [
          'a genuine assertion, then the arguments changed',
          async (id) => ({
            request: { ...invented(id), args: { sudo: true } },
            admission: await gw.keys.requestSigner.sign(invented(id), workflowIdFor('acme', id)),
          }),
        ],
        ['the shape of a request before the trust boundary', async (id) => invented(id)],
      ];
      for (const [name, build] of cases) {
        const id = nextId('forged');
        const outcome = await startRaw(id, await build(id));
        assert.equal(outcome.status, 'denied', name);
        assert.ok(outcome.status === 'denied');
        assert.equal(outcome.code, 'unverified_request', name);
        const status = await gw.status(id);
        assert.equal(status.decision, undefined, `${name}: policy must not have been evaluated`);
        assert.equal((await gw.ops.workflow.getHandle(workflowIdFor('acme', id)).describe()).typedSearchAttributes.get(searchAttributes.status), 'denied');
      }
      assert.equal(calls.read_kb, 0, 'no forged request reached the tool');
    });

    test('decide updates without a valid decision assertion are refused with no trace in the history; nothing runs', async () => {
      const target = await pending('refund');
      const attackerKey = await signingKeyFromPem(
        await exportPKCS8((await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })).privateKey),
        'attacker',
      );
      const statement = approvalOf(target, 'maria', ['manager']);
      // A genuine assertion accepted on another request, read from that request's history.
      const other = await pending('refund');
      const approver = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      assert.equal(
        (await gw.api('POST', `/v1/approvals/${other.handle.requestId}/decision`, { token: approver, body: { decision: 'approve', digest: other.digest } }))
          .status,
        200,
      );
      const [otherAssertion] = await acceptedAssertions(gw, other.workflowId);
      // A genuine assertion for this request, then its payload changed (the signature kept).
      const genuine = await gw.keys.decisionSigner.sign({ ...statement, sub: 'sam', groups: ['support'] });
      const [h, p, s] = genuine.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
      const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'maria', groups: ['manager'] })).toString('base64url')}.${s}`;
      // Signed by the trusted key, but long expired.
      const expired = await new SignJWT({ ...statement })
        .setProtectedHeader({ alg: 'EdDSA', typ: DECISION_ASSERTION_TYP, kid: gw.keys.decision.kid })
        .setIssuer('toolgate-approvals')
        .setAudience(ASSERTION_AUDIENCE)
        .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
        .setJti('expired-1')
        .sign(gw.keys.decision.privateKey);
      // A request assertion is not a decision assertion, even though it is genuine.
      const wrongKind = await gw.keys.requestSigner.sign(
        { requestId: target.handle.requestId, actor: bot, tenant: 'acme', environment: 'production', tool: 'refund', args: {} },
        target.workflowId,
      );

      const before = await idleHistoryLength(gw, target.workflowId);
      const warningsBefore = runtimeWarnings.length;
      const attempts: [string, unknown, string][] = [
        [
          'an invented approver object (the old update input)',
          { decision: 'approve', digest: target.digest, approver: { id: 'maria', tenant: 'acme', groups: ['manager'] } },
          FailureTypes.UnverifiedDecision,
        ],
        ['an assertion signed by an unknown key', { assertion: await new DecisionSigner(attackerKey).sign(statement) }, FailureTypes.UntrustedSigningKey],
        [
          'an attacker key presenting the trusted key id',
          { assertion: await new DecisionSigner({ ...attackerKey, kid: gw.keys.decision.kid }).sign(statement) },
          FailureTypes.UnverifiedDecision,
        ],
        ['an assertion accepted on another request, replayed', { assertion: otherAssertion }, FailureTypes.UnverifiedDecision],
        ['a tampered assertion', { assertion: tampered }, FailureTypes.UnverifiedDecision],
        ['an expired assertion', { assertion: expired }, FailureTypes.UnverifiedDecision],
        ['a request assertion offered as a decision', { assertion: wrongKind }, FailureTypes.UnverifiedDecision],
      ];
      for (const [name, input, expected] of attempts) assert.equal(await rawDecide(gw, target.workflowId, input), expected, name);

      assert.equal(await historyLength(gw, target.workflowId), before, 'refused updates leave no event in the history');
      const status = await gw.status(target.handle.requestId);
      assert.equal(status.state, 'pending_approval');
      assert.equal(status.approvals.length, 0);
      assert.equal(status.refusals.length, 0, 'nothing unverified is recorded');
      assert.equal(calls.refund, 1, 'only the other, genuinely approved request ran');
      // Recorded where an unverifiable attempt belongs: the worker's log (written just after the worker answers).
      await eventually(async () => {
        const logged = runtimeWarnings.slice(warningsBefore).filter((w) => w.message === 'decision refused without a record');
        return logged.length >= attempts.length ? logged : undefined;
      }, `every refused attempt to be logged by the worker`);

      // The same request still completes with a genuine decision, once.
      const ok = await gw.api('POST', `/v1/approvals/${target.handle.requestId}/decision`, {
        token: approver,
        body: { decision: 'approve', digest: target.digest },
      });
      assert.equal(ok.status, 200);
      assert.equal((await target.handle.outcome()).status, 'completed');
      assert.equal(calls.refund, 2);
    });

    test('an accepted assertion replayed on its own request is refused, so one vote never counts twice', async () => {
      const target = await pending('payout');
      const token = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      assert.equal(
        (await gw.api('POST', `/v1/approvals/${target.handle.requestId}/decision`, { token, body: { decision: 'approve', digest: target.digest } })).status,
        200,
      );
      const [accepted] = await acceptedAssertions(gw, target.workflowId);
      assert.equal(await rawDecide(gw, target.workflowId, { assertion: accepted }), FailureTypes.UnverifiedDecision);
      const status = await gw.status(target.handle.requestId);
      assert.equal(status.state, 'pending_approval', 'two approvals are needed; the replay did not count');
      assert.equal(status.approvals.length, 1);
      assert.equal(calls.payout, 0);
    });

    test("a rogue worker that schedules toolgate's activities itself cannot make the real worker act", async () => {
      const target = await pending('refund');
      const refundsBefore = calls.refund;
      const admittedHistory = await gw.ops.workflow.getHandle(target.workflowId).fetchHistory();
      const converter = gw.ops.options.loadedDataConverter;
      const startPayloads = admittedHistory.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads as Payload[];
      const start = await decodeFromPayloadsAtIndex<{ request: ToolRequest; admission: string }>(converter, 0, startPayloads);
      // Everything the attacker can copy from the real request's history, plus an invented approval.
      const evaluation = (await gw.status(target.handle.requestId)).decision;
      const forgedApproval = await gw.keys.decisionSigner.sign(approvalOf(target, 'mallory', ['manager']));
      const rogueQueue = `rogue-${process.pid}`;
      const worker = await rogueWorker(rogueQueue);
      const result = await worker.runUntil(
        gw.ops.workflow.execute('rogueActivities', {
          taskQueue: rogueQueue,
          workflowId: nextId('rogue'),
          args: [
            {
              taskQueue: TASK_QUEUE,
              executeInput: {
                requestId: start.request.requestId,
                tenant: 'acme',
                tool: 'refund',
                args: { amount: 1_000_000 },
                runAs: 'svc-payments',
                idempotencyKey: 'rogue',
                evidence: {
                  admission: start.admission,
                  request: start.request,
                  approvals: [forgedApproval],
                  evaluation: { decision: evaluation, digest: target.digest, seal: 'AAAA' },
                },
              },
              evaluateInput: { request: start.request, workflowId: target.workflowId, admission: start.admission },
            },
          ],
        }),
      );
      assert.deepEqual(result, { execute: FailureTypes.UnverifiedExecution, evaluate: FailureTypes.UnverifiedExecution });
      assert.equal(calls.refund, refundsBefore, 'the tool was not called');
    });
  });

  describe('runs and time', () => {
    test('a run started again under the id of a request that ended cannot make the worker act again, with or without a rogue worker', async () => {
      const sdk = await gw.gateway.as({ id: 'bot', roles: ['agent_runtime'], tenant: 'acme', environment: 'production' });
      const requestId = nextId('once');
      assert.deepEqual(await sdk.call({ requestId, tool: 'read_kb', args: {} }), { ok: true });
      const done = calls.read_kb;
      const workflowId = workflowIdFor('acme', requestId);
      const history = await gw.ops.workflow.getHandle(workflowId).fetchHistory();
      const converter = gw.ops.options.loadedDataConverter;
      const events = history.events ?? [];
      const start = await decodeFromPayloadsAtIndex<{ request: ToolRequest; admission: string }>(
        converter,
        0,
        events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads,
      );
      // 1. The same start input again, on toolgate's queue, while its admission is still fresh.
      const again = await gw.ops.workflow.start(WORKFLOW_TYPE, { taskQueue: TASK_QUEUE, workflowId, args: [start], workflowIdReusePolicy: 'ALLOW_DUPLICATE' });
      const outcome = (await again.result()) as ToolOutcome;
      assert.equal(outcome.status, 'failed');
      assert.ok(outcome.status === 'failed' && outcome.error.type === FailureTypes.UnverifiedExecution, JSON.stringify(outcome));
      assert.match(outcome.status === 'failed' ? outcome.error.message : '', /another run/);
      // 2. A rogue run of the same id on the attacker's queue, with the first run's sealed evaluation.
      const marker = await Promise.all(
        events
          .filter((e) => e.markerRecordedEventAttributes?.details?.result?.payloads)
          .map((e) =>
            decodeFromPayloadsAtIndex<{ decision?: unknown; seal?: string }>(
              converter,
              0,
              e.markerRecordedEventAttributes!.details!.result!.payloads as Payload[],
            ),
          ),
      );
      const sealed = marker.find((m) => m && typeof m === 'object' && 'seal' in m);
      assert.ok(sealed?.seal, 'the first run recorded a sealed evaluation');
      const worker = await rogueWorker(`rogue-${process.pid}`);
      const rogue = await worker.runUntil(
        gw.ops.workflow.execute('rogueActivities', {
          taskQueue: `rogue-${process.pid}`,
          workflowId,
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          args: [
            {
              taskQueue: TASK_QUEUE,
              executeInput: {
                requestId,
                tenant: 'acme',
                tool: 'read_kb',
                args: {},
                runAs: 'svc-kb',
                idempotencyKey: 'x',
                evidence: { admission: start.admission, request: start.request, approvals: [], evaluation: sealed },
              },
              evaluateInput: { request: start.request, workflowId, admission: start.admission },
            },
          ],
        }),
      );
      assert.deepEqual(rogue, { execute: FailureTypes.UnverifiedExecution, evaluate: FailureTypes.UnverifiedExecution });
      assert.equal(calls.read_kb, done, 'the tool ran once, for the request the front door admitted');
    });

    test('a request admitted while no worker runs is still verified when a worker comes back after its admission expired', async () => {
      await gw.stopWorker();
      const requestId = nextId('late');
      const workflowId = workflowIdFor('acme', requestId);
      const request: ToolRequest = { requestId, actor: bot, tenant: 'acme', environment: 'production', tool: 'read_kb', args: {} };
      // The front door's signature with a 1 s validity, so the outage outlasts it plus the 60 s clock tolerance.
      const admission = await gw.keys.requestSigner.sign(request, workflowId, { ttlSeconds: 1 });
      const handle = await gw.ops.workflow.start(WORKFLOW_TYPE, {
        taskQueue: TASK_QUEUE,
        workflowId,
        args: [{ request, admission }],
        typedSearchAttributes: [
          { key: searchAttributes.tenant, value: 'acme' },
          { key: searchAttributes.actor, value: 'bot' },
          { key: searchAttributes.tool, value: 'read_kb' },
        ],
      });
      const before = calls.read_kb;
      await new Promise((resolve) => setTimeout(resolve, 63_000));
      await gw.startWorker();
      const outcome = (await handle.result()) as ToolOutcome;
      assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
      assert.equal(calls.read_kb, before + 1);
    });
  });

  describe('payloads of no tenant', () => {
    test('a signal encoded for no tenant (or another) is read as nothing: the request is not wedged, answers, and still expires', async () => {
      const target = await pending('brief');
      // A client whose codec ignores the request it writes to, as an ops:all encoding would produce.
      const codec = testDataConverter.payloadCodecs[0]!;
      const blind = new Client({
        connection: env.client.connection,
        dataConverter: {
          failureConverterPath: testDataConverter.failureConverterPath,
          payloadCodecs: [{ encode: (payloads: Payload[]) => codec.encode(payloads), decode: (payloads: Payload[]) => codec.decode(payloads) }],
        },
      });
      await blind.workflow.getHandle(target.workflowId).signal(killSignal, { switchId: 'x', reason: 'global', by: 'ops-all', at: new Date().toISOString() });
      const status = await gw.status(target.handle.requestId);
      assert.equal(status.killedBy, undefined, 'the unreadable order was not applied');
      const outcome = await target.handle.outcome();
      assert.equal(outcome.status, 'expired', 'expiry still denies');
      assert.equal(calls.brief, 0);
    });
  });

  describe('spoofing through the SDK', () => {
    test('a call that names another tenant, environment or actor is refused; identity comes from the token', async () => {
      const sdk = await gw.gateway.as({ id: 'bot', roles: ['agent_runtime'], tenant: 'acme', environment: 'production' });
      for (const field of [{ tenant: 'globex' }, { environment: 'staging' }, { actor: { id: 'ceo', type: 'agent', roles: ['agent_runtime'] } }]) {
        await assert.rejects(
          sdk.call({ tool: 'read_kb', args: {}, ...field }),
          (err: unknown) => err instanceof GatewayRequestError && err.status === 403 && err.code === 'identity_mismatch',
          JSON.stringify(field),
        );
      }
      const before = calls.read_kb;
      assert.deepEqual(await sdk.call({ tool: 'read_kb', args: {}, tenant: 'acme', environment: 'production' } as never), { ok: true });
      assert.equal(calls.read_kb, before + 1, "restating the token's own identity is accepted");
    });

    test('the same actor id in another environment, or acting for someone else, cannot read the request', async () => {
      const requestId = nextId('scoped');
      const maria = await gw.gateway.as({
        id: 'bot',
        roles: ['agent_runtime'],
        tenant: 'acme',
        environment: 'production',
        onBehalfOf: [{ type: 'human', id: 'maria' }],
      });
      assert.deepEqual(await maria.call({ requestId, tool: 'read_kb', args: {} }), { ok: true });
      const others = [
        await gw.gateway.as({ id: 'ＢＯＴ', roles: [], tenant: 'acme', environment: 'staging', onBehalfOf: [{ type: 'human', id: 'maria' }] }),
        await gw.gateway.as({ id: 'bot', roles: ['agent_runtime'], tenant: 'acme', environment: 'production', onBehalfOf: [{ type: 'human', id: 'bob' }] }),
        await gw.gateway.as({ id: 'bot', roles: ['agent_runtime'], tenant: 'acme', environment: 'production' }),
      ];
      for (const other of others) {
        await assert.rejects((await other.get(requestId)).status(), (err: unknown) => err instanceof GatewayRequestError && err.status === 404);
      }
      assert.equal((await (await maria.get(requestId)).status()).state, 'completed', 'the agent that asked still reads it');
    });
  });

  describe('one person is one identity', () => {
    test("case, width and compatibility variants of a name never count twice, and the requester's variant cannot approve", async () => {
      const target = await pending('payout');
      const decide = async (sub: string) =>
        gw.api('POST', `/v1/approvals/${target.handle.requestId}/decision`, {
          token: await gw.token({ sub, tenant: 'acme', groups: ['manager'] }),
          body: { decision: 'approve', digest: target.digest },
        });
      assert.equal((await decide('Maria')).status, 200);
      for (const variant of ['maria', 'MARIA', 'ｍａｒｉａ', '𝐦𝐚𝐫𝐢𝐚', 'ＭＡＲＩＡ']) {
        const res = await decide(variant);
        assert.equal(res.status, 409, variant);
        assert.equal(res.body.error.code, 'duplicate_vote', variant);
      }
      for (const variant of ['BOT', 'Bot', 'ｂｏｔ']) {
        const res = await decide(variant);
        assert.equal(res.status, 403, variant);
        assert.equal(res.body.error.code, 'self_approval', variant);
      }
      const status = await gw.status(target.handle.requestId);
      assert.equal(status.state, 'pending_approval');
      assert.deepEqual(
        status.approvals.map((v) => v.approverId),
        ['maria'],
      );
      assert.equal(calls.payout, 0);
      assert.equal((await decide('sam')).status, 200);
      assert.equal((await target.handle.outcome()).status, 'completed');
      assert.equal(calls.payout, 1);
    });
  });

  describe('concurrency', () => {
    test('600 concurrent decisions on one request: no 5xx, each counted or refused with a reason, the plan counts exactly three, the tool runs once', async () => {
      const target = await pending('wire');
      const tokens = await Promise.all([
        ...Array.from({ length: 300 }, (_, i) =>
          gw.token({ sub: `manager-${i}`, tenant: 'acme', groups: ['manager'] }).then((token) => ({ token, digest: target.digest, kind: 'eligible' })),
        ),
        ...Array.from({ length: 150 }, (_, i) =>
          gw.token({ sub: `support-${i}`, tenant: 'acme', groups: ['support'] }).then((token) => ({ token, digest: target.digest, kind: 'wrong_group' })),
        ),
        ...Array.from({ length: 100 }, (_, i) =>
          gw.token({ sub: `stale-${i}`, tenant: 'acme', groups: ['manager'] }).then((token) => ({ token, digest: 'f'.repeat(64), kind: 'wrong_digest' })),
        ),
        ...Array.from({ length: 50 }, (_, i) =>
          gw.token({ sub: `stranger-${i}`, tenant: 'globex', groups: ['manager'] }).then((token) => ({ token, digest: target.digest, kind: 'other_tenant' })),
        ),
      ]);
      const started = Date.now();
      const answers = await Promise.all(
        tokens.map(async (t) => ({
          kind: t.kind,
          ...(await gw.api('POST', `/v1/approvals/${target.handle.requestId}/decision`, { token: t.token, body: { decision: 'approve', digest: t.digest } })),
        })),
      );
      const took = Date.now() - started;
      const byStatus = new Map<string, number>();
      for (const a of answers)
        byStatus.set(`${a.kind} ${a.status} ${a.body?.error?.code ?? 'ok'}`, (byStatus.get(`${a.kind} ${a.status} ${a.body?.error?.code ?? 'ok'}`) ?? 0) + 1);
      process.stderr.write(`600 concurrent decisions in ${took} ms: ${JSON.stringify(Object.fromEntries(byStatus))}\n`);

      assert.equal(answers.filter((a) => a.status >= 500).length, 0, 'no 5xx');
      for (const a of answers) {
        if (a.status === 200) continue;
        assert.ok(
          a.status >= 400 && a.status < 500 && typeof a.body?.error?.code === 'string' && a.body.error.message,
          `refused with a reason: ${JSON.stringify(a)}`,
        );
      }
      const counted = answers.filter((a) => a.status === 200);
      assert.equal(counted.length, 3, 'exactly the three approvals the plan needs are counted');
      assert.ok(counted.every((a) => a.kind === 'eligible'));
      for (const a of answers.filter((x) => x.kind === 'eligible' && x.status !== 200))
        assert.equal(a.body.error.code, 'not_pending', 'votes after the plan is satisfied are refused');
      for (const a of answers.filter((x) => x.kind === 'other_tenant')) assert.equal(a.status, 404);
      const outcome = await target.handle.outcome();
      assert.equal(outcome.status, 'completed');
      assert.equal(outcome.approvals.filter((v) => v.decision === 'approve').length, 3);
      assert.equal(calls.wire, 1, 'the tool ran once');
    });
  });

  describe('flood', () => {
    test('20,000 unauthenticated and 2,000 authenticated refused attempts grow the history by at most the bound; a valid approval still completes it', async () => {
      const target = await pending('refund');
      const refundsBefore = calls.refund;
      const before = await idleHistoryLength(gw, target.workflowId);
      const path = `/v1/approvals/${target.handle.requestId}/decision`;
      const body = { decision: 'approve', digest: target.digest };
      const foreignKey = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      const forged = await new SignJWT({ tenant: 'acme', groups: ['manager'] })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'toolgate-approver+jwt' })
        .setSubject('maria')
        .setIssuer('toolgate-local')
        .setAudience('toolgate-approvals')
        .setExpirationTime('1h')
        .sign(foreignKey.privateKey);
      const expired = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] }, { ttlSeconds: -120 });
      const anonymous = [undefined, 'garbage', forged, expired];
      const started = Date.now();
      const unauthenticated = await pool(
        Array.from({ length: 20_000 }, (_, i) => async () => {
          const token = anonymous[i % anonymous.length];
          if (i % 10 === 9)
            return (
              await fetch(`${gw.apiUrl}/v1/links/${token ?? 'x.y.z'}`, {
                method: 'POST',
                body: 'decision=approve',
                headers: { 'content-type': 'application/x-www-form-urlencoded' },
              })
            ).status;
          return (await gw.api('POST', path, { ...(token ? { token } : {}), body })).status;
        }),
        64,
      );
      const unauthenticatedMs = Date.now() - started;
      assert.ok(
        unauthenticated.every((status) => status === 401),
        'every anonymous attempt is a 401',
      );
      assert.equal(await historyLength(gw, target.workflowId), before, 'anonymous attempts write nothing into the history');

      // 2,000 attempts by 400 authenticated people outside the approving group, 5 each.
      const outsiders = await Promise.all(Array.from({ length: 400 }, (_, i) => gw.token({ sub: `outsider-${i}`, tenant: 'acme', groups: ['support'] })));
      const authStarted = Date.now();
      const authenticated = await pool(
        Array.from({ length: 2_000 }, (_, i) => async () => (await gw.api('POST', path, { token: outsiders[i % 400], body })).status),
        32,
      );
      const authenticatedMs = Date.now() - authStarted;
      assert.ok(
        authenticated.every((status) => status === 403),
        'every outsider is refused as not eligible',
      );

      const after = await historyLength(gw, target.workflowId);
      const status = await gw.status(target.handle.requestId);
      assert.equal(status.refusals.length, HISTORY_BOUNDS.refusalsPerRequest, 'the record keeps the bounded share');
      // Each recorded refusal is an accepted update and its completion, with at most one workflow task of 3 events.
      const bound = HISTORY_BOUNDS.refusalsPerRequest * 5;
      process.stderr.write(
        `flood: 20,000 anonymous in ${unauthenticatedMs} ms, 2,000 authenticated in ${authenticatedMs} ms; history ${before} -> ${after} events (+${after - before}, bound ${bound})\n`,
      );
      assert.ok(after - before <= bound, `history grew by ${after - before}, more than the documented bound ${bound}`);

      const counted = await refusedAtEdge(gw.apiUrl);
      assert.ok(counted >= 20_000, `the anonymous attempts are counted in the metrics (${counted})`);

      const approver = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      assert.equal((await gw.api('POST', path, { token: approver, body })).status, 200);
      assert.equal((await target.handle.outcome()).status, 'completed');
      assert.equal(calls.refund, refundsBefore + 1);
    });
  });
});
