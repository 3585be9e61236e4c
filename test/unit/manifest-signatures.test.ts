/**
 * Co-signed tool manifests: entries signed by two roles load and name their signers in every
 * decision; each way a signature can be wrong (a required role missing, a key of another role, an
 * unknown key, an entry changed after signing, a signature copied from another entry) refuses the
 * policy with the file, the tool and the problem; without a requirement unsigned entries load;
 * `manifest sign` changes nothing in a file but its signatures; and a hot reload of an edited,
 * no longer matching entry keeps the policy in force.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { signManifestFiles } from '../../src/cli/manifest-sign.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import {
  ManifestTrustError,
  decide,
  describeSigners,
  loadManifestTrust,
  loadPolicy,
  manifestDigest,
  manifestKeyId,
  manifestTrustFromConfig,
  manifestTrustOf,
  parsePolicy,
  PolicyLoadError,
  signManifestEntry,
  type ManifestSignature,
  type ManifestTrust,
} from '../../src/policy/index.js';
import { PolicyStore } from '../../src/policy/store.js';
import type { ToolRequest } from '../../src/shared/index.js';

interface Pair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicPem: string;
  id: string;
}

function keyPair(): Pair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), id: manifestKeyId(publicKey) };
}

const security = keyPair();
const owner = keyPair();
const stranger = keyPair();

/** Both roles required; `owner` may sign any tool. */
const trust: ManifestTrust = manifestTrustOf(
  { security: [{ publicKey: security.publicPem }], owner: [{ publicKey: owner.publicPem }] },
  ['security', 'owner'],
  'signers.yaml',
);

/** A policy with two tools; `signatures` gives each entry's `signatures:` lines (already indented under the entry). */
function policyText(options: { lookupRunAs?: string; lookupSignatures?: ManifestSignature[]; notifySignatures?: ManifestSignature[] } = {}): string {
  const lines = (signatures: ManifestSignature[] | undefined) =>
    signatures ? `    signatures:\n${signatures.map((s) => `      - { role: ${s.role}, key: ${s.key}, sig: "${s.sig}" }\n`).join('')}` : '';
  return `version: 1
tools:
  lookup: { risk: low, approval: none, allowed_roles: [agent_runtime] }
  notify: { risk: medium, approval: none, allowed_roles: [agent_runtime] }
manifest:
  lookup:
    run_as: ${options.lookupRunAs ?? 'svc-lookup'}
    adapter: { type: code }
    args: { type: object }
${lines(options.lookupSignatures)}  notify:
    run_as: svc-notify
    adapter: { type: code }
    args: { type: object }
${lines(options.notifySignatures)}`;
}

/** The digest the loader gives `tool` in `text` (signatures are not part of it). */
function digestOf(text: string, tool: string): string {
  return parsePolicy([{ file: 'p.yaml', text }]).manifest(tool)?.digest ?? '';
}

/** Signatures of `tool` in `text` by each of `signers` as the given role. */
function signed(text: string, tool: string, signers: [role: string, pair: Pair][]): ManifestSignature[] {
  const digest = digestOf(text, tool);
  return signers.map(([role, pair]) => signManifestEntry(tool, digest, role, pair.privateKey));
}

/** A policy whose two entries are signed by security and owner. */
function fullySigned(runAs = 'svc-lookup'): string {
  const base = policyText({ lookupRunAs: runAs });
  return policyText({
    lookupRunAs: runAs,
    lookupSignatures: signed(base, 'lookup', [
      ['security', security],
      ['owner', owner],
    ]),
    notifySignatures: signed(base, 'notify', [
      ['security', security],
      ['owner', owner],
    ]),
  });
}

/** The load issues of `text` under `trust`, as `line: path: message`; fails when it loads. */
function refusal(text: string, with_: ManifestTrust = trust): string[] {
  try {
    parsePolicy([{ file: 'tools.yaml', text }], { manifestTrust: with_ });
  } catch (err) {
    assert.ok(err instanceof PolicyLoadError, String(err));
    for (const issue of err.issues) assert.equal(issue.file, 'tools.yaml');
    return err.issues.map((issue) => `${issue.line}: ${issue.path}: ${issue.message}`);
  }
  assert.fail('the policy loaded, but it must be refused');
}

const request = (tool: string): ToolRequest => ({
  requestId: 'r1',
  actor: { id: 'bot', type: 'agent', roles: ['agent_runtime'] },
  tenant: 'acme',
  environment: 'production',
  tool,
  args: {},
});

describe('signing and verifying', () => {
  test('round trip: both roles verified, the signers are in every decision, the tool digest is the one of the unsigned entry', () => {
    const text = fullySigned();
    const policy = parsePolicy([{ file: 'tools.yaml', text }], { manifestTrust: trust });
    const expected = [
      { role: 'owner', key: owner.id },
      { role: 'security', key: security.id },
    ];
    assert.deepEqual(policy.manifest('lookup')?.signers, expected);
    assert.deepEqual(policy.manifest('notify')?.signers, expected);
    // The signatures are beside the entry, not in it: the digest the decision records is unchanged.
    const unsigned = parsePolicy([{ file: 'tools.yaml', text: policyText() }]);
    assert.equal(policy.manifest('lookup')?.digest, unsigned.manifest('lookup')?.digest);
    assert.equal(
      policy.manifest('lookup')?.digest,
      manifestDigest('lookup', { run_as: 'svc-lookup', adapter: { type: 'code' }, args: { type: 'object' }, signatures: [] }),
    );

    const decision = decide(policy, request('lookup'));
    assert.equal(decision.outcome, 'allow');
    assert.equal(decision.toolDigest, unsigned.manifest('lookup')?.digest);
    assert.deepEqual(decision.toolSigners, expected);
    // A denial after the tool is known names the same identity.
    const denied = decide(policy, { ...request('lookup'), environment: 'x', actor: { id: 'bot', type: 'agent', roles: [] } });
    assert.equal(denied.outcome, 'deny');
    assert.deepEqual(denied.toolSigners, expected);
    // Unsigned tools keep the decision shape recorded histories have: no toolSigners key at all.
    assert.equal(Object.hasOwn(decide(unsigned, request('lookup')), 'toolSigners'), false);
    assert.equal(describeSigners(expected), `owner (${owner.id}), security (${security.id})`);
  });

  test('a required role that did not sign: refused, naming the file, the tool and the role', () => {
    const base = policyText();
    const text = policyText({
      lookupSignatures: signed(base, 'lookup', [['security', security]]),
      notifySignatures: signed(base, 'notify', [
        ['security', security],
        ['owner', owner],
      ]),
    });
    const issues = refusal(text);
    assert.equal(issues.length, 1, issues.join('\n'));
    assert.match(
      issues[0]!,
      /^6: manifest\.lookup: tool lookup is not signed by owner \(this deployment requires security and owner: TOOLGATE_MANIFEST_REQUIRE\); sign it with: toolgate manifest sign --role owner/,
    );
    // Unsigned altogether: both roles named.
    assert.match(refusal(policyText()).join('\n'), /tool lookup is not signed by security and owner/);
  });

  test('a key of another role: refused (a key signs only for its own role)', () => {
    const base = policyText();
    const text = policyText({
      // The owner's key claims to sign as security, and signs as owner too: one holder co-signing alone.
      lookupSignatures: signed(base, 'lookup', [
        ['security', owner],
        ['owner', owner],
      ]),
      notifySignatures: signed(base, 'notify', [
        ['security', security],
        ['owner', owner],
      ]),
    });
    const issues = refusal(text);
    assert.equal(issues.length, 1, issues.join('\n'));
    assert.match(
      issues[0]!,
      new RegExp(
        `^11: manifest\\.lookup\\.signatures\\[0\\]: tool lookup is signed as security with key ${owner.id}, but that key is trusted for role owner only`,
      ),
    );
  });

  test('an unknown key: refused, listing the keys the role trusts', () => {
    const base = policyText();
    const text = policyText({
      lookupSignatures: signed(base, 'lookup', [
        ['security', stranger],
        ['owner', owner],
      ]),
      notifySignatures: signed(base, 'notify', [
        ['security', security],
        ['owner', owner],
      ]),
    });
    const issues = refusal(text);
    assert.equal(issues.length, 1, issues.join('\n'));
    assert.match(
      issues[0]!,
      new RegExp(
        `manifest\\.lookup\\.signatures\\[0\\]: tool lookup is signed as security with key ${stranger.id}, which is not a trusted security key \\(trusted: ${security.id}\\)`,
      ),
    );
  });

  test('an entry changed after it was signed: refused, its signatures no longer match its digest', () => {
    const signedText = fullySigned('svc-lookup');
    // The same signatures, over an entry whose identity changed: it now runs as another account.
    const tampered = signedText.replace('run_as: svc-lookup', 'run_as: svc-admin');
    assert.notEqual(tampered, signedText);
    const issues = refusal(tampered);
    assert.equal(issues.length, 2, issues.join('\n'));
    assert.match(
      issues[0]!,
      /manifest\.lookup\.signatures\[0\]: the security signature \(k-[0-9a-f]{16}\) of tool lookup does not match the entry as it is now \(digest [0-9a-f]{12}…\): the entry changed after it was signed/,
    );
    assert.match(issues[1]!, /manifest\.lookup\.signatures\[1\]: the owner signature/);
  });

  test('an mcp entry: its server definition is part of what is signed; changing the command it runs breaks the signatures', () => {
    const mcpPolicy = (command: string, signatures?: ManifestSignature[]) =>
      [
        'version: 1',
        'mcp_servers:',
        `  orders: { command: ${command}, args: [serve] }`,
        'tools:',
        '  find_order: { risk: low, approval: none, allowed_roles: [agent_runtime] }',
        'manifest:',
        '  find_order:',
        '    run_as: svc-orders',
        '    adapter: { type: mcp, server: orders, tool: find }',
        '    args: { type: object }',
        ...(signatures ? [`    signatures: ${JSON.stringify(signatures)}`] : []),
      ].join('\n');
    const base = mcpPolicy('orders-mcp');
    assert.notEqual(digestOf(base, 'find_order'), digestOf(mcpPolicy('/bin/sh'), 'find_order'), 'the server definition is inside the digest');
    const signatures = signed(base, 'find_order', [
      ['security', security],
      ['owner', owner],
    ]);
    const loaded = parsePolicy([{ file: 'tools.yaml', text: mcpPolicy('orders-mcp', signatures) }], { manifestTrust: trust });
    assert.deepEqual(
      loaded
        .manifest('find_order')
        ?.signers?.map((signer) => signer.role)
        .sort(),
      ['owner', 'security'],
    );
    // The entry itself unchanged, the server it names now runs something else: refused.
    const issues = refusal(mcpPolicy('/bin/sh', signatures));
    assert.equal(issues.length, 2, issues.join('\n'));
    for (const issue of issues) assert.match(issue, /manifest\.find_order\.signatures\[\d\]: the (security|owner) signature .* does not match the entry/);
  });

  test("a signature copied from another tool's entry: refused (the digest names the tool)", () => {
    const base = policyText();
    const notifySignatures = signed(base, 'notify', [
      ['security', security],
      ['owner', owner],
    ]);
    // Identical contracts would still differ: the tool's name is inside the digest.
    const issues = refusal(policyText({ lookupSignatures: notifySignatures, notifySignatures }));
    assert.equal(issues.length, 2, issues.join('\n'));
    for (const issue of issues)
      assert.match(issue, /manifest\.lookup\.signatures\[\d\]: the (security|owner) signature .* of tool lookup does not match the entry/);
  });

  test('other refusals: a role the deployment does not configure, one role twice, an owner key limited to other tools', () => {
    const base = policyText();
    const good = signed(base, 'lookup', [
      ['security', security],
      ['owner', owner],
    ]);
    const notifySignatures = signed(base, 'notify', [
      ['security', security],
      ['owner', owner],
    ]);
    const auditor = signManifestEntry('lookup', digestOf(base, 'lookup'), 'auditor', stranger.privateKey);
    assert.match(
      refusal(policyText({ lookupSignatures: [...good, auditor], notifySignatures })).join('\n'),
      /signature by role auditor, which signers\.yaml does not configure \(roles: security, owner\)/,
    );
    assert.match(refusal(policyText({ lookupSignatures: [...good, good[0]!], notifySignatures })).join('\n'), /role security signed tool lookup twice/);

    const scoped = manifestTrustOf({ security: [{ publicKey: security.publicPem }], owner: [{ publicKey: owner.publicPem, tools: ['notify'] }] }, [
      'security',
      'owner',
    ]);
    const issues = refusal(policyText({ lookupSignatures: good, notifySignatures }), scoped);
    assert.equal(issues.length, 1, issues.join('\n'));
    assert.match(issues[0]!, new RegExp(`key ${owner.id} of role owner may sign only notify, not tool lookup`));
  });

  test('not required: unsigned entries load; present signatures are still verified when signers are configured', () => {
    const optional = manifestTrustOf({ security: [{ publicKey: security.publicPem }], owner: [{ publicKey: owner.publicPem }] }, []);
    const base = policyText();
    const partly = policyText({ lookupSignatures: signed(base, 'lookup', [['security', security]]) });
    const policy = parsePolicy([{ file: 'tools.yaml', text: partly }], { manifestTrust: optional });
    assert.deepEqual(policy.manifest('lookup')?.signers, [{ role: 'security', key: security.id }]);
    assert.equal(policy.manifest('notify')?.signers, undefined);
    assert.equal(Object.hasOwn(decide(policy, request('notify')), 'toolSigners'), false);
    // A wrong signature is never silently dropped, required or not.
    assert.match(refusal(partly.replace('run_as: svc-lookup', 'run_as: svc-admin'), optional).join('\n'), /does not match the entry as it is now/);
    // No signers configured at all: signatures are carried, not checked, and nobody is recorded as a signer.
    const unchecked = parsePolicy([{ file: 'tools.yaml', text: partly.replace('run_as: svc-lookup', 'run_as: svc-admin') }]);
    assert.equal(unchecked.manifest('lookup')?.signers, undefined);
    assert.equal(Object.hasOwn(decide(unchecked, request('lookup')), 'toolSigners'), false);
  });

  test('a malformed signature is a located schema error', () => {
    const text = policyText().replace('  notify:\n    run_as', '    signatures:\n      - { role: security, key: abc, sig: "x" }\n  notify:\n    run_as');
    try {
      parsePolicy([{ file: 'tools.yaml', text }]);
      assert.fail('must not load');
    } catch (err) {
      assert.ok(err instanceof PolicyLoadError);
      const paths = err.issues.map((issue) => `${issue.line}: ${issue.path}`);
      assert.deepEqual(paths, ['11: manifest.lookup.signatures[0].key', '11: manifest.lookup.signatures[0].sig']);
    }
  });
});

describe('the deployment trust configuration', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'toolgate-manifest-trust-'));
    await writeFile(join(dir, 'security.pub.pem'), security.publicPem);
    await writeFile(join(dir, 'owner.pub.pem'), owner.publicPem);
    await writeFile(join(dir, 'owner.key.pem'), owner.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  test('a signers file maps roles to public key files relative to it, optionally limited to tools', async () => {
    const file = join(dir, 'signers.yaml');
    await writeFile(file, '# who may sign manifests\nsecurity: [security.pub.pem]\nowner:\n  - { key: owner.pub.pem, tools: [lookup] }\n');
    const loaded = await loadManifestTrust(file, ['security', 'owner']);
    assert.deepEqual(loaded.roles, ['security', 'owner']);
    assert.deepEqual(loaded.require, ['security', 'owner']);
    assert.equal(loaded.keys.get(security.id)?.role, 'security');
    assert.deepEqual([...(loaded.keys.get(owner.id)?.tools ?? [])], ['lookup']);
    const fromConfig = await manifestTrustFromConfig({ manifestSignersFile: file, manifestRequire: ['security'] });
    assert.deepEqual(fromConfig?.require, ['security']);
    assert.equal(await manifestTrustFromConfig({ manifestRequire: [] }), undefined);
  });

  test('refused: a key under two roles, a private key file, a required role without keys, a requirement without signers', async () => {
    const twice = join(dir, 'twice.yaml');
    await writeFile(twice, 'security: [security.pub.pem]\nowner: [security.pub.pem]\n');
    await assert.rejects(
      loadManifestTrust(twice),
      (err: Error) => err instanceof ManifestTrustError && /is listed under both security and owner; each role needs its own key/.test(err.message),
    );
    const privateFile = join(dir, 'private.yaml');
    await writeFile(privateFile, 'owner: [owner.key.pem]\n');
    await assert.rejects(loadManifestTrust(privateFile), /owner\.key\.pem is a private key; list the public key/);
    const one = join(dir, 'one.yaml');
    await writeFile(one, 'security: [security.pub.pem]\n');
    await assert.rejects(loadManifestTrust(one, ['security', 'owner']), /TOOLGATE_MANIFEST_REQUIRE names role owner, which has no keys in .*one\.yaml/);
    await assert.rejects(loadManifestTrust(join(dir, 'missing.yaml')), /cannot read the manifest signers file .*missing\.yaml/);
    await assert.rejects(manifestTrustFromConfig({ manifestRequire: ['security'] }), /TOOLGATE_MANIFEST_REQUIRE is set but TOOLGATE_MANIFEST_SIGNERS is not/);
    assert.throws(
      () => loadConfig({ TOOLGATE_MANIFEST_REQUIRE: 'security,owner' }),
      (err: Error) => err instanceof ConfigError && /TOOLGATE_MANIFEST_REQUIRE: needs TOOLGATE_MANIFEST_SIGNERS/.test(err.message),
    );
    const config = loadConfig({ TOOLGATE_MANIFEST_SIGNERS: one, TOOLGATE_MANIFEST_REQUIRE: 'security' });
    assert.equal(config.manifestSignersFile, one);
    assert.deepEqual(config.manifestRequire, ['security']);
  });
});

describe('toolgate manifest sign (files)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'toolgate-manifest-sign-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const COMMENTED = `# Tools of the support team.
version: 1
tools:
  lookup: { risk: low, approval: none, allowed_roles: ["agent_runtime"] }   # read-only
  notify: { risk: medium, approval: none, allowed_roles: ["agent_runtime"] }
manifest:
  # The knowledge base.
  lookup:
    description: Look things up.
    run_as: svc-lookup          # a read-only account
    adapter: { type: code }
    args:
      type: object
      properties:
        query: { type: string, maxLength: 500 }   # bounded
      required: [query]

  # Written on one line on purpose.
  notify: { run_as: svc-notify, adapter: { type: code }, args: { type: object } }   # flow style
# The end.
`;

  test('signing changes only the signatures: comments, alignment and quoting stay; signing again changes nothing', async () => {
    const file = join(dir, 'tools.yaml');
    await writeFile(file, COMMENTED);
    const first = await signManifestFiles([file], { role: 'security', privateKey: security.privateKey });
    assert.deepEqual(
      first.map((r) => `${r.tool}:${r.status}:${r.key}`),
      [`lookup:signed:${security.id}`, `notify:signed:${security.id}`],
    );
    const second = await signManifestFiles([file], { role: 'owner', privateKey: owner.privateKey, tools: ['lookup'] });
    assert.deepEqual(
      second.map((r) => `${r.tool}:${r.status}`),
      ['lookup:signed'],
    );
    const third = await signManifestFiles([file], { role: 'owner', privateKey: owner.privateKey });
    assert.deepEqual(
      third.map((r) => `${r.tool}:${r.status}`),
      ['lookup:unchanged', 'notify:signed'],
    );
    const text = await readFile(file, 'utf8');

    // Remove exactly what signing added: what is left is the file as written, byte for byte.
    const withoutSignatures = text.replace(/\n {4}signatures:\n( {6}- \{ role: [^\n]*\n)+/g, '\n').replace(/, signatures: \[[^\]]*\]/g, '');
    assert.equal(withoutSignatures, COMMENTED);
    assert.match(text, /run_as: svc-lookup {10}# a read-only account\n/);
    assert.match(text, /\n {4}signatures:\n {6}- \{ role: security, key: k-[0-9a-f]{16}, sig: [^\n]+ \}\n {6}- \{ role: owner, key: k-/);
    assert.match(
      text,
      /notify: \{ run_as: svc-notify, adapter: \{ type: code \}, args: \{ type: object \}, signatures: \[\{ role: security, [^\]]*\}, \{ role: owner, [^\]]*\}\] \}   # flow style\n/,
    );

    // The signed file loads with both roles required; signing again with the same keys changes no byte.
    const policy = await loadPolicy([file], { manifestTrust: trust });
    assert.deepEqual(
      policy.manifest('notify')?.signers?.map((s) => s.role),
      ['owner', 'security'],
    );
    const again = await signManifestFiles([file], { role: 'security', privateKey: security.privateKey });
    assert.deepEqual(
      again.map((r) => r.status),
      ['unchanged', 'unchanged'],
    );
    assert.equal(await readFile(file, 'utf8'), text);

    // Another security key replaces the security signature in place (one signature per role).
    const security2 = keyPair();
    const replaced = await signManifestFiles([file], { role: 'security', privateKey: security2.privateKey, tools: ['lookup'] });
    assert.deepEqual(
      replaced.map((r) => `${r.tool}:${r.status}`),
      ['lookup:replaced'],
    );
    const after = await readFile(file, 'utf8');
    assert.match(after, new RegExp(`\\n {4}signatures:\\n {6}- \\{ role: security, key: ${security2.id}, [^\\n]+\\n {6}- \\{ role: owner, key: ${owner.id}`));
    assert.equal(after.split('\n').length, text.split('\n').length);
  });

  test('a policy that does not load is not signed, and an unknown tool is named', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, COMMENTED.replace('run_as: svc-lookup', 'run_as: [not, a, name]'));
    await assert.rejects(signManifestFiles([file], { role: 'security', privateKey: security.privateKey }), PolicyLoadError);
    const good = join(dir, 'good.yaml');
    await writeFile(good, COMMENTED);
    await assert.rejects(signManifestFiles([good], { role: 'security', privateKey: security.privateKey, tools: ['nope'] }), /no manifest entry named nope/);
    assert.equal(await readFile(good, 'utf8'), COMMENTED);
  });
});

/** Polls until `check` holds or fails after `ms`. */
async function eventually(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('hot reload: an edit whose signatures no longer match is refused and the signed policy stays in force; signed again, it loads', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-manifest-reload-'));
  const file = join(dir, 'tools.yaml');
  const lines: Array<{ msg: string; err?: string; inForce?: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
  const store = new PolicyStore({ manifestTrust: trust });
  let stop: (() => void) | undefined;
  try {
    await writeFile(file, fullySigned('svc-lookup'));
    const first = await store.load([file]);
    assert.equal(first.error, undefined);
    const inForce = first.policy?.digest;
    stop = await store.watch([file], { logger, debounceMs: 50 });

    // The entry is edited (it would now run as an admin account) and nobody signs the change.
    const edited = (await readFile(file, 'utf8')).replace('run_as: svc-lookup', 'run_as: svc-admin');
    await writeFile(`${file}.tmp`, edited);
    await rename(`${file}.tmp`, file);
    await eventually('the refused reload to be recorded', () => store.current().error !== undefined);
    const state = store.current();
    assert.equal(state.policy?.digest, inForce);
    assert.equal(state.policy?.manifest('lookup')?.runAs, 'svc-lookup');
    assert.match(
      state.error?.message ?? '',
      /tools\.yaml:\d+:\d+: manifest\.lookup\.signatures\[0\]: the security signature .* of tool lookup does not match the entry as it is now/,
    );
    const failure = lines.find((line) => line.msg.startsWith('policy reload failed'));
    assert.equal(failure?.inForce, inForce);

    // Reviewed and signed again by both roles: the edit is in force, with its signers.
    await signManifestFiles([file], { role: 'security', privateKey: security.privateKey });
    await signManifestFiles([file], { role: 'owner', privateKey: owner.privateKey });
    await eventually('the signed edit to be in force', () => store.current().policy?.manifest('lookup')?.runAs === 'svc-admin' && !store.current().error);
    assert.deepEqual(
      store
        .current()
        .policy?.manifest('lookup')
        ?.signers?.map((s) => s.key),
      [owner.id, security.id],
    );
  } finally {
    stop?.();
    await rm(dir, { recursive: true, force: true });
  }
});
