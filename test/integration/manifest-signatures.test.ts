/**
 * Co-signed tool manifests on a real Temporal dev server.
 *
 * 1. A gateway whose policy requires security and owner signatures: a call completes, and the
 *    evaluation sealed into its history, the request's status and its audit record name the
 *    verified signers beside the tool digest.
 * 2. The CLI end to end: `toolgate manifest keygen` makes two key pairs, `manifest sign` signs the
 *    shipped policy as each role (only signature lines change), `manifest verify` accepts it with
 *    both roles required; `toolgate worker` and `toolgate api` run with TOOLGATE_MANIFEST_SIGNERS /
 *    TOOLGATE_MANIFEST_REQUIRE and a call's audit record names the signers; an unsigned edit of a
 *    manifest entry is refused by the running worker's reload (the signed policy stays in force,
 *    calls go on under it) and by `manifest verify`.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Payload } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { buildAuditRecord } from '../../src/audit/record.js';
import { formatAuditRecord } from '../../src/audit/record-format.js';
import { manifestKeyId, manifestTrustOf, parsePolicy, signManifestEntry, type ManifestSignature } from '../../src/policy/index.js';
import { PolicyStore } from '../../src/policy/store.js';
import { workflowIdFor, type Evaluation } from '../../src/shared/index.js';
import { decodeFromPayloadsAtIndex } from '../../src/temporal/internals.js';
import { startGateway, startTemporal, testCodecKeysEnv } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import {
  REPO_ROOT,
  callApi,
  findFreePort,
  localTokens,
  provisionBoundaryKeys,
  spawnToolgate,
  startApiProcess,
  startWorkerProcess,
  waitForOutput,
  type GatewayProcessEnv,
  type ManagedProcess,
} from '../helpers/processes.js';

/** The policy of the gateway test: `lookup`, with the signatures given (without: the entry whose digest they sign). */
const policyYaml = (signatures?: ManifestSignature[]) =>
  policy()
    .tool('lookup')
    .codeTool('lookup', { runAs: 'svc-lookup', args: argsOf({ q: 'string' }), signatures })
    .yaml();

const pair = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), id: manifestKeyId(publicKey) };
};

/** Runs `toolgate <args>` to its end; resolves with its exit code and output. */
async function toolgate(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string }> {
  const proc = spawnToolgate(`toolgate ${args[0]} ${args[1] ?? ''}`, args, { TOOLGATE_LOG_LEVEL: 'warn', ...env });
  const code = await proc.exited;
  return { code, output: proc.output() };
}

describe('co-signed tool manifests', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await startTemporal();
  });
  after(async () => {
    await env?.teardown();
  });

  test('a call under a policy requiring two signatures completes; the sealed decision, the status and the audit record name the signers', async () => {
    const security = pair();
    const owner = pair();
    const digest = parsePolicy([{ file: 'signed.yaml', text: policyYaml() }]).manifest('lookup')?.digest ?? '';
    const signatures = [signManifestEntry('lookup', digest, 'security', security.privateKey), signManifestEntry('lookup', digest, 'owner', owner.privateKey)];
    const text = policyYaml(signatures);
    const trust = manifestTrustOf(
      { security: [{ publicKey: security.publicPem }], owner: [{ publicKey: owner.publicPem }] },
      ['security', 'owner'],
      'signers.yaml',
    );
    const policyStore = PolicyStore.fromSources([{ file: 'signed.yaml', text }], { manifestTrust: trust });
    const expected = [
      { role: 'owner', key: owner.id },
      { role: 'security', key: security.id },
    ];

    const gw = await startGateway(env, {
      policy: text,
      policyStore,
      taskQueue: `manifest-signed-${process.pid}`,
      tools: { lookup: async () => ({ found: 1 }) },
    });
    try {
      const requestId = `signed-${process.pid}`;
      const result = await gw.gateway.call({
        requestId,
        actor: { id: 'bot', type: 'agent', roles: ['agent_runtime'] },
        tenant: 'acme',
        environment: 'production',
        tool: 'lookup',
        args: { q: 'x' },
      });
      assert.deepEqual(result, { found: 1 });

      const status = await gw.status(requestId);
      assert.equal(status.state, 'completed');
      assert.equal(status.decision?.toolDigest, digest);
      assert.deepEqual(status.decision?.toolSigners, expected);

      // The evaluation the worker sealed into the history (the local activity's marker) carries them.
      const history = await gw.ops.workflow.getHandle(workflowIdFor('acme', requestId)).fetchHistory();
      const markers = await Promise.all(
        (history.events ?? [])
          .filter((e) => e.markerRecordedEventAttributes?.details?.result?.payloads)
          .map((e) =>
            decodeFromPayloadsAtIndex<unknown>(gw.ops.options.loadedDataConverter, 0, e.markerRecordedEventAttributes!.details!.result!.payloads as Payload[]),
          ),
      );
      const sealed = markers.find((m): m is Evaluation & { seal: string } => m !== null && typeof m === 'object' && 'seal' in m && 'decision' in m);
      assert.ok(sealed, 'the history holds the sealed evaluation');
      assert.ok(sealed.seal.length > 0);
      assert.equal(sealed.decision.toolDigest, digest);
      assert.deepEqual(sealed.decision.toolSigners, expected);

      const record = await buildAuditRecord(gw.ops, 'acme', requestId);
      assert.equal(record.status, 'completed');
      assert.equal(record.decision?.sealed, true);
      assert.equal(record.proposal.toolDigest, digest);
      assert.deepEqual(record.proposal.toolSigners, expected);
      assert.match(formatAuditRecord(record), new RegExp(`\\n  manifest signed by owner \\(${owner.id}\\), security \\(${security.id}\\)\\n`));
    } finally {
      await gw.close();
    }
  });

  test('the CLI end to end: keygen, sign as two roles, verify; a worker requiring both runs the signed policy and refuses an unsigned edit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-manifest-cli-'));
    const processes: ManagedProcess[] = [];
    try {
      const policyDir = join(dir, 'policy');
      const policyFile = join(policyDir, 'support-triage.yaml');
      await mkdir(policyDir);
      await copyFile(join(REPO_ROOT, 'policies', 'support-triage.yaml'), policyFile);
      const original = await readFile(policyFile, 'utf8');

      const keys: Record<string, string> = {};
      for (const role of ['security', 'owner']) {
        const made = await toolgate(['manifest', 'keygen', '--out', join(dir, 'keys'), '--name', role]);
        assert.equal(made.code, 0, made.output);
        const id = /^key (k-[0-9a-f]{16})$/m.exec(made.output)?.[1];
        assert.ok(id, made.output);
        keys[role] = id;
      }
      await writeFile(
        join(dir, 'signers.yaml'),
        '# the deployment decides whose signature counts\nsecurity: [keys/security.pub.pem]\nowner: [keys/owner.pub.pem]\n',
      );
      const signerEnv = { TOOLGATE_MANIFEST_SIGNERS: join(dir, 'signers.yaml'), TOOLGATE_MANIFEST_REQUIRE: 'security,owner' };

      // Not yet signed: verify refuses, naming the file, the tool and the missing roles.
      const unsigned = await toolgate(['manifest', 'verify', policyFile], signerEnv);
      assert.equal(unsigned.code, 1, unsigned.output);
      assert.match(unsigned.output, /support-triage\.yaml:\d+:\d+: manifest\.read_kb: tool read_kb is not signed by security and owner/);

      for (const role of ['security', 'owner']) {
        const signedRun = await toolgate(['manifest', 'sign', '--role', role, '--key', join(dir, 'keys', `${role}.key.pem`), policyFile], signerEnv);
        assert.equal(signedRun.code, 0, signedRun.output);
        assert.match(signedRun.output, new RegExp(`^signed +read_kb as ${role} \\(${keys[role]}\\) over tool [0-9a-f]{12} in .*support-triage\\.yaml$`, 'm'));
        assert.doesNotMatch(signedRun.output, /warning/);
      }
      const signedText = await readFile(policyFile, 'utf8');
      // Only signature lines were added: every line of the original is still there, in order, unchanged.
      assert.equal(
        signedText
          .split('\n')
          .filter((line) => !/^ {4}signatures:$|^ {6}- \{ role: (security|owner), key: k-/.test(line))
          .join('\n'),
        original,
      );

      const verified = await toolgate(['manifest', 'verify', policyFile], signerEnv);
      assert.equal(verified.code, 0, verified.output);
      assert.match(verified.output, /required: security, owner/);
      assert.match(verified.output, new RegExp(`^ok +read_kb +tool [0-9a-f]{12} +signed by owner \\(${keys.owner}\\), security \\(${keys.security}\\)$`, 'm'));

      // The processes of a deployment that requires both roles.
      const stateDir = join(dir, 'state');
      const processEnv: GatewayProcessEnv = {
        TEMPORAL_ADDRESS: env.address,
        TOOLGATE_STATE_DIR: stateDir,
        TOOLGATE_POLICY: policyDir,
        TOOLGATE_API_PORT: String(await findFreePort()),
        TOOLGATE_CODEC_KEYS: testCodecKeysEnv,
        ...signerEnv,
      };
      await provisionBoundaryKeys(processEnv);
      const agent = await (await localTokens(stateDir)).agent({ sub: 'support-bot', tenant: 'acme', environment: 'production', roles: ['agent_runtime'] });
      const worker = await startWorkerProcess(processEnv);
      processes.push(worker);
      processes.push(await startApiProcess(processEnv));
      const apiUrl = `http://127.0.0.1:${processEnv.TOOLGATE_API_PORT}`;
      const readKb = async (requestId: string) => {
        const done = await callApi(apiUrl, 'POST', '/v1/tool-requests', {
          token: agent,
          body: { requestId, tool: 'read_kb', args: { query: 'vpn' }, wait: 30 },
        });
        assert.equal(done.status, 200, JSON.stringify(done.body));
        assert.equal(done.body.state, 'completed', JSON.stringify(done.body));
        const record = await buildAuditRecord(env.client, 'acme', requestId);
        assert.deepEqual(record.proposal.toolSigners, [
          { role: 'owner', key: keys.owner },
          { role: 'security', key: keys.security },
        ]);
        return record;
      };
      const first = await readKb(`cli-signed-${process.pid}`);
      assert.equal(first.ranAs?.runAs, 'svc-kb-reader');

      // An edit nobody signed: the running worker refuses the reload and keeps the signed policy.
      await writeFile(policyFile, signedText.replace('run_as: svc-kb-reader', 'run_as: svc-kb-admin'));
      await waitForOutput(worker, /"msg":"policy reload failed: the previous policy stays in force"/, 30_000);
      assert.match(
        worker.output(),
        /"err":"policy failed to load[^"]*manifest\.read_kb\.signatures\[0\]: the security signature \(k-[0-9a-f]{16}\) of tool read_kb does not match the entry as it is now/,
      );
      const second = await readKb(`cli-after-edit-${process.pid}`);
      assert.equal(second.ranAs?.runAs, 'svc-kb-reader', 'the signed policy is still the one in force');

      const refused = await toolgate(['manifest', 'verify', policyFile], signerEnv);
      assert.equal(refused.code, 1, refused.output);
      assert.match(refused.output, /FAILED: a worker with these signers would refuse this policy/);
      assert.match(refused.output, /manifest\.read_kb\.signatures\[1\]: the owner signature .* does not match the entry as it is now/);
    } finally {
      for (const proc of processes.reverse()) await proc.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
