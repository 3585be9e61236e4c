/**
 * Dry-run previews without a server: the manifest's `preview:` block as the loader reads and
 * refuses it; the preview call (`runPreview`) with its redaction, size limit, failures and timeout,
 * through the real code and HTTP adapters; how the approval view, the inbox page, the link page and
 * notifications show a preview (redacted, shortened, marked as a dry run, failures said as such);
 * and the shipped example tool's preview, which counts and closes nothing.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { renderLinkPage } from '../../src/api/link-page.js';
import { auditRecordFromHistory } from '../../src/audit/record.js';
import { formatAuditRecord } from '../../src/audit/record-format.js';
import { dataConverterFor, parseKeyringEnv } from '../../src/codec/index.js';
import type { ApprovalNotification } from '../../src/notify/types.js';
import { historyFromJSON, loadDataConverter } from '../../src/temporal/internals.js';
import { buildProposal, canonicalDigest, proposalDigest } from '../../src/approvals/digest.js';
import { PREVIEW_LABEL, approvalView, previewView } from '../../src/approvals/view.js';
import { requestPage } from '../../src/inbox/request-page.js';
import { consoleLine } from '../../src/notify/console-line.js';
import { PREVIEW_MESSAGE_CHARS, type DecisionNotification, type PreviewFacts } from '../../src/notify/facts.js';
import { personalJsonPayload, sharedJsonPayload } from '../../src/notify/json-payloads.js';
import { sharedSlackPayload } from '../../src/notify/slack-payloads.js';
import type { PreviewDocument } from '../../src/policy/document.js';
import { PolicyLoadError, parsePolicy, type PolicyIssue } from '../../src/policy/index.js';
import type { ToolManifestEntry, ToolPreview } from '../../src/policy/model.js';
import { PREVIEW_BOUNDS, type PolicyDecision, type ProposalPreview, type RequestStatus, type ToolRequest } from '../../src/shared/index.js';
import { createExampleTools } from '../../src/tools/examples.js';
import { cutUtf8, runPreview, type PreviewCall } from '../../src/tools/preview.js';
import type { ToolContext, ToolHandler } from '../../src/tools/types.js';
import { policy, type ManifestSpec, type PolicyBuilder, type ToolSpec } from '../helpers/policy-builder.js';

const TOKEN = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789';

/** purge: high risk, a manager approves, only role bot calls it (a test may say otherwise with `tool`). */
function purgePolicy(tool: ToolSpec = { risk: 'high', approval: 'manager', roles: ['bot'] }): PolicyBuilder {
  return policy()
    .tool('purge', tool)
    .plan('manager', { groups: ['manager'] });
}

/**
 * {@link purgePolicy} with purge's manifest entry written as YAML around `preview` (lines indented
 * 4): the tests of how the loader reads and refuses the block as written, wrong types included.
 */
function policyText(preview: string, tool?: ToolSpec): string {
  return `${purgePolicy(tool).yaml()}manifest:
  purge:
    run_as: svc-purge
    adapter: { type: code }
${preview}
    args: { type: object }
`;
}

function loadIssues(text: string): PolicyIssue[] {
  try {
    parsePolicy([{ file: 'p.yaml', text }]);
  } catch (error) {
    assert.ok(error instanceof PolicyLoadError, String(error));
    return error.issues;
  }
  assert.fail('the policy loaded, but it should not have');
}

const issueAt = (issues: PolicyIssue[], path: string): PolicyIssue => {
  const found = issues.find((issue) => issue.path === path);
  assert.ok(found, `no issue at ${path}: ${JSON.stringify(issues)}`);
  return found;
};

describe('the manifest preview block', () => {
  test('a code preview gets its defaults; an http preview its own timeout as the adapter timeout', () => {
    const code = parsePolicy([{ file: 'p.yaml', text: policyText('    preview: { adapter: { type: code, handler: purge_preview } }') }]);
    assert.deepEqual(code.manifest('purge')?.preview, {
      adapter: { type: 'code', handler: 'purge_preview' },
      timeoutMs: PREVIEW_BOUNDS.defaultTimeoutMs,
      maxBytes: PREVIEW_BOUNDS.defaultMaxBytes,
    });
    const http = parsePolicy([
      {
        file: 'p.yaml',
        text: policyText(
          '    preview: { adapter: { type: http, url: "https://tools.example/preview", headers: { x-team: ops } }, timeout: 2500ms, max_bytes: 512 }',
        ),
      },
    ]);
    assert.deepEqual(http.manifest('purge')?.preview, {
      adapter: { type: 'http', url: 'https://tools.example/preview', method: 'POST', timeoutMs: 2500, headers: { 'x-team': 'ops' } },
      timeoutMs: 2500,
      maxBytes: 512,
    });
  });

  test('the preview is part of the tool digest: what approvers are shown is part of what the tool is', () => {
    const digest = (preview?: PreviewDocument) =>
      parsePolicy([{ file: 'p.yaml', text: purgePolicy().codeTool('purge', { preview }).yaml() }]).manifest('purge')?.digest;
    const none = digest();
    const small = digest({ adapter: { type: 'code', handler: 'p' }, max_bytes: 512 });
    const large = digest({ adapter: { type: 'code', handler: 'p' }, max_bytes: 1024 });
    assert.equal(new Set([none, small, large]).size, 3);
  });

  test('a timeout above 10s, a size out of bounds, an MCP or handler-less adapter, an adapter timeout and unknown keys are located load errors', () => {
    assert.match(
      issueAt(loadIssues(policyText('    preview: { adapter: { type: code, handler: p }, timeout: 11s }')), 'manifest.purge.preview.timeout').message,
      /longer than a preview may take, 10s/,
    );
    assert.match(
      issueAt(loadIssues(policyText('    preview: { adapter: { type: code, handler: p }, max_bytes: 10 }')), 'manifest.purge.preview.max_bytes').message,
      /at least 64/,
    );
    assert.match(
      issueAt(loadIssues(policyText('    preview: { adapter: { type: code, handler: p }, max_bytes: 100000 }')), 'manifest.purge.preview.max_bytes').message,
      /at most 65536/,
    );
    assert.match(
      issueAt(loadIssues(policyText('    preview: { adapter: { type: mcp, server: s, tool: t } }')), 'manifest.purge.preview.adapter.type').message,
      /type code with a handler, or type http/,
    );
    assert.equal(issueAt(loadIssues(policyText('    preview: { adapter: { type: code } }')), 'manifest.purge.preview.adapter.handler').message, 'is required');
    assert.match(
      issueAt(
        loadIssues(policyText('    preview: { adapter: { type: http, url: "https://x.example/p", timeout: 1s } }')),
        'manifest.purge.preview.adapter.timeout',
      ).message,
      /unknown key/,
    );
    assert.match(
      issueAt(loadIssues(policyText('    preview: { adapter: { type: code, handler: p }, retries: 3 }')), 'manifest.purge.preview.retries').message,
      /unknown key "retries"/,
    );
  });

  test('a preview on a tool that never asks for approval is refused; a rule that may ask is enough', () => {
    const issue = issueAt(loadIssues(policyText('    preview: { adapter: { type: code, handler: p } }', { roles: ['bot'] })), 'manifest.purge.preview');
    assert.match(issue.message, /never asks for approval .* a preview runs only before approvers decide/);
    assert.ok(issue.line !== undefined && issue.line > 1, 'located at the preview');
    const ruled: ToolSpec = { roles: ['bot'], rules: [{ name: 'big', when: 'true', approval: 'manager' }] };
    assert.ok(parsePolicy([{ file: 'p.yaml', text: policyText('    preview: { adapter: { type: code, handler: p } }', ruled) }]).manifest('purge')?.preview);
  });
});

/** A manifest entry and preview for `runPreview`, built by the loader where it can be. */
function previewCall(
  over: { handler?: ToolHandler; preview?: Partial<ToolPreview>; egress?: ManifestSpec['egress']; tenant?: string } = {},
): PreviewCall & { seen: ToolContext[] } {
  const text = purgePolicy()
    .codeTool('purge', { preview: { adapter: { type: 'code', handler: 'purge' }, max_bytes: 256 }, egress: over.egress })
    .yaml();
  const manifest = parsePolicy([{ file: 'p.yaml', text }]).manifest('purge') as ToolManifestEntry;
  const seen: ToolContext[] = [];
  const handler: ToolHandler = over.handler ?? (async () => 'ok');
  return {
    manifest,
    preview: { ...(manifest.preview as ToolPreview), ...over.preview },
    context: {
      args: { older_than_days: 30 },
      idempotencyKey: 'toolgate-preview:w:d',
      runAs: 'svc-purge',
      requestId: 'r-1',
      tenant: over.tenant ?? 'acme',
      tool: 'purge',
    },
    tools: {
      purge: async (context) => {
        seen.push(context);
        return handler(context);
      },
    },
    seen,
  };
}

describe('runPreview', () => {
  test('calls the code handler in preview mode, once, as the tool; redacts the whole answer, then cuts it to max_bytes', async () => {
    const call = previewCall({
      handler: async () => ({ summary: 'would delete 3,214 rows', connection: `token ${TOKEN}`, rows: Array.from({ length: 100 }, (_, i) => `row-${i}`) }),
    });
    const before = Date.now();
    const preview = await runPreview(call);
    assert.equal(call.seen.length, 1);
    const [context] = call.seen;
    assert.equal(context!.preview, true);
    assert.equal(context!.attempt, 1);
    assert.equal(context!.runAs, 'svc-purge');
    assert.deepEqual(context!.args, { older_than_days: 30 });
    assert.ok(
      context!.deadline.getTime() - before >= PREVIEW_BOUNDS.defaultTimeoutMs - 50 &&
        context!.deadline.getTime() - before <= PREVIEW_BOUNDS.defaultTimeoutMs + 50,
    );
    assert.ok(context!.signal.aborted, 'the signal is released once the preview is over');
    assert.equal(preview.status, 'ok');
    if (preview.status !== 'ok') return;
    assert.equal(preview.truncated, true);
    assert.equal(typeof preview.result, 'string');
    const text = preview.result as string;
    assert.ok(Buffer.byteLength(text, 'utf8') <= 256, `${Buffer.byteLength(text, 'utf8')} bytes`);
    assert.ok(text.endsWith('…'));
    assert.match(text, /would delete 3,214 rows/);
    assert.match(text, /token \[REDACTED:bearer_token\]/);
    assert.ok(!text.includes(TOKEN));
    assert.deepEqual(preview.redactions, { bearer_token: 1 });
    assert.ok(preview.bytes > 256, 'bytes is the size of the whole answer before redaction');
  });

  test('a short answer is kept as JSON data, well-formed (a lone surrogate cannot break the digest)', async () => {
    const preview = await runPreview(previewCall({ handler: async () => ({ rows: 3, note: 'bad \ud800 text' }) }));
    assert.equal(preview.status, 'ok');
    assert.deepEqual(preview.status === 'ok' ? preview.result : undefined, { rows: 3, note: 'bad \ufffd text' });
    assert.doesNotThrow(() => canonicalDigest(preview));
  });

  test("an error is a failed preview with a redacted message; a missing handler and a foreign tenant's record too", async () => {
    const failed = await runPreview(previewCall({ handler: async () => Promise.reject(new Error('no count: password=hunter2-very-secret')) }));
    assert.deepEqual({ ...failed, at: '' }, { status: 'failed', message: 'no count: password=[REDACTED:secret_assignment]', at: '' });
    const missing = previewCall();
    const unregistered = await runPreview({ ...missing, preview: { ...missing.preview, adapter: { type: 'code', handler: 'nowhere' } } });
    assert.equal(unregistered.status, 'failed');
    assert.match(unregistered.status === 'failed' ? unregistered.message : '', /no code handler named nowhere/);
    const foreign = await runPreview(previewCall({ handler: async () => ({ tenant: 'globex', rows: 2 }) }));
    assert.equal(foreign.status, 'failed');
    assert.match(foreign.status === 'failed' ? foreign.message : '', /may not be shown: .*globex/);
  });

  test('a handler that ignores its signal is given up at the timeout', async () => {
    const call = previewCall({ handler: () => new Promise(() => {}), preview: { timeoutMs: 150 } });
    const started = Date.now();
    const preview = await runPreview(call);
    const took = Date.now() - started;
    assert.equal(preview.status, 'timed_out');
    assert.match(preview.status === 'timed_out' ? preview.message : '', /did not answer within 150 ms/);
    assert.ok(took >= 140 && took < 1000, `took ${took} ms`);
    assert.ok(call.seen[0]!.signal.aborted);
  });

  test('an http preview goes through the HTTP adapter: Toolgate-Preview: 1, the destination guard, the run-as header', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ diff: '- a\n+ b' })));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/preview`;
    try {
      const http = (egress?: ManifestSpec['egress']) => {
        const call = previewCall({ egress });
        return { ...call, preview: { ...call.preview, adapter: { type: 'http' as const, url, method: 'POST' as const, timeoutMs: 2000, headers: {} } } };
      };
      const answered = await runPreview(http({ allow_private: true }));
      assert.deepEqual(answered.status === 'ok' ? answered.result : answered, { diff: '- a\n+ b' });
      assert.equal(seen[0]?.['toolgate-preview'], '1');
      assert.equal(seen[0]?.['x-toolgate-run-as'], 'svc-purge');
      // Loopback is private address space: without allow_private the guard refuses it, and nothing is sent.
      const blocked = await runPreview(http());
      assert.equal(blocked.status, 'failed');
      assert.match(blocked.status === 'failed' ? blocked.message : '', /destination blocked by egress policy/);
      assert.equal(seen.length, 1);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('cutUtf8 cuts between code points within the byte budget', () => {
    assert.equal(cutUtf8('ééé', 5), 'é…');
    assert.equal(cutUtf8('a😀b', 7), 'a…');
    assert.equal(cutUtf8('a😀b', 8), 'a😀…');
  });
});

// ---------------------------------------------------------------------------------------------
// What approvers see.

const decision: PolicyDecision = {
  outcome: 'approve',
  tool: 'purge',
  risk: 'high',
  rule: 'tool:purge',
  reasons: [],
  policyDigest: 'p'.repeat(64),
  toolDigest: 't'.repeat(64),
  runAs: 'svc-purge',
  toolSigners: [
    { role: 'owner', key: 'k-0123456789abcdef' },
    { role: 'security', key: 'k-fedcba9876543210' },
  ],
  approval: { name: 'manager', groups: ['manager'], allOf: [], minApprovals: 1, rejectionsToDeny: 1, escalation: [], expiresAfterMs: 3_600_000 },
};
const request: ToolRequest = {
  requestId: 'r-1',
  actor: { id: 'bot', type: 'agent', roles: ['bot'] },
  tenant: 'acme',
  environment: 'production',
  tool: 'purge',
  args: { older_than_days: 30 },
};

/** A waiting request whose proposal carries `preview` (as a history could hold it: not necessarily redacted). */
function statusWith(preview: ProposalPreview): RequestStatus {
  const proposal = { ...buildProposal(request, 'toolreq/acme/r-1', decision), preview };
  return {
    requestId: 'r-1',
    workflowId: 'toolreq/acme/r-1',
    state: 'pending_approval',
    tenant: 'acme',
    environment: 'production',
    tool: 'purge',
    actor: request.actor,
    decision,
    proposal,
    digest: proposalDigest(proposal),
    tier: 0,
    eligibleGroups: ['manager'],
    approvals: [],
    refusals: [],
    refusalsDropped: 0,
    edits: [],
    notifications: [],
  };
}
const approver = { id: 'maria', tenant: 'acme', groups: ['manager'] };
const AT = '2026-03-01T10:00:00.000Z';
const ok = statusWith({ status: 'ok', result: `would delete 3,214 rows <script>alert(1)</script>\nvia token ${TOKEN}`, bytes: 90, at: AT });
const timedOut = statusWith({ status: 'timed_out', message: 'the preview did not answer within 3000 ms; decide without it', at: AT });

describe('approvers see the preview, marked as a dry run, redacted', () => {
  test("the approval view: the preview (redacted again), the signed proposal, the tool's signers", () => {
    const view = approvalView(ok, approver);
    assert.equal(view.preview?.status, 'ok');
    assert.match(view.preview?.text ?? '', /^would delete 3,214 rows/);
    assert.ok(!JSON.stringify(view).includes(TOKEN), 'neither the preview nor the proposal in the view shows the secret');
    assert.equal(view.proposal?.preview?.status, 'ok');
    assert.deepEqual(view.toolSigners, decision.toolSigners);
    assert.equal(view.digest, ok.digest);
    assert.deepEqual(approvalView({ ...ok, decision: { ...decision, toolSigners: undefined } }, approver).toolSigners, []);
  });

  test('previewView reads whatever a history holds, and bounds it', () => {
    assert.equal(previewView(undefined), undefined);
    assert.equal(previewView({ status: 'maybe' }), undefined);
    assert.deepEqual(previewView({ status: 'failed', message: 42 }), { status: 'failed', text: '', truncated: false });
    const huge = previewView({ status: 'ok', result: 'x'.repeat(PREVIEW_BOUNDS.maxMaxBytes + 10) });
    assert.equal(huge?.truncated, true);
    assert.equal(huge?.text.length, PREVIEW_BOUNDS.maxMaxBytes + 1);
    assert.deepEqual(previewView({ status: 'ok', result: { rows: 3 } })?.text, '{\n  "rows": 3\n}');
  });

  test('the inbox page: the preview escaped under its label, the signers next to the tool; a timed-out preview said as such', () => {
    const html = requestPage({ base: '/inbox', title: 'r-1' }, { view: approvalView(ok, approver), csrf: 'c' });
    assert.match(
      html,
      /<dt>Preview \(dry run\)<\/dt><dd id="request-preview" class="preview preview-ok" data-status="ok"><pre>would delete 3,214 rows &lt;script&gt;/,
    );
    assert.ok(!html.includes('<script>alert'), 'escaped');
    assert.ok(!html.includes(TOKEN));
    assert.match(html, /<dt>Tool signed by<\/dt><dd id="request-tool-signers">owner \(k-0123456789abcdef\), security \(k-fedcba9876543210\)<\/dd>/);
    const late = requestPage({ base: '/inbox', title: 'r-1' }, { view: approvalView(timedOut, approver), csrf: 'c' });
    assert.match(
      late,
      /<dt>Preview \(dry run\) timed out<\/dt><dd id="request-preview" class="preview preview-timed_out" data-status="timed_out"><p>the preview did not answer within 3000 ms/,
    );
    assert.match(late, /id="approve-form"/, 'the request can be decided all the same');
    const none = statusWith({ status: 'ok', result: 'x', bytes: 3, at: AT });
    delete none.proposal?.preview;
    assert.doesNotMatch(
      requestPage(
        { base: '/inbox', title: 'r-1' },
        { view: approvalView({ ...none, decision: { ...decision, toolSigners: undefined } }, approver), csrf: 'c' },
      ),
      /request-preview|request-tool-signers/,
    );
  });

  test('the link page shows the preview under its label, escaped', () => {
    const html = renderLinkPage({
      kind: 'confirm',
      view: approvalView(ok, approver),
      approverId: 'maria',
      decisions: ['approve', 'reject'],
      linkExpiresAt: 'soon',
    });
    assert.match(html, new RegExp(`<dt>${PREVIEW_LABEL.replace(/[()]/g, '\\$&')}</dt><dd><pre>would delete 3,214 rows &lt;script&gt;`));
    assert.ok(!html.includes(TOKEN));
    const late = renderLinkPage({
      kind: 'confirm',
      view: approvalView(timedOut, approver),
      approverId: 'maria',
      decisions: ['approve'],
      linkExpiresAt: 'soon',
    });
    assert.match(late, /<dt>preview \(dry run\) timed out<\/dt><dd><p class="warn">the preview did not answer/);
  });
});

describe('notifications carry the preview, redacted and shortened', () => {
  const notification = (preview: ProposalPreview, kind: ApprovalNotification['kind'] = 'requested'): ApprovalNotification => ({
    kind,
    tier: 0,
    groups: ['manager'],
    requestId: 'r-1',
    tenant: 'acme',
    tool: 'purge',
    risk: 'high',
    actor: 'bot',
    digest: 'd'.repeat(64),
    reviewUrl: 'https://gate.example/inbox/requests/r-1',
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    preview,
  });
  const long: ProposalPreview = { status: 'ok', result: `${'- old line\n+ new line\n'.repeat(200)}token ${TOKEN}`, bytes: 5000, at: AT };

  test('JSON events (shared and personal): the preview facts, the secret redacted on the whole text before it is cut', () => {
    const shared = sharedJsonPayload(notification(long));
    const facts = shared.preview as PreviewFacts;
    assert.equal(facts.status, 'ok');
    assert.equal(facts.headline, 'preview (dry run)');
    assert.equal(facts.truncated, true);
    assert.equal(facts.text.length, PREVIEW_MESSAGE_CHARS);
    assert.ok(!JSON.stringify(shared).includes(TOKEN));
    const personal = personalJsonPayload(notification({ status: 'failed', message: `no count: token ${TOKEN}`, at: AT }) as DecisionNotification, {
      approver: 'maria',
      url: 'https://gate.example/v1/links/x',
      expiresAt: AT,
    });
    assert.deepEqual(personal.preview, {
      status: 'failed',
      headline: 'preview (dry run) failed',
      text: 'no count: token [REDACTED:bearer_token]',
      truncated: false,
    });
    assert.equal(sharedJsonPayload(notification(long, 'outcome')).preview, undefined, 'an outcome repeats no preview');
  });

  test('Slack: a quoted, inert section under "Preview (dry run)", lines kept, shortened with a note', () => {
    const message = sharedSlackPayload(notification({ status: 'ok', result: '*Approved by security*\n- max: 100\n+ max: 400', bytes: 40, at: AT }));
    const section = message.blocks.find((block) => JSON.stringify(block).includes('Preview (dry run)')) as
      { text: { text: string; verbatim: boolean } } | undefined;
    assert.ok(section, JSON.stringify(message.blocks));
    assert.equal(section.text.verbatim, true);
    assert.equal(section.text.text, '*Preview (dry run)*\n>*\u200bApproved by security*\n>- max: 100\n>+ max: 400');
    const shortened = sharedSlackPayload(notification(long));
    const text = JSON.stringify(shortened);
    assert.ok(!text.includes(TOKEN));
    assert.match(text, /shortened: the review page shows the whole preview/);
    const timed = sharedSlackPayload(notification({ status: 'timed_out', message: 'the preview did not answer within 3000 ms; decide without it', at: AT }));
    assert.match(JSON.stringify(timed), /\*Preview \(dry run\) timed out\*\\n>the preview did not answer within 3000 ms/);
  });

  test('the console line names the preview on one line', () => {
    const line = consoleLine(notification({ status: 'ok', result: 'would close 3 tickets:\n  TCK-1001', bytes: 30, at: AT }));
    assert.match(line, / · preview \(dry run\): would close 3 tickets: ⏎ {3}TCK-1001 · review https:/);
  });
});

describe('the example ticket desk previews close_stale_tickets and closes only when called for real', () => {
  const context = (args: Record<string, unknown>, preview: boolean, key = 'toolgate:toolreq/acme/c-1'): ToolContext => ({
    args,
    idempotencyKey: key,
    runAs: 'svc-ticketing',
    requestId: 'c-1',
    tenant: 'acme',
    tool: 'close_stale_tickets',
    attempt: 1,
    signal: new AbortController().signal,
    deadline: new Date(Date.now() + 60_000),
    ...(preview ? { preview: true } : {}),
  });

  test('the preview counts the stale tickets, twice the same, and closes nothing; the real call closes them once per key', async () => {
    const tools = createExampleTools();
    const close = tools.close_stale_tickets!;
    const first = (await close(context({ older_than_days: 30, priority: 'low' }, true))) as string;
    assert.match(
      first,
      /^would close 2 tickets \(open, low priority, waiting more than 30 days\):\n {2}TCK-1001 {2}low +6[01] days {2}Printer on floor 3 shows offline\n {2}TCK-1003/,
    );
    assert.equal(await close(context({ older_than_days: 30, priority: 'low' }, true)), first, 'a preview changes nothing');
    const closed = await close(context({ older_than_days: 30, priority: 'low' }, false));
    assert.deepEqual(closed, { closed: ['TCK-1001', 'TCK-1003'], closedBy: 'svc-ticketing' });
    assert.deepEqual(await close(context({ older_than_days: 30, priority: 'low' }, false)), closed, 'a retry with the same key gets the first closure');
    assert.equal(
      await close(context({ older_than_days: 30, priority: 'low' }, true)),
      'would close no tickets (none open, low priority, waiting more than 30 days)',
    );
    assert.match(
      (await close(context({ older_than_days: 30 }, true))) as string,
      /^would close 1 ticket \(open, waiting more than 30 days\):\n {2}TCK-1002 {2}normal/,
    );
  });
});

describe('the recorded preview history (test/histories/v3/preview.json)', () => {
  test('its audit record shows the preview approvers signed, and the approval of that digest', async () => {
    const histories = join(import.meta.dirname, '..', 'histories');
    const keys = parseKeyringEnv((await readFile(join(histories, 'v1', 'replay-codec-keys.txt'), 'utf8')).trim(), 'replay-codec-keys.txt');
    const history = historyFromJSON(JSON.parse(await readFile(join(histories, 'v3', 'preview.json'), 'utf8')));
    const record = await auditRecordFromHistory(history, loadDataConverter(dataConverterFor(keys)), { workflowId: 'toolreq/acme/history-preview' });
    assert.equal(record.status, 'completed');
    assert.deepEqual(record.proposal.preview, {
      status: 'ok',
      text: 'would delete 3,214 rows older than 30 days',
      truncated: false,
      at: record.proposal.preview?.at,
    });
    assert.equal(record.decision?.sealed, true);
    assert.deepEqual(
      record.approvals.map((vote) => [vote.who, vote.digest === record.proposal.digest, vote.verified]),
      [['maria', true, true]],
    );
    const events = record.timeline.map((entry) => entry.event);
    const called = events.indexOf('dry-run preview called as svc-purge');
    const answered = events.indexOf('dry-run preview answered: would delete 3,214 rows older than 30 days');
    const notified = events.findIndex((event) => event.startsWith('notified manager (requested)'));
    assert.ok(called >= 0 && called < answered && answered < notified, JSON.stringify(events));
    assert.match(formatAuditRecord(record), /\n {2}preview \(dry run\): would delete 3,214 rows older than 30 days\n/);
  });
});
