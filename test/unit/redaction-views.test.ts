/**
 * A secret in a request's arguments or reason never appears in what people see of it: the approval
 * API's view (list and detail share `approvalView`), the one-click link page, notifications (shared
 * and personal, Slack and JSON) and logs (including child-logger bindings). The secret is placed
 * past the point where views shorten text, to prove redaction runs on the whole text first.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { approvalView } from '../../src/approvals/view.js';
import { renderLinkPage } from '../../src/api/link-page.js';
import { createLogger } from '../../src/logger.js';
import type { ApprovalNotification } from '../../src/notify/notifier.js';
import { personalJsonPayload, sharedJsonPayload } from '../../src/notify/json-payloads.js';
import { personalSlackPayload, sharedSlackPayload } from '../../src/notify/slack-payloads.js';
import type { Approver, RequestStatus } from '../../src/shared/index.js';

const SECRET = 'ghp_Vq7Rk2Ls9Tz4Xw1Ny6Mb3Jc8Hd5Fg0Pa2Eu7';
const STRIPE = 'sk_live_4eC39HqLyjWDarjtT1zdp7dcQx';
/** Long enough that a view shortening the reason (Slack: 500 characters) would cut before the secret. */
const LONG_REASON = `${'customer escalation, see thread. '.repeat(20)}token ${SECRET} and key ${STRIPE}`;

const approver: Approver = { id: 'maria', tenant: 'acme', groups: ['manager'] };

function status(): RequestStatus {
  const args = { note: `use ${SECRET}`, nested: { api_key: STRIPE, list: [`Bearer ${SECRET}`] } };
  return {
    requestId: 'req-1',
    state: 'completed',
    tenant: 'acme',
    environment: 'production',
    tool: 'create_ticket',
    actor: { id: 'triage-bot', type: 'agent', roles: ['agent_runtime'] },
    reason: LONG_REASON,
    digest: 'd'.repeat(64),
    tier: 0,
    approvals: [{ approver: 'maria', decision: 'approve', digest: 'd'.repeat(64), reason: `ok, ${SECRET}`, at: new Date().toISOString(), tier: 0, via: 'api' }],
    edits: [{ by: 'maria', args, reason: `fixed ${STRIPE}`, at: new Date().toISOString() }],
    proposal: { tool: 'create_ticket', args },
    decision: { outcome: 'approve', risk: 'high', rule: 'tool:create_ticket', reasons: [`matched ${SECRET}`], policyDigest: 'p'.repeat(64) },
    refusals: [],
  } as unknown as RequestStatus;
}

function assertClean(label: string, text: string): void {
  assert.ok(!text.includes(SECRET), `${label} shows the GitHub token`);
  assert.ok(!text.includes(STRIPE), `${label} shows the Stripe key`);
  assert.match(text, /\[REDACTED:/, `${label} shows no redaction at all`);
}

describe('a secret in arguments and reasons appears in no view', () => {
  test('approval API view (list and detail)', () => {
    const view = approvalView(status(), approver);
    assertClean('approval view', JSON.stringify(view));
    assert.match(JSON.stringify(view.args), /\[REDACTED:github-pat\]/);
  });

  test('link page (confirmation, done and error pages)', () => {
    const view = approvalView(status(), approver);
    assertClean(
      'link page',
      renderLinkPage({
        kind: 'confirm',
        view,
        approverId: 'maria',
        decisions: ['approve', 'reject'],
        linkExpiresAt: 'soon',
        warning: `note ${SECRET} ${STRIPE}`,
      }),
    );
    assertClean('link error page', renderLinkPage({ kind: 'error', title: `failed ${SECRET}`, message: `tool said ${STRIPE}` }));
  });

  test('notifications: shared and personal, Slack and JSON; the reason is redacted before it is shortened', () => {
    const n: ApprovalNotification = {
      kind: 'requested',
      tier: 0,
      groups: ['manager'],
      requestId: 'req-1',
      tenant: 'acme',
      tool: 'create_ticket',
      risk: 'high',
      actor: 'triage-bot',
      digest: 'd'.repeat(64),
      reviewUrl: 'https://gate.example/v1/approvals/req-1',
      reason: LONG_REASON,
    };
    const link = { approver: 'maria', url: 'https://gate.example/v1/links/x', expiresAt: 'soon' };
    assertClean('shared JSON', JSON.stringify(sharedJsonPayload(n)));
    assertClean('personal JSON', JSON.stringify(personalJsonPayload(n as never, link)));
    const slack = JSON.stringify(sharedSlackPayload(n));
    // The Slack reason is cut at 500 characters; redaction before that leaves no secret prefix behind either.
    assert.ok(!slack.includes('ghp_Vq7') && !slack.includes('sk_live_4eC'), slack);
    assert.ok(!JSON.stringify(personalSlackPayload(n as never, link)).includes('ghp_Vq7'));
    assert.ok(!JSON.stringify(sharedJsonPayload({ ...n, reason: `short ${STRIPE}` })).includes(STRIPE));
  });

  test('logs: messages, merged objects, errors and child-logger bindings', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger('test', 'info', sink);
    logger.info({ args: { note: SECRET } }, `reason ${STRIPE}`);
    logger.error({ err: new Error(`upstream said ${SECRET}`) }, 'failed');
    logger.child({ requestId: 'req-1', token: STRIPE, note: `x ${SECRET}` }).info('child line');
    const all = lines.join('');
    assert.equal(lines.length, 3);
    assertClean('logs', all);
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), line);
    assert.equal(JSON.parse(lines[2]!).requestId, 'req-1');
  });
});
