/**
 * Parsing of audit records from workflow histories, in both shapes, on the committed histories
 * (test/histories, see test/replay/record-histories.ts): those of runs from before the trust
 * boundary (v0: the request itself as input, plain decision objects, the `attemptRefused`
 * signal) and those of today's workflow (v1, encrypted with the committed replay keys) — whose
 * admission and decisions verify against the trust anchors recorded in them, and stop verifying
 * once the history is tampered with.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { LoadedDataConverter, Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import type { ActivityDeps } from '../../activities/deps.js';
import { createActivities } from '../../activities/index.js';
import { auditRecordFromHistory } from '../../src/audit/record.js';
import { AUDITED_ACTIVITIES, AUDITED_MESSAGES } from '../../src/audit/record-audited.js';
import { refusalCode } from '../../src/audit/record-decisions.js';
import { formatAuditRecord } from '../../src/audit/record-format.js';
import { showTarget } from '../../src/cli/audit-show.js';
import { dataConverterFor, parseKeyringEnv } from '../../src/codec/index.js';
import { decodeFromPayloadsAtIndex, encodeToPayloads, historyFromJSON, loadDataConverter } from '../../src/temporal/internals.js';

type History = temporal.api.history.v1.IHistory;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const HISTORIES = join(import.meta.dirname, '..', 'histories');
const plainConverter = loadDataConverter({});

async function oldHistory(name: string): Promise<History> {
  return historyFromJSON(JSON.parse(await readFile(join(HISTORIES, 'v0', `${name}.json`), 'utf8')));
}

async function newHistory(name: string): Promise<History> {
  return historyFromJSON(JSON.parse(await readFile(join(HISTORIES, 'v1', `${name}.json`), 'utf8')));
}

/** The workflow id a v1 history ran under (the admission is bound to it). */
const v1Id = (name: string) => `toolreq/acme/history-${name}`;

describe('audit records of histories from before the trust boundary', () => {
  test('approve: the request is the input, the vote a plain decision; nothing in it verifies', async () => {
    const record = await auditRecordFromHistory(await oldHistory('approve'), plainConverter, { workflowId: 'toolreq:history-approve' });
    assert.equal(record.requestId, 'history-approve');
    assert.equal(record.status, 'completed');
    assert.deepEqual(record.initiatedBy.actor, { id: 'bot', type: 'agent', roles: ['agent_runtime'] });
    assert.equal(record.admission.present, false);
    assert.equal(record.admission.verified, false);
    assert.equal(record.admission.problem?.code, 'unsigned');
    assert.deepEqual(record.trustAnchors, []);
    assert.deepEqual(
      record.approvals.map((a) => ({ who: a.who, decision: a.decision, verified: a.verified, kid: a.kid, problem: a.problem?.code })),
      [{ who: 'maria', decision: 'approve', verified: false, kid: undefined, problem: 'unsigned' }],
    );
    assert.equal(record.ranAs?.runAs, 'svc-payments');
    assert.match(
      record.answers.whoInitiated,
      /^agent bot \(tenant acme, production\) at .*; identity NOT verified: the request predates signed front-door admissions$/,
    );
    assert.match(record.answers.whoAllowed, /approved by maria \(tier 0, via api, .*UNVERIFIED decision: unsigned\)/);
    assert.ok(record.timeline.some((t) => t.event === 'maria approved (via api)'));
  });

  test('edit: the edit and the later vote, both unverified', async () => {
    const record = await auditRecordFromHistory(await oldHistory('edit'), plainConverter, { workflowId: 'toolreq:history-edit' });
    assert.equal(record.edits.length, 1);
    const [edit] = record.edits;
    assert.equal(edit!.editor, 'maria');
    assert.deepEqual(edit!.args, { amount: 3000 });
    assert.ok(edit!.toDigest && edit!.toDigest !== edit!.fromDigest);
    assert.equal(edit!.verified, false);
    assert.deepEqual(
      record.approvals.map((a) => [a.who, a.digest === edit!.toDigest, a.verified]),
      [['fiona', true, false]],
    );
    assert.deepEqual(record.proposal.args, { amount: 3000 });
  });

  test('an attemptRefused signal is a recorded refusal', async () => {
    const history = await oldHistory('expire');
    const refusal = {
      approverId: null,
      claimedId: 'mallory',
      via: 'api',
      code: 'invalid_token',
      message: 'the token does not verify',
      at: '2026-11-21T16:40:36.000Z',
    };
    const signal: temporal.api.history.v1.IHistoryEvent = {
      eventTime: history.events![1]!.eventTime,
      workflowExecutionSignaledEventAttributes: {
        signalName: 'attemptRefused',
        input: { payloads: (await encodeToPayloads(plainConverter, refusal)) as Payload[] },
      },
    };
    history.events!.splice(2, 0, signal);
    const record = await auditRecordFromHistory(history, plainConverter, { workflowId: 'toolreq:history-expire' });
    assert.equal(record.status, 'expired');
    assert.deepEqual(record.refusals, [
      { who: null, claimed: 'mallory', at: refusal.at, code: 'invalid_token', message: 'the token does not verify', via: 'api', verified: false },
    ]);
    assert.ok(record.timeline.some((t) => t.event === 'refused a decision by unverified mallory: invalid_token'));
  });

  test('a history whose input is no tool request is refused', async () => {
    const history = await oldHistory('deny');
    const started = history.events![0]!.workflowExecutionStartedEventAttributes!;
    started.input = { payloads: (await encodeToPayloads(plainConverter, 'not a request')) as Payload[] };
    await assert.rejects(auditRecordFromHistory(history, plainConverter, { workflowId: 'toolreq:history-deny' }), /not a tool request/);
  });
});

test('failure types become the API codes of old records', () => {
  assert.equal(refusalCode('NotEligible'), 'not_eligible');
  assert.equal(refusalCode('SelfApproval'), 'self_approval');
  assert.equal(refusalCode('DigestMismatch'), 'digest_mismatch');
  assert.equal(refusalCode('self_approval'), 'self_approval');
});

test('audit show takes a request id with its tenant, or a workflow id', () => {
  assert.equal(showTarget('r-1', 'acme'), 'toolreq/acme/r-1');
  assert.equal(showTarget('toolreq/acme/r-1', undefined), 'toolreq/acme/r-1');
  assert.equal(showTarget('toolreq/acme/r-1', 'acme'), 'toolreq/acme/r-1');
  assert.equal(showTarget('toolreq:r-1', undefined), 'toolreq:r-1');
  assert.throws(() => showTarget('r-1', undefined), /--tenant is required/);
  assert.throws(() => showTarget('toolreq/acme/r-1', 'globex'), /not of tenant globex/);
  assert.throws(() => showTarget('r 1', 'acme'), /requestId must be/);
  assert.throws(() => showTarget('r-1', 'a b'), /--tenant must be/);
});

describe('audit records of histories of the current workflow', () => {
  let converter: LoadedDataConverter;
  const recordOf = async (name: string, history?: History, workflowId = v1Id(name)) =>
    auditRecordFromHistory(history ?? (await newHistory(name)), converter, { workflowId });
  /** Decodes, changes and re-encodes the first payload of `payloads` for tenant acme (the way an attacker with the codec keys could). */
  const rewrite = async <T>(payloads: Payload[], change: (value: T) => unknown): Promise<Payload[]> => {
    const plain = await encodeToPayloads({ ...converter, payloadCodecs: [] }, change(await decodeFromPayloadsAtIndex<T>(converter, 0, payloads)));
    const codec = converter.payloadCodecs[0]!;
    return codec.encode(plain as Payload[], { type: 'workflow', namespace: 'default', workflowId: 'toolreq/acme/rewritten' });
  };
  const accepted = (history: History): HistoryEvent[] => history.events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);

  before(async () => {
    const keys = parseKeyringEnv((await readFile(join(HISTORIES, 'v1', 'replay-codec-keys.txt'), 'utf8')).trim(), 'replay-codec-keys.txt');
    converter = loadDataConverter(dataConverterFor(keys));
  });

  test('approve: the admission and the vote verify against the recorded anchors, with their key ids', async () => {
    const record = await recordOf('approve');
    assert.equal(record.requestId, 'history-approve');
    assert.equal(record.status, 'completed');
    assert.deepEqual(record.initiatedBy.actor, { id: 'bot', type: 'agent', roles: ['agent_runtime'] });
    assert.equal(record.trustAnchors.length, 1);
    const [requestKid] = record.trustAnchors[0]!.requestKeys;
    const [decisionKid] = record.trustAnchors[0]!.decisionKeys;
    assert.ok(requestKid && decisionKid && requestKid !== decisionKid);
    assert.deepEqual(record.admission, { present: true, verified: true, kid: requestKid });
    assert.equal(record.decision?.sealed, true);
    assert.deepEqual(
      record.approvals.map((a) => ({ who: a.who, decision: a.decision, via: a.via, verified: a.verified, kid: a.kid })),
      [{ who: 'maria', decision: 'approve', via: 'api', verified: true, kid: decisionKid }],
    );
    assert.match(
      record.answers.whoInitiated,
      new RegExp(
        `^agent bot \\(tenant acme, production\\) at .*; identity from a verified agent credential \\(front-door assertion signed with key ${requestKid}\\)$`,
      ),
    );
    assert.match(record.answers.whoAllowed, /approved by maria \(tier 0, via api, .*, verified decision\)$/);
    assert.ok(record.timeline.some((t) => t.event === `maria approved (via api); signed decision verified with key ${decisionKid}`));
    const text = formatAuditRecord(record);
    assert.match(text, new RegExp(`admission: front-door assertion, verified \\(key ${requestKid}\\)`));
    assert.match(text, new RegExp(`vote: maria approve .*, verified \\(key ${decisionKid}\\)`));
  });

  test('edit: the edit and the vote on the new digest come from the assertions, both verified', async () => {
    const record = await recordOf('edit');
    assert.equal(record.edits.length, 1);
    const edit = record.edits[0]!;
    assert.deepEqual({ editor: edit.editor, args: edit.args, verified: edit.verified }, { editor: 'maria', args: { amount: 3000 }, verified: true });
    assert.ok(edit.toDigest && edit.toDigest !== edit.fromDigest);
    assert.deepEqual(
      record.approvals.map((a) => [a.who, a.digest === edit.toDigest, a.verified]),
      [['fiona', true, true]],
    );
    assert.deepEqual(record.proposal.args, { amount: 3000 });
    assert.equal(record.decision?.rule, 'refund/large');
  });

  test('refused: an accepted decision that completed with a failure is a recorded refusal', async () => {
    const record = await recordOf('refused');
    assert.deepEqual(
      record.refusals.map((r) => ({ who: r.who, code: r.code, decision: r.decision, via: r.via, verified: r.verified })),
      [{ who: 'sam', code: 'not_eligible', decision: 'approve', via: 'api', verified: true }],
    );
    assert.match(record.refusals[0]!.message, /none of the groups that may decide now/);
    assert.deepEqual(
      record.approvals.map((a) => [a.who, a.verified]),
      [['maria', true]],
    );
    assert.ok(record.timeline.some((t) => t.event === 'sam tried to approve (via api): refused, not_eligible'));
    assert.match(formatAuditRecord(record), /refused: sam at .* via api: not_eligible/);
  });

  test('unverified: a request started without the front door is denied and on record as unverified', async () => {
    const record = await recordOf('unverified');
    assert.equal(record.status, 'denied');
    assert.deepEqual(
      { outcome: record.decision?.outcome, rule: record.decision?.rule, code: record.decision?.code },
      { outcome: 'deny', rule: 'check:request_assertion', code: 'unverified_request' },
    );
    assert.equal(record.outcome?.error?.type, 'unverified_request');
    assert.deepEqual(
      { present: record.admission.present, verified: record.admission.verified, kid: record.admission.kid, code: record.admission.problem?.code },
      { present: true, verified: false, kid: undefined, code: 'malformed' },
    );
    assert.equal(record.initiatedBy.actor.id, 'bot', 'the record still shows what the starter claimed');
    assert.match(
      record.answers.whoInitiated,
      /identity NOT verified: no valid front-door assertion \(malformed: .*\); these are the claims of whoever started the workflow$/,
    );
    assert.match(record.answers.whoAllowed, /^nobody: /);
    assert.equal(record.ranAs, null);
  });

  test('under another workflow id the admission does not verify (it is bound to its workflow)', async () => {
    const record = await recordOf('approve', undefined, 'toolreq/acme/history-other');
    assert.equal(record.admission.verified, false);
    assert.equal(record.admission.problem?.code, 'mismatch');
  });

  test('a changed request no longer matches its admission', async () => {
    const history = await newHistory('approve');
    const started = history.events![0]!.workflowExecutionStartedEventAttributes!;
    started.input = {
      payloads: await rewrite<{ request: Record<string, unknown> }>(started.input!.payloads!, (v) => ({
        ...v,
        request: { ...v.request, args: { amount: 1 } },
      })),
    };
    const record = await recordOf('approve', history);
    assert.deepEqual(
      { present: record.admission.present, verified: record.admission.verified, kid: record.admission.kid },
      { present: true, verified: false, kid: undefined },
    );
    assert.equal(record.admission.problem?.code, 'mismatch');
    assert.match(record.answers.whoInitiated, /identity NOT verified: no valid front-door assertion \(mismatch: .*request body/);
  });

  test('a payload of another tenant written into the history is never decoded into the record', async () => {
    const history = await newHistory('approve');
    const completed = history.events!.find((e) => e.workflowExecutionCompletedEventAttributes)!.workflowExecutionCompletedEventAttributes!;
    const codec = converter.payloadCodecs[0]!;
    const plain = await encodeToPayloads({ ...converter, payloadCodecs: [] }, { status: 'completed', result: 'globex secret' });
    completed.result = { payloads: await codec.encode(plain as Payload[], { type: 'workflow', namespace: 'default', workflowId: 'toolreq/globex/x' }) };
    const record = await recordOf('approve', history).catch((err: unknown) => err as Error);
    assert.ok(
      !(record instanceof Error) ? !JSON.stringify(record).includes('globex secret') : /another tenant|tenant "globex"/.test(record.message),
      'the foreign payload stays encrypted',
    );
  });

  test('decisions signed by a key the recorded anchors do not name do not verify', async () => {
    const history = await newHistory('edit');
    // Another deployment's decision key: the history's own decisions name a key it no longer lists.
    const stranger = { kid: 'stranger-key', x: randomBytes(32).toString('base64url') };
    let replaced = 0;
    for (const event of history.events!) {
      const details = event.markerRecordedEventAttributes?.details;
      const payloads = details?.result?.payloads;
      if (!details || !payloads) continue;
      const value = await decodeFromPayloadsAtIndex<Record<string, unknown>>(converter, 0, payloads).catch(() => undefined);
      if (!value || !('decisionKeys' in value)) continue;
      details.result = { payloads: await rewrite<Record<string, unknown>>(payloads, (v) => ({ ...v, decisionKeys: [stranger] })) };
      replaced += 1;
    }
    assert.equal(replaced, 1);
    const record = await recordOf('edit', history);
    assert.equal(record.admission.verified, true, 'the request keys were left alone');
    assert.deepEqual(
      record.approvals.map((a) => [a.who, a.verified, a.kid, a.problem?.code]),
      [['fiona', false, undefined, 'unknown_key']],
    );
    assert.deepEqual(
      record.edits.map((e) => [e.editor, e.verified, e.problem?.code]),
      [['maria', false, 'unknown_key']],
    );
    assert.match(record.answers.whoAllowed, /approved by fiona \(.*UNVERIFIED decision: unknown_key\)/);
  });

  test('a vote whose assertion was altered no longer backs the recorded vote', async () => {
    const history = await newHistory('approve');
    const [update] = accepted(history);
    const input = update!.workflowExecutionUpdateAcceptedEventAttributes!.acceptedRequest!.input!;
    input.args = {
      payloads: await rewrite<{ assertion: string }>(input.args!.payloads!, ({ assertion }) => {
        const [header, payload, signature] = assertion.split('.') as [string, string, string];
        const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
        return { assertion: [header, Buffer.from(JSON.stringify({ ...claims, sub: 'mallory' })).toString('base64url'), signature].join('.') };
      }),
    };
    const record = await recordOf('approve', history);
    assert.deepEqual(
      record.approvals.map((a) => [a.who, a.verified, a.problem?.code]),
      [['maria', false, 'missing']],
    );
    assert.ok(record.timeline.some((t) => t.event === 'mallory approved (via api); decision NOT verified: bad_signature'));
  });

  test('an assertion used twice proves nothing the second time', async () => {
    const history = await newHistory('approve');
    const [update] = accepted(history);
    const at = history.events!.indexOf(update!);
    history.events!.splice(at + 1, 0, structuredClone(update!));
    const record = await recordOf('approve', history);
    const verdicts = record.timeline.filter((t) => t.event.startsWith('maria approved')).map((t) => t.event.replace(/ with key .*/, ''));
    assert.deepEqual(verdicts, ['maria approved (via api); signed decision verified', 'maria approved (via api); decision NOT verified: replayed']);
    assert.equal(record.approvals[0]!.verified, true);
  });
});

describe('the record reads every activity and message by the names the workflow uses', () => {
  test('the activities the worker registers are exactly the ones the record knows what to make of', () => {
    // Only the names matter here; nothing is called.
    const registered = Object.keys(createActivities({} as ActivityDeps)).sort();
    assert.deepEqual(registered, Object.keys(AUDITED_ACTIVITIES).sort());
  });

  test('every activity, signal and update in every recorded history is one the record handles', async () => {
    const seen = { activities: new Set<string>(), signals: new Set<string>(), updates: new Set<string>() };
    for (const version of await readdir(HISTORIES)) {
      for (const file of (await readdir(join(HISTORIES, version))).filter((f) => f.endsWith('.json'))) {
        const history = historyFromJSON(JSON.parse(await readFile(join(HISTORIES, version, file), 'utf8')));
        for (const event of history.events ?? []) {
          const activity = event.activityTaskScheduledEventAttributes?.activityType?.name;
          if (activity) seen.activities.add(activity);
          const signal = event.workflowExecutionSignaledEventAttributes?.signalName;
          if (signal) seen.signals.add(signal);
          const update = event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name;
          if (update) seen.updates.add(update);
        }
      }
    }
    // The fixtures do exercise these kinds of events; otherwise this test would prove nothing.
    assert.ok(
      seen.activities.has('executeTool') && seen.activities.has('notifyApprovers') && seen.updates.size > 0,
      JSON.stringify([...seen.activities, ...seen.signals, ...seen.updates]),
    );
    for (const name of seen.activities) assert.ok(Object.hasOwn(AUDITED_ACTIVITIES, name), `activity ${name} is not read by the audit record`);
    for (const name of seen.signals) assert.ok(Object.hasOwn(AUDITED_MESSAGES.signals, name), `signal ${name} is not read by the audit record`);
    for (const name of seen.updates) assert.ok(Object.hasOwn(AUDITED_MESSAGES.updates, name), `update ${name} is not read by the audit record`);
  });
});
