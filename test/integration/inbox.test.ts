/**
 * The approver inbox (src/inbox) on a real Temporal server, through HTTP only (fetch with a
 * cookie jar by hand): dev-token sign-in and its cookie, redirects to sign-in, "waiting for me"
 * scoped by group and tenant, approve / reject / edit-and-approve through the forms with real
 * outcomes, CSRF refusals that leave no trace, the CSP and the absence of inline script and style,
 * open-redirect attempts, the expired-link path, and OIDC sign-in (authorization code + PKCE)
 * against a real oidc-provider with the API verifying the provider's ID tokens.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Server } from 'node:http';
import type { RequestHandler } from 'express';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { base64url } from 'jose';
import { createApiApp } from '../../src/api/app.js';
import { OidcApproverVerifier } from '../../src/auth/oidc.js';
import { ApproverTokenVerifier } from '../../src/auth/tokens.js';
import { INBOX_CSP, createInboxRouter, safeNext } from '../../src/inbox/index.js';
import { schemaFields } from '../../src/inbox/edit-page.js';
import { requestPage } from '../../src/inbox/request-page.js';
import { silentLogger } from '../../src/logger.js';
import type { ToolRequestInput } from '../../src/shared/index.js';
import { eventually, startGateway, startTemporal, waitForState, type GatewayEnv } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { startToolService, type ToolService } from '../helpers/tool-service.js';
import { listenLoopback, startOidcProvider, type TestOidcProvider } from '../fixtures/oidc-provider.js';

/** The policy of these tests; refund calls the loopback test service (httpTool allows private egress). */
function policyYaml(url: string): string {
  return policy()
    .plan('manager', { groups: ['manager'] })
    .plan('finance', { groups: ['finance'] })
    .tool('refund', {
      risk: 'high',
      approval: 'manager',
      rules: [{ name: 'large-refunds-need-finance', when: 'args.amount > 1000', approval: 'finance', risk: 'critical' }],
    })
    .httpTool('refund', `${url}/refund`, {
      runAs: 'svc-payments',
      args: argsOf({ amount: { type: 'integer', minimum: 1 }, customer: 'string' }, { required: ['amount', 'customer'] }),
    })
    .yaml();
}

/** A browser's cookies for one origin, kept by hand (names are unique across the inbox's paths). */
class CookieJar {
  readonly cookies = new Map<string, string>();
  /** The raw Set-Cookie lines of the last response, by cookie name. */
  readonly lastSetCookie = new Map<string, string>();
  store(response: Response): void {
    this.lastSetCookie.clear();
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const index = pair!.indexOf('=');
      const name = pair!.slice(0, index).trim();
      const value = pair!.slice(index + 1).trim();
      this.lastSetCookie.set(name, line);
      if (/;\s*Max-Age=0/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

/** One browser on one origin: GET and form POSTs, no redirects followed. */
class Browser {
  readonly jar = new CookieJar();
  constructor(readonly origin: string) {}
  async get(path: string, headers: Record<string, string> = {}): Promise<Response & { html: string }> {
    const response = await fetch(new URL(path, this.origin), { redirect: 'manual', headers: { cookie: this.jar.header(), ...headers } });
    this.jar.store(response);
    return Object.assign(response, { html: await response.text() });
  }
  async post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response & { html: string }> {
    const response = await fetch(new URL(path, this.origin), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: this.jar.header(), 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    });
    this.jar.store(response);
    return Object.assign(response, { html: await response.text() });
  }
}

/** The value of a form field (hidden input or textarea) by name, inside the element with `formId`. */
function field(html: string, formId: string, name: string): string {
  const start = html.indexOf(`<form id="${formId}"`);
  assert.ok(start >= 0, `form ${formId} on the page`);
  const form = html.slice(start, html.indexOf('</form>', start));
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const input = new RegExp(`<input[^>]*name="${escaped}"[^>]*? value="([^"]*)"`).exec(form);
  if (input) return unescape(input[1]!);
  const area = new RegExp(`<textarea[^>]*name="${escaped}"[^>]*>([^<]*)</textarea>`).exec(form);
  assert.ok(area, `field ${name} in ${formId}`);
  return unescape(area[1]!);
}
const unescape = (text: string) =>
  text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** Every page must be servable under the strict CSP: no inline script, style or event handlers. */
function assertStrictPage(response: Response & { html: string }, what: string): void {
  assert.equal(response.headers.get('content-security-policy'), INBOX_CSP, `${what}: CSP`);
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff', `${what}: nosniff`);
  assert.equal(response.headers.get('referrer-policy'), 'no-referrer', `${what}: referrer policy`);
  assert.doesNotMatch(response.html, /<script(?![^>]*\ssrc=)[^>]*>/i, `${what}: no inline <script>`);
  assert.doesNotMatch(response.html, /\sstyle\s*=/i, `${what}: no style= attribute`);
  assert.doesNotMatch(response.html, /<style/i, `${what}: no <style> element`);
  assert.doesNotMatch(response.html, /\son[a-z]+\s*=/i, `${what}: no event-handler attribute`);
}

let seq = 0;
const bot = { id: 'refund-bot', type: 'agent' as const, roles: ['agent_runtime'] };
function request(args: Record<string, unknown>, tenant = 'acme'): ToolRequestInput {
  seq += 1;
  return { requestId: `inbox-${process.pid}-${Date.now()}-${seq}`, actor: bot, tenant, environment: 'production', tool: 'refund', args };
}

describe('the approver inbox', { timeout: 240_000 }, () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  let service: ToolService;
  const sessionKey = randomBytes(32);
  // The harness mounts routers before it listens; the inbox needs the API's address, so it is bound once known.
  let inbox: RequestHandler | undefined;
  let secureInbox: RequestHandler | undefined;

  before(async () => {
    env = await startTemporal();
    service = await startToolService('ok');
    gw = await startGateway(env, {
      taskQueue: `inbox-${process.pid}`,
      policy: policyYaml(service.url),
      mount: (app) => {
        app.use('/inbox', (req, res, next) => (inbox ? inbox(req, res, next) : next()));
        app.use('/inbox-secure', (req, res, next) => (secureInbox ? secureInbox(req, res, next) : next()));
      },
    });
    const verifier = await ApproverTokenVerifier.fromPublicKeyPem(gw.approverPublicKeyPem);
    inbox = createInboxRouter({ apiBaseUrl: gw.apiUrl, verifier, sessionKey, secureCookies: false, logger: silentLogger() });
    secureInbox = createInboxRouter({ apiBaseUrl: gw.apiUrl, verifier, sessionKey, secureCookies: true, logger: silentLogger() });
  });
  after(async () => {
    await gw?.close();
    await service?.close();
    await env?.teardown();
  });

  /** A browser signed in with a dev token for `claims`, through the sign-in form. */
  const signedIn = async (claims: { sub: string; tenant: string; groups: string[] }, base = '/inbox'): Promise<Browser> => {
    const browser = new Browser(gw.apiUrl);
    const page = await browser.get(`${base}/signin`);
    assert.equal(page.status, 200);
    const res = await browser.post(`${base}/signin`, { csrf: field(page.html, 'signin-form', 'csrf'), next: `${base}/`, token: await gw.token(claims) });
    assert.equal(res.status, 303, res.html);
    assert.ok(browser.jar.cookies.has('tg_inbox_session'));
    return browser;
  };
  /** The request once it waits for approval, with its digest. */
  const pending = async (requestId: string, tenant = 'acme') => {
    const status = await waitForState(gw, requestId, 'pending_approval', { tenant });
    assert.ok(status.digest);
    return { ...status, digest: status.digest };
  };

  test('dev-token sign-in sets a sealed session cookie: HttpOnly, SameSite=Lax, Path=/inbox, expiring with the token; Secure when asked', async () => {
    const browser = new Browser(gw.apiUrl);
    const page = await browser.get('/inbox/signin?next=%2Finbox%2F');
    assertStrictPage(page, 'sign-in page');
    assert.match(page.html, /npx toolgate token issue --sub alice --groups manager --tenant acme/);
    for (const id of ['signin-form', 'token', 'signin-submit']) assert.match(page.html, new RegExp(`id="${id}"`));
    const token = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] }, { ttlSeconds: 1800 });
    const res = await browser.post('/inbox/signin', { csrf: field(page.html, 'signin-form', 'csrf'), next: '/inbox/', token });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/inbox/');
    const cookie = browser.jar.lastSetCookie.get('tg_inbox_session');
    assert.ok(cookie, 'a session cookie is set');
    assert.match(cookie, /;\s*HttpOnly/);
    assert.match(cookie, /;\s*SameSite=Lax/);
    assert.match(cookie, /;\s*Path=\/inbox(;|$)/);
    assert.doesNotMatch(cookie, /;\s*Secure/, 'not Secure when secureCookies is false');
    const maxAge = Number(/Max-Age=(\d+)/.exec(cookie)?.[1]);
    assert.ok(maxAge > 1700 && maxAge <= 1800, `expires with the token (Max-Age ${maxAge})`);
    assert.ok(!cookie.includes(token.split('.')[1]!), 'the token is not readable in the cookie');
    const list = await browser.get('/inbox/');
    assert.equal(list.status, 200);
    assert.match(list.html, /id="signed-in-as">maria · acme · manager</);

    const secure = await signedIn({ sub: 'maria', tenant: 'acme', groups: ['manager'] }, '/inbox-secure');
    const secureCookie = secure.jar.lastSetCookie.get('tg_inbox_session');
    assert.match(secureCookie!, /;\s*Secure/);
    assert.match(secureCookie!, /;\s*Path=\/inbox-secure(;|$)/);
  });

  test("a token the verifier refuses, or a sign-in post without the form's token, opens no session", async () => {
    const browser = new Browser(gw.apiUrl);
    const page = await browser.get('/inbox/signin');
    const csrf = field(page.html, 'signin-form', 'csrf');
    const forged = `${base64url.encode('{"alg":"EdDSA","typ":"toolgate-approver+jwt"}')}.${base64url.encode('{"sub":"maria","tenant":"acme","groups":["manager"]}')}.AAAA`;
    const refused = await browser.post('/inbox/signin', { csrf, next: '/inbox/', token: forged });
    assert.equal(refused.status, 401);
    assert.match(refused.html, /id="signin-error"/);
    assert.ok(!browser.jar.cookies.has('tg_inbox_session'));
    assertStrictPage(refused, 'refused sign-in');
    // A sign-in form posted from elsewhere (no pre-session cookie) is refused even with a good token.
    const stranger = new Browser(gw.apiUrl);
    const res = await stranger.post('/inbox/signin', { csrf, next: '/inbox/', token: await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] }) });
    assert.equal(res.status, 403);
    assert.ok(!stranger.jar.cookies.has('tg_inbox_session'));
  });

  test('pages redirect to sign-in when nobody is signed in, and a decision post without a session records nothing', async () => {
    const handle = await gw.gateway.start(request({ amount: 40, customer: 'c-0' }));
    const { digest } = await pending(handle.requestId);
    const browser = new Browser(gw.apiUrl);
    const list = await browser.get('/inbox/');
    assert.equal(list.status, 303);
    assert.equal(list.headers.get('location'), '/inbox/signin?next=%2Finbox%2F');
    const page = await browser.get(`/inbox/requests/${handle.requestId}`);
    assert.equal(page.status, 303);
    assert.equal(page.headers.get('location'), `/inbox/signin?next=${encodeURIComponent(`/inbox/requests/${handle.requestId}`)}`);
    const post = await browser.post(`/inbox/requests/${handle.requestId}/decision`, { decision: 'approve', digest, csrf: 'x' });
    assert.equal(post.status, 303);
    assert.match(post.headers.get('location') ?? '', /^\/inbox\/signin\?next=/);
    // Nothing else would record a vote: give a mistaken write the time to show.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const status = await gw.status(handle.requestId);
    assert.equal(status.approvals.length, 0);
    assert.equal(status.state, 'pending_approval');
  });

  test('"waiting for me" lists what the approver may decide: not another group\'s, not another tenant\'s', async () => {
    const mine = await gw.gateway.start(request({ amount: 50, customer: 'c-1' }));
    const finance = await gw.gateway.start(request({ amount: 5000, customer: 'c-2' }));
    const otherTenant = await gw.gateway.start(request({ amount: 60, customer: 'c-3' }, 'globex'));
    await pending(mine.requestId);
    await pending(finance.requestId);
    await pending(otherTenant.requestId, 'globex');
    const browser = await signedIn({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    // The list is answered from visibility, which follows the workflow shortly after.
    const page = await eventually(async () => {
      const res = await browser.get('/inbox/');
      return res.html.includes(`data-request-id="${mine.requestId}"`) ? res : undefined;
    }, 'the pending request to be listed');
    assertStrictPage(page, 'list page');
    assert.match(page.html, /id="waiting-table"/);
    assert.match(page.html, new RegExp(`<a class="request-link" href="/inbox/requests/${mine.requestId}">`));
    assert.ok(!page.html.includes(finance.requestId), 'a request only finance may approve is not listed for a manager');
    assert.ok(!page.html.includes(otherTenant.requestId), "another tenant's request is not listed");
    // And another tenant's request cannot be opened by id either.
    const foreign = await browser.get(`/inbox/requests/${otherTenant.requestId}`);
    assert.equal(foreign.status, 404);
    assertStrictPage(foreign, 'not-found page');
    // The finance approver sees the finance request.
    const fiona = await signedIn({ sub: 'fiona', tenant: 'acme', groups: ['finance'] });
    await eventually(async () => ((await fiona.get('/inbox/')).html.includes(finance.requestId) ? true : undefined), 'finance to see its request');
  });

  test('approve through the form: the request completes, and the page says what the API answered', async () => {
    const handle = await gw.gateway.start(request({ amount: 70, customer: 'c-4' }));
    const { digest } = await pending(handle.requestId);
    const browser = await signedIn({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    const page = await browser.get(`/inbox/requests/${handle.requestId}`);
    assert.equal(page.status, 200);
    assertStrictPage(page, 'request page');
    for (const id of [
      'request-details',
      'request-args',
      'request-digest',
      'request-risk',
      'request-rule',
      'request-run-as',
      'approve-form',
      'reject-form',
      'edit-form',
      'approve-button',
      'reject-button',
      'edit-preview-button',
    ]) {
      assert.match(page.html, new RegExp(`id="${id}"`), id);
    }
    assert.match(page.html, new RegExp(`<code id="request-digest">${digest}</code>`));
    assert.match(page.html, /id="request-run-as">svc-payments</);
    assert.match(page.html, /id="request-rule">tool:refund</);
    assert.equal(field(page.html, 'approve-form', 'digest'), digest);
    const res = await browser.post(`/inbox/requests/${handle.requestId}/decision`, {
      csrf: field(page.html, 'approve-form', 'csrf'),
      digest: field(page.html, 'approve-form', 'digest'),
      decision: 'approve',
      reason: 'looks right',
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), `/inbox/requests/${handle.requestId}`);
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'completed');
    assert.deepEqual(
      outcome.approvals.map((vote) => [vote.approverId, vote.decision, vote.reason]),
      [['maria', 'approve', 'looks right']],
    );
    const after = await browser.get(`/inbox/requests/${handle.requestId}`);
    assert.match(after.html, /<p id="flash" class="flash flash-ok" role="status">Approved\./);
    assert.match(after.html, /id="votes-table"/);
    assert.match(after.html, /id="cannot-decide"/, 'a decided request offers no forms');
    // The flash is shown once.
    assert.doesNotMatch((await browser.get(`/inbox/requests/${handle.requestId}`)).html, /id="flash"/);
    // Deciding again is refused by the API, and the page says so with its code.
    const again = await browser.post(`/inbox/requests/${handle.requestId}/decision`, {
      csrf: field(page.html, 'approve-form', 'csrf'),
      digest,
      decision: 'approve',
    });
    assert.equal(again.status, 303);
    const refused = await browser.get(`/inbox/requests/${handle.requestId}`);
    assert.match(refused.html, /<p id="flash" class="flash flash-error" role="status">Not recorded — 409 (not_pending|duplicate_vote): /);
  });

  test('reject needs a reason; with one, the request ends rejected with it', async () => {
    const handle = await gw.gateway.start(request({ amount: 75, customer: 'c-5' }));
    await pending(handle.requestId);
    const browser = await signedIn({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    const page = await browser.get(`/inbox/requests/${handle.requestId}`);
    const form = { csrf: field(page.html, 'reject-form', 'csrf'), digest: field(page.html, 'reject-form', 'digest'), decision: 'reject' };
    const bare = await browser.post(`/inbox/requests/${handle.requestId}/decision`, { ...form, reason: '  ' });
    assert.equal(bare.status, 303);
    assert.match((await browser.get(`/inbox/requests/${handle.requestId}`)).html, /id="flash" class="flash flash-error"[^>]*>A rejection needs a reason\./);
    assert.equal((await gw.status(handle.requestId)).approvals.length, 0);
    const res = await browser.post(`/inbox/requests/${handle.requestId}/decision`, { ...form, reason: 'wrong customer' });
    assert.equal(res.status, 303);
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'rejected');
    assert.ok(outcome.status === 'rejected');
    assert.equal(outcome.rejectedBy, 'maria');
    assert.equal(outcome.reason, 'wrong customer');
    assert.match((await browser.get(`/inbox/requests/${handle.requestId}`)).html, /id="flash" class="flash flash-ok"[^>]*>Rejected\./);
  });

  test("edit and approve: a preview shows the diff, then the edit runs with the new arguments, counted as the editor's approval", async () => {
    const handle = await gw.gateway.start(request({ amount: 90, customer: 'c-6' }));
    const first = await pending(handle.requestId);
    const browser = await signedIn({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    const page = await browser.get(`/inbox/requests/${handle.requestId}`);
    // The view carries the tool's argument schema: one field per argument, filled with the current values.
    assert.equal(field(page.html, 'edit-form', 'mode'), 'fields');
    assert.equal(field(page.html, 'edit-form', 'arg.amount'), '90');
    assert.equal(field(page.html, 'edit-form', 'arg.customer'), 'c-6');
    const preview = await browser.post(`/inbox/requests/${handle.requestId}/edit/preview`, {
      csrf: field(page.html, 'edit-form', 'csrf'),
      digest: field(page.html, 'edit-form', 'digest'),
      mode: 'fields',
      'arg.amount': '80',
      'arg.customer': 'c-6',
      reason: 'partial refund',
    });
    assert.equal(preview.status, 200, preview.html);
    assertStrictPage(preview, 'edit preview');
    assert.match(preview.html, /<tr class="diff-changed"><td>amount<\/td><td>changed<\/td><td><code>90<\/code><\/td><td><code>80<\/code><\/td><\/tr>/);
    assert.doesNotMatch(preview.html, /<td>customer<\/td>/, 'an unchanged argument is not in the diff');
    // The API previews policy on the new arguments before anything is sent.
    assert.match(preview.html, /id="policy-preview"/);
    assert.match(preview.html, /<dd id="preview-outcome">approve<\/dd>/);
    assert.equal((await gw.status(handle.requestId)).edits.length, 0, 'a preview changes nothing');
    const res = await browser.post(`/inbox/requests/${handle.requestId}/decision`, {
      csrf: field(preview.html, 'edit-confirm-form', 'csrf'),
      digest: field(preview.html, 'edit-confirm-form', 'digest'),
      decision: field(preview.html, 'edit-confirm-form', 'decision'),
      args: field(preview.html, 'edit-confirm-form', 'args'),
      reason: field(preview.html, 'edit-confirm-form', 'reason'),
    });
    assert.equal(res.status, 303);
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'completed');
    assert.ok(outcome.status === 'completed');
    assert.deepEqual(outcome.args, { amount: 80, customer: 'c-6' });
    assert.deepEqual(outcome.editedBy, ['maria']);
    assert.notEqual(outcome.digest, first.digest);
    const effect = service.effects.find((e) => e.key === `toolgate:${handle.workflowId}`);
    assert.deepEqual((effect?.body as { args: unknown }).args, { amount: 80, customer: 'c-6' });
    const after = await browser.get(`/inbox/requests/${handle.requestId}`);
    assert.match(after.html, /id="flash" class="flash flash-ok"[^>]*>Edit submitted/);
    assert.match(after.html, /id="edits-table"/);
    assert.match(after.html, /partial refund/);
  });

  test('an edit that still holds redacted placeholders, or is not JSON, is sent back before any preview', async () => {
    const handle = await gw.gateway.start(request({ amount: 91, customer: 'c-7' }));
    await pending(handle.requestId);
    const browser = await signedIn({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    const page = await browser.get(`/inbox/requests/${handle.requestId}`);
    const form = { csrf: field(page.html, 'edit-form', 'csrf'), digest: field(page.html, 'edit-form', 'digest'), mode: 'json' };
    const redacted = await browser.post(`/inbox/requests/${handle.requestId}/edit/preview`, { ...form, args: '{"amount":91,"customer":"[REDACTED:email]"}' });
    assert.equal(redacted.status, 303);
    assert.match((await browser.get(`/inbox/requests/${handle.requestId}`)).html, /flash-error[^>]*>The new arguments still contain \[REDACTED:/);
    const broken = await browser.post(`/inbox/requests/${handle.requestId}/edit/preview`, { ...form, args: '{"amount":' });
    assert.equal(broken.status, 303);
    assert.match((await browser.get(`/inbox/requests/${handle.requestId}`)).html, /flash-error[^>]*>The new arguments are not valid JSON/);
    assert.equal((await gw.status(handle.requestId)).edits.length, 0);
  });

  test('a form post without the CSRF token, with a wrong one, or sent cross-site is refused 403 and nothing is recorded', async () => {
    const handle = await gw.gateway.start(request({ amount: 95, customer: 'c-8' }));
    const { digest } = await pending(handle.requestId);
    const browser = await signedIn({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    const page = await browser.get(`/inbox/requests/${handle.requestId}`);
    const csrf = field(page.html, 'approve-form', 'csrf');
    const path = `/inbox/requests/${handle.requestId}/decision`;
    const without = await browser.post(path, { decision: 'approve', digest });
    assert.equal(without.status, 403);
    assertStrictPage(without, 'CSRF refusal');
    assert.equal((await browser.post(path, { decision: 'approve', digest, csrf: csrf.slice(0, -2) + 'xx' })).status, 403);
    assert.equal((await browser.post(path, { decision: 'approve', digest, csrf }, { 'sec-fetch-site': 'cross-site' })).status, 403);
    // Another approver's session token does not fit this session.
    const other = await signedIn({ sub: 'mark', tenant: 'acme', groups: ['manager'] });
    const otherPage = await other.get(`/inbox/requests/${handle.requestId}`);
    assert.equal((await browser.post(path, { decision: 'approve', digest, csrf: field(otherPage.html, 'approve-form', 'csrf') })).status, 403);
    assert.equal((await browser.post(`/inbox/requests/${handle.requestId}/edit/preview`, { digest, mode: 'json', args: '{}' })).status, 403);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const status = await gw.status(handle.requestId);
    assert.equal(status.state, 'pending_approval');
    assert.deepEqual(status.approvals, []);
    assert.deepEqual(status.refusals, [], 'the refused posts never reached the API');
    assert.deepEqual(status.edits, []);
    // The same session with its own token works.
    assert.equal((await browser.post(path, { decision: 'approve', digest, csrf })).status, 303);
    assert.equal((await handle.outcome()).status, 'completed');
  });

  test('next may only lead under /inbox: open-redirect attempts land on the inbox home', async () => {
    const cases: [string, string][] = [
      ['https://evil.example/x', '/inbox/'],
      ['//evil.example/x', '/inbox/'],
      ['/\\evil.example', '/inbox/'],
      ['/inbox/../admin', '/inbox/'],
      ['/inbox/%2e%2e/admin', '/inbox/'],
      ['/inbox\\@evil.example', '/inbox/'],
      ['/elsewhere', '/inbox/'],
      ['/inbox/requests/r-1?x=1', '/inbox/requests/r-1?x=1'],
    ];
    for (const [next, expected] of cases) assert.equal(safeNext('/inbox', next), expected, next);
    const browser = new Browser(gw.apiUrl);
    const page = await browser.get('/inbox/signin?next=https%3A%2F%2Fevil.example%2F');
    assert.equal(field(page.html, 'signin-form', 'next'), '/inbox/');
    const res = await browser.post('/inbox/signin', {
      csrf: field(page.html, 'signin-form', 'csrf'),
      next: '//evil.example/steal',
      token: await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] }),
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/inbox/');
    // Signed in, the sign-in page forwards to next, still only under the inbox.
    const forwarded = await browser.get('/inbox/signin?next=https%3A%2F%2Fevil.example%2F');
    assert.equal(forwarded.status, 303);
    assert.equal(forwarded.headers.get('location'), '/inbox/');
  });

  test('an expired but genuine decision link leads to sign-in and then to the same request page', async () => {
    const handle = await gw.gateway.start(request({ amount: 99, customer: 'c-9' }));
    const { digest } = await pending(handle.requestId);
    const hourAgo = new Date(Date.now() - 3600_000);
    const { token } = await gw.links.mintLink({ requestId: handle.requestId, digest, approver: { id: 'maria', tenant: 'acme', groups: ['manager'] } }, hourAgo);
    // The link itself decides nothing any more: the API sends a genuine expired link on to the inbox.
    const opened = await fetch(`${gw.apiUrl}/v1/links/${token}`, { redirect: 'manual' });
    assert.equal(opened.status, 303);
    assert.equal(opened.headers.get('location'), `/inbox/from-link/${token}`);
    const browser = new Browser(gw.apiUrl);
    const res = await browser.get(`/inbox/from-link/${token}`);
    assert.equal(res.status, 303);
    const signin = res.headers.get('location')!;
    assert.equal(signin, `/inbox/signin?next=${encodeURIComponent(`/inbox/requests/${handle.requestId}`)}`);
    const page = await browser.get(signin);
    const done = await browser.post('/inbox/signin', {
      csrf: field(page.html, 'signin-form', 'csrf'),
      next: field(page.html, 'signin-form', 'next'),
      token: await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] }),
    });
    assert.equal(done.headers.get('location'), `/inbox/requests/${handle.requestId}`);
    const landed = await browser.get(done.headers.get('location')!);
    assert.equal(landed.status, 200);
    assert.match(landed.html, new RegExp(`<code id="request-digest">${digest}</code>`));
    // Nothing but a valid id is taken from an unverified link: junk and hostile ids lead to the inbox home.
    const junk = await browser.get('/inbox/from-link/not-a-jwt');
    assert.equal(junk.headers.get('location'), `/inbox/signin?next=${encodeURIComponent('/inbox/')}`);
    const hostile = `${base64url.encode('{"alg":"none"}')}.${base64url.encode(JSON.stringify({ request_id: '../../evil' }))}.`;
    assert.equal((await browser.get(`/inbox/from-link/${hostile}`)).headers.get('location'), `/inbox/signin?next=${encodeURIComponent('/inbox/')}`);
  });

  test("the schema-guided edit form (when the view carries the tool's argument schema) has one field per argument", () => {
    const schema = {
      type: 'object',
      required: ['amount'],
      properties: { amount: { type: 'integer' }, customer: { type: 'string' }, mode: { enum: ['full', 'partial'] } },
    };
    assert.deepEqual(
      schemaFields(schema)?.map((f) => [f.name, f.type, f.required]),
      [
        ['amount', 'integer', true],
        ['customer', 'string', false],
        ['mode', 'json', false],
      ],
    );
    assert.equal(schemaFields({ type: 'object', properties: { 'bad name': {} } }), undefined, 'a name that cannot be a field falls back to JSON');
    const view = {
      requestId: 'r-1',
      state: 'pending_approval',
      tenant: 'acme',
      environment: 'production',
      tool: 'refund',
      args: { amount: 5, customer: '<c>' },
      reasons: [],
      actor: bot,
      onBehalfOf: [],
      tier: 0,
      eligibleGroups: ['manager'],
      approvals: [],
      edits: [],
      canDecide: true,
      digest: 'a'.repeat(64),
      argsSchema: schema,
    } as unknown as Parameters<typeof requestPage>[1]['view'];
    const html = requestPage({ base: '/inbox', title: 't' }, { view, csrf: 'c' });
    assert.match(html, /<input id="edit-arg-amount" name="arg.amount" type="number" step="1" value="5" data-kind="integer" required>/);
    assert.match(html, /<input id="edit-arg-customer" name="arg.customer" type="text" value="&lt;c&gt;" data-kind="string">/);
    assert.match(html, /<select id="edit-arg-mode" name="arg.mode" data-kind="enum">/);
    assert.doesNotMatch(html, /id="edit-args"/);
  });

  describe('OIDC sign-in (authorization code + PKCE) against a real provider', () => {
    let provider: TestOidcProvider;
    let api: { server: Server; url: string };

    before(async () => {
      // A second API on the same Temporal and decision key, whose verifier accepts the provider's ID tokens.
      const listening = await listenLoopback();
      api = { server: listening.server, url: listening.url };
      provider = await startOidcProvider({
        redirectUri: `${api.url}/inbox/signin/callback`,
        accounts: { olivia: { groups: ['manager'], tenant: 'acme' }, gus: { groups: ['manager'], tenant: 'globex' } },
      });
      const verifier = new OidcApproverVerifier({ issuer: provider.issuer, jwksUrl: provider.jwksUrl, audience: provider.clientId, algorithms: ['RS256'] });
      const app = createApiApp({
        client: env.client,
        verifier,
        decisions: gw.keys.decisionSigner,
        logger: silentLogger(),
        mount: (a) => {
          a.use(
            '/inbox',
            createInboxRouter({
              apiBaseUrl: api.url,
              verifier,
              sessionKey: randomBytes(32),
              secureCookies: false,
              logger: silentLogger(),
              oidc: {
                issuer: provider.issuer,
                clientId: provider.clientId,
                clientSecret: provider.clientSecret,
                redirectUri: `${api.url}/inbox/signin/callback`,
                scopes: ['openid', 'toolgate'],
              },
            }),
          );
        },
      });
      listening.setHandler(app);
    });
    after(async () => {
      api?.server.closeAllConnections();
      await new Promise<void>((resolve) => (api ? api.server.close(() => resolve()) : resolve()));
      await provider?.close();
    });

    /** Drives the provider's login and consent pages as a browser would, until it redirects back to the inbox. */
    const throughProvider = async (authorizeUrl: string, login: string): Promise<string> => {
      const idp = new Browser(provider.issuer);
      let res = await idp.get(authorizeUrl);
      for (let step = 0; step < 12; step += 1) {
        if (res.status >= 300 && res.status < 400) {
          const location = new URL(res.headers.get('location')!, provider.issuer);
          if (location.origin !== provider.issuer) return location.href;
          res = await idp.get(location.pathname + location.search);
          continue;
        }
        assert.equal(res.status, 200, res.html);
        const action = /<form[^>]*action="([^"]+)"/.exec(res.html)?.[1];
        assert.ok(action, `a form on the provider's page: ${res.html.slice(0, 300)}`);
        const prompt = /name="prompt" value="([a-z]+)"/.exec(res.html)?.[1];
        res = await idp.post(unescape(action), prompt === 'login' ? { prompt, login, password: 'any' } : { prompt: prompt ?? 'consent' });
      }
      assert.fail('the provider never redirected back');
    };

    test('sign-in redirects with PKCE S256, state and nonce; the callback opens a session the API accepts; approving completes the request', async () => {
      const handle = await gw.gateway.start(request({ amount: 55, customer: 'c-10' }));
      const { digest } = await pending(handle.requestId);
      const browser = new Browser(api.url);
      const signin = await browser.get(`/inbox/signin?next=${encodeURIComponent(`/inbox/requests/${handle.requestId}`)}`);
      assert.match(signin.html, /id="signin-oidc"/);
      assertStrictPage(signin, 'sign-in page with OIDC');
      const start = await browser.get(`/inbox/signin/oidc?next=${encodeURIComponent(`/inbox/requests/${handle.requestId}`)}`);
      assert.equal(start.status, 302);
      const authorize = new URL(start.headers.get('location')!);
      assert.equal(authorize.origin, provider.issuer);
      assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
      assert.match(authorize.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
      assert.ok(authorize.searchParams.get('state'));
      assert.ok(authorize.searchParams.get('nonce'));
      assert.equal(authorize.searchParams.get('client_id'), provider.clientId);
      assert.ok(browser.jar.cookies.has('tg_inbox_oidc'), "the flow's secrets wait in a sealed cookie");
      assert.ok(!browser.jar.lastSetCookie.get('tg_inbox_oidc')!.includes(authorize.searchParams.get('state')!), 'state is not readable in the cookie');

      const callback = new URL(await throughProvider(authorize.pathname + authorize.search, 'olivia'));
      assert.equal(callback.origin + callback.pathname, `${api.url}/inbox/signin/callback`);
      assert.ok(callback.searchParams.get('code'));
      // A callback whose state was swapped is refused and opens no session.
      const tampered = new URL(callback);
      tampered.searchParams.set('state', 'forged-state');
      const thief = new Browser(api.url);
      for (const [name, value] of browser.jar.cookies) thief.jar.cookies.set(name, value);
      const refused = await thief.get(tampered.pathname + tampered.search);
      assert.equal(refused.status, 401);
      assert.ok(!thief.jar.cookies.has('tg_inbox_session'));

      const replayer = new Browser(api.url);
      for (const [name, value] of browser.jar.cookies) replayer.jar.cookies.set(name, value);
      const done = await browser.get(callback.pathname + callback.search);
      assert.equal(done.status, 303, done.html);
      assert.equal(done.headers.get('location'), `/inbox/requests/${handle.requestId}`);
      assert.match(browser.jar.lastSetCookie.get('tg_inbox_session') ?? '', /HttpOnly; SameSite=Lax/);
      assert.ok(!browser.jar.cookies.has('tg_inbox_oidc'), 'the flow cookie is spent');
      // A copy of the flow cookie and the callback URL do not redeem the code a second time.
      const replayed = await replayer.get(callback.pathname + callback.search);
      assert.equal(replayed.status, 401);
      assert.ok(!replayer.jar.cookies.has('tg_inbox_session'));

      // The session's ID token is what the API verifies (OidcApproverVerifier against the provider's JWKS).
      const page = await browser.get(`/inbox/requests/${handle.requestId}`);
      assert.equal(page.status, 200, page.html);
      assert.match(page.html, /id="signed-in-as">olivia · acme · manager</);
      const res = await browser.post(`/inbox/requests/${handle.requestId}/decision`, {
        csrf: field(page.html, 'approve-form', 'csrf'),
        digest,
        decision: 'approve',
      });
      assert.equal(res.status, 303);
      const outcome = await handle.outcome();
      assert.equal(outcome.status, 'completed');
      assert.deepEqual(
        outcome.approvals.map((vote) => vote.approverId),
        ['olivia'],
      );
    });

    test("an OIDC account of another tenant signs in but sees none of this tenant's requests", async () => {
      const handle = await gw.gateway.start(request({ amount: 56, customer: 'c-11' }));
      await pending(handle.requestId);
      const browser = new Browser(api.url);
      const start = await browser.get('/inbox/signin/oidc?next=%2Finbox%2F');
      const authorize = new URL(start.headers.get('location')!);
      const callback = new URL(await throughProvider(authorize.pathname + authorize.search, 'gus'));
      assert.equal((await browser.get(callback.pathname + callback.search)).status, 303);
      const list = await browser.get('/inbox/');
      assert.equal(list.status, 200);
      assert.match(list.html, /id="signed-in-as">gus · globex · manager</);
      assert.ok(!list.html.includes(handle.requestId));
      assert.equal((await browser.get(`/inbox/requests/${handle.requestId}`)).status, 404);
    });
  });
});
