/**
 * Shadow policy in the policy activity: a candidate policy decides every request too, its decision
 * is recorded (sealed) beside the enforced one, and it never changes what is enforced — checked as
 * a property over generated request sequences (kill switches and rate limits included), for a
 * stricter, a looser and a broken shadow. Also: each kind of disagreement, named like the policy
 * replay names changes; a shadow that cannot decide recorded as unavailable; the metric's labels.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import fc from 'fast-check';
import { pino } from 'pino';
import type { SealedEvaluation } from '../../activities/deps.js';
import { shadowDecision } from '../../activities/evaluate.js';
import { createActivities } from '../../activities/index.js';
import type { KillSwitches } from '../../src/policy/kill-switch-client.js';
import { shadowDisagreements, workflowMetricsSinks } from '../../src/metrics.js';
import { CHANGE_KINDS } from '../../src/policy/replay.js';
import { RateLimits, decide } from '../../src/policy/index.js';
import { PolicyStore } from '../../src/policy/store.js';
import {
  SHADOW_DISAGREEMENT_KINDS,
  isShadowDisagreement,
  workflowIdFor,
  type KillSwitch,
  type ShadowDecision,
  type ToolRequest,
} from '../../src/shared/index.js';
import { RequestSigner } from '../../src/trust/signers.js';
import { workerTrustOf, type WorkerTrust } from '../../src/trust/store.js';
import { freshSigningKey } from '../helpers/gateway-env.js';
import { BASE as ENFORCED, LOOSER, STRICTER, policyYaml, type Knobs } from '../fixtures/policy-versions.js';

const store = (knobs: Knobs, file: string) => PolicyStore.fromSources([{ file, text: policyYaml(knobs) }]);
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

function request(fields: Partial<ToolRequest> & { roles?: string[]; actorId?: string } = {}): ToolRequest {
  const { roles, actorId, ...rest } = fields;
  return {
    requestId: 'req-1',
    actor: { id: actorId ?? 'bot-1', type: 'agent', roles: roles ?? ['agent_runtime'] },
    tenant: 'acme',
    environment: 'production',
    tool: 'lookup',
    args: {},
    ...rest,
  };
}

/** A kill switch on every `lookup` of tenant globex (fake registry: the activity only asks `covering`). */
const killLookupsOfGlobex = {
  covering: async (tenant: string, tool: string): Promise<KillSwitch | undefined> =>
    tenant === 'globex' && tool === 'lookup' ? { id: 'ks-1', tenant, tool, by: 'ops-1', reason: 'incident', at: '2026-01-01T00:00:00.000Z' } : undefined,
} as unknown as KillSwitches;

/** A worker's policy activity: same keys, seal secret and kill switches for every instance a test compares. */
async function workerFactory() {
  const key = await freshSigningKey();
  const signer = new RequestSigner(key);
  const trust: WorkerTrust = workerTrustOf({ requestKeys: [key.trusted], decisionKeys: [key.trusted] }, randomBytes(32));
  /** A fresh worker (its own in-memory rate-limit counters) with or without a shadow. */
  const worker = (options: { shadowPolicy?: PolicyStore; killSwitches?: KillSwitches; lines?: Record<string, unknown>[] } = {}) => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        options.lines?.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        done();
      },
    });
    const activities = createActivities({
      policy: store(ENFORCED, 'enforced.yaml'),
      tools: {},
      notifier: { notify: async () => undefined },
      logger: pino({ level: 'info' }, sink),
      trust,
      rateLimits: RateLimits.memory(),
      ...(options.killSwitches ? { killSwitches: options.killSwitches } : {}),
      ...(options.shadowPolicy ? { shadowPolicy: options.shadowPolicy } : {}),
    });
    return async (req: ToolRequest): Promise<SealedEvaluation> => {
      const workflowId = workflowIdFor(req.tenant, req.requestId);
      const admission = await signer.sign(req, workflowId);
      const env = new MockActivityEnvironment({ isLocal: true, workflowExecution: { workflowId, runId: `run-${req.requestId}` } }, { logger: quiet });
      return env.run<[], SealedEvaluation, () => Promise<SealedEvaluation>>(() => activities.evaluatePolicy({ request: req, workflowId, admission }));
    };
  };
  return { worker, trust };
}

/** What is enforced: everything of an evaluation but the shadow and the seal. */
const enforced = ({ decision, proposal, digest }: SealedEvaluation) => ({ decision, proposal, digest });

describe('shadow policy: never changes the enforced decision', () => {
  const requests = fc.array(
    fc.record({
      tool: fc.constantFrom('lookup', 'refund', 'deploy', 'unknown_tool'),
      tenant: fc.constantFrom('acme', 'globex'),
      environment: fc.constantFrom('production', 'staging'),
      roles: fc.subarray(['agent_runtime', 'deployer']),
      actorId: fc.constantFrom('bot-1', 'bot-2'),
      args: fc.oneof(
        fc.record({ amount: fc.oneof(fc.integer({ min: -10, max: 20_000 }), fc.constantFrom(100, 101, 1000, 1001, 10_000, 10_001)) }),
        fc.constant({}),
        fc.record({ amount: fc.string({ maxLength: 5 }) }),
      ),
    }),
    { minLength: 1, maxLength: 8 },
  );

  for (const [name, shadow] of [
    ['a stricter shadow', () => store(STRICTER, 'stricter.yaml')],
    ['a looser shadow', () => store(LOOSER, 'looser.yaml')],
    ['a shadow that never loaded', () => new PolicyStore()],
  ] as const) {
    test(`${name}: the enforced outcome equals the no-shadow outcome for any requests, kill switches and rate limits included`, async () => {
      const { worker, trust } = await workerFactory();
      let disagreements = 0;
      await fc.assert(
        fc.asyncProperty(requests, fc.boolean(), async (generated, withKillSwitch) => {
          const killSwitches = withKillSwitch ? { killSwitches: killLookupsOfGlobex } : {};
          // Fresh workers per run: each counts its own rate limits, so the sequences must match one for one.
          const plain = worker(killSwitches);
          const shadowed = worker({ ...killSwitches, shadowPolicy: shadow() });
          for (const [index, fields] of generated.entries()) {
            const req = request({ ...fields, requestId: `req-${index}` });
            const without = await plain(req);
            const withShadow = await shadowed(req);
            assert.equal(without.shadow, undefined);
            assert.deepEqual(enforced(withShadow), enforced(without));
            assert.ok(withShadow.shadow, 'every evaluation of a shadowed worker records the shadow');
            if (isShadowDisagreement(withShadow.shadow.kind)) disagreements += 1;
            // The seal covers the evaluation as recorded, shadow included: the execution's check passes.
            const { seal, ...evaluation } = withShadow;
            const facts = { workflowId: workflowIdFor(req.tenant, req.requestId), runId: `run-${req.requestId}`, request: req };
            assert.ok(trust.sealer.verify({ ...facts, evaluation }, seal));
          }
        }),
        { numRuns: 60 },
      );
      // The property ran over real disagreements, not over a shadow that always agreed.
      if (name === 'a shadow that never loaded') assert.equal(disagreements, 0);
      else assert.ok(disagreements > 0, `${name} disagreed on no generated request`);
    });
  }

  test('the seal covers the shadow: a shadow decision altered in the history no longer verifies', async () => {
    const { worker, trust } = await workerFactory();
    const req = request({ tool: 'refund', args: { amount: 50 } });
    const { seal, ...evaluation } = await worker({ shadowPolicy: store(STRICTER, 'stricter.yaml') })(req);
    assert.equal(evaluation.shadow?.kind, 'allow->approve');
    const facts = { workflowId: workflowIdFor(req.tenant, req.requestId), runId: `run-${req.requestId}`, request: req };
    assert.ok(trust.sealer.verify({ ...facts, evaluation }, seal));
    assert.equal(trust.sealer.verify({ ...facts, evaluation: { ...evaluation, shadow: { ...evaluation.shadow, kind: 'agree' } } }, seal), false);
    const withoutShadow = { ...evaluation };
    delete withoutShadow.shadow;
    assert.equal(trust.sealer.verify({ ...facts, evaluation: withoutShadow }, seal), false);
  });

  test('a kill switch denies as before; the shadow is compared with what policy decided, not with the switch', async () => {
    const { worker } = await workerFactory();
    const req = request({ tenant: 'globex' });
    const result = await worker({ shadowPolicy: store(STRICTER, 'stricter.yaml'), killSwitches: killLookupsOfGlobex })(req);
    assert.equal(result.decision.outcome, 'deny');
    assert.equal(result.decision.code, 'kill_switch');
    // Policy allowed the lookup; the stricter shadow refuses globex: a real allow->deny, not a kill switch.
    assert.deepEqual(result.shadow, {
      kind: 'allow->deny',
      policyDigest: store(STRICTER, 'stricter.yaml').current().policy?.digest,
      outcome: 'deny',
      rule: 'check:tenant_not_allowed',
      risk: 'medium',
      code: 'tenant_not_allowed',
    });
  });

  test('the shadow takes no rate-limit count: the enforced limit runs out exactly as without it', async () => {
    const { worker } = await workerFactory();
    // The shadow has the same limit (2 lookups per actor and hour): were it counted, the second lookup would be refused.
    const evaluate = worker({ shadowPolicy: store(ENFORCED, 'same.yaml') });
    const outcomes = [];
    for (const id of ['l-1', 'l-2', 'l-3']) outcomes.push(await evaluate(request({ requestId: id })));
    assert.deepEqual(
      outcomes.map((e) => e.decision.code ?? e.decision.outcome),
      ['allow', 'allow', 'rate_limited'],
    );
    // The shadow judges policy alone: it agrees with policy's allow even where the limit denied.
    assert.deepEqual(
      outcomes.map((e) => e.shadow?.kind),
      ['agree', 'agree', 'agree'],
    );
  });
});

describe('shadow policy: kinds of disagreement', () => {
  /** The shadow's decision compared with the enforced policy's own decision, as the activity compares them. */
  const kindOf = (shadow: Knobs, req: ToolRequest) => {
    const enforcedPolicy = store(ENFORCED, 'enforced.yaml').current().policy;
    assert.ok(enforcedPolicy);
    return shadowDecision(store(shadow, 'shadow.yaml'), req, decide(enforcedPolicy, req));
  };

  const cases: [string, Knobs, ToolRequest, ShadowDecision['kind'], Partial<Record<string, unknown>>][] = [
    ['lookup of acme: same outcome, riskier', STRICTER, request(), 'risk', { outcome: 'allow', risk: 'medium', detail: 'risk low → medium' }],
    ['lookup of globex: refused by tenant', STRICTER, request({ tenant: 'globex' }), 'allow->deny', { outcome: 'deny', code: 'tenant_not_allowed' }],
    ['small refund: a person needed', STRICTER, request({ tool: 'refund', args: { amount: 50 } }), 'allow->approve', { outcome: 'approve', plan: 'finance' }],
    ['refund of 500: another plan', STRICTER, request({ tool: 'refund', args: { amount: 500 } }), 'plan', { outcome: 'approve', plan: 'finance' }],
    [
      'deploy in production: refused by environment',
      STRICTER,
      request({ tool: 'deploy', roles: ['deployer'] }),
      'approve->deny',
      { outcome: 'deny', code: 'environment_not_allowed' },
    ],
    ['huge refund: denied either way', STRICTER, request({ tool: 'refund', args: { amount: 20_000 } }), 'agree', { outcome: 'deny', rule: 'rule:huge' }],
    [
      'refund of 500 under the looser: no person',
      LOOSER,
      request({ tool: 'refund', args: { amount: 500 } }),
      'approve->allow',
      { outcome: 'allow', risk: 'medium' },
    ],
    ['deploy by the runtime: allowed', LOOSER, request({ tool: 'deploy' }), 'deny->allow', { outcome: 'allow' }],
    [
      'huge refund under the looser: a person decides',
      LOOSER,
      request({ tool: 'refund', args: { amount: 20_000 } }),
      'deny->approve',
      { outcome: 'approve', plan: 'manager' },
    ],
  ];
  for (const [name, shadow, req, kind, fields] of cases) {
    test(`${name}: ${kind}`, () => {
      const decided = kindOf(shadow, req);
      assert.equal(decided.kind, kind);
      for (const [field, value] of Object.entries(fields)) {
        if (field === 'rule') assert.match(String((decided as Record<string, unknown>).rule), /huge/);
        else assert.equal((decided as Record<string, unknown>)[field], value, field);
      }
    });
  }

  test('every kind of change the replay names is a disagreement, and nothing else is', () => {
    assert.deepEqual([...SHADOW_DISAGREEMENT_KINDS].sort(), [...CHANGE_KINDS].sort());
    const seen = new Set(cases.map(([, , , kind]) => kind));
    for (const kind of CHANGE_KINDS) assert.ok(seen.has(kind), `a case of ${kind}`);
    for (const kind of CHANGE_KINDS) assert.equal(isShadowDisagreement(kind), true, kind);
    for (const other of ['agree', 'unavailable', 'not_comparable', undefined, '', 'allow->allow', 'ALLOW->DENY', 'x'.repeat(5000), 42, null]) {
      assert.equal(isShadowDisagreement(other), false, String(other));
    }
  });

  test('no enforced policy in force: the shadow decides, but there is nothing to compare with', () => {
    const decided = shadowDecision(store(STRICTER, 'stricter.yaml'), request(), undefined);
    assert.equal(decided.kind, 'not_comparable');
    assert.equal(isShadowDisagreement(decided.kind), false);
  });
});

describe('shadow policy: a broken shadow never stops enforcement', () => {
  test('a shadow file that does not load: enforced decision unchanged, shadow recorded unavailable with the load error, logged', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-shadow-'));
    try {
      const file = join(dir, 'shadow.yaml');
      await writeFile(file, 'version: 1\ntools:\n  lookup: [not, a, tool\n');
      const broken = new PolicyStore();
      const state = await broken.load([file]);
      assert.ok(state.error, 'the broken file fails to load');
      const { worker } = await workerFactory();
      const lines: Record<string, unknown>[] = [];
      const req = request({ tool: 'refund', args: { amount: 500 } });
      const withBroken = await worker({ shadowPolicy: broken, lines })(req);
      const without = await worker()(req);
      assert.deepEqual(enforced(withBroken), enforced(without));
      assert.equal(withBroken.decision.outcome, 'approve');
      assert.equal(withBroken.shadow?.kind, 'unavailable');
      assert.match(withBroken.shadow.kind === 'unavailable' ? withBroken.shadow.reason : '', /^the shadow policy is not loaded: .*shadow\.yaml/s);
      const warned = lines.find((line) => line.msg === 'shadow policy unavailable: recorded as such, enforcement unaffected');
      assert.ok(warned, 'the unavailable shadow is logged');
      assert.equal(warned.level, 40);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a shadow store that throws: recorded unavailable, enforcement unaffected', async () => {
    const { worker } = await workerFactory();
    const throwing = {
      current() {
        throw new Error('disk on fire');
      },
    } as unknown as PolicyStore;
    const req = request();
    const result = await worker({ shadowPolicy: throwing })(req);
    assert.deepEqual(enforced(result), enforced(await worker()(req)));
    assert.deepEqual(result.shadow, { kind: 'unavailable', reason: 'the shadow policy failed: disk on fire' });
  });

  test('the reason recorded for an unavailable shadow is bounded', () => {
    const huge = { current: () => ({ error: new Error('x'.repeat(100_000)) }) } as unknown as PolicyStore;
    const decided = shadowDecision(huge, request(), undefined);
    assert.equal(decided.kind, 'unavailable');
    assert.ok(decided.kind === 'unavailable' && decided.reason.length <= 500);
  });
});

describe('shadow policy: the disagreement metric', () => {
  const count = async (labels: Record<string, string>) =>
    (await shadowDisagreements.get()).values.find((v) => Object.entries(labels).every(([k, value]) => (v.labels as Record<string, unknown>)[k] === value))
      ?.value ?? 0;

  test('counts a disagreement by tool, tenant and kind; anything but a kind of change is one bounded label', async () => {
    const sink = workflowMetricsSinks().toolgateMetrics.shadowDisagreed;
    assert.equal(sink.callDuringReplay, false, 'a replay never counts again');
    const info = {} as Parameters<typeof sink.fn>[0];
    const before = await count({ tool: 'refund', tenant: 'acme', kind: 'allow->approve' });
    await sink.fn(info, { tool: 'refund', tenant: 'acme' }, 'allow->approve');
    await sink.fn(info, { tool: 'refund', tenant: 'acme' }, 'allow->approve');
    assert.equal(await count({ tool: 'refund', tenant: 'acme', kind: 'allow->approve' }), before + 2);
    const invalidBefore = await count({ tool: 'refund', tenant: 'acme', kind: '(invalid)' });
    await sink.fn(info, { tool: 'refund', tenant: 'acme' }, 'agree');
    await sink.fn(info, { tool: 'refund', tenant: 'acme' }, `evil-${'x'.repeat(300)}`);
    assert.equal(await count({ tool: 'refund', tenant: 'acme', kind: '(invalid)' }), invalidBefore + 2);
  });
});
