/**
 * The approver inbox of `toolgate dev`, in a real browser (the system's Chromium) over real
 * requests on a real Temporal server: an agent submits through the front door with its token,
 * and an approver signs in with a pasted token, finds the request in "waiting for me", opens it,
 * and approves, rejects with a reason, or edits and approves — each driven to its outcome, which
 * the test reads back through the agent's front door. An expired one-click link leads through
 * sign-in to the same request page. Negative checks: a signed-out browser lands on sign-in, and a
 * decision form replayed from another browser context (another session, or none) is refused and
 * leaves no trace in the request's history. Screenshots of every step:
 * test-artifacts/screenshots/inbox-*.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Client, Connection } from '@temporalio/client';
import { defaultLinkKeyPaths, LinkSigner } from '../../src/approvals/links.js';
import { ToolGateway, type ToolRequestHandle } from '../../src/client/index.js';
import { dataConverterFor, loadKeyring } from '../../src/codec/index.js';
import { statusQuery, workflowIdFor, type RequestStatus, type ToolOutcome } from '../../src/shared/index.js';
import { expectPageText, launchBrowser, pageText, screenshot } from '../helpers/browser.js';
import { connectClient, findFreePort, localTokens, spawnToolgate, until, waitForOutput, type LocalTokens, type ManagedProcess } from '../helpers/processes.js';

const TENANT = 'acme';
const ALICE = { sub: 'alice', tenant: TENANT, groups: ['manager'] };
/** A second manager: a session of its own, so a form carrying alice's CSRF token does not fit it. */
const BOB = { sub: 'bob', tenant: TENANT, groups: ['manager'] };

const SIGNIN_TEST = 'inbox-sign-in-and-list';
const APPROVE_TEST = 'inbox-approve';
const REJECT_TEST = 'inbox-reject';
const EDIT_TEST = 'inbox-edit-and-approve';
const LINK_TEST = 'inbox-expired-link';
const REFUSAL_TEST = 'inbox-signed-out-and-csrf';

/** Ticket arguments per flow; no e-mail or phone (the tool's egress redacts PII, which the edit would then have to retype). */
const ticket = (title: string, priority: 'low' | 'normal' | 'urgent') => ({ title, body: `Browser test: ${title}.`, priority, customer_id: 'cus_1001' });

describe('the approver inbox of toolgate dev, in a browser', { timeout: 170_000 }, () => {
  let stateDir = '';
  let dev: ManagedProcess | undefined;
  let browser: Browser | undefined;
  let ops: { client: Client; connection: Connection } | undefined;
  let tokens: LocalTokens;
  let apiUrl = '';
  const requests: Record<'approve' | 'reject' | 'edit' | 'link' | 'csrf' | 'shell', ToolRequestHandle | undefined> = {
    approve: undefined,
    reject: undefined,
    edit: undefined,
    link: undefined,
    csrf: undefined,
    shell: undefined,
  };
  const args = {
    approve: ticket('Locked out of the account', 'normal'),
    reject: ticket('Refund the whole year', 'urgent'),
    edit: ticket('Printer on fire', 'low'),
    link: ticket('Password reset loop', 'normal'),
    csrf: ticket('Cannot download invoice', 'normal'),
  };

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'toolgate-inbox-browser-'));
    const [port, uiPort, apiPort] = [await findFreePort(), await findFreePort(), await findFreePort()];
    apiUrl = `http://127.0.0.1:${apiPort}`;
    // The local key first: the API serves the agent routes only when it exists at start-up.
    tokens = await localTokens(stateDir);
    const launching = launchBrowser(); // overlaps Temporal's start
    dev = spawnToolgate('toolgate dev', ['dev', '--port', String(port), '--ui-port', String(uiPort)], {
      TOOLGATE_STATE_DIR: stateDir,
      TOOLGATE_API_PORT: String(apiPort),
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
      TOOLGATE_LOG_LEVEL: 'warn',
    });
    browser = await launching;
    await waitForOutput(dev, /Press Ctrl-C to stop/, 100_000);
    // The ops view (codec keys of the state directory), for what an agent may not see: digests, refusals.
    const keyring = await loadKeyring({ env: { ...process.env, TOOLGATE_STATE_DIR: stateDir }, stateDir });
    ops = await connectClient(`127.0.0.1:${port}`, dataConverterFor(keyring));

    // An agent with its token and nothing else, through the front door.
    const agent = new ToolGateway({
      url: apiUrl,
      token: await tokens.agent({ sub: 'browser-agent', tenant: TENANT, environment: 'production', roles: ['agent_runtime'] }),
    });
    const run = Date.now().toString(36);
    await Promise.all([
      ...(['approve', 'reject', 'edit', 'link', 'csrf'] as const).map(async (flow) => {
        requests[flow] = await agent.start({ requestId: `inbox-${run}-${flow}`, tool: 'create_ticket', args: args[flow], reason: `browser test: ${flow}` });
      }),
      // Not on the allow-list: only the sre group may approve it, so a manager's list must not show it.
      (async () => {
        requests.shell = await agent.start({
          requestId: `inbox-${run}-shell`,
          tool: 'execute_shell_command',
          args: { command: 'uname -a' },
          reason: 'browser test: shell',
        });
      })(),
    ]);
    for (const [flow, handle] of Object.entries(requests)) {
      await until(
        `the ${flow} request to wait for approval`,
        30_000,
        async () => ((await handle!.status()).state === 'pending_approval' ? true : undefined),
        200,
      );
    }
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await ops?.connection.close().catch(() => undefined);
    await dev?.stop(15_000);
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  const handleOf = (flow: keyof typeof requests): ToolRequestHandle => {
    const handle = requests[flow];
    assert.ok(handle, `no ${flow} request`);
    return handle;
  };
  /** The full status as ops see it (digest, votes, refusals, edits). */
  const statusOf = (requestId: string): Promise<RequestStatus> => ops!.client.workflow.getHandle(workflowIdFor(TENANT, requestId)).query(statusQuery);
  const requestUrl = (requestId: string) => `${apiUrl}/inbox/requests/${encodeURIComponent(requestId)}`;

  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    assert.ok(browser, 'no browser');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    return { context, page: await context.newPage() };
  }

  /** The visible text of one element (fails with the page's text when it is not there). */
  async function textOf(page: Page, selector: string): Promise<string> {
    const locator = page.locator(selector);
    if ((await locator.count()) !== 1 || !(await locator.isVisible())) {
      throw new Error(`no visible ${selector} on ${page.url()}:\n${await pageText(page)}`);
    }
    return locator.innerText();
  }

  /** On the sign-in page: pastes the token of `claims` and signs in; resolves once the browser left the sign-in page. */
  async function signIn(page: Page, testName: string, claims: typeof ALICE, shoot: boolean): Promise<void> {
    assert.match(new URL(page.url()).pathname, /^\/inbox\/signin$/, `expected the sign-in page, at ${page.url()}`);
    await expectPageText(page, 'the sign-in form', (t) => t.includes('Sign in to the approver inbox'), { testName });
    await page.fill('#token', await tokens.approver(claims));
    if (shoot) await screenshot(page, testName, 'token pasted');
    await Promise.all([page.waitForURL((url) => url.pathname !== '/inbox/signin', { timeout: 30_000 }), page.click('#signin-submit')]);
    const who = await textOf(page, '#signed-in-as');
    assert.equal(who, `${claims.sub} · ${claims.tenant} · ${claims.groups.join(', ')}`);
  }

  /** A browser context signed in as `claims` through the sign-in form (no screenshots). */
  async function signedIn(claims: typeof ALICE, testName: string): Promise<{ context: BrowserContext; page: Page }> {
    const opened = await newPage();
    await opened.page.goto(`${apiUrl}/inbox/`, { waitUntil: 'load' });
    await signIn(opened.page, testName, claims, false);
    return opened;
  }

  /** Clicks a form's submit button and waits for the page the POST (and its redirect) leads to; returns the POST's status. */
  async function submit(page: Page, button: string, path: RegExp): Promise<number> {
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && path.test(new URL(r.url()).pathname), { timeout: 90_000 }),
      page.click(button),
    ]);
    await page.waitForLoadState('load');
    return response.status();
  }

  /** The flash message after a decision: its kind (ok/error) and text. */
  async function flash(page: Page): Promise<{ kind: string; text: string }> {
    const el = page.locator('p#flash');
    assert.equal(await el.count(), 1, `no flash on ${page.url()}:\n${await pageText(page)}`);
    return { kind: (await el.getAttribute('class')) ?? '', text: await el.innerText() };
  }

  /** The agent's outcome of a flow, read through the front door (long-poll). */
  async function outcomeOf(flow: keyof typeof requests): Promise<ToolOutcome> {
    return until(`the outcome of ${flow}`, 60_000, async () => (await handleOf(flow).status()).outcome, 250);
  }

  test('sign-in with a pasted token, then "waiting for me" lists the pending requests of the manager group only', async () => {
    const { context, page } = await newPage();
    try {
      await page.goto(`${apiUrl}/inbox/`, { waitUntil: 'load' });
      // Signed out, the inbox sends the browser to sign in, coming back to the list.
      assert.equal(new URL(page.url()).pathname, '/inbox/signin');
      assert.equal(new URL(page.url()).searchParams.get('next'), '/inbox/');
      await expectPageText(page, 'the sign-in page', (t) => t.includes('Approver token') && t.includes('npx toolgate token issue'), { testName: SIGNIN_TEST });
      assert.ok(await page.locator('#signin-form #token').isVisible(), 'the token field');
      await screenshot(page, SIGNIN_TEST, 'sign-in page');
      await signIn(page, SIGNIN_TEST, ALICE, true);
      assert.equal(new URL(page.url()).pathname, '/inbox/');

      // The list is answered from visibility, which follows the workflows shortly after: reload until all are there.
      const ids = (['approve', 'reject', 'edit', 'link', 'csrf'] as const).map((flow) => handleOf(flow).requestId);
      await until(
        'every pending ticket in the list',
        30_000,
        async () => {
          const listed = await page.evaluate<string[]>(
            "Array.from(document.querySelectorAll('#waiting-table tr[data-request-id]'), (row) => row.getAttribute('data-request-id'))",
          );
          if (ids.every((id) => listed.includes(id))) return true;
          await page.reload({ waitUntil: 'load' });
          return undefined;
        },
        500,
      );
      await screenshot(page, SIGNIN_TEST, 'waiting for me');
      // The shell command waits for the sre group: not this manager's to decide, not listed.
      const text = await pageText(page, 1_000_000);
      assert.ok(!text.includes(handleOf('shell').requestId), 'a request only sre may approve is listed for a manager');
      assert.ok(!text.includes('execute_shell_command'), 'the shell tool is listed for a manager');
      // Each row, column by column as its header names it.
      const table = await page.evaluate<string[][]>(
        "Array.from(document.querySelectorAll('#waiting-table tr'), (row) => Array.from(row.cells, (cell) => cell.innerText.trim()))",
      );
      const header = table[0] ?? [];
      const row = table.find((cells) => cells[0] === handleOf('approve').requestId) ?? [];
      const cell = (name: string) => row[header.indexOf(name)];
      assert.deepEqual(
        { tool: cell('Tool'), risk: cell('Risk'), groups: cell('Groups'), votes: cell('Votes') },
        { tool: 'create_ticket', risk: 'medium', groups: 'manager', votes: '0' },
        `the list row of the approve request (header ${JSON.stringify(header)})`,
      );
      assert.ok(
        Date.parse((await page.locator(`#waiting-table tr[data-request-id="${handleOf('approve').requestId}"] time`).getAttribute('datetime')) ?? '') >
          Date.now(),
        'an expiry in the future',
      );
      // Who asks is what an approver reads first. (GET /v1/approvals gives `actor` as the actor's id, a string.)
      assert.equal(cell('Requested by'), 'browser-agent', 'the list shows who requested it');
    } finally {
      await context.close();
    }
  });

  test('open a request from the list and approve it with a reason: flash, then the request completes', async () => {
    const handle = handleOf('approve');
    const digest = (await statusOf(handle.requestId)).digest;
    assert.ok(digest, 'the request has a digest');
    const { context, page } = await signedIn(ALICE, APPROVE_TEST);
    try {
      await until(
        'the request in the list',
        30_000,
        async () => {
          if ((await page.locator(`a.request-link[href$="/${handle.requestId}"]`).count()) === 1) return true;
          await page.reload({ waitUntil: 'load' });
          return undefined;
        },
        500,
      );
      await Promise.all([page.waitForURL(requestUrl(handle.requestId)), page.click(`a.request-link[href$="/${handle.requestId}"]`)]);
      await screenshot(page, APPROVE_TEST, 'request page');
      assert.equal(await textOf(page, '#request-state'), 'pending_approval');
      assert.match(await textOf(page, '#request-tool'), /^create_ticket\b/);
      assert.equal(await textOf(page, '#request-digest'), digest);
      assert.deepEqual(JSON.parse(await textOf(page, '#request-args')), args.approve);
      assert.match(await textOf(page, '#request-actor'), /browser-agent \(agent\)/);
      assert.match(await textOf(page, '#request-run-as'), /svc-ticketing/);
      assert.ok(await page.locator('#approve-button').isVisible(), 'the approve button');

      await page.fill('#approve-reason', 'customer verified by phone');
      await screenshot(page, APPROVE_TEST, 'approve reason filled');
      assert.equal(await submit(page, '#approve-button', /\/decision$/), 303);
      assert.equal(page.url(), requestUrl(handle.requestId));
      const shown = await flash(page);
      await screenshot(page, APPROVE_TEST, 'approved flash');
      assert.match(shown.kind, /\bflash-ok\b/);
      assert.match(shown.text, /^Approved\./);

      const outcome = await outcomeOf('approve');
      assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
      assert.deepEqual(
        outcome.approvals.map((vote) => [vote.approverId, vote.decision, vote.reason]),
        [['alice', 'approve', 'customer verified by phone']],
      );
      await page.reload({ waitUntil: 'load' });
      assert.match(await textOf(page, '#request-state'), /^completed \(outcome completed\)$/);
      assert.match(await textOf(page, '#votes-table'), /alice\s+approve\s+manager\s+api\s+customer verified by phone/);
      assert.ok(await page.locator('#cannot-decide').isVisible(), 'a decided request offers no forms');
      await screenshot(page, APPROVE_TEST, 'completed');
    } finally {
      await context.close();
    }
  });

  test('reject with a reason: the request ends rejected, with the reason and the approver', async () => {
    const handle = handleOf('reject');
    const { context, page } = await signedIn(ALICE, REJECT_TEST);
    try {
      await page.goto(requestUrl(handle.requestId), { waitUntil: 'load' });
      assert.equal(await textOf(page, '#request-state'), 'pending_approval');
      await page.fill('#reject-reason', 'a refund is not a ticket: use the refund flow');
      await screenshot(page, REJECT_TEST, 'reject reason filled');
      assert.equal(await submit(page, '#reject-button', /\/decision$/), 303);
      const shown = await flash(page);
      await screenshot(page, REJECT_TEST, 'rejected flash');
      assert.match(shown.kind, /\bflash-ok\b/);
      assert.match(shown.text, /^Rejected\./);

      const outcome = await outcomeOf('reject');
      assert.equal(outcome.status, 'rejected', JSON.stringify(outcome));
      assert.ok(outcome.status === 'rejected');
      assert.equal(outcome.rejectedBy, 'alice');
      assert.equal(outcome.reason, 'a refund is not a ticket: use the refund flow');
      await page.reload({ waitUntil: 'load' });
      assert.match(await textOf(page, '#request-state'), /^rejected/);
      await screenshot(page, REJECT_TEST, 'rejected');
    } finally {
      await context.close();
    }
  });

  test('edit and approve: the form built from the argument schema, a preview with the diff and the policy decision, then the request completes with the edited arguments', async () => {
    const handle = handleOf('edit');
    const before = await statusOf(handle.requestId);
    const { context, page } = await signedIn(ALICE, EDIT_TEST);
    try {
      await page.goto(requestUrl(handle.requestId), { waitUntil: 'load' });
      // One field per argument, from the tool's JSON schema, filled with the current values.
      assert.equal(await page.locator('#edit-arg-title').inputValue(), args.edit.title, 'the form starts from the current arguments');
      assert.equal(await page.locator('#edit-arg-priority option:checked').innerText(), args.edit.priority);
      const edited = { ...args.edit, priority: 'urgent' };
      await page.selectOption('#edit-arg-priority', { label: 'urgent' });
      await page.fill('#edit-reason', 'a fire is urgent');
      await screenshot(page, EDIT_TEST, 'arguments edited');
      assert.equal(await submit(page, '#edit-preview-button', /\/edit\/preview$/), 200);
      await expectPageText(page, 'the edit preview', (t) => t.includes('Changes') && t.includes('Submit the edit'), { testName: EDIT_TEST });
      await screenshot(page, EDIT_TEST, 'preview diff');
      // One changed row, priority low → urgent; nothing else.
      const rows = await page.evaluate<string[][]>(
        "Array.from(document.querySelectorAll('#args-diff tbody tr'), (row) => [row.className, ...Array.from(row.cells, (cell) => cell.innerText)])",
      );
      assert.deepEqual(rows, [['diff-changed', 'priority', 'changed', '"low"', '"urgent"']]);
      assert.deepEqual(JSON.parse(await textOf(page, '#edit-new-args')), edited);
      // Policy's answer on the new arguments, before anything is sent.
      assert.equal(await textOf(page, '#preview-outcome'), 'approve');
      assert.equal((await statusOf(handle.requestId)).edits.length, 0, 'a preview changes nothing');

      assert.equal(await submit(page, '#edit-submit-button', /\/decision$/), 303);
      assert.equal(page.url(), requestUrl(handle.requestId));
      const shown = await flash(page);
      await screenshot(page, EDIT_TEST, 'edit submitted flash');
      assert.match(shown.kind, /\bflash-ok\b/);
      assert.match(shown.text, /^Edit submitted/);

      const outcome = await outcomeOf('edit');
      assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
      assert.ok(outcome.status === 'completed');
      assert.deepEqual(outcome.args, edited, 'the tool ran with the edited arguments');
      assert.deepEqual(outcome.editedBy, ['alice']);
      assert.notEqual(outcome.digest, before.digest, 'the edit made a new proposal');
      await page.reload({ waitUntil: 'load' });
      assert.match(await textOf(page, '#request-state'), /^completed/);
      const edits = await textOf(page, '#edits-table');
      assert.match(edits, /alice/);
      assert.match(edits, /a fire is urgent/);
      assert.deepEqual(JSON.parse(await textOf(page, '#request-args')), edited);
      await screenshot(page, EDIT_TEST, 'completed with edit');
    } finally {
      await context.close();
    }
  });

  test('an expired one-click link leads through sign-in to the same request page', async () => {
    const handle = handleOf('link');
    const { digest } = await statusOf(handle.requestId);
    assert.ok(digest);
    // Genuine (the state directory's link-signing key, as the worker's notifier signs), but an hour old.
    const signer = await LinkSigner.fromPrivateKeyFile(defaultLinkKeyPaths(stateDir).privateKeyFile);
    const { token, expiresAt } = await signer.mintLink(
      { requestId: handle.requestId, digest, approver: { id: 'alice', tenant: TENANT, groups: ['manager'] } },
      new Date(Date.now() - 3600_000),
    );
    assert.ok(Date.parse(expiresAt) < Date.now(), 'the link has expired');
    const { context, page } = await newPage();
    try {
      const response = await page.goto(`${apiUrl}/v1/links/${token}`, { waitUntil: 'load' });
      // /v1/links/<token> → /inbox/from-link/<token> → sign-in, coming back to the request.
      const chain: string[] = [];
      for (let r = response?.request().redirectedFrom(); r; r = r.redirectedFrom()) chain.unshift(new URL(r.url()).pathname);
      assert.deepEqual(chain, [`/v1/links/${token}`, `/inbox/from-link/${token}`]);
      assert.equal(new URL(page.url()).pathname, '/inbox/signin');
      assert.equal(new URL(page.url()).searchParams.get('next'), `/inbox/requests/${handle.requestId}`);
      await expectPageText(page, 'the sign-in page', (t) => t.includes('Sign in to the approver inbox'), { testName: LINK_TEST });
      await screenshot(page, LINK_TEST, 'sign-in after expired link');
      await signIn(page, LINK_TEST, ALICE, false);
      assert.equal(page.url(), requestUrl(handle.requestId));
      assert.equal(await textOf(page, '#request-digest'), digest);
      assert.equal(await textOf(page, '#request-state'), 'pending_approval');
      assert.ok(await page.locator('#approve-button').isVisible(), 'the request can be decided from here');
      await screenshot(page, LINK_TEST, 'request page after sign-in');
      // The link itself granted nothing: no vote, no refusal.
      const status = await statusOf(handle.requestId);
      assert.deepEqual([status.state, status.approvals.length, status.refusals?.length ?? 0], ['pending_approval', 0, 0]);
    } finally {
      await context.close();
    }
  });

  test('negative: signed out lands on sign-in; a decision form replayed from another context is refused and records nothing', async () => {
    const handle = handleOf('csrf');
    const path = `/inbox/requests/${handle.requestId}/decision`;
    const alice = await signedIn(ALICE, REFUSAL_TEST);
    const bob = await signedIn(BOB, REFUSAL_TEST);
    const stranger = await newPage();
    try {
      await alice.page.goto(requestUrl(handle.requestId), { waitUntil: 'load' });
      const form = {
        csrf: await alice.page.locator('#approve-form input[name=csrf]').inputValue(),
        digest: await alice.page.locator('#approve-form input[name=digest]').inputValue(),
        decision: 'approve',
        reason: 'replayed',
      };
      assert.equal(form.digest, (await statusOf(handle.requestId)).digest);

      // A browser without a session opening the request page is sent to sign in (and back here after).
      await stranger.page.goto(requestUrl(handle.requestId), { waitUntil: 'load' });
      assert.equal(new URL(stranger.page.url()).pathname, '/inbox/signin');
      assert.equal(new URL(stranger.page.url()).searchParams.get('next'), `/inbox/requests/${handle.requestId}`);
      assert.equal(await stranger.page.locator('#request-details').count(), 0, 'no request details without a session');
      await screenshot(stranger.page, REFUSAL_TEST, 'signed out lands on sign-in');
      // Its replay of alice's form goes to sign-in too, not to the API.
      const anonymous = await stranger.context.request.post(`${apiUrl}${path}`, { form, maxRedirects: 0 });
      assert.equal(anonymous.status(), 303);
      assert.match(anonymous.headers().location ?? '', /^\/inbox\/signin\?next=/);

      // Bob's own session, posting alice's form as a real form submission: her CSRF token is not his session's.
      await bob.page.goto(requestUrl(handle.requestId), { waitUntil: 'load' });
      const bobsToken = await bob.page.locator('#approve-form input[name=csrf]').inputValue();
      assert.notEqual(bobsToken, form.csrf, 'two sessions share a CSRF token');
      await bob.page.evaluate(`document.querySelector('#approve-form input[name=csrf]').value = ${JSON.stringify(form.csrf)}`);
      await bob.page.fill('#approve-reason', form.reason);
      assert.equal(await submit(bob.page, '#approve-button', /\/decision$/), 403);
      await expectPageText(bob.page, 'the refusal page', (t) => t.includes('This form cannot be accepted'), { testName: REFUSAL_TEST });
      await screenshot(bob.page, REFUSAL_TEST, 'replayed form refused');
      // And the same post without any CSRF token, from bob's context.
      const withoutToken = { digest: form.digest, decision: form.decision, reason: form.reason };
      assert.equal((await bob.context.request.post(`${apiUrl}${path}`, { form: withoutToken, maxRedirects: 0 })).status(), 403);

      // Nothing reached the request: no vote, no refusal, no edit (a mistaken write gets time to show).
      await new Promise((resolve) => setTimeout(resolve, 500));
      const status = await statusOf(handle.requestId);
      assert.equal(status.state, 'pending_approval');
      assert.deepEqual(status.approvals, []);
      assert.deepEqual(status.refusals ?? [], []);
      assert.deepEqual(status.edits, []);

      // Control: alice's own session with its own form is accepted — the refusals above were the token's doing.
      await alice.page.reload({ waitUntil: 'load' });
      await alice.page.fill('#approve-reason', 'the real one');
      assert.equal(await submit(alice.page, '#approve-button', /\/decision$/), 303);
      assert.match((await flash(alice.page)).kind, /\bflash-ok\b/);
      await screenshot(alice.page, REFUSAL_TEST, 'own session approves');
      const outcome = await outcomeOf('csrf');
      assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
      assert.deepEqual(
        outcome.approvals.map((vote) => [vote.approverId, vote.reason]),
        [['alice', 'the real one']],
      );
    } finally {
      await alice.context.close();
      await bob.context.close();
      await stranger.context.close();
    }
  });
});
