/**
 * Audit records of the requests issue 16 adds: a break-glass override of a denial (its link, the
 * grant, the second person), an end user's confirmation (kept apart from approvers' votes, its
 * signed assertion verified like a vote's) and a rollback. Histories are built event by event the
 * way the worker writes them, with assertions signed by keys generated here, so each answer is
 * checked exactly and each verification can fail.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { ApplicationFailure, type Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import { auditRecordFromHistory, buildAuditRecord, buildAuditRecordOfWorkflow } from '../../src/audit/record.js';
import { AUDITED_MESSAGES } from '../../src/audit/record-audited.js';
import { formatAuditRecord } from '../../src/audit/record-format.js';
import { listLinkedRequests } from '../../src/audit/record-linked.js';
import { encodeToPayloads, loadDataConverter } from '../../src/temporal/internals.js';
import { signingKeyFromPem, type SigningKey } from '../../src/trust/keys.js';
import { DecisionSigner, RequestSigner } from '../../src/trust/signers.js';
import {
  decideUpdate,
  linkedRequestsQuery,
  searchAttributes,
  workflowIdFor,
  type ApprovalPlan,
  type ApprovalRecord,
  type EndUserConfirmation,
  type OverrideGrant,
  type PolicyDecision,
  type RequestLink,
  type ToolOutcome,
  type ToolRequest,
  type TrustAnchors,
} from '../../src/shared/index.js';

type History = temporal.api.history.v1.IHistory;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const converter = loadDataConverter({});
const RUN = 'run-1';
const POLICY_DIGEST = 'p'.repeat(64);
const DIGEST = 'a'.repeat(64);
const ADJUSTED = 'b'.repeat(64);

async function newKey(): Promise<SigningKey> {
  const { privateKey } = generateKeyPairSync('ed25519');
  return signingKeyFromPem(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 'test key');
}
const requestKey = await newKey();
const decisionKey = await newKey();
const anchors: TrustAnchors = { requestKeys: [requestKey.trusted], decisionKeys: [decisionKey.trusted] };
const frontDoor = new RequestSigner(requestKey);
const approvalsApi = new DecisionSigner(decisionKey);

const payloads = async (value: unknown): Promise<Payload[]> => (await encodeToPayloads(converter, value)) as Payload[];
const iso = (ms: number) => new Date(ms).toISOString();

/** Builds a history in order: each event one second after the previous (assertions are signed now, so the history is too). */
class HistoryBuilder {
  readonly events: HistoryEvent[] = [];
  readonly start = Math.floor(Date.now() / 1000) * 1000;
  private updates = 0;

  constructor(
    readonly request: ToolRequest,
    readonly workflowId = workflowIdFor(request.tenant, request.requestId),
  ) {}

  /** The time of the next event. */
  get next(): number {
    return this.start + this.events.length * 1000;
  }

  private push(event: Omit<HistoryEvent, 'eventId' | 'eventTime'>): HistoryEvent {
    const ms = this.next;
    const full = {
      ...event,
      eventId: this.events.length + 1,
      eventTime: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 },
    } as unknown as HistoryEvent;
    this.events.push(full);
    return full;
  }

  async started(): Promise<this> {
    const admission = await frontDoor.sign(this.request, this.workflowId);
    this.push({
      workflowExecutionStartedEventAttributes: { input: { payloads: await payloads({ request: this.request, admission }) }, originalExecutionRunId: RUN },
    });
    this.push({ markerRecordedEventAttributes: { details: { result: { payloads: await payloads(anchors) } } } });
    return this;
  }

  async evaluated(decision: PolicyDecision, digest = DIGEST): Promise<this> {
    const evaluation = { decision, digest, proposal: { args: this.request.args }, seal: 'sealed' };
    this.push({ markerRecordedEventAttributes: { details: { result: { payloads: await payloads(evaluation) } } } });
    return this;
  }

  /** A decide update: signed by the approval API (or forged by `tamper`), and its answer (the status, or a refusal). */
  async decided(
    statement: {
      sub: string;
      groups: string[];
      decision: 'approve' | 'reject' | 'edit';
      channel: 'api' | 'link' | 'end_user';
      digest?: string;
      reason?: string;
      args?: Record<string, unknown>;
    },
    answer: { status?: object; refused?: { type: string; message: string } } = {},
    tamper?: (assertion: string) => string,
  ): Promise<this> {
    const signed = await approvalsApi.sign({
      tenant: this.request.tenant,
      request_id: this.request.requestId,
      workflow_id: this.workflowId,
      run_id: RUN,
      digest: DIGEST,
      ...statement,
    });
    const assertion = tamper ? tamper(signed) : signed;
    const updateId = `update-${(this.updates += 1)}`;
    const accepted = this.push({
      workflowExecutionUpdateAcceptedEventAttributes: {
        protocolInstanceId: updateId,
        acceptedRequest: { meta: { updateId }, input: { name: decideUpdate.name, args: { payloads: await payloads({ assertion }) } } },
      },
    });
    const outcome = answer.refused
      ? {
          failure: converter.failureConverter.errorToFailure(
            ApplicationFailure.create({ type: answer.refused.type, message: answer.refused.message, nonRetryable: true }),
            converter.payloadConverter,
          ),
        }
      : { success: { payloads: await payloads(answer.status ?? { approvals: [] }) } };
    this.push({ workflowExecutionUpdateCompletedEventAttributes: { meta: { updateId }, acceptedEventId: accepted.eventId, outcome } });
    return this;
  }

  async executed(runAs: string, result: unknown): Promise<this> {
    const scheduled = this.push({
      activityTaskScheduledEventAttributes: {
        activityType: { name: 'executeTool' },
        input: { payloads: await payloads({ runAs, idempotencyKey: `idem-${this.request.requestId}` }) },
      },
    });
    this.push({ activityTaskStartedEventAttributes: { scheduledEventId: scheduled.eventId, attempt: 1 } });
    this.push({ activityTaskCompletedEventAttributes: { scheduledEventId: scheduled.eventId, result: { payloads: await payloads({ result }) } } });
    return this;
  }

  async completed(outcome: ToolOutcome): Promise<History> {
    this.push({ workflowExecutionCompletedEventAttributes: { result: { payloads: await payloads(outcome) } } });
    return { events: this.events };
  }

  /** The base of an outcome of this request. */
  outcomeBase(decision: PolicyDecision, approvals: ApprovalRecord[] = []) {
    return {
      requestId: this.request.requestId,
      workflowId: this.workflowId,
      tool: this.request.tool,
      tenant: this.request.tenant,
      actor: this.request.actor,
      risk: decision.risk,
      rule: decision.rule,
      policyDigest: POLICY_DIGEST,
      digest: DIGEST,
      approvals,
    };
  }

  completedOutcome(decision: PolicyDecision, extra: Partial<ToolOutcome> & { approvals?: ApprovalRecord[] } = {}): ToolOutcome {
    const execution = {
      runAs: decision.runAs ?? 'svc',
      idempotencyKey: `idem-${this.request.requestId}`,
      startedAt: iso(this.start),
      finishedAt: iso(this.next),
      attempts: 1,
    };
    return {
      ...this.outcomeBase(decision, extra.approvals),
      status: 'completed',
      result: { ok: true },
      args: this.request.args,
      execution,
      ...extra,
    } as ToolOutcome;
  }
}

/** Rewrites an assertion's claims without re-signing (what a forger with write access to a history could do). */
function withClaims(assertion: string, change: Record<string, unknown>): string {
  const [header, payload, signature] = assertion.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  return [header, Buffer.from(JSON.stringify({ ...claims, ...change })).toString('base64url'), signature].join('.');
}

const agent = { id: 'deploy-bot', type: 'agent' as const, roles: ['agent_runtime'] };

// ---------------------------------------------------------------------------------------------
// Break-glass override

const overrideLink: RequestLink = {
  kind: 'override',
  requestId: 'r-denied',
  tool: 'deploy_service',
  by: { id: 'sam', groups: ['sre-oncall'] },
  reason: 'prod is down, hotfix 1.2.3',
};
const grant: OverrideGrant = {
  breakGlass: 'change_freeze',
  deniedRule: 'freeze/deploys',
  deniedCode: 'rule_denied',
  deniedReasons: ['deploys are frozen until Monday'],
  by: 'sam',
  reason: 'prod is down, hotfix 1.2.3',
  notify: ['security'],
};
const overridePlan: ApprovalPlan = {
  name: 'break_glass:change_freeze',
  groups: ['sre-oncall'],
  allOf: [],
  minApprovals: 1,
  rejectionsToDeny: 1,
  escalation: [],
  expiresAfterMs: 900_000,
};
const overrideDecision: PolicyDecision = {
  outcome: 'approve',
  tool: 'deploy_service',
  risk: 'high',
  rule: 'break_glass:change_freeze',
  reasons: ['break-glass change_freeze: sam overrides freeze/deploys (rule_denied): prod is down, hotfix 1.2.3'],
  policyDigest: POLICY_DIGEST,
  approval: overridePlan,
  runAs: 'svc-deploy',
  override: grant,
};
const overrideRequest: ToolRequest = {
  requestId: 'r-override',
  actor: agent,
  tenant: 'acme',
  environment: 'production',
  tool: 'deploy_service',
  args: { service: 'checkout', version: '1.2.3' },
  reason: 'ship the fix',
  link: overrideLink,
};

async function overrideHistory(
  options: { vote?: 'approve' | 'reject' } = { vote: 'approve' },
): Promise<{ history: History; builder: HistoryBuilder; voteAt: string }> {
  const b = new HistoryBuilder(overrideRequest);
  await b.started();
  await b.evaluated(overrideDecision);
  const voteAt = iso(b.next);
  const vote: ApprovalRecord = {
    approverId: 'omar',
    groups: ['sre-oncall'],
    decision: options.vote ?? 'approve',
    digest: DIGEST,
    at: voteAt,
    tier: 0,
    via: 'api',
  };
  if (options.vote)
    await b.decided({ sub: 'omar', groups: ['sre-oncall'], decision: options.vote, channel: 'api' }, { status: { approvals: [vote], edits: [] } });
  if (options.vote === 'approve') {
    await b.executed('svc-deploy', { deployed: '1.2.3' });
    return { history: await b.completed(b.completedOutcome(overrideDecision, { approvals: [vote], override: grant })), builder: b, voteAt };
  }
  if (options.vote === 'reject') {
    const outcome = { ...b.outcomeBase(overrideDecision, [vote]), status: 'rejected', rejectedBy: 'omar', override: grant } as ToolOutcome;
    return { history: await b.completed(outcome), builder: b, voteAt };
  }
  return { history: { events: b.events }, builder: b, voteAt };
}

describe('the audit record of a break-glass override', () => {
  test('the link, the grant and the second person, with the answers said exactly', async () => {
    const { history, builder, voteAt } = await overrideHistory();
    const record = await auditRecordFromHistory(history, converter, { workflowId: builder.workflowId });
    assert.equal(record.status, 'completed');
    assert.deepEqual(record.link, overrideLink);
    assert.equal(record.overridden, true);
    assert.deepEqual(record.override, grant);
    assert.deepEqual(record.confirmations, []);
    assert.deepEqual(record.linked, [], 'a history alone names no linked request');
    assert.equal(record.admission.verified, true, 'the link is signed with the request');
    assert.deepEqual(
      record.approvals.map((a) => [a.who, a.decision, a.verified, a.kid]),
      [['omar', 'approve', true, decisionKey.kid]],
    );
    assert.equal(
      record.answers.whoInitiated,
      `agent deploy-bot (break-glass override of r-denied, asked by sam) (tenant acme, production) at ${iso(builder.start)}: "ship the fix"; ` +
        `admitted by the approval API for sam, who signed in as an approver (front-door assertion signed with key ${requestKey.kid})`,
    );
    assert.equal(
      record.answers.whoAllowed,
      'break-glass override change_freeze of freeze/deploys (rule_denied) asked by sam ("prod is down, hotfix 1.2.3"), ' +
        `confirmed by omar (tier 0, via api, ${voteAt}, verified decision); ` +
        `policy rule break_glass:change_freeze decided approve (risk high, policy ${POLICY_DIGEST.slice(0, 12)})`,
    );
    assert.ok(
      record.timeline.some(
        (t) => t.event === 'policy decided approve (rule break_glass:change_freeze, risk high); BREAK-GLASS override of freeze/deploys (rule_denied)',
      ),
    );
    const text = formatAuditRecord(record);
    assert.match(text, /^link: break-glass override of r-denied \(deploy_service\), asked by sam \[sre-oncall\]: "prod is down, hotfix 1\.2\.3"$/m);
    assert.match(
      text,
      /^override: BREAK-GLASS change_freeze overrode freeze\/deploys \(rule_denied\) — deploys are frozen until Monday; asked by sam: "prod is down, hotfix 1\.2\.3"; notified security$/m,
    );
    assert.doesNotMatch(text, /^confirmation:/m);
  });

  test('rejected by the second person: nobody allowed it, and the record says the override was not confirmed', async () => {
    const { history, builder, voteAt } = await overrideHistory({ vote: 'reject' });
    const record = await auditRecordFromHistory(history, converter, { workflowId: builder.workflowId });
    assert.equal(record.status, 'rejected');
    assert.equal(record.overridden, true, 'policy did turn its denial into an override round');
    assert.equal(record.ranAs, null);
    assert.equal(
      record.answers.whoAllowed,
      'nobody: break-glass override change_freeze of freeze/deploys (rule_denied) asked by sam ("prod is down, hotfix 1.2.3"), not confirmed by a second person; ' +
        `policy rule break_glass:change_freeze decided approve (risk high, policy ${POLICY_DIGEST.slice(0, 12)}); rejected by omar (${voteAt}, verified decision)`,
    );
  });

  test('an override refused by policy is an ordinary denial with the link on record', async () => {
    const b = new HistoryBuilder({ ...overrideRequest, requestId: 'r-refused' });
    await b.started();
    const refused: PolicyDecision = {
      outcome: 'deny',
      tool: 'deploy_service',
      risk: 'high',
      rule: 'check:override_refused',
      reasons: ['no break-glass rule lets sam override freeze/deploys'],
      code: 'override_refused',
      policyDigest: POLICY_DIGEST,
    };
    await b.evaluated(refused);
    const history = await b.completed({ ...b.outcomeBase(refused), status: 'denied', code: 'override_refused', reasons: refused.reasons });
    const record = await auditRecordFromHistory(history, converter, { workflowId: b.workflowId });
    assert.equal(record.overridden, false);
    assert.equal(record.override, undefined);
    assert.deepEqual(record.link, overrideLink);
    assert.equal(record.answers.whoAllowed, `nobody: policy rule check:override_refused decided deny (risk high, policy ${POLICY_DIGEST.slice(0, 12)})`);
    assert.doesNotMatch(formatAuditRecord(record), /^override:/m);
  });

  test('a grant in the history with a malformed field is not shown as an override', async () => {
    const b = new HistoryBuilder({ ...overrideRequest, requestId: 'r-malformed' });
    await b.started();
    const forged = { ...overrideDecision, override: { ...grant, deniedCode: 'made_up' } } as unknown as PolicyDecision;
    await b.evaluated(forged);
    const record = await auditRecordFromHistory({ events: b.events }, converter, { workflowId: b.workflowId });
    assert.equal(record.status, 'running');
    assert.equal(record.overridden, false);
    assert.equal(record.override, undefined);
  });
});

// ---------------------------------------------------------------------------------------------
// End-user confirmation

const endUserPlan: ApprovalPlan = {
  name: 'quick_confirm',
  groups: ['support'],
  allOf: [],
  minApprovals: 1,
  rejectionsToDeny: 1,
  escalation: [],
  expiresAfterMs: 600_000,
  endUser: true,
};
const endUserDecision: PolicyDecision = {
  outcome: 'approve',
  tool: 'refund',
  risk: 'medium',
  rule: 'refund/confirm',
  reasons: ['refunds are confirmed by the customer'],
  policyDigest: POLICY_DIGEST,
  approval: endUserPlan,
  runAs: 'svc-payments',
};
const endUserRequest: ToolRequest = {
  requestId: 'r-confirm',
  actor: { id: 'support-bot', type: 'agent', roles: ['agent_runtime'] },
  onBehalfOf: [{ type: 'human', id: 'maria' }],
  tenant: 'acme',
  environment: 'production',
  tool: 'refund',
  args: { order: 'o-1', amount: 30 },
};

describe('the audit record of an end user’s confirmation', () => {
  test('confirmed by the end user: a verified confirmation, never among the votes', async () => {
    const b = new HistoryBuilder(endUserRequest);
    await b.started();
    await b.evaluated(endUserDecision);
    const at = iso(b.next);
    const answer: EndUserConfirmation = { principal: 'maria', decision: 'approve', digest: DIGEST, at };
    await b.decided({ sub: 'Maria', groups: [], decision: 'approve', channel: 'end_user' }, { status: { approvals: [], edits: [], confirmations: [answer] } });
    await b.executed('svc-payments', { refunded: 30 });
    const history = await b.completed(b.completedOutcome(endUserDecision, { confirmation: answer }));
    const record = await auditRecordFromHistory(history, converter, { workflowId: b.workflowId });
    assert.equal(record.status, 'completed');
    assert.deepEqual(record.approvals, [], 'the end user is no approver');
    assert.deepEqual(record.refusals, []);
    assert.deepEqual(record.edits, []);
    assert.deepEqual(record.confirmations, [{ principal: 'maria', decision: 'approve', digest: DIGEST, at, verified: true, kid: decisionKey.kid }]);
    assert.equal(record.overridden, false);
    assert.equal(record.link, undefined);
    assert.equal(
      record.answers.whoAllowed,
      `policy rule refund/confirm decided approve (risk medium, policy ${POLICY_DIGEST.slice(0, 12)}); confirmed by the end user maria (${at}, verified confirmation)`,
    );
    assert.match(record.answers.whoInitiated, /^agent support-bot on behalf of human maria \(tenant acme, production\) at /);
    assert.ok(record.timeline.some((t) => t.event === `the end user maria confirmed (via end_user); signed decision verified with key ${decisionKey.kid}`));
    assert.match(
      formatAuditRecord(record),
      new RegExp(`^confirmation: the end user maria confirmed at ${at}, digest aaaaaaaaaaaa, verified \\(key ${decisionKey.kid}\\)$`, 'm'),
    );
    assert.doesNotMatch(formatAuditRecord(record), /^vote:/m);
  });

  test('the end user and an approver: the confirmation first, then the vote', async () => {
    const b = new HistoryBuilder({ ...endUserRequest, requestId: 'r-both' });
    await b.started();
    await b.evaluated({ ...endUserDecision, approval: { ...endUserPlan, minApprovals: 1 } });
    const confirmedAt = iso(b.next);
    const answer: EndUserConfirmation = { principal: 'maria', decision: 'approve', digest: DIGEST, at: confirmedAt };
    await b.decided({ sub: 'maria', groups: [], decision: 'approve', channel: 'end_user' }, { status: { approvals: [], edits: [], confirmations: [answer] } });
    const votedAt = iso(b.next);
    const vote: ApprovalRecord = { approverId: 'lee', groups: ['support'], decision: 'approve', digest: DIGEST, at: votedAt, tier: 0, via: 'link' };
    await b.decided(
      { sub: 'lee', groups: ['support'], decision: 'approve', channel: 'link' },
      { status: { approvals: [vote], edits: [], confirmations: [answer] } },
    );
    await b.executed('svc-payments', { refunded: 30 });
    const history = await b.completed(b.completedOutcome(endUserDecision, { approvals: [vote], confirmation: answer }));
    const record = await auditRecordFromHistory(history, converter, { workflowId: b.workflowId });
    assert.deepEqual(
      record.approvals.map((a) => [a.who, a.via, a.verified]),
      [['lee', 'link', true]],
    );
    assert.deepEqual(
      record.confirmations?.map((c) => [c.principal, c.decision, c.verified]),
      [['maria', 'approve', true]],
    );
    assert.equal(
      record.answers.whoAllowed,
      `policy rule refund/confirm decided approve (risk medium, policy ${POLICY_DIGEST.slice(0, 12)}); ` +
        `confirmed by the end user maria (${confirmedAt}, verified confirmation); approved by lee (tier 0, via link, ${votedAt}, verified decision)`,
    );
  });

  test('a confirmation whose assertion was altered is on record as unverified', async () => {
    const b = new HistoryBuilder({ ...endUserRequest, requestId: 'r-forged' });
    await b.started();
    await b.evaluated(endUserDecision);
    const at = iso(b.next);
    await b.decided({ sub: 'maria', groups: [], decision: 'approve', channel: 'end_user' }, {}, (assertion) => withClaims(assertion, { sub: 'mallory' }));
    const record = await auditRecordFromHistory({ events: b.events }, converter, { workflowId: b.workflowId });
    assert.deepEqual(
      record.confirmations?.map((c) => ({ principal: c.principal, at: c.at, verified: c.verified, problem: c.problem?.code })),
      [{ principal: 'mallory', at, verified: false, problem: 'bad_signature' }],
    );
    assert.match(record.answers.whoAllowed, /^nobody: .*; confirmed by the end user mallory \(.*, UNVERIFIED confirmation: bad_signature\)$/);
  });

  test('a decline and an adjustment are said as such; a refused confirmation is a refusal via end_user', async () => {
    const b = new HistoryBuilder({ ...endUserRequest, requestId: 'r-decline' });
    await b.started();
    await b.evaluated(endUserDecision);
    await b.decided(
      { sub: 'maria', groups: [], decision: 'approve', channel: 'end_user', digest: 'c'.repeat(64) },
      { refused: { type: 'DigestMismatch', message: 'the proposal changed' } },
    );
    const adjustedAt = iso(b.next);
    await b.decided(
      { sub: 'maria', groups: [], decision: 'edit', channel: 'end_user', args: { order: 'o-1', amount: 20 }, reason: 'only 20' },
      { status: { approvals: [], edits: [] } },
    );
    await b.evaluated({ ...endUserDecision }, ADJUSTED);
    const declinedAt = iso(b.next);
    await b.decided({ sub: 'maria', groups: [], decision: 'reject', channel: 'end_user', digest: ADJUSTED }, { status: { approvals: [], edits: [] } });
    const outcome = { ...b.outcomeBase(endUserDecision), status: 'rejected', rejectedBy: 'maria' } as ToolOutcome;
    const history = await b.completed(outcome);
    const record = await auditRecordFromHistory(history, converter, { workflowId: b.workflowId });
    assert.deepEqual(record.approvals, []);
    assert.deepEqual(record.edits, [], "the end user's adjustment is a confirmation, not an approver's edit");
    assert.deepEqual(
      record.confirmations?.map(({ principal, decision, digest, at, args, reason, verified }) => ({ principal, decision, digest, at, args, reason, verified })),
      [
        { principal: 'maria', decision: 'edit', digest: DIGEST, at: adjustedAt, args: { order: 'o-1', amount: 20 }, reason: 'only 20', verified: true },
        { principal: 'maria', decision: 'reject', digest: ADJUSTED, at: declinedAt, args: undefined, reason: undefined, verified: true },
      ],
    );
    assert.deepEqual(
      record.refusals.map((r) => [r.who, r.code, r.via, r.decision, r.verified]),
      [['maria', 'digest_mismatch', 'end_user', 'approve', true]],
    );
    assert.equal(
      record.answers.whoAllowed,
      `nobody: policy rule refund/confirm decided approve (risk medium, policy ${POLICY_DIGEST.slice(0, 12)}); ` +
        `arguments adjusted by the end user maria (${adjustedAt}, verified confirmation); declined by the end user maria (${declinedAt}, verified confirmation)`,
    );
    const events = record.timeline.map((t) => t.event.replace(/; signed decision verified with key .*/, ''));
    assert.ok(events.includes('the end user maria tried to confirm (via end_user): refused, digest_mismatch'));
    assert.ok(events.includes('the end user maria adjusted the arguments (via end_user)'));
    assert.ok(events.includes('the end user maria declined (via end_user)'));
    const text = formatAuditRecord(record);
    assert.match(text, /^confirmation: the end user maria adjusted the arguments at .*, verified \(key .*\): \{"order":"o-1","amount":20\} — only 20$/m);
    assert.match(text, /^confirmation: the end user maria declined at .*, digest bbbbbbbbbbbb, verified/m);
  });

  test('decisions still go through the decide update alone: no message was added', () => {
    assert.deepEqual(Object.keys(AUDITED_MESSAGES.updates), [decideUpdate.name]);
  });
});

// ---------------------------------------------------------------------------------------------
// Rollback

describe('the audit record of a rollback', () => {
  test('the person who asked initiated it, as the rollback of the original', async () => {
    const link: RequestLink = {
      kind: 'rollback',
      requestId: 'r-closed',
      tool: 'close_ticket',
      by: { id: 'alice', groups: ['support'] },
      reason: 'closed by mistake',
    };
    const request: ToolRequest = {
      requestId: 'r-undo',
      actor: { id: 'alice', type: 'human', roles: ['support'] },
      tenant: 'acme',
      environment: 'production',
      tool: 'reopen_ticket',
      args: { ticket_id: 'T-1', note: 'rolled back r-closed' },
      link,
    };
    const decision: PolicyDecision = {
      outcome: 'allow',
      tool: 'reopen_ticket',
      risk: 'low',
      rule: 'tool:reopen_ticket',
      reasons: [],
      policyDigest: POLICY_DIGEST,
      runAs: 'svc-tickets',
    };
    const b = new HistoryBuilder(request);
    await b.started();
    await b.evaluated(decision);
    await b.executed('svc-tickets', { reopened: true });
    const history = await b.completed(b.completedOutcome(decision));
    const record = await auditRecordFromHistory(history, converter, { workflowId: b.workflowId });
    assert.deepEqual(record.link, link);
    assert.equal(record.overridden, false);
    assert.equal(
      record.answers.whoInitiated,
      `human alice (rollback of r-closed) (tenant acme, production) at ${iso(b.start)}; ` +
        `admitted by the approval API for alice, who signed in as an approver (front-door assertion signed with key ${requestKey.kid})`,
    );
    assert.equal(record.answers.whoAllowed, `policy rule tool:reopen_ticket decided allow (risk low, policy ${POLICY_DIGEST.slice(0, 12)})`);
    assert.match(formatAuditRecord(record), /^link: rollback of r-closed \(close_ticket\), asked by alice \[support\]: "closed by mistake"$/m);
  });

  test("a link's reason is redacted like every other text of the record", async () => {
    const secret = 'AKIAIOSFODNN7EXAMPLE';
    const request: ToolRequest = { ...overrideRequest, requestId: 'r-secret', link: { ...overrideLink, reason: `key ${secret} leaked` } };
    const b = new HistoryBuilder(request);
    await b.started();
    await b.evaluated({ ...overrideDecision, override: { ...grant, reason: `key ${secret} leaked`, deniedReasons: [`saw ${secret}`] } });
    const record = await auditRecordFromHistory({ events: b.events }, converter, { workflowId: b.workflowId });
    assert.ok(!JSON.stringify(record).includes(secret));
    assert.ok(!formatAuditRecord(record).includes(secret));
    assert.match(record.link!.reason, /REDACTED/);
  });
});

// ---------------------------------------------------------------------------------------------
// Linked requests, from visibility

/** A visibility listing entry as the client gives it. */
function execution(workflowId: string, link: string | undefined, state: string | undefined, status = 'COMPLETED') {
  const attributes = new Map<string, unknown>([
    [searchAttributes.link.name, link],
    [searchAttributes.status.name, state],
  ]);
  return { workflowId, status: { name: status }, typedSearchAttributes: { get: (key: { name: string }) => attributes.get(key.name) } };
}

/** A client that serves one history and one visibility listing, and records the queries it was asked. */
function fakeClient(history: History, listing: () => AsyncGenerator<unknown>) {
  const queries: string[] = [];
  const client = {
    options: { loadedDataConverter: converter },
    workflow: {
      getHandle: () => ({ fetchHistory: async () => history }),
      list: (options: { query: string }) => {
        queries.push(options.query);
        return listing();
      },
    },
  } as unknown as Client;
  return { client, queries };
}

describe('requests linked to a request', () => {
  test("the original's record lists its override and rollback from visibility, with their states", async () => {
    const b = new HistoryBuilder({ ...overrideRequest, requestId: 'r-denied', link: undefined });
    await b.started();
    const denied: PolicyDecision = {
      outcome: 'deny',
      tool: 'deploy_service',
      risk: 'high',
      rule: 'freeze/deploys',
      reasons: ['frozen'],
      code: 'rule_denied',
      policyDigest: POLICY_DIGEST,
    };
    await b.evaluated(denied);
    const history = await b.completed({ ...b.outcomeBase(denied), status: 'denied', code: 'rule_denied', reasons: ['frozen'] });
    const { client, queries } = fakeClient(history, async function* () {
      yield execution('toolreq/acme/r-override', 'override:r-denied', 'pending_approval', 'RUNNING');
      yield execution('toolreq/acme/r-override', 'override:r-denied', 'pending_approval', 'RUNNING'); // another run of the same request
      yield execution('toolreq/acme/r-undo', 'rollback:r-denied', 'completed');
      yield execution('toolreq/acme/r-killed', 'override:r-denied', 'pending_approval', 'TERMINATED');
      yield execution('toolreq/globex/r-x', 'override:r-denied', 'completed'); // never another tenant's
      yield execution('toolreq/acme/r-other', 'override:r-other', 'completed'); // not linked to this one
    });
    const record = await buildAuditRecord(client, 'acme', 'r-denied');
    assert.deepEqual(queries, [linkedRequestsQuery('acme', 'r-denied')]);
    assert.deepEqual(record.linked, [
      { kind: 'override', requestId: 'r-override', status: 'pending_approval' },
      { kind: 'rollback', requestId: 'r-undo', status: 'completed' },
      { kind: 'override', requestId: 'r-killed', status: 'terminated' },
    ]);
    assert.equal(record.linkedUnavailable, undefined);
    const text = formatAuditRecord(record);
    assert.match(text, /^linked: break-glass override r-override \(pending_approval\)$/m);
    assert.match(text, /^linked: rollback r-undo \(completed\)$/m);
  });

  test('a visibility error is said in the record, which is still built from the history', async () => {
    const b = new HistoryBuilder({ ...overrideRequest, requestId: 'r-denied', link: undefined });
    await b.started();
    const { client } = fakeClient({ events: b.events }, async function* () {
      yield* [];
      throw new Error('invalid query: unknown search attribute ToolgateLink');
    });
    const record = await buildAuditRecordOfWorkflow(client, b.workflowId);
    assert.deepEqual(record.linked, []);
    assert.equal(record.linkedUnavailable, 'invalid query: unknown search attribute ToolgateLink');
    assert.match(formatAuditRecord(record), /^linked: not listed \(invalid query: unknown search attribute ToolgateLink\)$/m);
  });

  test('without a tenant in the workflow id, or when asked not to, visibility is not asked', async () => {
    const b = new HistoryBuilder({ ...overrideRequest, requestId: 'r-denied', link: undefined });
    await b.started();
    const { client, queries } = fakeClient({ events: b.events }, async function* () {
      yield* [];
    });
    await buildAuditRecordOfWorkflow(client, b.workflowId, undefined, { linked: false });
    await buildAuditRecordOfWorkflow(client, 'toolreq:r-denied').catch(() => undefined);
    assert.deepEqual(queries, []);
  });

  test('listLinkedRequests stops at the limit', async () => {
    const { client } = fakeClient({ events: [] }, async function* () {
      for (let i = 0; i < 150; i += 1) yield execution(`toolreq/acme/r-${i}`, 'rollback:r-1', 'completed');
    });
    assert.equal((await listLinkedRequests(client, 'acme', 'r-1')).length, 100);
  });
});
