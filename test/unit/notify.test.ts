/**
 * Approval notifications: Slack and JSON payloads carry what an approver needs and one single-use
 * link per eligible approver (never the requester, never another tenant), delivered to a real
 * loopback receiver; a target that fails makes `notify` throw so Temporal retries it.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { AuthConfigError } from '../../src/auth/errors.js';
import { LinkSigner, LinkVerifier } from '../../src/auth/links.js';
import { silentLogger } from '../../src/logger.js';
import { createNotifier } from '../../src/notify/config.js';
import { ApproverDirectoryError, parseApproverDirectory, type ApproverDirectory } from '../../src/notify/directory.js';
import {
  LogNotifier,
  NotificationDeliveryError,
  WebhookNotifier,
  parseWebhookTarget,
  type ApprovalNotification,
} from '../../src/notify/notifier.js';

const DIGEST = '3f'.repeat(32);
const DIRECTORY_YAML = `version: 1
tenants:
  acme:
    - { id: maria, groups: [manager], name: Maria Lopez, email: maria@acme.example }
    - { id: sam, groups: [manager, support_lead] }
    - { id: li, groups: [support_lead] }
    - { id: kim, groups: [manager] }
  globex:
    - { id: zoe, groups: [manager] }
`;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
}

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
  let server: Server;
  let base: string;
  let received: Received[] = [];
  let directory: ApproverDirectory;
  let signer: LinkSigner;
  let verifier: LinkVerifier;
  let stateDir: string;

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const path = req.url ?? '/';
        if (path === '/hang') return; // never answers: the notifier must time out
        received.push({ path, headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') });
        if (path === '/broken') return void res.writeHead(500).end('down');
        if (path === '/moved') return void res.writeHead(302, { location: `${base}/json` }).end();
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    directory = parseApproverDirectory('approvers.yaml', DIRECTORY_YAML);
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    signer = await LinkSigner.fromPrivateKeyPem(await exportPKCS8(privateKey));
    verifier = await LinkVerifier.fromPublicKeyPem(await exportSPKI(publicKey));
    stateDir = await mkdtemp(join(tmpdir(), 'toolgate-notify-'));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(stateDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    received = [];
  });

  const notifier = (paths: string[], options: { timeoutMs?: number } = {}) =>
    new WebhookNotifier(
      paths.map((path) => `${path.startsWith('/slack') ? 'slack' : 'json'}=${base}${path}`),
      { links: { signer, directory, publicUrl: 'https://gate.example/' }, ...options },
    );
  const byPath = (path: string) => {
    const hit = received.find((r) => r.path === path);
    assert.ok(hit, `nothing was posted to ${path}`);
    return hit;
  };
  const tokenOf = (url: string) => {
    assert.ok(url.startsWith('https://gate.example/v1/links/'), url);
    return url.slice('https://gate.example/v1/links/'.length);
  };

  test('a request: both targets get the facts and one link per eligible approver, never the requester or another tenant', async () => {
    const sent = notification();
    await notifier(['/slack', '/json']).notify(sent);

    const json = byPath('/json').body;
    assert.equal(json.type, 'toolgate.approval.requested');
    for (const [field, value] of Object.entries(sent)) assert.deepEqual(json[field], value, `json payload carries ${field}`);
    assert.deepEqual(json.links.map((link: { approver: string }) => link.approver), ['maria', 'sam']);
    assert.equal(json.links[0].email, 'maria@acme.example');
    for (const link of json.links) {
      const granted = await verifier.verifyLink(tokenOf(link.url), { requestId: 'ticket-4821-1' });
      assert.equal(granted.approver.id, link.approver);
      assert.equal(granted.approver.tenant, 'acme');
      assert.deepEqual(granted.approver.groups, ['manager'], 'a link carries only the notified groups');
      assert.equal(granted.digest, DIGEST);
      assert.ok(Date.parse(granted.expiresAt) <= Date.parse(sent.expiresAt!));
    }

    const slack = byPath('/slack').body;
    assert.match(slack.text, /Approval needed: create_ticket \(high risk\)/);
    assert.match(slack.text, /tenant acme · requested by kim/);
    assert.equal(slack.unfurl_links, false);
    assert.equal(slack.blocks[0].type, 'header');
    const facts = slack.blocks[1].fields.map((f: { text: string }) => f.text).join('\n');
    for (const expected of ['*Tool*\n`create_ticket`', '*Risk*\nhigh', '*Tenant*\nacme', '*Requester*\nkim', '*Expires*']) assert.ok(facts.includes(expected), expected);
    assert.ok(JSON.stringify(slack.blocks).includes(DIGEST.slice(0, 16)), 'the short digest is shown');
    const buttons = slack.blocks.filter((b: any) => b.type === 'actions').flatMap((b: { elements: unknown[] }) => b.elements);
    assert.deepEqual(buttons.map((b: { text: { text: string } }) => b.text.text), ['Review and decide as Maria Lopez', 'Review and decide as sam']);
    for (const button of buttons) assert.equal((await verifier.verifyLink(tokenOf(button.url))).requestId, 'ticket-4821-1');
    assert.equal(byPath('/slack').headers['x-toolgate-notification'], 'ticket-4821-1:requested:0');
  });

  test('an escalation links the members of the new groups only; a reminder is typed as such', async () => {
    await notifier(['/json', '/slack']).notify(notification({ kind: 'escalated', tier: 1, groups: ['support_lead'] }));
    const links = byPath('/json').body.links;
    assert.equal(byPath('/json').body.type, 'toolgate.approval.escalated');
    assert.deepEqual(links.map((link: { approver: string }) => link.approver), ['sam', 'li']);
    assert.deepEqual((await verifier.verifyLink(tokenOf(links[0].url))).approver.groups, ['support_lead']);
    assert.match(byPath('/slack').body.blocks[0].text.text, /Escalated to you \(tier 1\)/);

    received = [];
    await notifier(['/json']).notify(notification({ kind: 'reminder', groups: ['manager', 'support_lead'], actor: 'sam' }));
    assert.equal(byPath('/json').body.type, 'toolgate.approval.reminder');
    assert.deepEqual(byPath('/json').body.links.map((link: { approver: string }) => link.approver), ['maria', 'li', 'kim']);
  });

  test('an outcome says what happened and carries no links', async () => {
    await notifier(['/slack', '/json']).notify(notification({ kind: 'outcome', outcome: 'rejected' }));
    const json = byPath('/json').body;
    assert.equal(json.type, 'toolgate.approval.outcome');
    assert.equal(json.outcome, 'rejected');
    assert.deepEqual(json.links, []);
    const slack = byPath('/slack').body;
    assert.match(slack.text, /Request ticket-4821-1 rejected: create_ticket/);
    assert.equal(slack.blocks.filter((b: any) => b.type === 'actions').length, 0);
    assert.ok(!JSON.stringify(slack).includes('/v1/links/'));
  });

  test('no links are minted for a request that has already expired', async () => {
    await notifier(['/json']).notify(notification({ expiresAt: new Date(Date.now() - 1000).toISOString() }));
    assert.deepEqual(byPath('/json').body.links, []);
  });

  test('requester text cannot inject Slack markup', async () => {
    await notifier(['/slack']).notify(notification({ reason: 'urgent <https://evil.example|click here> <!channel>' }));
    const reason = JSON.stringify(byPath('/slack').body.blocks);
    assert.ok(!reason.includes('<https://evil.example'), 'link markup escaped');
    assert.ok(!reason.includes('<!channel>'), 'mention escaped');
  });

  test('a failing target makes notify throw, naming it, while the healthy target still receives', async () => {
    await assert.rejects(notifier(['/json', '/broken']).notify(notification()), (err: unknown) => {
      assert.ok(err instanceof NotificationDeliveryError);
      assert.equal(err.failures.length, 1);
      assert.match(err.message, /127\.0\.0\.1:\d+: HTTP 500/);
      assert.ok(!err.message.includes('/broken'), 'webhook paths (often secrets) stay out of errors');
      return true;
    });
    assert.equal(byPath('/json').body.links.length, 2);
  });

  test('a redirecting or hanging target fails rather than being followed or waited on', async () => {
    await assert.rejects(notifier(['/moved']).notify(notification()), NotificationDeliveryError);
    assert.deepEqual(received.map((r) => r.path), ['/moved'], 'the redirect was not followed');
    const started = Date.now();
    await assert.rejects(notifier(['/hang'], { timeoutMs: 300 }).notify(notification()), /timed out/);
    assert.ok(Date.now() - started < 5000);
  });

  test('webhook targets: slack=, json= and bare URLs; plain http only on loopback', () => {
    assert.deepEqual(parseWebhookTarget('slack=https://hooks.example/T/B/secret'), { format: 'slack', url: 'https://hooks.example/T/B/secret' });
    assert.deepEqual(parseWebhookTarget('https://events.example/in'), { format: 'json', url: 'https://events.example/in' });
    assert.throws(() => parseWebhookTarget('json=http://events.example/in'), /must use https/);
    assert.throws(() => parseWebhookTarget('slack=not a url'), /not an absolute URL/);
  });

  test('createNotifier: logs only without webhooks; with webhooks and a directory, delivers links end to end', async () => {
    const logger = silentLogger();
    assert.ok((await createNotifier({ publicUrl: 'https://gate.example', stateDir, logger, env: {} })) instanceof LogNotifier);
    await assert.rejects(
      createNotifier({ publicUrl: 'https://gate.example', stateDir, logger, env: { TOOLGATE_WEBHOOKS: 'json=http://events.example/in' } }),
      (err: unknown) => err instanceof AuthConfigError && err.setting === 'TOOLGATE_WEBHOOKS',
    );
    const directoryFile = join(stateDir, 'approvers.yaml');
    await writeFile(directoryFile, DIRECTORY_YAML);
    const env = { TOOLGATE_WEBHOOKS: `slack=${base}/slack, ${base}/json`, TOOLGATE_APPROVERS: directoryFile };
    const configured = await createNotifier({ publicUrl: 'https://gate.example', stateDir, logger, env });
    await configured.notify(notification());
    assert.equal(byPath('/json').body.links.length, 2);
    assert.equal(byPath('/slack').body.blocks.filter((b: any) => b.type === 'actions').length, 1);
  });
});

describe('approver directory', () => {
  test('membersOf finds the tenant members of any of the groups', () => {
    const directory = parseApproverDirectory('approvers.yaml', DIRECTORY_YAML);
    assert.deepEqual(directory.membersOf('acme', ['support_lead']).map((m) => m.id), ['sam', 'li']);
    assert.deepEqual(directory.membersOf('globex', ['manager']).map((m) => m.id), ['zoe']);
    assert.deepEqual(directory.membersOf('initech', ['manager']), []);
  });

  test('errors name the file, line and field', () => {
    const bad = `version: 1
tenants:
  acme:
    - { id: maria, groups: [manager], email: not-an-email }
    - { id: maria, groups: [manager] }
    - { id: li, group: [support_lead] }
`;
    assert.throws(() => parseApproverDirectory('approvers.yaml', bad), (err: unknown) => {
      assert.ok(err instanceof ApproverDirectoryError);
      const text = err.message;
      assert.match(text, /approvers\.yaml:4:\d+: tenants\.acme\[0\]\.email: must be an email address/);
      assert.match(text, /approvers\.yaml:6:\d+: tenants\.acme\[2\]\.group: unknown key "group"/);
      return true;
    });
    assert.throws(
      () => parseApproverDirectory('approvers.yaml', 'version: 1\ntenants:\n  acme:\n    - { id: maria, groups: [a] }\n    - { id: maria, groups: [b] }\n'),
      /approvers\.yaml:5:\d+: tenants\.acme\[1\]\.id: approver maria is listed twice/,
    );
  });
});
