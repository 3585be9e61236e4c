/**
 * Policy what-if replay (src/policy/replay.ts, src/cli/policy-commands.ts): classification of
 * every kind of change, the `--fail-on` groups, bounded examples, what is not comparable, reading
 * the recorded request from real histories (the committed ones of test/histories, recorded by
 * test/replay/record-histories.ts) with exact counts under a stricter and a looser policy, and
 * flat memory over 100,000 requests.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { LoadedDataConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { decodeFirstPayload, withWorkflowContext } from '../../src/audit/history-payloads.js';
import { auditRecordFromHistory } from '../../src/audit/record.js';
import { ReplayProgress, runPolicyReplay } from '../../src/cli/policy-commands.js';
import { parseReplayTime, replaySettings } from '../../src/cli/policy-replay-settings.js';
import { mapOrdered } from '../../src/cli/policy-replay-source.js';
import { createKeyring, dataConverterFor, generateCodecKey, parseKeyringEnv, PayloadDecryptionError } from '../../src/codec/index.js';
import type { RuleDocument } from '../../src/policy/document.js';
import { decide, parsePolicy, type LoadedPolicy } from '../../src/policy/index.js';
import {
  CHANGE_KINDS,
  FAIL_ON_GROUPS,
  REPLAY_KINDS,
  ReplayTally,
  classify,
  formatReplayReport,
  parseFailOn,
  recordedFromHistory,
  replayDecisions,
  type ReplayEntry,
  type ReplayKind,
  type ReplaySource,
} from '../../src/policy/replay.js';
import type { PolicyDecision, ToolRequest } from '../../src/shared/index.js';
import { historyFromJSON, loadDataConverter } from '../../src/temporal/internals.js';
import { RECORDING_POLICY } from '../fixtures/replay/recording-policy.js';
import { argsOf, policy } from '../helpers/policy-builder.js';

type History = temporal.api.history.v1.IHistory;
const HISTORIES = join(import.meta.dirname, '..', 'histories');

// ---------------------------------------------------------------------------------------------
// A small policy space: every kind of change is one knob away from the base.

interface PolicyKnobs {
  lookupRoles: string[];
  lookupRisk: 'low' | 'medium' | 'high' | 'critical';
  /** Refunds up to this amount are allowed without approval (rule `small`); null: no such rule. */
  smallMax: number | null;
  /** Refunds above this amount are denied (rule `huge`); null: no such rule. */
  hugeMin: number | null;
  refundApproval: 'manager' | 'finance' | 'none';
  managerMin: number;
  managerRemind: string | null;
  refundTenants: string[] | null;
}

const BASE: PolicyKnobs = {
  lookupRoles: ['agent_runtime'],
  lookupRisk: 'low',
  smallMax: 100,
  hugeMin: 10_000,
  refundApproval: 'manager',
  managerMin: 1,
  managerRemind: null,
  refundTenants: null,
};

function policyYaml(k: PolicyKnobs): string {
  const rules: RuleDocument[] = [];
  if (k.hugeMin !== null) rules.push({ name: 'huge', when: `args.amount > ${k.hugeMin}`, effect: 'deny', reason: 'never automated' });
  if (k.smallMax !== null) rules.push({ name: 'small', when: `args.amount <= ${k.smallMax}`, effect: 'allow', risk: 'medium' });
  return policy()
    .tool('lookup', { risk: k.lookupRisk, roles: k.lookupRoles })
    .tool('refund', { risk: 'high', approval: k.refundApproval, tenants: k.refundTenants ?? undefined, rules: rules.length > 0 ? rules : undefined })
    .plan('manager', { groups: ['manager'], minApprovals: k.managerMin, remindEvery: k.managerRemind ?? undefined })
    .plan('finance', { groups: ['finance'] })
    .codeTool('lookup', { runAs: 'svc-lookup' })
    .codeTool('refund', { runAs: 'svc-payments', args: argsOf({ amount: 'integer' }) })
    .yaml();
}

const policyOf = (k: Partial<PolicyKnobs> = {}, file = 'candidate.yaml'): LoadedPolicy => parsePolicy([{ file, text: policyYaml({ ...BASE, ...k }) }]);

let seq = 0;
function request(tool: string, args: Record<string, unknown> = {}, over: Partial<ToolRequest> = {}): ToolRequest {
  return {
    requestId: `r-${++seq}`,
    actor: { id: 'bot', type: 'agent', roles: ['agent_runtime'] },
    tenant: 'acme',
    environment: 'production',
    tool,
    args,
    ...over,
  };
}

/** A request as recorded: decided by `recorded`, the way the activity did. */
function entry(recorded: LoadedPolicy, req: ToolRequest): ReplayEntry {
  return { workflowId: `toolreq/${req.tenant}/${req.requestId}`, startedAt: '2026-01-01T00:00:00.000Z', request: req, recorded: decide(recorded, req) };
}

const base = policyOf({}, 'recorded.yaml');
const lookup = request('lookup');
const small = request('refund', { amount: 50 });
const medium = request('refund', { amount: 500 });
const huge = request('refund', { amount: 50_000 });
const recordedSet = [lookup, small, medium, huge].map((r) => entry(base, r));
const kindsUnder = (candidate: LoadedPolicy) => recordedSet.map((e) => classify(e, candidate).kind);

describe('classification', () => {
  test('the recorded decisions of the base set are what the test assumes', () => {
    assert.deepEqual(
      recordedSet.map((e) => `${e.recorded?.outcome}:${e.recorded?.rule}`),
      ['allow:tool:lookup', 'allow:refund/small', 'approve:tool:refund', 'deny:refund/huge'],
    );
  });

  test('every kind of change, each one knob away from the recorded policy', () => {
    const cases: [string, Partial<PolicyKnobs>, ReplayKind[]][] = [
      ['same policy', {}, ['unchanged', 'unchanged', 'unchanged', 'unchanged']],
      ['no small rule: small refunds need a person', { smallMax: null }, ['unchanged', 'allow->approve', 'unchanged', 'unchanged']],
      ['nobody may look up', { lookupRoles: [] }, ['allow->deny', 'unchanged', 'unchanged', 'unchanged']],
      ['huge from 100', { hugeMin: 100 }, ['unchanged', 'unchanged', 'approve->deny', 'unchanged']],
      ['small up to 1000', { smallMax: 1000 }, ['unchanged', 'unchanged', 'approve->allow', 'unchanged']],
      ['no huge rule, small up to a million', { hugeMin: null, smallMax: 1_000_000 }, ['unchanged', 'unchanged', 'approve->allow', 'deny->allow']],
      ['no huge rule', { hugeMin: null }, ['unchanged', 'unchanged', 'unchanged', 'deny->approve']],
      ['another plan', { refundApproval: 'finance' }, ['unchanged', 'unchanged', 'plan', 'unchanged']],
      ['two approvals', { managerMin: 2 }, ['unchanged', 'unchanged', 'plan', 'unchanged']],
      ['lookup risk', { lookupRisk: 'medium' }, ['risk', 'unchanged', 'unchanged', 'unchanged']],
      // Reminders change how often people are nudged, not who decides: not a plan change.
      ['reminders only', { managerRemind: '10m' }, ['unchanged', 'unchanged', 'unchanged', 'unchanged']],
      ['refunds only for globex', { refundTenants: ['globex'] }, ['unchanged', 'allow->deny', 'approve->deny', 'unchanged']],
    ];
    for (const [name, knobs, expected] of cases) assert.deepEqual(kindsUnder(policyOf(knobs)), expected, name);
    // Between them, the cases reach every kind of change.
    const seen = new Set(cases.flatMap(([, , kinds]) => kinds));
    for (const kind of CHANGE_KINDS) assert.ok(seen.has(kind), `no case reaches ${kind}`);
  });

  test('a plan change names the fields that differ', () => {
    const result = classify(recordedSet[2] as ReplayEntry, policyOf({ refundApproval: 'finance' }));
    assert.equal(result.kind, 'plan');
    assert.equal(result.detail, 'plan manager → finance (differs in name, groups)');
    assert.equal(classify(recordedSet[2] as ReplayEntry, policyOf({ managerMin: 3 })).detail, 'plan manager → manager (differs in min_approvals)');
  });

  test('an outcome change wins over a plan or risk change of the same request', () => {
    // No small rule: allow → approve, and risk medium → high as well; one kind per request.
    const result = classify(recordedSet[1] as ReplayEntry, policyOf({ smallMax: null }));
    assert.equal(result.kind, 'allow->approve');
    assert.equal(result.candidate?.risk, 'high');
  });

  test("denials that were not policy's, and requests policy never decided, are not comparable", () => {
    const allowed = decide(base, lookup);
    const overridden = (patch: Partial<PolicyDecision>): ReplayEntry => ({ ...entry(base, lookup), recorded: { ...allowed, outcome: 'deny', ...patch } });
    const cases: [string, ReplayEntry, string][] = [
      ['kill switch', overridden({ code: 'kill_switch', rule: 'kill-switch:ks-1' }), 'kill_switch'],
      ['rate limit', overridden({ code: 'rate_limited', rule: 'limit:per_actor' }), 'rate_limited'],
      ['rate-limit store down', overridden({ code: 'policy_unavailable', rule: 'check:rate_limits_unavailable' }), 'rate_limits_unavailable'],
      ['no policy', overridden({ code: 'policy_unavailable', rule: 'check:policy_unavailable', policyDigest: '' }), 'no_policy_in_force'],
      [
        'unverified',
        { workflowId: 'toolreq/acme/u', startedAt: '', request: lookup, ended: { status: 'denied', code: 'unverified_request' } },
        'unverified_request',
      ],
      ['still evaluating', { workflowId: 'toolreq/acme/e', startedAt: '', request: lookup }, 'not_decided'],
      ['terminated before policy', { workflowId: 'toolreq/acme/t', startedAt: '', request: lookup, ended: { status: 'terminated' } }, 'not_decided'],
      ['not a request', { workflowId: 'toolreq/acme/n', startedAt: '' }, 'not_a_request'],
      ['unreadable', { workflowId: 'toolreq/acme/x', startedAt: '', unreadable: { code: 'unreadable', message: 'bad payload' } }, 'unreadable'],
      ['gone', { workflowId: 'toolreq/acme/g', startedAt: '', unreadable: { code: 'history_gone', message: 'deleted' } }, 'history_gone'],
    ];
    // Even under a policy that would allow everything, none of these is reported as a change.
    const looser = policyOf({ hugeMin: null, smallMax: 1_000_000 });
    for (const [name, e, reason] of cases) {
      const result = classify(e, looser);
      assert.equal(result.kind, 'not_comparable', name);
      assert.equal(result.reason, reason, name);
    }
    // A policy-made denial with a code of its own stays comparable.
    assert.equal(classify(overridden({ code: 'rule_denied', rule: 'refund/huge' }), looser).kind, 'deny->allow');
    // A policy_unavailable that policy itself decided (a missing plan, an internal error) stays comparable too.
    assert.equal(classify(overridden({ code: 'policy_unavailable', rule: 'check:internal_error' }), looser).kind, 'deny->allow');
  });
});

describe('malformed recorded decisions', () => {
  const approved = entry(base, medium);
  const plan = approved.recorded?.approval;
  const planted = (approval: unknown): ReplayEntry => ({ ...approved, recorded: { ...approved.recorded, approval } as PolicyDecision });

  test('the recorded decision is the one the test assumes', () => {
    assert.equal(approved.recorded?.outcome, 'approve');
    assert.ok(plan);
  });

  test('a wrong-typed plan field is not comparable (unreadable), never a throw, under any candidate', () => {
    const cases: [string, unknown][] = [
      ['groups: 5', { ...plan, groups: 5 }],
      ['allOf: 5', { ...plan, allOf: 5 }],
      ['escalation: 5', { ...plan, escalation: 5 }],
      ['escalation tier groups: 5', { ...plan, escalation: [{ afterMs: 1, groups: 5 }] }],
      ['escalation: [null]', { ...plan, escalation: [null] }],
      ['name: 5', { ...plan, name: 5 }],
      ['minApprovals: "2"', { ...plan, minApprovals: '2' }],
      ['approval: 5', 5],
      ['approval: null', null],
    ];
    for (const candidate of [base, policyOf({ refundApproval: 'finance' }), policyOf({ managerMin: 2 })]) {
      for (const [name, approval] of cases) {
        const result = classify(planted(approval), candidate);
        assert.equal(result.kind, 'not_comparable', name);
        assert.equal(result.reason, 'unreadable', name);
        assert.match(result.detail ?? '', /malformed/, name);
      }
    }
    // Old histories' plans without the later fields stay comparable.
    const older: Record<string, unknown> = { ...plan };
    for (const field of ['allOf', 'rejectionsToDeny', 'escalation']) delete older[field];
    assert.equal(classify(planted(older), base).kind, 'unchanged');
  });

  test('a replay over a planted entry finishes, counts it, and the --fail-on gate still counts the rest', async () => {
    const entries = [planted({ ...plan, groups: 5 }), ...recordedSet];
    const report = await replayDecisions(entries, policyOf({ hugeMin: null, smallMax: 1_000_000 }), { failOn: parseFailOn('allow-widening') });
    assert.equal(report.total, 5);
    assert.deepEqual(report.notComparable, { unreadable: 1 });
    assert.equal(report.forbidden, 2);
  });

  test('a classification that throws anyway counts as unreadable, the tally goes on', () => {
    const tally = new ReplayTally(base);
    // A recorded risk that reads fine once (the shape check) and throws after: nothing a check can foresee.
    let reads = 0;
    const recorded = { ...decide(base, lookup) };
    Object.defineProperty(recorded, 'risk', {
      get() {
        if (++reads > 1) throw new Error('boom');
        return 'low';
      },
    });
    const hostile: ReplayEntry = { ...entry(base, lookup), recorded };
    const result = tally.add(hostile);
    assert.equal(result.kind, 'not_comparable');
    assert.equal(result.reason, 'unreadable');
    tally.add(recordedSet[0]!);
    assert.deepEqual(tally.report().counts.unchanged, 1);
  });
});

describe('--fail-on', () => {
  test('groups', () => {
    assert.deepEqual(parseFailOn('tightening'), ['allow->approve', 'allow->deny', 'approve->deny']);
    assert.deepEqual(parseFailOn('widening'), ['approve->allow', 'deny->allow', 'deny->approve']);
    assert.deepEqual(parseFailOn('allow-widening'), ['approve->allow', 'deny->allow']);
    assert.deepEqual(parseFailOn('any'), [...CHANGE_KINDS]);
    // Every widening to allow is a widening; nothing is in both directions.
    for (const kind of FAIL_ON_GROUPS['allow-widening']) assert.ok((FAIL_ON_GROUPS.widening as readonly string[]).includes(kind));
    assert.equal(FAIL_ON_GROUPS.tightening.filter((k) => (FAIL_ON_GROUPS.widening as readonly string[]).includes(k)).length, 0);
  });

  test('kinds in any spelling, merged and in report order', () => {
    assert.deepEqual(parseFailOn('risk, allow→deny,deny-to-allow, plan,not-comparable'), ['allow->deny', 'deny->allow', 'plan', 'risk', 'not_comparable']);
    assert.deepEqual(parseFailOn('allow-widening,deny->allow'), ['approve->allow', 'deny->allow']);
  });

  test('anything else is refused, naming what is accepted', () => {
    assert.throws(
      () => parseFailOn('wider'),
      /--fail-on: "wider" is not a kind of change; expected kinds allow->approve.*groups tightening, widening, allow-widening, any/,
    );
    assert.throws(() => parseFailOn(' , '), /--fail-on needs at least one/);
    assert.throws(() => parseFailOn('unchanged'), /"unchanged" is not a kind of change/);
  });

  test('the report counts the forbidden requests', async () => {
    const report = await replayDecisions(recordedSet, policyOf({ hugeMin: null, smallMax: 1_000_000 }), { failOn: parseFailOn('allow-widening') });
    assert.equal(report.forbidden, 2);
    const tightening = await replayDecisions(recordedSet, policyOf({ hugeMin: null, smallMax: 1_000_000 }), { failOn: parseFailOn('tightening') });
    assert.equal(tightening.forbidden, 0);
    assert.equal(tightening.changed, 2);
  });
});

describe('bounded examples', () => {
  test('the first K of each kind, in stream order; counts stay exact', async () => {
    const many = Array.from({ length: 50 }, (_, i) => entry(base, request('refund', { amount: 10 + i })));
    const report = await replayDecisions(many, policyOf({ smallMax: null }), { examples: 2 });
    assert.equal(report.counts['allow->approve'], 50);
    assert.deepEqual(
      report.examples['allow->approve']?.map((e) => e.requestId),
      [many[0]?.request?.requestId, many[1]?.request?.requestId],
    );
    assert.equal(report.examples.unchanged, undefined);
    const example = report.examples['allow->approve']?.[0];
    assert.deepEqual(example?.recorded, { outcome: 'allow', rule: 'refund/small', risk: 'medium' });
    assert.deepEqual(example?.candidate, { outcome: 'approve', rule: 'tool:refund', risk: 'high', plan: 'manager' });
    assert.equal(example?.tenant, 'acme');
    const none = await replayDecisions(many, policyOf({ smallMax: null }), { examples: 0 });
    assert.deepEqual(none.examples, {});
    assert.throws(() => new ReplayTally(base, { examples: 101 }), /examples must be a whole number from 0 to 100/);
  });

  test('the text report: table, shares, examples, verdict', async () => {
    const report = await replayDecisions(
      [...recordedSet, { workflowId: 'toolreq/acme/u', startedAt: '', request: lookup, ended: { status: 'denied', code: 'unverified_request' } }],
      policyOf({ hugeMin: null, smallMax: 1_000_000 }),
      { failOn: parseFailOn('allow-widening') },
    );
    const text = formatReplayReport(report, { window: 'started 2026-01-01 – now', tenant: 'acme' });
    assert.match(text, /policy replay of 5 request\(s\) \(started 2026-01-01 – now, tenant acme\)/);
    assert.match(text, /\nunchanged\s+2\s+40\.0%\n/);
    assert.match(text, /\napprove → allow\s+1\s+20\.0%  FORBIDDEN\n/);
    assert.match(text, /\nnot comparable\s+1\s+20\.0%  \(unverified_request 1\)\n/);
    assert.match(text, /\ntotal\s+5\s+100\.0%\n/);
    assert.match(
      text,
      /deny → allow: 1, first 1:\n {2}toolreq\/acme\/r-\d+ {2}refund by bot \(tenant acme, .*\)\n {4}deny rule_denied \(refund\/huge, high\) → allow \(refund\/small, medium\)/,
    );
    assert.match(text, /FORBIDDEN: 2 request\(s\) in approve → allow, deny → allow \(--fail-on approve->allow,deny->allow\)\n$/);
  });
});

describe('replaying under the policy that decided changes nothing (property)', () => {
  const knobs = fc.record({
    lookupRoles: fc.subarray(['agent_runtime', 'ops']),
    lookupRisk: fc.constantFrom('low', 'medium', 'high', 'critical'),
    smallMax: fc.option(fc.integer({ min: 0, max: 5000 }), { nil: null }),
    hugeMin: fc.option(fc.integer({ min: 0, max: 50_000 }), { nil: null }),
    refundApproval: fc.constantFrom('manager', 'finance', 'none'),
    managerMin: fc.integer({ min: 1, max: 3 }),
    managerRemind: fc.constantFrom(null, '5m'),
    refundTenants: fc.option(fc.subarray(['acme', 'globex'], { minLength: 1 }), { nil: null }),
  }) as fc.Arbitrary<PolicyKnobs>;
  const requests = fc.array(
    fc.record({
      tool: fc.constantFrom('lookup', 'refund', 'unknown_tool'),
      amount: fc.oneof(fc.integer({ min: -10, max: 100_000 }), fc.constant('many')),
      roles: fc.subarray(['agent_runtime', 'ops', 'intern']),
      tenant: fc.constantFrom('acme', 'globex'),
    }),
    { minLength: 1, maxLength: 20 },
  );
  const toRequests = (list: { tool: string; amount: number | string; roles: string[]; tenant: string }[]) =>
    list.map((r) =>
      request(r.tool, r.tool === 'lookup' ? {} : { amount: r.amount }, { tenant: r.tenant, actor: { id: 'bot', type: 'agent', roles: r.roles } }),
    );

  test('zero changes, whatever the policy and the requests', async () => {
    await fc.assert(
      fc.asyncProperty(knobs, requests, async (k, list) => {
        const recorded = policyOf(k, 'recorded.yaml');
        // The same policy loaded again (fresh plan objects, another file name): still the same decisions.
        const candidate = policyOf(k, 'candidate.yaml');
        const report = await replayDecisions(
          toRequests(list).map((r) => entry(recorded, r)),
          candidate,
        );
        assert.equal(report.changed, 0);
        assert.equal(report.counts.unchanged, list.length);
      }),
      { numRuns: 60 },
    );
  });

  test('between two policies, an outcome change is reported exactly as the pair of outcomes', async () => {
    await fc.assert(
      fc.asyncProperty(knobs, knobs, requests, async (a, b, list) => {
        const recorded = policyOf(a, 'a.yaml');
        const candidate = policyOf(b, 'b.yaml');
        for (const r of toRequests(list)) {
          const before = decide(recorded, r);
          const after = decide(candidate, r);
          const kind = classify({ workflowId: 'toolreq/acme/x', startedAt: '', request: r, recorded: before }, candidate).kind;
          if (before.outcome !== after.outcome) assert.equal(kind, `${before.outcome}->${after.outcome}`);
          else assert.ok(kind === 'unchanged' || kind === 'plan' || kind === 'risk', kind);
        }
      }),
      { numRuns: 60 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Real histories: the committed recordings (v0 from before the trust boundary, v1 and v2 of
// today's workflow, encrypted with the committed replay keys), decided under this policy.

async function replayKeys() {
  return parseKeyringEnv((await readFile(join(HISTORIES, 'v1', 'replay-codec-keys.txt'), 'utf8')).trim(), 'replay-codec-keys.txt');
}

/** Every committed history with the workflow id it ran under. */
async function committedHistories(): Promise<{ name: string; workflowId: string; history: History }[]> {
  const all = [];
  for (const set of ['v0', 'v1', 'v2']) {
    for (const file of (await readdir(join(HISTORIES, set))).filter((f) => f.endsWith('.json')).sort()) {
      const name = file.replace(/\.json$/, '');
      all.push({
        name: `${set}/${name}`,
        workflowId: set === 'v0' ? `toolreq:history-${name}` : `toolreq/acme/history-${name}`,
        history: historyFromJSON(JSON.parse(await readFile(join(HISTORIES, set, file), 'utf8'))),
      });
    }
  }
  return all;
}

/** The committed histories as a replay source, each read the way the CLI reads one. */
function historySource(histories: { workflowId: string; history: History }[], converter: LoadedDataConverter): ReplaySource {
  return {
    count: async () => histories.length,
    async *entries() {
      for (const h of histories) yield await recordedFromHistory(h.history.events ?? [], converter, { workflowId: h.workflowId });
    },
  };
}

describe('replay of recorded histories', () => {
  test('the recorded request and the FIRST decision of each, in every history shape', async () => {
    const converter = loadDataConverter(dataConverterFor(await replayKeys()));
    const histories = await committedHistories();
    assert.equal(histories.length, 22);
    const recording = parsePolicy([{ file: 'recording.yaml', text: RECORDING_POLICY }]);
    const entries: { name: string; entry: ReplayEntry }[] = [];
    for (const h of histories)
      entries.push({ name: h.name, entry: await recordedFromHistory(h.history.events ?? [], converter, { workflowId: h.workflowId }) });
    for (const { name, entry: e } of entries) {
      if (name.endsWith('/unverified')) {
        assert.equal(e.recorded, undefined, name);
        assert.deepEqual(e.ended, { status: 'denied', code: 'unverified_request' }, name);
      } else {
        // Recorded under exactly this policy: the digests match.
        assert.equal(e.recorded?.policyDigest, recording.digest, name);
      }
      assert.equal(e.request?.tenant, 'acme', name);
      assert.match(e.startedAt, /^\d{4}-\d{2}-\d{2}T/, name);
    }
    // An edit re-evaluated the request (refund 30 → 3000: plan finance); the replay keeps the first
    // decision, on the arguments as admitted (plan manager), while the audit record shows the last.
    for (const set of ['v0', 'v1', 'v2']) {
      const edit = histories.find((h) => h.name === `${set}/edit`)!;
      const e = entries.find((x) => x.name === `${set}/edit`)!.entry;
      assert.deepEqual(e.request?.args, { amount: 30 });
      assert.equal(e.recorded?.approval?.name, 'manager');
      const record = await auditRecordFromHistory(edit.history, converter, { workflowId: edit.workflowId });
      assert.equal(record.decision?.rule, 'refund/large', `${set}: the audit record's decision is the re-evaluation`);
    }
  });

  test('reading stops at the first decision: the rest of the history is never pulled', async () => {
    const converter = loadDataConverter(dataConverterFor(await replayKeys()));
    const history = (await committedHistories()).find((h) => h.name === 'v2/approve')!;
    const events = history.history.events ?? [];
    let pulled = 0;
    function* lazily() {
      for (const event of events) {
        pulled += 1;
        yield event;
      }
    }
    const e = await recordedFromHistory(lazily(), converter, { workflowId: history.workflowId });
    assert.equal(e.recorded?.outcome, 'approve');
    assert.ok(pulled <= 12 && pulled < events.length / 3, `pulled ${pulled} of ${events.length} events`);
  });

  test('under the recording policy: nothing changes; the unverified ones are not comparable', async () => {
    const converter = loadDataConverter(dataConverterFor(await replayKeys()));
    const source = historySource(await committedHistories(), converter);
    const report = await replayDecisions(source.entries(), parsePolicy([{ file: 'same.yaml', text: RECORDING_POLICY }]));
    assert.equal(report.total, 22);
    assert.equal(report.changed, 0);
    assert.equal(report.counts.unchanged, 20);
    assert.deepEqual(report.notComparable, { unverified_request: 2 });
  });

  test('under a stricter and a looser policy: exact counts', async () => {
    const converter = loadDataConverter(dataConverterFor(await replayKeys()));
    const histories = await committedHistories();
    // Recorded: refund 10, 20 (approve, reject: 3 each), 30 (edit: 3), 40 (refused: 2) need a
    // manager; refund 500000 is denied (3); escalating (3), expiring (3) need approval; 2 unverified.
    const stricter = RECORDING_POLICY.replace("'args.amount > 1000'", "'args.amount > 25'") // refunds 30 and 40: finance instead of manager
      .replace('approval: escalating\n    allowed_roles: [agent_runtime]', 'approval: escalating\n    allowed_roles: []') // nobody may escalate
      .replace('expiring:\n    risk: high', 'expiring:\n    risk: critical');
    const looser = RECORDING_POLICY.replace(
      "      - { name: huge, when: 'args.amount > 100000', effect: deny, reason: never automated }\n",
      "      - { name: small, when: 'args.amount <= 20', effect: allow }\n",
    ).replace('approval: quick', 'approval: none');
    const counts = async (text: string) => {
      const report = await replayDecisions(historySource(histories, converter).entries(), parsePolicy([{ file: 'candidate.yaml', text }]));
      return Object.fromEntries(REPLAY_KINDS.filter((kind) => report.counts[kind] > 0).map((kind) => [kind, report.counts[kind]]));
    };
    assert.deepEqual(await counts(stricter), { unchanged: 6 + 3, 'approve->deny': 3, plan: 5, risk: 3, not_comparable: 2 });
    assert.deepEqual(await counts(looser), { unchanged: 5 + 3, 'approve->allow': 6 + 3, 'deny->approve': 3, not_comparable: 2 });
  });

  test("another tenant's payloads: no request; tampered ones: unreadable; a key the client lacks: an error", async () => {
    const keys = await replayKeys();
    const converter = loadDataConverter(dataConverterFor(keys));
    const history = (await committedHistories()).find((h) => h.name === 'v2/approve')!;
    // Read as another tenant's workflow: the codec turns acme's payloads into null, so there is
    // no request and no decision in it (a planted history), never acme's data.
    const foreign = await recordedFromHistory(history.history.events ?? [], converter, { workflowId: 'toolreq/globex/history-approve' });
    assert.equal(foreign.request, undefined);
    assert.equal(foreign.recorded, undefined);
    assert.equal(classify(foreign, parsePolicy([{ file: 'same.yaml', text: RECORDING_POLICY }])).reason, 'not_a_request');
    // Tampered ciphertext of the start input.
    const tampered = structuredClone(history.history);
    const payload = tampered.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    const bytes = payload?.data;
    assert.ok(bytes);
    bytes[40] = (bytes[40] ?? 0) ^ 0xff;
    const bad = await recordedFromHistory(tampered.events ?? [], converter, { workflowId: history.workflowId });
    assert.equal(bad.unreadable?.code, 'unreadable');
    // A client without the key: its configuration, reported as an error, never counted per request.
    const stranger = loadDataConverter(dataConverterFor(createKeyring('other', { other: generateCodecKey() })));
    await assert.rejects(recordedFromHistory(history.history.events ?? [], stranger, { workflowId: history.workflowId }), PayloadDecryptionError);
  });

  test('a planted decision of the wrong shape (approval.groups: 5) makes its history unreadable; the replay and its gate go on', async () => {
    const converter = loadDataConverter(dataConverterFor(await replayKeys()));
    const histories = await committedHistories();
    const original = histories.find((h) => h.name === 'v2/approve')!;
    // Someone with Temporal access writes a history whose policy marker holds a malformed plan,
    // encrypted with the tenant's codec as any real one is.
    const planted = structuredClone(original.history);
    const context = withWorkflowContext(converter, original.workflowId);
    let rewritten = false;
    for (const event of planted.events ?? []) {
      const result = event.markerRecordedEventAttributes?.details?.result;
      if (rewritten || !result?.payloads?.length) continue;
      const decoded = await decodeFirstPayload<{ decision?: PolicyDecision }>(context, result.payloads);
      if (decoded?.decision?.outcome !== 'approve') continue;
      const bad = { ...decoded, decision: { ...decoded.decision, approval: { ...decoded.decision.approval, groups: 5 } } };
      let payloads = [context.payloadConverter.toPayload(bad)];
      for (const codec of context.payloadCodecs) payloads = await codec.encode(payloads);
      result.payloads = payloads;
      rewritten = true;
    }
    assert.ok(rewritten, 'the approve decision was found and rewritten');
    const entry = await recordedFromHistory(planted.events ?? [], converter, { workflowId: original.workflowId });
    assert.equal(entry.unreadable?.code, 'unreadable');
    assert.match(entry.unreadable?.message ?? '', /approval\.groups/);
    assert.equal(entry.recorded, undefined);

    // The whole replay: the planted history is counted not comparable (unreadable), the others as before.
    const recording = parsePolicy([{ file: 'same.yaml', text: RECORDING_POLICY }]);
    const report = await replayDecisions(
      historySource([{ workflowId: original.workflowId, history: planted }, ...histories.filter((h) => h.name.startsWith('v2/'))], converter).entries(),
      recording,
      { failOn: parseFailOn('any,not_comparable') },
    );
    assert.equal(report.total, 1 + histories.filter((h) => h.name.startsWith('v2/')).length);
    assert.ok((report.notComparable.unreadable ?? 0) >= 1, JSON.stringify(report.notComparable));
    assert.ok(report.forbidden >= 1, 'the gate sees the unreadable history');
  });
});

// ---------------------------------------------------------------------------------------------
// Scale: 100,000 requests through the core in flat memory.

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** 100,000 distinct recorded requests of ~1 KB each, made as they are pulled. */
async function* synthetic(count: number, recorded: LoadedPolicy): AsyncGenerator<ReplayEntry> {
  const templates = [lookup, small, medium, huge].map((r) => ({ request: r, decision: decide(recorded, r) }));
  for (let i = 0; i < count; i++) {
    const t = templates[i % templates.length]!;
    const req: ToolRequest = { ...t.request, requestId: `load-${i}`, args: { ...t.request.args }, reason: `${'padding '.repeat(110)}${i}` };
    yield {
      workflowId: `toolreq/acme/load-${i}`,
      startedAt: new Date(1_767_225_600_000 + i).toISOString(),
      request: req,
      recorded: { ...t.decision, reasons: [`recorded ${i}`] },
    };
  }
}

/** The largest heap growth (after a full GC) seen while `run` consumes the entries, sampled every 10,000. */
async function peakGrowth(run: (entries: AsyncIterable<ReplayEntry>, sample: (done: number) => void) => Promise<unknown>): Promise<number> {
  gc();
  const baseline = process.memoryUsage().heapUsed;
  let peak = 0;
  const sample = (done: number) => {
    if (done % 10_000 !== 0) return;
    gc();
    peak = Math.max(peak, process.memoryUsage().heapUsed - baseline);
  };
  await run(synthetic(100_000, base), sample);
  return peak;
}

describe('scale', () => {
  test('100,000 requests replay in bounded memory (and a consumer that keeps them does not)', { timeout: 60_000 }, async () => {
    const candidate = policyOf({ smallMax: null, lookupRisk: 'medium' });
    const started = Date.now();
    let report;
    const growth = await peakGrowth(async (entries, sample) => {
      report = await replayDecisions(entries, candidate, { examples: 3, onProgress: sample });
    });
    const seconds = (Date.now() - started) / 1000;
    assert.equal(report!.total, 100_000);
    assert.deepEqual(Object.fromEntries(REPLAY_KINDS.filter((k) => report!.counts[k] > 0).map((k) => [k, report!.counts[k]])), {
      unchanged: 50_000,
      'allow->approve': 25_000,
      risk: 25_000,
    });
    process.stderr.write(
      `replay core: 100,000 requests in ${seconds.toFixed(1)} s (${Math.round(100_000 / seconds)}/s), peak heap growth after GC ${(growth / 1e6).toFixed(1)} MB\n`,
    );
    assert.ok(growth < 50e6, `heap grew by ${(growth / 1e6).toFixed(1)} MB`);

    // Negative control: the same stream, kept in a list, grows far beyond the bound — so the
    // measurement above can fail.
    const kept: ReplayEntry[] = [];
    const keeping = await peakGrowth(async (entries, sample) => {
      let done = 0;
      for await (const e of entries) {
        kept.push(e);
        sample(++done);
      }
    });
    assert.equal(kept.length, 100_000);
    process.stderr.write(`negative control: keeping every entry grew the heap by ${(keeping / 1e6).toFixed(1)} MB\n`);
    assert.ok(keeping > 50e6, `keeping every entry grew the heap by only ${(keeping / 1e6).toFixed(1)} MB`);
    kept.length = 0;
  });
});

// ---------------------------------------------------------------------------------------------
// The command's pieces that need no server.

describe('the command', () => {
  const now = Date.parse('2026-03-01T12:00:00.000Z');

  test('--since/--until: durations back from now or ISO times; anything else names the flag', () => {
    assert.equal(parseReplayTime('--since', '7d', now), '2026-02-22T12:00:00.000Z');
    assert.equal(parseReplayTime('--since', '12h', now), '2026-03-01T00:00:00.000Z');
    assert.equal(parseReplayTime('--since', '2w', now), '2026-02-15T12:00:00.000Z');
    assert.equal(parseReplayTime('--until', '2026-02-01', now), '2026-02-01T00:00:00.000Z');
    assert.equal(parseReplayTime('--until', '2026-02-01T10:00:00+02:00', now), '2026-02-01T08:00:00.000Z');
    for (const bad of ['yesterday', '7', '7y', '-7d', '1', 'March'])
      assert.throws(() => parseReplayTime('--since', bad, now), /^ReplayUsageError: --since must be a duration back from now/, bad);
  });

  test('every option is validated, naming the flag', () => {
    assert.deepEqual(replaySettings({}, now), { since: '2026-02-22T12:00:00.000Z', failOn: [], examples: 3, concurrency: 8, json: false });
    const cases: [Parameters<typeof replaySettings>[0], RegExp][] = [
      [{ since: '1d', until: '2d' }, /--until \(.*\) must be after --since/],
      [{ since: '2027-01-01' }, /--since \(.*\) is in the future/],
      [{ tenant: 'a b' }, /--tenant must be a tenant id/],
      [{ failOn: 'everything' }, /--fail-on: "everything" is not a kind of change/],
      [{ examples: '-1' }, /--examples must be a whole number from 0 to 100; got "-1"/],
      [{ examples: '1000' }, /--examples must be a whole number from 0 to 100/],
      [{ concurrency: '0' }, /--concurrency must be a whole number from 1 to 64/],
      [{ concurrency: 'lots' }, /--concurrency must be a whole number from 1 to 64/],
    ];
    for (const [options, message] of cases) assert.throws(() => replaySettings(options, now), message, JSON.stringify(options));
  });

  test('progress: done/total, rate, ETA; in place on a terminal, periodic lines otherwise', () => {
    let t = 0;
    const lines: string[] = [];
    const progress = new ReplayProgress({ write: (s: string) => lines.push(s), isTTY: false }, 1000, () => t, 5000);
    t = 1000;
    progress.tick(1); // the first line comes after 5 s
    t = 6000;
    progress.tick(300);
    t = 7000;
    progress.tick(350); // within 5 s of the last line: nothing
    t = 12_000;
    progress.tick(600);
    progress.finish(1000);
    assert.deepEqual(lines, [
      'policy replay: 300/1000 (30.0%), 50/s, ETA 14s\n',
      'policy replay: 600/1000 (60.0%), 50/s, ETA 8s\n',
      'policy replay: 1000/1000 (100.0%), 83/s, done in 12s\n',
    ]);
    const tty: string[] = [];
    const live = new ReplayProgress({ write: (s: string) => tty.push(s), isTTY: true }, undefined, () => t);
    t += 1000;
    live.tick(10);
    assert.match(tty[0] ?? '', /^\r\x1b\[Kpolicy replay: 10, 10\/s$/);
  });

  test('histories are read with bounded concurrency, in listing order; a failure stops the rest', async () => {
    let inFlight = 0;
    let peak = 0;
    async function* items() {
      for (let i = 0; i < 40; i++) yield i;
    }
    const slow = async (i: number) => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, (i * 7) % 5));
      inFlight -= 1;
      return i * 2;
    };
    const out: number[] = [];
    for await (const value of mapOrdered(items(), 8, slow)) out.push(value);
    assert.deepEqual(
      out,
      Array.from({ length: 40 }, (_, i) => i * 2),
    );
    assert.equal(peak, 8);

    let listed = 0;
    let closed = false;
    async function* endless() {
      try {
        for (let i = 0; ; i++) {
          listed += 1;
          yield i;
        }
      } finally {
        closed = true;
      }
    }
    const failing = async (i: number) => {
      if (i === 3) throw new Error('temporal went away');
      return i;
    };
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const value of mapOrdered(endless(), 4, failing)) seen.push(value);
    }, /temporal went away/);
    assert.deepEqual(seen, [0, 1, 2]);
    assert.ok(closed, 'the listing is closed');
    assert.ok(listed < 20, `listed ${listed}`);
  });

  test('runPolicyReplay: report, JSON and exit codes over a source; policy errors exit 2 naming file and field', async () => {
    const source: ReplaySource = {
      count: async () => recordedSet.length,
      entries: async function* () {
        yield* recordedSet;
      },
    };
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, source, now: () => now };
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'replay-unit-'));
    try {
      await writeFile(join(dir, 'looser.yaml'), policyYaml({ ...BASE, hugeMin: null, smallMax: 1_000_000 }));
      // A risk the typed builder cannot hold, edited into the text (the first `risk: high` is refund's): the CLI must name file, line and field.
      await writeFile(join(dir, 'broken.yaml'), policyYaml(BASE).replace('risk: high', 'risk: severe'));
      assert.equal(await runPolicyReplay([join(dir, 'looser.yaml')], { failOn: 'allow-widening' }, io), 1);
      assert.match(out.join(''), /FORBIDDEN: 2 request\(s\)/);
      assert.match(err.join(''), /policy replay: 4\/4 \(100\.0%\)/);
      out.length = 0;
      assert.equal(await runPolicyReplay([join(dir, 'looser.yaml')], { failOn: 'tightening', json: true }, io), 0);
      const json = JSON.parse(out.join(''));
      assert.deepEqual([json.total, json.changed, json.forbidden, json.counts['deny->allow'], json.window.since], [4, 2, 0, 1, '2026-02-22T12:00:00.000Z']);
      err.length = 0;
      assert.equal(await runPolicyReplay([join(dir, 'broken.yaml')], {}, io), 2);
      assert.match(
        err.join(''),
        /the candidate policy failed to load \(1 issue\):\n {2}.*broken\.yaml:\d+:\d+: tools\.refund\.risk: must be one of low, medium, high, critical/,
      );
      err.length = 0;
      assert.equal(await runPolicyReplay([join(dir, 'missing.yaml')], {}, io), 2);
      assert.match(err.join(''), /missing\.yaml: \(file\): cannot read/);
      err.length = 0;
      assert.equal(await runPolicyReplay([join(dir, 'looser.yaml')], { examples: 'many' }, io), 2);
      assert.match(err.join(''), /--examples must be a whole number/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
