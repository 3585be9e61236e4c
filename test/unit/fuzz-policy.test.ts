/**
 * Fuzzing policy loading: 2,000 mutated policy files (deep nesting, alias bombs, huge scalars,
 * bad UTF-8, wrong types, byte flips and truncations of the shipped policy, duplicate keys,
 * unknown tags). Each is refused with a PolicyLoadError that names the file and a line or field,
 * within a second; memory stays bounded; a store that held the shipped policy keeps it in force;
 * and a worker whose first load failed denies every request (fail closed).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import fc from 'fast-check';
import { exportPKCS8, generateKeyPair } from 'jose';
import { createActivities } from '../../activities/index.js';
import { silentLogger } from '../../src/logger.js';
import { PolicyLoadError } from '../../src/policy/index.js';
import { PolicyStore } from '../../src/policy/store.js';
import type { Notifier } from '../../src/notify/notifier.js';
import { FailureTypes, workflowIdFor, type Evaluation, type ToolRequest } from '../../src/shared/index.js';
import { signingKeyFromPem } from '../../src/trust/keys.js';
import { RequestSigner } from '../../src/trust/signers.js';
import { workerTrustOf } from '../../src/trust/store.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SHIPPED = resolve(import.meta.dirname, '../../policies/support-triage.yaml');
const FILES = Number(process.env.FUZZ_POLICY_FILES ?? 2_000);
/** Heap growth allowed across the whole run, after GC. The store keeps one policy and one error, so
 * retained memory must not grow with the number of files: 2,000 files × 16 KiB leaked each would be
 * 31 MiB, over this bound; the bound leaves room for the JIT and module caches warming up. */
const HEAP_GROWTH_BOUND = 24 * 1024 * 1024;

const enc = (text: string) => Buffer.from(text, 'utf8');

/** Pathological and broken policy files, by family. Each returns bytes. */
function families(shipped: string): Record<string, fc.Arbitrary<Buffer>> {
  const lines = shipped.split('\n');
  const keyLines = lines.map((line, index) => [line, index] as const).filter(([line]) => /^\s*[a-z_]+:/.test(line));
  return {
    'deep-flow': fc
      .tuple(fc.integer({ min: 65, max: 400_000 }), fc.constantFrom('[', '{a: '))
      .map(([depth, open]) => enc(`version: 1\ntools: ${open.repeat(depth)}x${(open === '[' ? ']' : '}').repeat(depth)}\n`)),
    'deep-block': fc.integer({ min: 50, max: 1_000 }).map((depth) => {
      let text = 'version: 1\ntools:\n';
      for (let i = 0; i < depth; i++) text += `${' '.repeat(i + 2)}t${i}:\n`;
      return enc(text);
    }),
    'alias-bomb': fc.tuple(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 5, max: 40 })).map(([width, levels]) => {
      let text = `version: 1\nx0: &a0 [${Array(width).fill('"lol"').join(', ')}]\n`;
      for (let i = 1; i < levels; i++)
        text += `x${i}: &a${i} [${Array(width)
          .fill(`*a${i - 1}`)
          .join(', ')}]\n`;
      return enc(`${text}tools: *a${levels - 1}\n`);
    }),
    'huge-scalar': fc.tuple(fc.integer({ min: 10_000, max: 1_200_000 }), fc.constantFrom('plain', 'quoted', 'key', 'number')).map(([size, kind]) => {
      const big = kind === 'number' ? '9'.repeat(size) : 'A'.repeat(size);
      if (kind === 'key') return enc(`version: 1\ntools:\n  ${big}: {risk: low}\n`);
      return enc(`version: 1\ntools: ${kind === 'quoted' ? `"${big}"` : big}\n`);
    }),
    'bad-utf8': fc
      .tuple(fc.nat(), fc.constantFrom([0xff], [0xfe, 0xff], [0xc3, 0x28], [0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]))
      .map(([at, bad]) => {
        const bytes = enc(shipped);
        const index = at % bytes.length;
        return Buffer.concat([bytes.subarray(0, index), Buffer.from(bad), bytes.subarray(index)]);
      }),
    'wrong-type': fc
      .tuple(fc.nat(), fc.constantFrom('[]', '{}', '42', 'true', 'null', '"1"', '[1, 2]', '{a: {b: c}}', '-.inf', '.nan', '0x1F', '~'))
      .map(([pick, value]) => {
        const [line, index] = keyLines[pick % keyLines.length] as readonly [string, number];
        const copy = [...lines];
        copy[index] = line.replace(/:.*$/, `: ${value}`);
        return enc(copy.join('\n'));
      }),
    'byte-flip': fc.array(fc.nat(), { minLength: 1, maxLength: 16 }).map((flips) => {
      const bytes = enc(shipped);
      for (const flip of flips) {
        const index = flip % bytes.length;
        bytes[index] = (bytes[index] as number) ^ (1 << (flip % 8));
      }
      return bytes;
    }),
    truncate: fc.nat().map((at) => enc(shipped).subarray(0, 200 + (at % (shipped.length - 400)))),
    'duplicate-key': fc.nat().map((pick) => {
      const [line, index] = keyLines[pick % keyLines.length] as readonly [string, number];
      const copy = [...lines];
      copy.splice(index, 0, line.replace(/:.*$/, ': {}'));
      return enc(copy.join('\n'));
    }),
    'unknown-tag': fc
      .tuple(fc.nat(), fc.constantFrom('!!js/function', '!custom', '!!python/object:os.system', '!<tag:evil>', '!!binary', '!!set', '!!omap', '!!timestamp'))
      .map(([pick, tag]) => {
        const [line, index] = keyLines[pick % keyLines.length] as readonly [string, number];
        const copy = [...lines];
        copy[index] = line.replace(/:\s*(.*)$/, (_m, rest: string) => `: ${tag} ${rest || '{}'}`);
        return enc(copy.join('\n'));
      }),
  };
}

test('2,000 mutated policy files: refused clearly, within a second each, bounded memory, previous policy in force, fail closed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-fuzz-policy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const shipped = await readFile(SHIPPED, 'utf8');

  const store = new PolicyStore();
  const first = await store.load([SHIPPED]);
  assert.ok(first.policy && !first.error);
  const shippedDigest = first.policy.digest;

  // The worker's trust: the front door's request key and a seal secret. The policy activity evaluates
  // only a request the front door admitted, and only as a local activity of that request's workflow.
  const signingKey = async () =>
    signingKeyFromPem(await exportPKCS8((await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })).privateKey), 'fuzz key');
  const requestKey = await signingKey();
  const trust = workerTrustOf({ requestKeys: [requestKey.trusted], decisionKeys: [(await signingKey()).trusted] }, randomBytes(32));

  // A worker whose first policy load failed: its activity must deny, never allow.
  const nothingLoaded = new PolicyStore();
  const notifier: Notifier = { notify: async () => {} };
  const activities = createActivities({ policy: nothingLoaded, tools: {}, notifier, logger: silentLogger(), trust });
  const lsRequest: ToolRequest = {
    requestId: 'fuzz-ls',
    actor: { id: 'triage-bot', type: 'agent', roles: ['agent_runtime'] },
    tenant: 'acme',
    environment: 'production',
    tool: 'execute_shell_command',
    args: { command: 'ls' },
  };
  const workflowId = workflowIdFor(lsRequest.tenant, lsRequest.requestId);
  const admission = await new RequestSigner(requestKey).sign(lsRequest, workflowId);
  // The refusals below are expected: keep the mock's activity log quiet.
  const quiet = { logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } };
  const activityEnv = new MockActivityEnvironment({ isLocal: true, workflowExecution: { workflowId, runId: 'fuzz-run' } }, quiet);
  /** The policy activity as the workflow calls it (a local activity of the request's workflow, with its admission), in a mock activity context. */
  const evaluate = async (acts: ReturnType<typeof createActivities>): Promise<Evaluation> =>
    activityEnv.run<[], Evaluation, () => Promise<Evaluation>>(() => acts.evaluatePolicy({ request: lsRequest, workflowId, admission }));

  const arbitraries = families(shipped);
  const names = Object.keys(arbitraries);
  const perFamily = Math.ceil((FILES * 1.5) / names.length);
  const samples = names.map((name, index) => fc.sample(arbitraries[name] as fc.Arbitrary<Buffer>, { numRuns: perFamily, seed: 4242 + index }));
  // Interleave the families so the first 2,000 refused files cover all of them.
  const candidates: [string, Buffer][] = [];
  for (let i = 0; i < perFamily; i++) for (const [index, name] of names.entries()) candidates.push([name, samples[index]?.[i] as Buffer]);

  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let peakHeap = heapBefore;
  let maxMs = 0;
  let slowest = '';
  let accepted = 0;
  let rejected = 0;
  const rejectedBy = new Map<string, number>();
  for (const [n, [family, bytes]] of candidates.entries()) {
    if (rejected >= FILES) break;
    const file = join(dir, `mutant-${n}.yaml`);
    await writeFile(file, bytes);
    const started = performance.now();
    const state = await store.load([file]);
    const ms = performance.now() - started;
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    if (!state.error) {
      // A mutation that left a valid policy (a flip inside a comment, say): not a rejection. Put the shipped one back.
      accepted++;
      await store.load([SHIPPED]);
      assert.equal(store.current().policy?.digest, shippedDigest);
      await rm(file);
      continue;
    }
    rejected++;
    rejectedBy.set(family, (rejectedBy.get(family) ?? 0) + 1);
    if (ms > maxMs) [maxMs, slowest] = [ms, family];
    assert.ok(ms < 1000, `${family} file took ${ms.toFixed(0)} ms to refuse`);
    assert.ok(state.error instanceof PolicyLoadError, `${family}: ${state.error.message.slice(0, 200)}`);
    assert.ok(state.error.issues.length > 0);
    for (const issue of state.error.issues) {
      assert.equal(issue.file, file, 'the issue names the file');
      assert.ok(
        issue.line !== undefined || (issue.path !== '' && issue.path !== '(root)'),
        `${family}: issue has a line or a field: ${JSON.stringify(issue).slice(0, 200)}`,
      );
      assert.ok(issue.message.length > 0 && issue.message.length < 2_000, `${family}: a short message: ${issue.message.slice(0, 200)}`);
      assert.ok(issue.path.length < 2_000, `${family}: a short field path: ${issue.path.slice(0, 200)}`);
    }
    // The previous policy stays in force, and the failure is visible.
    assert.equal(store.current().policy?.digest, shippedDigest);
    assert.ok(store.current().error);

    // Fail closed: a worker that never loaded a policy denies, even a command the policy would allow.
    await nothingLoaded.load([file]);
    assert.equal(nothingLoaded.current().policy, undefined);
    const { decision } = await evaluate(activities);
    assert.equal(decision.outcome, 'deny');
    assert.equal(decision.code, 'policy_unavailable');
    await rm(file);
  }
  gc();
  const growth = process.memoryUsage().heapUsed - heapBefore;
  console.log(
    `fuzz-policy: ${rejected} mutated policy files rejected with a located PolicyLoadError (${[...rejectedBy].map(([f, c]) => `${f}=${c}`).join(', ')}); ` +
      `${accepted} mutants were still valid policies (not counted); max ${maxMs.toFixed(1)} ms per file (${slowest}); ` +
      `heap growth after GC ${(growth / 1024 / 1024).toFixed(1)} MiB (bound ${HEAP_GROWTH_BOUND / 1024 / 1024} MiB), peak heap ${(peakHeap / 1024 / 1024).toFixed(0)} MiB; ` +
      `shipped policy stayed in force after each failure; ${rejected} activity decisions on a never-loaded store: all deny`,
  );
  assert.equal(rejected, FILES, 'enough mutants were rejected');
  assert.ok(growth < HEAP_GROWTH_BOUND, `heap grew ${growth} bytes`);
  // And the store still decides with the shipped policy.
  const allowed = createActivities({ policy: store, tools: {}, notifier, logger: silentLogger(), trust });
  const { decision } = await evaluate(allowed);
  assert.equal(decision.outcome, 'allow');
  assert.equal(decision.policyDigest, shippedDigest);
  // Closed the other way too: without the front door's admission, or outside the request's own workflow, nothing is evaluated.
  const unverified = (err: unknown) => err instanceof ApplicationFailure && err.type === FailureTypes.UnverifiedExecution;
  await assert.rejects(
    activityEnv.run(() => allowed.evaluatePolicy({ request: lsRequest, workflowId })),
    unverified,
  );
  await assert.rejects(
    activityEnv.run(() => allowed.evaluatePolicy({ request: { ...lsRequest, args: { command: 'rm -rf /' } }, workflowId, admission })),
    unverified,
  );
  await assert.rejects(
    new MockActivityEnvironment({ workflowExecution: { workflowId, runId: 'fuzz-run' } }, quiet).run(() =>
      allowed.evaluatePolicy({ request: lsRequest, workflowId, admission }),
    ),
    unverified,
  );
});
