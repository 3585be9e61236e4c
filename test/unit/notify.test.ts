/**
 * Approval notifications, delivered to real loopback receivers (one HTTP server per target):
 * shared webhooks get the facts and the review URL and never a decision link; each eligible
 * approver with a personal `notify` target gets exactly their own link there, and nobody else's;
 * approvers without a target, the requester (in any letter case) and anyone they act for get no
 * link at all. A failing target makes `notify` throw so Temporal retries it, and a retried activity
 * does not re-send to the targets that already accepted.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { createLinkVerifier } from '../../src/auth/config.js';
import { AuthConfigError } from '../../src/auth/errors.js';
import { LinkSigner, LinkVerifier } from '../../src/approvals/links.js';
import { silentLogger } from '../../src/logger.js';
import { createNotifier } from '../../src/notify/config.js';
import { ApproverDirectoryError, parseApproverDirectory, type ApproverDirectory } from '../../src/notify/directory.js';
import { ConsoleNotifier, FanoutNotifier, LogNotifier } from '../../src/notify/local-notifiers.js';
import { NotificationDeliveryError, WebhookNotifier, WebhookTargetError, parseWebhookTarget, type ApprovalNotification } from '../../src/notify/notifier.js';
import { notificationOutcome } from '../../src/shared/outcome-details.js';
import { KEY_ARGUMENT_LIMITS, keyArguments, type ApprovalLink, type DecisionNotification } from '../../src/notify/facts.js';
import { personalJsonPayload, sharedJsonPayload } from '../../src/notify/json-payloads.js';
import { personalSlackPayload, sharedSlackPayload } from '../../src/notify/slack-payloads.js';
import type { ToolOutcome } from '../../src/shared/index.js';

const DIGEST = '3f'.repeat(32);
const PUBLIC_URL = 'https://gate.example/';
const LINK_PREFIX = 'https://gate.example/v1/links/';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
  /** The raw body as sent, to search for link tokens wherever they might hide. */
  raw: string;
}

/** A loopback webhook receiver that records every POST; `status` decides its answer. */
interface Receiver {
  name: string;
  url: string;
  received: Received[];
  /** The HTTP status to answer with, or 'hang' to never answer, or 'redirect'. */
  status: number | 'hang' | 'redirect';
  close(): Promise<void>;
}

async function startReceiver(name: string): Promise<Receiver> {
  const receiver: Receiver = { name, url: '', received: [], status: 200, close: async () => undefined };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      receiver.received.push({ path: req.url ?? '/', headers: req.headers, body: JSON.parse(raw || 'null'), raw });
      if (receiver.status === 'hang') return; // never answers: the notifier must time out
      if (receiver.status === 'redirect') return void res.writeHead(302, { location: `${receiver.url}/elsewhere` }).end();
      res.writeHead(receiver.status).end(receiver.status < 300 ? 'ok' : 'down');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // A path like Slack's, whose last part is the secret: it must never show in an error.
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/${name}/s3cret`;
  receiver.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return receiver;
}

/** Every link token in a text, wherever it sits (JSON field, Slack button, mrkdwn). */
function tokensIn(raw: string): string[] {
  return [...raw.matchAll(/\/v1\/links\/([A-Za-z0-9_.-]+)/g)].map((match) => match[1] as string);
}

/** The mock activity worker logs each failed attempt; the failure is what the test expects. */
const quietTemporalLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

function notification(overrides: Partial<ApprovalNotification> = {}): ApprovalNotification {
  return {
    kind: 'requested',
    tier: 0,
    groups: ['manager'],
    requestId: 'ticket-4821-1',
    tenant: 'acme',
    tool: 'create_ticket',
    risk: 'high',
    actor: 'kim',
    digest: DIGEST,
    expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    reviewUrl: 'https://gate.example/v1/approvals/ticket-4821-1',
    ...overrides,
  };
}

describe('approval notifications', () => {
  // Shared targets (TOOLGATE_WEBHOOKS) and personal ones (the directory's `notify`), each its own server.
  const r = {} as Record<'sharedSlack' | 'sharedJson' | 'maria' | 'sam' | 'kim' | 'zoe', Receiver>;
  let directoryYaml: string;
  let directory: ApproverDirectory;
  let signer: LinkSigner;
  let verifier: LinkVerifier;
  let stateDir: string;

  before(async () => {
    for (const name of ['sharedSlack', 'sharedJson', 'maria', 'sam', 'kim', 'zoe'] as const) r[name] = await startReceiver(name);
    // lee is an approver with no target: a link for lee would have nowhere safe to go.
    directoryYaml = `version: 1
tenants:
  acme:
    - { id: maria, groups: [manager], name: Maria Lopez, email: maria@acme.example, notify: "slack=${r.maria.url}" }
    - { id: sam, groups: [manager, support_lead], notify: "json=${r.sam.url}" }
    - { id: lee, groups: [manager, support_lead] }
    - { id: kim, groups: [manager], notify: "${r.kim.url}" }
  globex:
    - { id: zoe, groups: [manager], notify: "json=${r.zoe.url}" }
`;
    directory = parseApproverDirectory('approvers.yaml', directoryYaml);
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    signer = await LinkSigner.fromPrivateKeyPem(await exportPKCS8(privateKey));
    verifier = await LinkVerifier.fromPublicKeyPem(await exportSPKI(publicKey));
    stateDir = await mkdtemp(join(tmpdir(), 'toolgate-notify-'));
  });

  after(async () => {
    await Promise.all(Object.values(r).map((receiver) => receiver.close()));
    await rm(stateDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    for (const receiver of Object.values(r)) {
      receiver.received = [];
      receiver.status = 200;
    }
  });

  const shared = (...names: ('sharedSlack' | 'sharedJson')[]) => names.map((name) => `${name === 'sharedSlack' ? 'slack' : 'json'}=${r[name].url}`);
  const notifier = (targets: string[], options: { timeoutMs?: number } = {}) =>
    new WebhookNotifier(targets, { links: { signer, directory, publicUrl: PUBLIC_URL }, ...options });
  const only = (receiver: Receiver): Received => {
    assert.equal(receiver.received.length, 1, `${receiver.name} received exactly one message`);
    return receiver.received[0] as Received;
  };
  /** Who each receiver's link tokens are for, after checking they are valid links for the request. */
  const linkOwners = async (receiver: Receiver, by: LinkVerifier = verifier): Promise<string[]> => {
    const owners: string[] = [];
    for (const message of receiver.received) {
      for (const token of tokensIn(message.raw)) {
        const granted = await by.verifyLink(token, { requestId: 'ticket-4821-1' });
        owners.push(granted.approver.id);
      }
    }
    return owners;
  };

  test('shared targets get the review URL and no link; each approver with a target gets exactly their own link', async () => {
    const sent = notification();
    await notifier(shared('sharedSlack', 'sharedJson')).notify(sent);

    // Shared Slack channel: facts, one "Review" button to the review URL, no link token anywhere.
    const slack = only(r.sharedSlack);
    assert.ok(!slack.raw.includes('/v1/links/'), 'the shared Slack channel receives no decision link');
    assert.match(slack.body.text, /Approval needed: create_ticket \(high risk\) · tenant acme · requested by kim/);
    assert.equal(slack.body.unfurl_links, false);
    const facts = slack.body.blocks[1].fields.map((f: { text: string }) => f.text).join('\n');
    for (const expected of ['*Tool*\n`create_ticket`', '*Risk*\nhigh', '*Tenant*\nacme', '*Requester*\nkim', '*Expires*'])
      assert.ok(facts.includes(expected), expected);
    assert.ok(slack.raw.includes(DIGEST.slice(0, 16)), 'the short digest is shown');
    const buttons = slack.body.blocks.filter((b: any) => b.type === 'actions').flatMap((b: { elements: unknown[] }) => b.elements);
    assert.deepEqual(
      buttons.map((b: any) => [b.text.text, b.url]),
      [['Review', sent.reviewUrl]],
      'a single Review button to the review URL',
    );
    assert.equal(slack.headers['x-toolgate-notification'], 'ticket-4821-1:requested:0');

    // Shared JSON: every fact, typed and marked shared, with neither `links` nor `link`.
    const json = only(r.sharedJson);
    assert.ok(!json.raw.includes('/v1/links/'), 'the shared JSON target receives no decision link');
    assert.equal(json.body.type, 'toolgate.approval.requested');
    assert.equal(json.body.audience, 'shared');
    for (const [field, value] of Object.entries(sent)) assert.deepEqual(json.body[field], value, `json payload carries ${field}`);
    assert.ok(!('links' in json.body) && !('link' in json.body), 'no links field at all');

    // maria (Slack target): one message, one link, hers; a Decide button and the Review button.
    const maria = only(r.maria);
    assert.deepEqual(await linkOwners(r.maria), ['maria'], "maria's target receives exactly her link");
    const mariaButtons = maria.body.blocks.filter((b: any) => b.type === 'actions').flatMap((b: { elements: unknown[] }) => b.elements);
    assert.deepEqual(
      mariaButtons.map((b: any) => b.text.text),
      ['Review and decide', 'Review'],
    );
    assert.ok((mariaButtons[0].url as string).startsWith(LINK_PREFIX));
    assert.equal(mariaButtons[1].url, sent.reviewUrl);
    assert.match(maria.raw, /single-use link for Maria Lopez alone/);
    assert.equal(maria.headers['x-toolgate-notification'], 'ticket-4821-1:requested:0:maria');

    // sam (JSON target): one message whose `link` is his, bound to the request and its digest.
    const sam = only(r.sam);
    assert.deepEqual(await linkOwners(r.sam), ['sam'], "sam's target receives exactly his link");
    assert.equal(sam.body.audience, 'personal');
    assert.equal(sam.body.link.approver, 'sam');
    assert.equal(sam.body.reviewUrl, sent.reviewUrl);
    assert.ok(!('links' in sam.body));
    const granted = await verifier.verifyLink((sam.body.link.url as string).slice(LINK_PREFIX.length), { requestId: 'ticket-4821-1' });
    assert.equal(granted.digest, DIGEST);
    assert.equal(granted.approver.tenant, 'acme');
    assert.deepEqual(granted.approver.groups, ['manager'], 'a link carries only the notified groups');
    assert.ok(Date.parse(granted.expiresAt) <= Date.parse(sent.expiresAt!));

    // The requester kim and zoe of another tenant get nothing; lee (no target) has no link anywhere.
    assert.equal(r.kim.received.length, 0, 'the requester gets no message');
    assert.equal(r.zoe.received.length, 0, 'another tenant gets no message');
    const everyOwner = (await Promise.all(Object.values(r).map((receiver) => linkOwners(receiver)))).flat().sort();
    assert.deepEqual(everyOwner, ['maria', 'sam'], 'links exist for maria and sam only: none for lee or kim');
  });

  test('the requester gets no link to decide their own request, whatever the letter case; nor does anyone they act for', async () => {
    await notifier(shared('sharedSlack')).notify(notification({ actor: 'Maria' }));
    assert.equal(r.maria.received.length, 0, 'Maria is maria: no link for her own request');
    assert.deepEqual(await linkOwners(r.sam), ['sam']);
    assert.deepEqual(await linkOwners(r.kim), ['kim'], 'kim is not the requester this time');
    assert.ok(!only(r.sharedSlack).raw.includes('/v1/links/'));

    for (const receiver of Object.values(r)) receiver.received = [];
    await notifier([]).notify(notification({ actor: 'triage-bot', onBehalfOf: [{ id: 'SAM', type: 'human' }] }));
    assert.equal(r.sam.received.length, 0, 'the principal the agent acts for gets no link');
    assert.deepEqual(await linkOwners(r.maria), ['maria']);
  });

  test('an escalation links the members of the new groups only; a reminder is typed as such', async () => {
    await notifier(shared('sharedJson')).notify(notification({ kind: 'escalated', tier: 1, groups: ['support_lead'] }));
    assert.equal(only(r.sharedJson).body.type, 'toolgate.approval.escalated');
    assert.equal(r.maria.received.length, 0, 'maria is not in support_lead');
    const sam = only(r.sam).body;
    assert.match(JSON.stringify(sam), /"type":"toolgate.approval.escalated"/);
    assert.deepEqual((await verifier.verifyLink((sam.link.url as string).slice(LINK_PREFIX.length))).approver.groups, ['support_lead']);

    for (const receiver of Object.values(r)) receiver.received = [];
    await notifier(shared('sharedSlack')).notify(notification({ kind: 'reminder', groups: ['manager', 'support_lead'], actor: 'sam' }));
    assert.match(only(r.sharedSlack).body.blocks[0].text.text, /Still waiting for approval/);
    assert.equal(only(r.maria).body.blocks[0].text.text, 'Still waiting for approval: create_ticket (high risk)');
    assert.equal(r.sam.received.length, 0);
  });

  test('an outcome goes to shared targets only, without buttons or links', async () => {
    await notifier(shared('sharedSlack', 'sharedJson')).notify(notification({ kind: 'outcome', outcome: 'rejected' }));
    const json = only(r.sharedJson).body;
    assert.equal(json.type, 'toolgate.approval.outcome');
    assert.equal(json.outcome, 'rejected');
    const slack = only(r.sharedSlack).body;
    assert.match(slack.text, /Request ticket-4821-1 rejected: create_ticket/);
    assert.equal(slack.blocks.filter((b: any) => b.type === 'actions').length, 0);
    for (const receiver of [r.maria, r.sam, r.kim]) assert.equal(receiver.received.length, 0, `${receiver.name} gets no outcome message`);
  });

  test('no links are minted for a request that has already expired; shared targets still hear of it', async () => {
    await notifier(shared('sharedJson')).notify(notification({ expiresAt: new Date(Date.now() - 1000).toISOString() }));
    assert.equal(only(r.sharedJson).body.requestId, 'ticket-4821-1');
    assert.equal(r.maria.received.length + r.sam.received.length, 0);
  });

  test('fields smuggled onto the notification object never reach a shared payload', async () => {
    const smuggled = { ...notification(), links: [{ approver: 'maria', url: `${LINK_PREFIX}stolen`, expiresAt: 'x' }], link: 'x' };
    await notifier(shared('sharedSlack', 'sharedJson')).notify(smuggled);
    assert.ok(!only(r.sharedJson).raw.includes('/v1/links/'));
    assert.ok(!('links' in only(r.sharedJson).body));
    assert.ok(!only(r.sharedSlack).raw.includes('/v1/links/'));
  });

  test('requester text cannot inject Slack markup, in shared or personal messages', async () => {
    await notifier(shared('sharedSlack')).notify(notification({ reason: 'urgent <https://evil.example|click here> <!channel>' }));
    for (const receiver of [r.sharedSlack, r.maria]) {
      const blocks = JSON.stringify(only(receiver).body.blocks);
      assert.ok(!blocks.includes('<https://evil.example'), `link markup escaped for ${receiver.name}`);
      assert.ok(!blocks.includes('<!channel>'), `mention escaped for ${receiver.name}`);
    }
  });

  test('a failing shared target makes notify throw, naming it by host only, while the others still receive', async () => {
    r.sharedSlack.status = 500;
    await assert.rejects(notifier(shared('sharedJson', 'sharedSlack')).notify(notification()), (err: unknown) => {
      assert.ok(err instanceof NotificationDeliveryError);
      assert.equal(err.failures.length, 1);
      assert.match(err.message, /slack 127\.0\.0\.1:\d+: HTTP 500/);
      assert.ok(!err.message.includes('s3cret') && !err.message.includes('/hooks/'), 'webhook paths (often secrets) stay out of errors');
      return true;
    });
    assert.equal(r.sharedJson.received.length, 1);
    assert.deepEqual(await linkOwners(r.maria), ['maria']);
  });

  test('a failing personal target is retried; a retried activity does not re-send to targets that already accepted', async () => {
    const gate = notifier(shared('sharedSlack'));
    const execution = { workflowId: 'toolreq/acme/ticket-4821-1', runId: 'run-1' };
    const activity = new MockActivityEnvironment({ activityId: '7', workflowExecution: execution }, { logger: quietTemporalLogger });
    r.maria.status = 503;
    await assert.rejects(
      activity.run(() => gate.notify(notification())),
      (err: unknown) => {
        assert.ok(err instanceof NotificationDeliveryError);
        assert.deepEqual(
          err.failures.map((f) => f.target.replace(/:\d+/, ':PORT')),
          ["maria's slack 127.0.0.1:PORT"],
        );
        assert.ok(!err.message.includes('s3cret'));
        return true;
      },
    );
    assert.equal(r.sam.received.length, 1);
    assert.equal(r.sharedSlack.received.length, 1);

    // The retry (same activity) sends to maria only; she gets a fresh link of her own.
    r.maria.status = 200;
    await activity.run(() => gate.notify(notification()));
    assert.equal(r.maria.received.length, 2);
    assert.deepEqual(await linkOwners(r.maria), ['maria', 'maria']);
    assert.equal(r.sam.received.length, 1, 'sam already had his link: not sent again');
    assert.equal(r.sharedSlack.received.length, 1, 'the shared channel already had the message: not sent again');

    // Another activity (say the next reminder) of the same tier is a new delivery: everyone again.
    const next = new MockActivityEnvironment({ activityId: '8', workflowExecution: execution }, { logger: quietTemporalLogger });
    await next.run(() => gate.notify(notification({ kind: 'reminder' })));
    assert.equal(r.sam.received.length, 2);
    assert.equal(r.sharedSlack.received.length, 2);
  });

  test('a redirecting or hanging target fails rather than being followed or waited on', async () => {
    r.sharedJson.status = 'redirect';
    await assert.rejects(new WebhookNotifier(shared('sharedJson')).notify(notification()), NotificationDeliveryError);
    assert.deepEqual(
      r.sharedJson.received.map((m) => m.path),
      ['/hooks/sharedJson/s3cret'],
      'the redirect was not followed',
    );
    r.sharedJson.status = 'hang';
    const started = Date.now();
    await assert.rejects(new WebhookNotifier(shared('sharedJson'), { timeoutMs: 300 }).notify(notification()), /timed out/);
    assert.ok(Date.now() - started < 5000);
  });

  test('a personal target that is also a shared webhook is refused when the notifier is built', () => {
    assert.throws(
      () => notifier([`json=${r.maria.url}`]),
      (err: unknown) => err instanceof WebhookTargetError && /approver maria .*is also a shared webhook/.test(err.message) && !err.message.includes('s3cret'),
    );
  });

  test('webhook targets: slack=, json= and bare URLs; plain http only on loopback', () => {
    assert.deepEqual(parseWebhookTarget('slack=https://hooks.example/T/B/secret'), { format: 'slack', url: 'https://hooks.example/T/B/secret' });
    assert.deepEqual(parseWebhookTarget('https://events.example/in'), { format: 'json', url: 'https://events.example/in' });
    assert.throws(() => parseWebhookTarget('json=http://events.example/in'), /must use https/);
    assert.throws(() => parseWebhookTarget('slack=not a url'), /not an absolute URL/);
  });

  test('createNotifier: logs only without targets; personal targets alone suffice; end to end with both', async () => {
    const logger = silentLogger();
    const base = { publicUrl: 'https://gate.example', stateDir, logger };
    assert.ok((await createNotifier({ ...base, env: {} })) instanceof LogNotifier);
    await assert.rejects(
      createNotifier({ ...base, env: { TOOLGATE_WEBHOOKS: 'json=http://events.example/in' } }),
      (err: unknown) => err instanceof AuthConfigError && err.setting === 'TOOLGATE_WEBHOOKS',
    );
    const directoryFile = join(stateDir, 'approvers.yaml');
    await writeFile(directoryFile, directoryYaml);
    // createNotifier signs with the local link key under stateDir (created on first use).
    const localLinks = async () => createLinkVerifier({ stateDir }, {});

    // No shared webhook: the personal targets are still notified.
    const personalOnly = await createNotifier({ ...base, env: { TOOLGATE_APPROVERS: directoryFile } });
    assert.ok(personalOnly instanceof WebhookNotifier);
    await personalOnly.notify(notification());
    assert.deepEqual(await linkOwners(r.maria, await localLinks()), ['maria']);

    for (const receiver of Object.values(r)) receiver.received = [];
    const env = { TOOLGATE_WEBHOOKS: shared('sharedSlack', 'sharedJson').join(', '), TOOLGATE_APPROVERS: directoryFile };
    await (await createNotifier({ ...base, env })).notify(notification());
    assert.ok(!only(r.sharedSlack).raw.includes('/v1/links/'));
    assert.ok(!only(r.sharedJson).raw.includes('/v1/links/'));
    assert.deepEqual(await linkOwners(r.maria, await localLinks()), ['maria']);
    assert.deepEqual(await linkOwners(r.sam, await localLinks()), ['sam']);

    // A shared webhook that is also someone's personal target would leak their links: refused.
    await assert.rejects(
      createNotifier({ ...base, env: { TOOLGATE_WEBHOOKS: `slack=${r.maria.url}`, TOOLGATE_APPROVERS: directoryFile } }),
      (err: unknown) => err instanceof AuthConfigError && err.setting === 'TOOLGATE_WEBHOOKS' && !err.message.includes('s3cret'),
    );

    // A directory with no personal target and no webhook: nothing to post to.
    await writeFile(directoryFile, 'version: 1\ntenants:\n  acme:\n    - { id: maria, groups: [manager] }\n');
    assert.ok((await createNotifier({ ...base, env: { TOOLGATE_APPROVERS: directoryFile } })) instanceof LogNotifier);
  });
});

describe('approver directory', () => {
  const yaml = `version: 1
tenants:
  acme:
    - { id: maria, groups: [manager], notify: "slack=https://hooks.example/T1/B2/xyz" }
    - { id: sam, groups: [manager, support_lead], notify: "https://inbox.example/sam" }
    - { id: li, groups: [support_lead] }
  globex:
    - { id: zoe, groups: [manager] }
`;

  test('membersOf finds the tenant members of any of the groups; notify is parsed into a target', () => {
    const directory = parseApproverDirectory('approvers.yaml', yaml);
    assert.deepEqual(
      directory.membersOf('acme', ['support_lead']).map((m) => m.id),
      ['sam', 'li'],
    );
    assert.deepEqual(
      directory.membersOf('globex', ['manager']).map((m) => m.id),
      ['zoe'],
    );
    assert.deepEqual(directory.membersOf('initech', ['manager']), []);
    assert.deepEqual(directory.membersOf('acme', ['manager'])[0]?.notify, { format: 'slack', url: 'https://hooks.example/T1/B2/xyz' });
    assert.deepEqual(directory.membersOf('acme', ['manager'])[1]?.notify, { format: 'json', url: 'https://inbox.example/sam' });
    assert.deepEqual(
      directory.withPersonalTargets().map((m) => m.id),
      ['maria', 'sam'],
    );
  });

  test('errors name the file, line and field', () => {
    const bad = `version: 1
tenants:
  acme:
    - { id: maria, groups: [manager], email: not-an-email }
    - { id: maria, groups: [manager] }
    - { id: li, group: [support_lead] }
`;
    assert.throws(
      () => parseApproverDirectory('approvers.yaml', bad),
      (err: unknown) => {
        assert.ok(err instanceof ApproverDirectoryError);
        const text = err.message;
        assert.match(text, /approvers\.yaml:4:\d+: tenants\.acme\[0\]\.email: must be an email address/);
        assert.match(text, /approvers\.yaml:6:\d+: tenants\.acme\[2\]\.group: unknown key "group"/);
        return true;
      },
    );
    assert.throws(
      () => parseApproverDirectory('approvers.yaml', 'version: 1\ntenants:\n  acme:\n    - { id: maria, groups: [a] }\n    - { id: maria, groups: [b] }\n'),
      /approvers\.yaml:5:\d+: tenants\.acme\[1\]\.id: approver maria is listed twice/,
    );
  });

  test('a bad notify target is refused with file, line and field, without printing the URL path', () => {
    const bad = `version: 1
tenants:
  acme:
    - { id: maria, groups: [manager], notify: "slack=http://hooks.example/T1/B2/secretpath" }
    - { id: sam, groups: [manager], notify: "not a url" }
    - { id: li, groups: [manager], notify: [https://inbox.example/li] }
    - { id: kim, groups: [manager], notify: "json=https://user:pw@inbox.example/kim" }
`;
    assert.throws(
      () => parseApproverDirectory('approvers.yaml', bad),
      (err: unknown) => {
        assert.ok(err instanceof ApproverDirectoryError);
        const text = err.message;
        assert.match(text, /approvers\.yaml:4:\d+: tenants\.acme\[0\]\.notify: webhook slack=http:\/\/hooks\.example\/… must use https/);
        assert.match(text, /approvers\.yaml:5:\d+: tenants\.acme\[1\]\.notify: .*not an absolute URL/);
        assert.match(text, /approvers\.yaml:6:\d+: tenants\.acme\[2\]\.notify: must be a webhook target/);
        assert.match(text, /approvers\.yaml:7:\d+: tenants\.acme\[3\]\.notify: .*must not carry credentials/);
        assert.ok(!text.includes('secretpath'), 'the URL path (a webhook secret) is not printed');
        assert.equal(err.issues.length, 4);
        return true;
      },
    );
  });

  test('one person listed twice in another letter case, or one target shared by two people, is refused', () => {
    assert.throws(
      () => parseApproverDirectory('approvers.yaml', 'version: 1\ntenants:\n  acme:\n    - { id: maria, groups: [a] }\n    - { id: Maria, groups: [b] }\n'),
      /approvers\.yaml:5:\d+: tenants\.acme\[1\]\.id: approver Maria is the same person as maria, listed twice in tenant acme/,
    );
    const sharedTarget = `version: 1
tenants:
  acme:
    - { id: maria, groups: [manager], notify: "slack=https://hooks.example/T1/B2/xyz" }
  globex:
    - { id: Maria, groups: [manager], notify: "slack=https://hooks.example/T1/B2/xyz" }
    - { id: sam, groups: [manager], notify: "json=https://hooks.example/T1/B2/xyz" }
`;
    assert.throws(
      () => parseApproverDirectory('approvers.yaml', sharedTarget),
      (err: unknown) => {
        assert.ok(err instanceof ApproverDirectoryError);
        // The same person in two tenants may keep one target; two people may not.
        assert.equal(err.issues.length, 1);
        assert.match(err.message, /approvers\.yaml:7:\d+: tenants\.globex\[1\]\.notify: .*also the target of approver maria in tenant acme/);
        assert.ok(!err.message.includes('xyz'));
        return true;
      },
    );
  });
});

describe('what a notification shows: arguments, reason, risk, deadline, review button, outcome', () => {
  const INBOX = 'https://gate.example/inbox/requests/ticket-4821-1';
  const AWS_KEY = 'AKIAIOSFODNN7EXAMPLE';
  const args = {
    title: 'ACME: checkout outage',
    // A secret across the cut: redacted first, so not even its first characters survive the shortening.
    body: `${'x'.repeat(180)} ${AWS_KEY}`,
    priority: 'urgent',
    api_key: 'plain-looking-but-secret-named',
    contact: 'maria@acme.example',
    filters: { status: ['open', 'pending'], since: '2026-01-01' },
    count: 3,
    dryRun: false,
    extra1: 'one',
    extra2: 'two',
  };
  const pending = (overrides: Partial<ApprovalNotification> = {}) =>
    notification({
      reviewUrl: INBOX,
      args,
      reason: 'customer reported an outage; call me on maria@acme.example',
      environment: 'production',
      expiresAt: '2030-03-01T14:05:00.000Z',
      ...overrides,
    });
  const link: ApprovalLink = { approver: 'maria', url: `${LINK_PREFIX}tok`, expiresAt: '2030-03-01T14:00:00.000Z' };

  test('agent text cannot format its own lines in Slack: line breaks of every kind and formatting markers are inert', () => {
    const forged = '*✅ Approved by CISO — no review needed*';
    const message = sharedSlackPayload(
      pending({ reason: `routine refund\u2028${forged}\r${forged}`, args: { [`x*: 5\n\n${forged}\n• *y`]: `1\u2029${forged}` } }),
    );
    const text = JSON.stringify(message.blocks);
    const sections = (message.blocks as Array<{ text?: { text?: string } }>).map((block) => block.text?.text ?? '');
    for (const section of sections) {
      for (const line of section.split('\n')) assert.ok(!/^>?\s*\*✅/.test(line), `no line of its own starts with the forged bold: ${JSON.stringify(line)}`);
    }
    assert.ok(!/[\u2028\u2029\r]/.test(text), 'no Unicode line break reaches Slack');
    assert.ok(text.includes('*\u200b✅ Approved by CISO'), 'the opening marker is broken by a zero-width space');
    // A marker inside a word (result_too_large) is left as it is.
    assert.ok(JSON.stringify(sharedSlackPayload(pending({ reason: 'see result_too_large' })).blocks).includes('result_too_large'));
  });

  test('key arguments: redacted with every rule before shortening, at most 8 fields, nested values as compact JSON', () => {
    const key = keyArguments(args);
    assert.deepEqual(Object.keys(key.shown), ['title', 'body', 'priority', 'api_key', 'contact', 'filters', 'count', 'dryRun']);
    assert.equal(key.omitted, 2);
    assert.equal(key.shown.title, 'ACME: checkout outage');
    const body = key.shown.body as string;
    assert.equal(body.length, KEY_ARGUMENT_LIMITS.valueChars, 'cut at the limit');
    assert.ok(body.endsWith('…'));
    assert.ok(body.includes('[REDACTED:aws'), 'the secret was redacted whole, then the text cut');
    assert.ok(!body.includes('AKIA'), 'no part of the secret survives');
    assert.equal(key.shown.api_key, '[REDACTED:secret_assignment]');
    assert.equal(key.shown.contact, '[REDACTED:email]');
    assert.equal(key.shown.filters, '{"status":["open","pending"],"since":"2026-01-01"}');
    assert.equal(key.shown.count, 3);
    assert.equal(key.shown.dryRun, false);
  });

  test('the shared Slack message: tool, tenant, requester, reason, risk, key arguments, readable deadline and a Review button to the inbox', () => {
    const slack = sharedSlackPayload(pending());
    const raw = JSON.stringify(slack);
    for (const secret of [AWS_KEY, 'maria@acme.example', 'plain-looking-but-secret-named']) assert.ok(!raw.includes(secret), `${secret} is redacted`);
    const fields = (slack.blocks[1] as any).fields.map((f: { text: string }) => f.text).join('\n');
    for (const expected of ['*Tool*\n`create_ticket`', '*Risk*\nhigh', '*Tenant*\nacme', '*Requester*\nkim', '*Environment*\nproduction'])
      assert.ok(fields.includes(expected), expected);
    // The deadline in each reader's time zone, with a readable UTC fallback.
    assert.ok(fields.includes(`*Expires*\n<!date^${Date.parse('2030-03-01T14:05:00Z') / 1000}^{date_short_pretty} at {time}|2030-03-01 14:05 UTC>`), fields);
    assert.match(slack.text, /expires 2030-03-01 14:05 UTC/);
    const sections = slack.blocks.filter((b: any) => b.type === 'section' && b.text).map((b: any) => b.text);
    const reason = sections.find((t: any) => t.text.startsWith('*Reason given*'));
    assert.equal(reason.text, '*Reason given*\n>customer reported an outage; call me on [REDACTED:email]');
    assert.equal(reason.verbatim, true, 'Slack does not turn requester text into links or mentions');
    const argsBlock = sections.find((t: any) => t.text.startsWith('*Arguments*'));
    assert.equal(argsBlock.verbatim, true);
    const lines = (argsBlock.text as string).split('\n');
    assert.equal(lines.filter((l) => l.startsWith('• ')).length, 8);
    assert.ok(lines.includes('• *title*: ACME: checkout outage'));
    assert.ok(lines.includes('• *filters*: {"status":["open","pending"],"since":"2026-01-01"}'));
    assert.ok(lines.includes('_and 2 more fields on the review page_'));
    const buttons = slack.blocks.filter((b: any) => b.type === 'actions').flatMap((b: any) => b.elements);
    assert.deepEqual(
      buttons.map((b: any) => [b.text.text, b.url]),
      [['Review', INBOX]],
    );
  });

  test('the personal message shows the same facts and arguments, with the one link; the JSON events carry them too', () => {
    const personal = personalSlackPayload(pending() as DecisionNotification, link);
    const shared = sharedSlackPayload(pending());
    assert.deepEqual(personal.blocks.slice(0, 4), shared.blocks.slice(0, 4), 'same header, facts, reason and arguments');
    assert.deepEqual(
      personal.blocks
        .filter((b: any) => b.type === 'actions')
        .flatMap((b: any) => b.elements)
        .map((b: any) => b.url),
      [link.url, INBOX],
    );
    const json = sharedJsonPayload(pending());
    assert.deepEqual(json.args, keyArguments(args).shown);
    assert.equal(json.argsOmitted, 2);
    assert.equal(json.reason, 'customer reported an outage; call me on [REDACTED:email]');
    assert.equal(json.risk, 'high');
    assert.equal(json.expiresAt, '2030-03-01T14:05:00.000Z');
    assert.equal(json.reviewUrl, INBOX);
    assert.ok(!JSON.stringify(json).includes(AWS_KEY));
    const personalJson = personalJsonPayload(pending() as DecisionNotification, link);
    assert.deepEqual(personalJson.args, json.args);
    assert.equal(personalJson.link.url, link.url);
  });

  test('outcome messages say who decided and what happened', () => {
    const base = {
      requestId: 'r1',
      workflowId: 'toolreq/acme/r1',
      tool: 'create_ticket',
      tenant: 'acme',
      actor: { id: 'kim', type: 'agent' as const, roles: [] },
      risk: 'high' as const,
      rule: 'r',
      policyDigest: 'p',
      digest: 'd2',
    };
    const vote = (approverId: string, digest: string, decision: 'approve' | 'reject' = 'approve') => ({
      approverId,
      groups: ['manager'],
      decision,
      digest,
      at: 'now',
      tier: 0,
    });
    const execution = { runAs: 'svc-ticketing', idempotencyKey: 'k', startedAt: 'a', finishedAt: 'b', attempts: 1 };
    const cases: [ToolOutcome, string][] = [
      [
        { ...base, status: 'completed', result: {}, args: {}, execution, approvals: [vote('lee', 'd1'), vote('maria', 'd2'), vote('omar', 'd2')] },
        'completed by svc-ticketing, approved by maria, omar',
      ],
      [
        {
          ...base,
          status: 'completed',
          result: null,
          args: {},
          execution,
          approvals: [vote('maria', 'd2')],
          withheld: { code: 'result_too_large', reason: 'big' },
        },
        'completed by svc-ticketing, approved by maria; result withheld (result_too_large)',
      ],
      [
        { ...base, status: 'rejected', rejectedBy: 'maria', reason: 'too broad, ask maria@acme.example', approvals: [] },
        'rejected by maria: too broad, ask [REDACTED:email]',
      ],
      [{ ...base, status: 'expired', expiresAt: 'then', approvals: [] }, 'expired, nothing ran'],
      [{ ...base, status: 'denied', code: 'kill_switch', reasons: ['stopped'], approvals: [] }, 'denied: kill_switch'],
    ];
    for (const [outcome, sentence] of cases) {
      const sent = notification({ kind: 'outcome', outcome: outcome.status, outcomeDetails: notificationOutcome(outcome) });
      const slack = sharedSlackPayload(sent);
      const what = slack.blocks.find((b: any) => b.type === 'section' && b.text?.text.startsWith('*What happened*')) as any;
      assert.equal(what?.text.text, `*What happened*\n${sentence}`, outcome.status);
      assert.ok(slack.text.includes(`· ${sentence} ·`), slack.text);
      assert.equal(sharedJsonPayload(sent).summary, sentence);
      assert.equal(slack.blocks.filter((b: any) => b.type === 'actions').length, 0, 'an outcome has nothing to decide');
    }
    // Without details (an older workflow), the status alone.
    assert.equal(sharedJsonPayload(notification({ kind: 'outcome', outcome: 'expired' })).summary, 'expired, nothing ran');
  });

  test('toolgate dev prints one line per waiting request with its review link, never a link to decide, and how it ended', async () => {
    const lines: string[] = [];
    const printer = new ConsoleNotifier((text) => lines.push(text));
    await printer.notify(pending({ onBehalfOf: [{ id: 'omar', type: 'human' }], reason: 'line one\n\u001b[31mred' }));
    assert.equal(lines.length, 1);
    assert.match(
      lines[0]!,
      /^toolgate: approval needed: create_ticket \(high risk\) · tenant acme · requested by kim for omar · groups manager · expires 2030-03-01 14:05 UTC \(in \d+ days\) · review https:\/\/gate\.example\/inbox\/requests\/ticket-4821-1\n$/,
    );
    await printer.notify(
      notification({ kind: 'outcome', outcome: 'rejected', outcomeDetails: { status: 'rejected', rejectedBy: 'maria', reason: 'no\u001b[2J way' } }),
    );
    assert.equal(
      lines[1],
      'toolgate: request ticket-4821-1 (create_ticket, tenant acme, requested by kim) rejected by maria: no [2J way\n',
      'control characters never reach the terminal',
    );

    // Retried with the other targets (same activity): printed once; a closed terminal fails nothing.
    const activity = new MockActivityEnvironment({ activityId: '9', workflowExecution: { workflowId: 'w', runId: 'r' } }, { logger: quietTemporalLogger });
    await activity.run(() => printer.notify(pending()));
    await activity.run(() => printer.notify(pending()));
    assert.equal(lines.length, 3);
    await new ConsoleNotifier(() => {
      throw new Error('EPIPE');
    }).notify(pending());
  });

  test('createNotifier with a console: prints as well as delivering; a failing target still fails the delivery', async () => {
    const lines: string[] = [];
    const stateDir = await mkdtemp(join(tmpdir(), 'toolgate-notify-console-'));
    try {
      const base = { publicUrl: 'https://gate.example', stateDir, logger: silentLogger(), console: (text: string) => lines.push(text) };
      const logOnly = await createNotifier({ ...base, env: {} });
      assert.ok(logOnly instanceof FanoutNotifier);
      assert.ok(logOnly.notifiers.some((n) => n instanceof ConsoleNotifier) && logOnly.notifiers.some((n) => n instanceof LogNotifier));
      await logOnly.notify(pending());
      assert.equal(lines.length, 1);
      assert.ok(lines[0]!.includes(`review ${INBOX}`));

      const down = await startReceiver('down');
      try {
        down.status = 500;
        const withWebhook = await createNotifier({ ...base, env: { TOOLGATE_WEBHOOKS: `slack=${down.url}` } });
        await assert.rejects(withWebhook.notify(pending({ requestId: 'r2' })), NotificationDeliveryError);
        assert.equal(lines.length, 2, 'the console line was printed all the same');
        assert.equal(down.received.length, 1);
      } finally {
        await down.close();
      }
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
