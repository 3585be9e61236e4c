/**
 * What approvers are shown of the requests issue 16 adds: the approval view (the API's JSON), the
 * inbox page rendered from it, and the notifications — a break-glass override says so first
 * everywhere, a rollback names its original, an end user's confirmation is never an approver's vote.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { approvalView } from '../../src/approvals/view.js';
import type { Frame, InboxRequestView } from '../../src/inbox/page-frame.js';
import { requestPage } from '../../src/inbox/request-page.js';
import { consoleLine } from '../../src/notify/console-line.js';
import { isDecisionNotification, type DecisionNotification } from '../../src/notify/facts.js';
import { personalJsonPayload, sharedJsonPayload } from '../../src/notify/json-payloads.js';
import { sharedSlackPayload } from '../../src/notify/slack-payloads.js';
import type { ApprovalNotification } from '../../src/notify/types.js';
import type { ApprovalPlan, Approver, OverrideGrant, PolicyDecision, RequestLink, RequestStatus } from '../../src/shared/index.js';

const DIGEST = 'd'.repeat(64);
const grant: OverrideGrant = {
  breakGlass: 'change_freeze',
  deniedRule: 'freeze/deploys',
  deniedCode: 'rule_denied',
  deniedReasons: ['deploys are frozen until Monday'],
  by: 'sam',
  reason: 'prod is down, hotfix 1.2.3',
  notify: ['security'],
};
const overrideLink: RequestLink = {
  kind: 'override',
  requestId: 'r-denied',
  tool: 'deploy_service',
  by: { id: 'sam', groups: ['sre-oncall'] },
  reason: 'prod is down, hotfix 1.2.3',
};
const plan: ApprovalPlan = {
  name: 'break_glass:change_freeze',
  groups: ['sre-oncall'],
  allOf: [],
  minApprovals: 1,
  rejectionsToDeny: 1,
  escalation: [],
  expiresAfterMs: 900_000,
};
const decision: PolicyDecision = {
  outcome: 'approve',
  tool: 'deploy_service',
  risk: 'high',
  rule: 'break_glass:change_freeze',
  reasons: ['break-glass change_freeze: sam overrides freeze/deploys (rule_denied): prod is down, hotfix 1.2.3'],
  policyDigest: 'p'.repeat(64),
  approval: plan,
  override: grant,
};

function status(overrides: Partial<RequestStatus> = {}): RequestStatus {
  return {
    requestId: 'r-override',
    workflowId: 'toolreq/acme/r-override',
    state: 'pending_approval',
    tenant: 'acme',
    environment: 'production',
    tool: 'deploy_service',
    actor: { id: 'deploy-bot', type: 'agent', roles: ['agent_runtime'] },
    decision,
    proposal: { args: { service: 'checkout' } } as unknown as RequestStatus['proposal'],
    digest: DIGEST,
    tier: 0,
    eligibleGroups: ['sre-oncall'],
    approvals: [],
    refusals: [],
    refusalsDropped: 0,
    edits: [],
    notifications: [],
    link: overrideLink,
    ...overrides,
  };
}
const omar: Approver = { id: 'omar', tenant: 'acme', groups: ['sre-oncall'] };
const sam: Approver = { id: 'Sam', tenant: 'acme', groups: ['sre-oncall'] };
const frame: Frame = { base: '/inbox', title: 'r-override', approver: { id: 'omar', tenant: 'acme', groups: ['sre-oncall'] }, csrf: 'c' };
const pageOf = (s: RequestStatus, approver = omar) => requestPage(frame, { view: approvalView(s, approver), csrf: 'c' });

describe("the approver's view of a linked request", () => {
  test('a break-glass override: the link with its readable line and the warning that approving overrides a denial', () => {
    const view = approvalView(status(), omar);
    assert.deepEqual(view.link, { ...overrideLink, summary: 'Break-glass override of r-denied: prod is down, hotfix 1.2.3 — asked by sam' });
    assert.deepEqual(view.override, {
      ...grant,
      warning:
        'Approving overrides a policy denial: rule freeze/deploys denied this call (rule_denied): deploys are frozen until Monday. ' +
        'Break-glass rule change_freeze lets a second person allow it; sam asked: prod is down, hotfix 1.2.3',
    });
    assert.equal(view.canDecide, true);
    assert.equal(view.endUser, undefined);
    assert.deepEqual(view.confirmations, []);
  });

  test('the person who asked for the override cannot be its second person', () => {
    const view = approvalView(status(), sam);
    assert.equal(view.canDecide, false);
    assert.equal(view.cannotDecideBecause, 'you asked for this break-glass override: a second person must approve it');
  });

  test('a rollback: "Rollback of <original>"', () => {
    const link: RequestLink = {
      kind: 'rollback',
      requestId: 'r-closed',
      tool: 'close_ticket',
      by: { id: 'alice', groups: ['support'] },
      reason: 'closed by mistake',
    };
    const view = approvalView(status({ link, decision: { ...decision, override: undefined, rule: 'tool:reopen_ticket' } }), omar);
    assert.equal(view.link?.summary, 'Rollback of r-closed');
    assert.equal(view.override, undefined);
  });

  test('an end-user plan: who may confirm, and the answers kept apart from the votes', () => {
    const endUserPlan: ApprovalPlan = { ...plan, name: 'quick_confirm', groups: [], endUser: true };
    const answer = {
      principal: 'maria',
      decision: 'reject' as const,
      digest: DIGEST,
      at: '2030-01-01T00:00:00.000Z',
      reason: 'card 4111 1111 1111 1111 is wrong',
    };
    const s = status({
      link: undefined,
      onBehalfOf: [{ type: 'human', id: 'Maria' }],
      decision: { ...decision, override: undefined, approval: endUserPlan },
      confirmations: [answer],
    });
    const view = approvalView(s, omar);
    assert.deepEqual(view.endUser, { principal: 'maria', note: 'the end user maria may confirm this (only they can)', only: true });
    assert.equal(view.plan?.endUser, true);
    assert.deepEqual(view.approvals, []);
    assert.equal(view.confirmations.length, 1);
    assert.ok(!view.confirmations[0]!.reason!.includes('4111 1111 1111 1111'), 'the reason is redacted');
    assert.equal(view.canDecide, false, 'no approver group: only the end user can satisfy the plan');
    const html = pageOf(s);
    assert.match(html, /<dd id="request-end-user">the end user maria may confirm this \(only they can\)<\/dd>/);
    assert.match(html, /<li class="confirmation" data-decision="reject">declined by the end user maria <time/);
    assert.match(html, /quick_confirm: no approver group; the end user&#39;s confirmation/);
    const withGroups = approvalView({ ...s, decision: { ...s.decision!, approval: { ...endUserPlan, groups: ['support'] } } }, omar);
    assert.equal(withGroups.endUser?.note, 'the end user maria may confirm this');
    assert.equal(approvalView({ ...s, onBehalfOf: [] }, omar).endUser?.note, 'the end user may confirm this, but the request names no end user');
  });
});

describe('the inbox page of a linked request', () => {
  test('an override shows the BREAK-GLASS OVERRIDE banner first, and links to the original request', () => {
    const html = pageOf(status());
    const banner = html.indexOf('<section id="break-glass-banner" class="break-glass" role="alert"><h2>BREAK-GLASS OVERRIDE</h2>');
    assert.ok(banner > 0 && banner < html.indexOf('<dl id="request-details">'), 'the banner comes before the details');
    assert.match(html, /<span id="break-glass-badge" class="badge badge-break-glass">BREAK-GLASS<\/span>/);
    assert.match(
      html,
      /<p id="break-glass-warning">Approving overrides a policy denial: rule <code>freeze\/deploys<\/code> denied this call \(<code>rule_denied<\/code>\)\.<\/p>/,
    );
    assert.match(html, /<li>deploys are frozen until Monday<\/li>/);
    assert.match(html, /<a id="request-link-original" href="\/inbox\/requests\/r-denied">Original request r-denied<\/a>/);
    assert.match(html, /<p id="request-link-summary">Break-glass override of r-denied: prod is down, hotfix 1\.2\.3 — asked by sam<\/p>/);
  });

  test('a rollback has its badge and the link to the original; an ordinary request has neither', () => {
    const link: RequestLink = { kind: 'rollback', requestId: 'r-closed', tool: 'close_ticket', by: { id: 'alice', groups: [] }, reason: 'closed by mistake' };
    const html = pageOf(status({ link, decision: { ...decision, override: undefined } }));
    assert.match(html, /<span id="rollback-badge" class="badge badge-rollback">ROLLBACK<\/span>/);
    assert.match(html, /<dt>Rolls back<\/dt><dd id="request-link" data-kind="rollback">/);
    assert.match(html, /href="\/inbox\/requests\/r-closed"/);
    assert.ok(!html.includes('id="break-glass-banner"') && !html.includes('id="break-glass-badge"'));
    const plain = pageOf(status({ link: undefined, decision: { ...decision, override: undefined } }));
    for (const id of ['break-glass-banner', 'rollback-badge', 'request-link', 'request-end-user', 'request-confirmations'])
      assert.ok(!plain.includes(`id="${id}"`), id);
  });

  test('every text of the override is escaped', () => {
    const evil = '<script>alert(1)</script>"\'&';
    const html = pageOf(
      status({
        link: { ...overrideLink, reason: evil },
        decision: { ...decision, override: { ...grant, reason: evil, deniedReasons: [evil], deniedRule: evil } },
      }),
    );
    assert.ok(!html.includes('<script>alert'), 'no markup of the request reaches the page');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;'));
  });

  test('an older API that sends none of the new fields still renders', () => {
    const view = approvalView(status({ link: undefined, decision: { ...decision, override: undefined } }), omar) as Partial<InboxRequestView>;
    delete view.confirmations;
    delete view.endUser;
    delete view.link;
    delete view.override;
    assert.match(requestPage(frame, { view: view as InboxRequestView, csrf: 'c' }), /<h1 id="request-title">deploy_service <small>r-override<\/small><\/h1>/);
  });
});

function notification(overrides: Partial<ApprovalNotification> = {}): ApprovalNotification {
  return {
    kind: 'requested',
    tier: 0,
    groups: ['sre-oncall'],
    requestId: 'r-override',
    tenant: 'acme',
    tool: 'deploy_service',
    risk: 'high',
    actor: 'deploy-bot',
    digest: DIGEST,
    expiresAt: '2030-03-01T14:05:00.000Z',
    reviewUrl: 'https://gate.example/inbox/requests/r-override',
    override: grant,
    requestLink: overrideLink,
    ...overrides,
  };
}

describe('notifications of a linked request', () => {
  test('an override request says BREAK-GLASS first in Slack, JSON and the console', () => {
    const slack = sharedSlackPayload(notification());
    const header = slack.blocks[0] as { text: { text: string } };
    assert.equal(header.text.text, 'BREAK-GLASS override requested: deploy_service (high risk)');
    assert.match(
      slack.text,
      /^BREAK-GLASS override requested: deploy_service \(high risk\) · overrides freeze\/deploys \(rule_denied\), asked by sam · tenant acme/,
    );
    const section = (slack.blocks[1] as { text: { text: string } }).text.text;
    assert.match(
      section,
      /^\*BREAK-GLASS OVERRIDE\* of request `r-denied`\nApproving overrides a policy denial: rule `freeze\/deploys` \(`rule_denied`\)\n• deploys are frozen until Monday\n/,
    );
    assert.match(section, /\nAlways notified: security$/);
    const json = sharedJsonPayload(notification());
    assert.equal(json.subject, 'BREAK-GLASS override requested: deploy_service (high risk)');
    assert.deepEqual(json.override, grant);
    assert.deepEqual(json.requestLink, overrideLink);
    assert.equal(json.link, undefined, 'the request link is never a decision link');
    const personal = personalJsonPayload(notification() as DecisionNotification, {
      approver: 'omar',
      url: 'https://gate.example/l/x',
      expiresAt: '2030-03-01T14:00:00.000Z',
    });
    assert.equal(personal.subject, 'BREAK-GLASS override requested: deploy_service (high risk)');
    assert.equal(personal.link.url, 'https://gate.example/l/x');
    assert.match(
      consoleLine(notification(), Date.parse('2030-03-01T13:05:00.000Z')),
      /^toolgate: BREAK-GLASS override requested: deploy_service \(high risk\) · overrides freeze\/deploys \(rule_denied\), asked by sam: "prod is down, hotfix 1\.2\.3" · tenant acme/,
    );
  });

  test('the notice to the security groups (kind override) carries no decision link and says what it is', () => {
    const notice = notification({ kind: 'override', groups: ['security'] });
    assert.equal(isDecisionNotification(notice), false);
    assert.equal(sharedJsonPayload(notice).subject, 'BREAK-GLASS override requested: deploy_service (high risk)');
    assert.match(consoleLine(notice), /^toolgate: BREAK-GLASS override requested: /);
  });

  test('the outcome of an override: approved, rejected', () => {
    const completed = notification({
      kind: 'outcome',
      outcome: 'completed',
      outcomeDetails: { status: 'completed', approvedBy: ['omar'], runAs: 'svc-deploy' },
    });
    assert.equal(sharedJsonPayload(completed).subject, 'BREAK-GLASS override approved: deploy_service (request r-override completed)');
    assert.match(
      consoleLine(completed),
      /^toolgate: BREAK-GLASS override approved: request r-override \(deploy_service, tenant acme, requested by deploy-bot\) completed by svc-deploy, approved by omar · overrides/,
    );
    const rejected = notification({ kind: 'outcome', outcome: 'rejected', outcomeDetails: { status: 'rejected', rejectedBy: 'omar' } });
    assert.equal(
      (sharedSlackPayload(rejected).blocks[0] as { text: { text: string } }).text.text,
      'BREAK-GLASS override rejected: deploy_service (request r-override rejected)',
    );
  });

  test('a rollback names its original; an ordinary request is unchanged', () => {
    const link: RequestLink = { kind: 'rollback', requestId: 'r-closed', tool: 'close_ticket', by: { id: 'alice', groups: [] }, reason: 'closed by mistake' };
    const rollback = notification({ override: undefined, requestLink: link, tool: 'reopen_ticket', risk: 'low' });
    assert.equal(sharedJsonPayload(rollback).subject, 'Approval needed: reopen_ticket (low risk) · rollback of r-closed');
    assert.match(
      (sharedSlackPayload(rollback).blocks[1] as { text: { text: string } }).text.text,
      /^\*Rollback\* of request `r-closed` \(`close_ticket`\), asked by alice:\n>closed by mistake$/,
    );
    assert.match(consoleLine(rollback), /^toolgate: approval needed: reopen_ticket \(low risk\) · rollback of r-closed · tenant acme/);
    const plain = notification({ override: undefined, requestLink: undefined });
    assert.equal(sharedJsonPayload(plain).subject, 'Approval needed: deploy_service (high risk)');
    assert.ok(!JSON.stringify(sharedSlackPayload(plain)).includes('BREAK-GLASS'));
  });

  test("an override's free text is redacted and inert in Slack", () => {
    const secret = 'AKIAIOSFODNN7EXAMPLE';
    const forged = '*Approved by CISO*';
    const n = notification({ override: { ...grant, reason: `${secret}\n${forged}`, deniedReasons: [`${forged}`] } });
    const slack = JSON.stringify(sharedSlackPayload(n));
    assert.ok(!slack.includes(secret));
    assert.ok(!JSON.stringify(sharedJsonPayload(n)).includes(secret));
    assert.ok(!consoleLine(n).includes(secret));
    assert.ok(slack.includes('*\u200bApproved by CISO'), 'a formatting marker of the text is broken');
  });
});
