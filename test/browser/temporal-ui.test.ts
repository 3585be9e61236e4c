/**
 * The Temporal UI of `toolgate dev`, in a real browser (the system's Chromium): the detail page of
 * a request shows its decoded tool name and arguments, because the API's codec endpoint trusts the
 * local UI's origin over loopback (`codec.devTrustedUiOrigins`) — and nobody else: a page served
 * from another origin cannot read decoded payloads, and a token-less call without the UI's Origin
 * is refused. A control opens the same page with the codec endpoint unreachable, so the checks are
 * shown to tell decoded from ciphertext. Screenshots: test-artifacts/screenshots/temporal-ui-*.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { type Payload } from '@temporalio/common';
import { ToolGateway } from '../../src/client/index.js';
import { workflowIdFor } from '../../src/shared/index.js';
import { expectPageText, launchBrowser, pageText, screenshot } from '../helpers/browser.js';
import { connectClient, findFreePort, localTokens, spawnToolgate, until, waitForOutput, type ManagedProcess } from '../helpers/processes.js';

const TENANT = 'acme';
const DECODED_TEST = 'temporal-ui-decoded-request';
const CONTROL_TEST = 'temporal-ui-codec-unreachable';
const ORIGIN_TEST = 'temporal-ui-foreign-origin';
/** The banner the UI (2.x) shows when its codec calls fail; the payloads then stay base64 ciphertext. */
const CODEC_FAILURE = /Codec Server could not connect/i;

const KB_ARGS = { query: 'password reset' };
const TICKET_ARGS = { title: 'Browser test: locked out', body: 'Customer cannot reset the password.', priority: 'urgent', customer_id: 'cus_1001' };

/** A payload as the remote-codec JSON protocol carries it (base64 metadata values and data). */
function payloadJson(payload: Payload): { metadata: Record<string, string>; data: string } {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(payload.metadata ?? {})) if (value) metadata[key] = Buffer.from(value).toString('base64');
  return { metadata, data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64') };
}

/**
 * The text of the UI's code view (CodeMirror) showing a request's decoded workflow input
 * `{ request, admission }` — told from the Result view by its `admission` field; undefined while it
 * is not shown decoded. Text, not parsed JSON: CodeMirror renders only the lines near the viewport,
 * so the closing lines of a long input may be missing, but the request's fields come first.
 */
async function renderedInput(page: Page, requestId: string): Promise<string | undefined> {
  const views = await page.locator('.cm-content').allInnerTexts();
  return views.find((text) => text.includes(`"requestId": ${JSON.stringify(requestId)}`) && text.includes('"admission":'));
}

/**
 * Run in the foreign page (as a string: no transpiler helper leaks in): two codec calls as another
 * site's script would make them — the UI's own kind (JSON + X-Namespace, which needs a CORS
 * preflight) and a "simple" one (text/plain, sent without a preflight, so the server itself must
 * refuse it). Each ends as "status N: body" when the page could read the answer, else "blocked: reason".
 */
const FOREIGN_PAGE_SCRIPT = `async ({ endpoint, payloadBody }) => {
  async function attempt(init) {
    try {
      const response = await fetch(endpoint, init);
      return 'status ' + response.status + ': ' + (await response.text());
    } catch (err) {
      return 'blocked: ' + err.message;
    }
  }
  const results = {
    json: await attempt({ method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'default' }, body: payloadBody }),
    simple: await attempt({ method: 'POST', headers: { 'content-type': 'text/plain' }, body: payloadBody }),
  };
  document.getElementById('out').textContent = JSON.stringify(results, null, 2);
  return results;
}`;

describe('the Temporal UI of toolgate dev', { timeout: 150_000 }, () => {
  let stateDir = '';
  let dev: ManagedProcess | undefined;
  let browser: Browser | undefined;
  let foreignServer: Server | undefined;
  let apiUrl = '';
  let uiUrl = '';
  let temporalAddress = '';
  let kbRequestId = '';
  let ticketRequestId = '';

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'toolgate-browser-'));
    const [port, uiPort, apiPort] = [await findFreePort(), await findFreePort(), await findFreePort()];
    temporalAddress = `127.0.0.1:${port}`;
    apiUrl = `http://127.0.0.1:${apiPort}`;
    // The local key first: the API serves the agent routes only when it exists at start-up.
    const tokens = await localTokens(stateDir);
    const launching = launchBrowser(); // overlaps Temporal's start
    dev = spawnToolgate('toolgate dev', ['dev', '--port', String(port), '--ui-port', String(uiPort)], {
      TOOLGATE_STATE_DIR: stateDir,
      TOOLGATE_API_PORT: String(apiPort),
      TEMPORAL_ADDRESS: temporalAddress,
      TOOLGATE_LOG_LEVEL: 'warn',
    });
    browser = await launching;
    await waitForOutput(dev, /Press Ctrl-C to stop/, 90_000);
    uiUrl = new RegExp(`Temporal UI: +(http://127\\.0\\.0\\.1:${uiPort})`).exec(dev.output())?.[1] ?? '';
    assert.ok(uiUrl, `toolgate dev printed no Temporal UI URL on port ${uiPort}:\n${dev.output()}`);

    // An agent with its token and nothing else, through the front door.
    const agent = new ToolGateway({
      url: apiUrl,
      token: await tokens.agent({ sub: 'browser-agent', tenant: TENANT, environment: 'production', roles: ['agent_runtime'] }),
    });
    const run = Date.now().toString(36);
    kbRequestId = `browser-${run}-kb`;
    ticketRequestId = `browser-${run}-ticket`;
    assert.ok(await agent.call({ requestId: kbRequestId, tool: 'read_kb', args: KB_ARGS, reason: 'browser test' }), 'read_kb returned nothing');
    const ticket = await agent.start({ requestId: ticketRequestId, tool: 'create_ticket', args: TICKET_ARGS, reason: 'browser test' });
    await until('the ticket to wait for approval', 30_000, async () => ((await ticket.status()).state === 'pending_approval' ? true : undefined), 200);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (foreignServer) await new Promise((resolve) => foreignServer!.close(resolve));
    await dev?.stop(15_000);
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  /** The workflow's run id, which the UI's URLs need: the raw service call decodes no payload, so it needs no codec key. */
  async function runIdOf(requestId: string): Promise<string> {
    const { connection } = await connectClient(temporalAddress);
    try {
      const described = await connection.workflowService.describeWorkflowExecution({
        namespace: 'default',
        execution: { workflowId: workflowIdFor(TENANT, requestId) },
      });
      const runId = described.workflowExecutionInfo?.execution?.runId;
      assert.ok(runId, `no run of ${requestId}`);
      return runId;
    } finally {
      await connection.close();
    }
  }

  /** The input payload of a request's workflow as Temporal stores it: ciphertext. */
  async function encryptedInput(requestId: string): Promise<Payload> {
    const { client, connection } = await connectClient(temporalAddress);
    try {
      const history = await client.workflow.getHandle(workflowIdFor(TENANT, requestId)).fetchHistory();
      const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      assert.ok(input, 'the workflow has no input payload');
      return input;
    } finally {
      await connection.close();
    }
  }

  /** The start of the input's ciphertext as the UI prints it when it cannot decode (base64 of the payload's data). */
  async function ciphertextSample(requestId: string): Promise<string> {
    return payloadJson(await encryptedInput(requestId)).data.slice(0, 40);
  }

  /** The UI's page of one workflow run's history (the workflow id has slashes: one encoded path segment). */
  async function historyUrl(requestId: string): Promise<string> {
    return `${uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowIdFor(TENANT, requestId))}/${await runIdOf(requestId)}/history`;
  }

  async function newContext(): Promise<BrowserContext> {
    assert.ok(browser, 'no browser');
    return browser.newContext({ viewport: { width: 1440, height: 1000 } });
  }

  test('the detail page of a request shows its decoded tool name and arguments', async () => {
    const context = await newContext();
    const page = await context.newPage();
    const codecCalls: Promise<{ path: string; method: string; status: number; origin: string | undefined; authorization: boolean }>[] = [];
    page.on('response', (response) => {
      const request = response.request();
      if (!request.url().startsWith(`${apiUrl}/codec`)) return;
      // allHeaders(): Origin is set by the network stack, it is not among the page's provisional headers.
      codecCalls.push(
        request.allHeaders().then((headers) => ({
          path: new URL(request.url()).pathname,
          method: request.method(),
          status: response.status(),
          origin: headers.origin,
          authorization: 'authorization' in headers,
        })),
      );
    });
    try {
      // Where a reader starts: the list shows ids and states, no payload.
      await page.goto(`${uiUrl}/namespaces/default/workflows`, { waitUntil: 'load', timeout: 30_000 });
      await expectPageText(
        page,
        `the workflow list with both requests`,
        (t) => t.includes(workflowIdFor(TENANT, ticketRequestId)) && t.includes(workflowIdFor(TENANT, kbRequestId)),
        {
          testName: DECODED_TEST,
        },
      );
      await screenshot(page, DECODED_TEST, 'workflow list');

      for (const [requestId, tool, args] of [
        [kbRequestId, 'read_kb', KB_ARGS],
        [ticketRequestId, 'create_ticket', TICKET_ARGS],
      ] as const) {
        // A SPA that keeps polling a running workflow: wait for the decoded input itself, not for network idle.
        await page.goto(await historyUrl(requestId), { waitUntil: 'load', timeout: 30_000 });
        await expectPageText(page, `the header of ${requestId}`, (t) => t.includes(workflowIdFor(TENANT, requestId)) && /\bInput\b/.test(t), {
          testName: DECODED_TEST,
        });
        const input = await until(`the decoded input of ${requestId}`, 20_000, () => renderedInput(page, requestId), 250).catch(async (err: Error) => {
          const shot = await screenshot(page, DECODED_TEST, `failed ${tool} detail`);
          throw new Error(`${err.message}\nscreenshot: ${shot}\npage text:\n${await pageText(page)}`);
        });
        await screenshot(page, DECODED_TEST, `${tool} detail`);
        // As the pretty-printed JSON shows them: "tool": "read_kb", "query": "password reset", ...
        assert.ok(input.includes(`"tool": ${JSON.stringify(tool)}`), `the input shows no tool ${tool}:\n${input}`);
        for (const [key, value] of Object.entries(args)) {
          assert.ok(input.includes(`${JSON.stringify(key)}: ${JSON.stringify(value)}`), `the input shows no argument ${key} = ${value}:\n${input}`);
        }
        const text = await pageText(page, 1_000_000);
        assert.doesNotMatch(text, CODEC_FAILURE, 'the UI reports a codec failure');
        assert.ok(!text.includes(await ciphertextSample(requestId)), 'the UI shows the input as ciphertext');
      }
      // The decoding went through the API's codec endpoint, from the UI's origin, without a token.
      const calls = await Promise.all(codecCalls);
      const decodes = calls.filter((c) => c.method === 'POST' && c.path === '/codec/decode');
      assert.ok(decodes.length > 0, `the UI never called the codec endpoint: ${JSON.stringify(calls)}`);
      assert.ok(
        decodes.every((c) => c.status === 200 && c.origin === uiUrl && !c.authorization),
        `codec calls: ${JSON.stringify(calls)}`,
      );
    } finally {
      await context.close();
    }
  });

  test('control: with the codec endpoint unreachable, the same page shows ciphertext and no arguments', async () => {
    const context = await newContext();
    // The UI's codec calls fail as they did before the dev trust: the checks above must tell the difference.
    await context.route(`${apiUrl}/codec/**`, (route) => route.abort('connectionrefused'));
    const page = await context.newPage();
    try {
      await page.goto(await historyUrl(kbRequestId), { waitUntil: 'load', timeout: 30_000 });
      const sample = await ciphertextSample(kbRequestId);
      const text = await expectPageText(page, 'the codec failure banner and the ciphertext', (t) => CODEC_FAILURE.test(t) && t.includes(sample), {
        testName: CONTROL_TEST,
      });
      await screenshot(page, CONTROL_TEST, 'codec unreachable');
      assert.equal(await renderedInput(page, kbRequestId), undefined);
      assert.ok(!text.includes(KB_ARGS.query), 'the arguments are shown although nothing could decode them');
    } finally {
      await context.close();
    }
  });

  test('a page of another origin cannot decode, nor can a token-less caller without the UI origin', async () => {
    const body = JSON.stringify({ payloads: [payloadJson(await encryptedInput(kbRequestId))] });
    const decode = (headers: Record<string, string>) =>
      fetch(`${apiUrl}/codec/decode`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

    // The same body from the UI's origin over loopback is decoded: the refusals below are the origin's doing.
    const asUi = await decode({ origin: uiUrl });
    assert.equal(asUi.status, 200);
    const decoded = (await asUi.json()) as { payloads: { data: string }[] };
    assert.match(Buffer.from(decoded.payloads[0]!.data, 'base64').toString('utf8'), /password reset/);

    const bare = await decode({});
    assert.equal(bare.status, 401, 'a token-less codec call without an Origin is refused');
    assert.doesNotMatch(await bare.text(), /password reset/);

    // A page on another loopback port: another origin, as any other local web page would be.
    const foreignPort = await findFreePort();
    const foreignOrigin = `http://127.0.0.1:${foreignPort}`;
    foreignServer = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>elsewhere</title><h1>A page of another origin</h1><pre id="out">not tried yet</pre>');
    });
    await new Promise<void>((resolve) => foreignServer!.listen(foreignPort, '127.0.0.1', resolve));
    const fromForeign = await decode({ origin: foreignOrigin });
    assert.equal(fromForeign.status, 401, 'a token-less codec call from another origin is refused');
    assert.equal(fromForeign.headers.get('access-control-allow-origin'), null, 'CORS admits the foreign origin');

    const preflight = await fetch(`${apiUrl}/codec/decode`, {
      method: 'OPTIONS',
      headers: { origin: foreignOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
    });
    assert.equal(preflight.headers.get('access-control-allow-origin'), null, 'the CORS preflight admits the foreign origin');

    const context = await newContext();
    const page = await context.newPage();
    const attempt = async (step: string, expected: RegExp): Promise<void> => {
      const call = `(${FOREIGN_PAGE_SCRIPT})(${JSON.stringify({ endpoint: `${apiUrl}/codec/decode`, payloadBody: body })})`;
      const attempts = await page.evaluate<Record<string, string>>(call);
      await screenshot(page, ORIGIN_TEST, step);
      assert.deepEqual(Object.keys(attempts).sort(), ['json', 'simple']);
      for (const [kind, result] of Object.entries(attempts)) {
        assert.doesNotMatch(result, /password reset|"payloads"/, `${step}: the ${kind} attempt read a decoded payload: ${result}`);
        assert.match(result, expected, `${step}: the ${kind} attempt: ${result}`);
      }
    };
    try {
      await page.goto(foreignOrigin, { waitUntil: 'load' });
      await screenshot(page, ORIGIN_TEST, 'foreign page');
      // As a browser does it: the JSON call stops at the preflight, the simple one's answer is withheld from the page.
      // "Failed to fetch" is also what an unreachable API would give: the second round shows the API's own answers.
      await attempt('codec attempts', /^blocked: /);

      // Again, with each request the browser sends passed on by the test, which records the server's
      // answer (a CORS-blocked answer never reaches the page's events). Playwright then answers the
      // preflight itself and lets the page read fulfilled answers, so CORS is out of the way: both
      // POSTs reach the API with the foreign Origin, and the API itself refuses them.
      const answered: { method: string; status: number; origin: string | undefined; body: string }[] = [];
      await context.route(`${apiUrl}/codec/**`, async (route) => {
        const response = await route.fetch();
        const text = await response.text();
        answered.push({
          method: route.request().method(),
          status: response.status(),
          origin: (await route.request().allHeaders()).origin,
          body: text.slice(0, 200),
        });
        await route.fulfill({ response });
      });
      await attempt('codec attempts recorded', /^status 401: /);
      assert.equal(answered.length, 2, `codec requests the API answered: ${JSON.stringify(answered)}`);
      for (const answer of answered) {
        assert.deepEqual(
          { method: answer.method, status: answer.status, origin: answer.origin },
          { method: 'POST', status: 401, origin: foreignOrigin },
          JSON.stringify(answer),
        );
        assert.doesNotMatch(answer.body, /password reset/);
      }
    } finally {
      await context.close();
    }
  });
});
