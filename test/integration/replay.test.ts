/**
 * Replay: the committed histories must replay against today's workflow code — those of runs
 * before the trust boundary (test/histories/v0/: approve, reject, edit, escalate, expire, deny) on
 * the frozen legacy path, those recorded before the waiting attributes (v1/) and those of today's
 * workflow (v2/), both encrypted with the committed replay keys: the same paths plus a recorded
 * refusal and an unverified request; and the paths added since (v3/: a dry-run preview before the
 * approval; v4/: an allowed idempotent tool run as a local activity, completed and failed, an
 * end user's confirmation, a break-glass override and a rollback). A deliberately changed workflow
 * must fail to replay all of them (the negative control that proves this test can fail). See
 * test/replay/record-histories.ts.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Worker, bundleWorkflowCode, type ReplayWorkerOptions } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { FAILURE_CONVERTER_PATH, dataConverterFor, parseKeyringEnv } from '../../src/codec/index.js';
import { WORKFLOWS_PATH } from '../../src/worker.js';

const require = createRequire(import.meta.url);
const HISTORIES = join(import.meta.dirname, '..', 'histories');
const SETS = {
  v0: ['approve', 'deny', 'edit', 'escalate', 'expire', 'reject'],
  v1: ['approve', 'deny', 'edit', 'escalate', 'expire', 'refused', 'reject', 'unverified'],
  v2: ['approve', 'deny', 'edit', 'escalate', 'expire', 'refused', 'reject', 'unverified'],
  v3: ['preview'],
  v4: ['end-user', 'local-failed', 'local', 'override', 'rollback'], // in file order: 'local-failed.json' sorts first
};
/**
 * The request ids of histories not named `history-<file>`: an override's and a rollback's request
 * is a new one linked to the original (`history-<file>`), under the id the API gives it.
 */
const REQUEST_IDS: Record<string, string> = {
  'v4/override': 'history-override.override-1',
  'v4/rollback': 'history-rollback.rollback-1',
};
const EXPECTED = Object.entries(SETS).flatMap(([set, names]) => names.map((name) => `${set}/${name}`));
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

async function histories() {
  const all = [];
  for (const set of Object.keys(SETS)) {
    const files = (await readdir(join(HISTORIES, set))).filter((f) => f.endsWith('.json')).sort();
    for (const file of files) {
      const name = `${set}/${file.replace(/\.json$/, '')}`;
      all.push({
        name,
        // The workflow verifies its admission against its own id: replay under the id it ran with.
        workflowId: set === 'v0' ? `replay-${set}-${file}` : `toolreq/acme/${REQUEST_IDS[name] ?? `history-${file.replace(/\.json$/, '')}`}`,
        // Protobuf JSON as `temporal workflow show --output json` writes it; the replayer converts it.
        history: JSON.parse(await readFile(join(HISTORIES, set, file), 'utf8')) as unknown,
      });
    }
  }
  return all;
}

async function replay(workflowsPath: string) {
  const keys = parseKeyringEnv((await readFile(join(HISTORIES, 'v1', 'replay-codec-keys.txt'), 'utf8')).trim(), 'replay-codec-keys.txt');
  const options: ReplayWorkerOptions = {
    workflowBundle: await bundleWorkflowCode({ workflowsPath, failureConverterPath: FAILURE_CONVERTER_PATH, logger: quiet }),
    dataConverter: dataConverterFor(keys),
  };
  const results: { workflowId: string; error?: unknown }[] = [];
  for await (const result of Worker.runReplayHistories(options, await histories())) results.push(result);
  return results;
}

describe('replay of recorded histories', { timeout: 300_000 }, () => {
  test('every path through the workflow has a committed history', async () => {
    assert.deepEqual(
      (await histories()).map((h) => h.name),
      EXPECTED,
    );
  });

  test("today's workflow replays every history", async () => {
    const results = await replay(WORKFLOWS_PATH);
    assert.equal(results.length, EXPECTED.length);
    for (const result of results) assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
  });

  test('a deliberately changed workflow fails to replay them (negative control)', async () => {
    const results = await replay(require.resolve('../fixtures/replay/changed-workflows.ts'));
    assert.equal(results.length, EXPECTED.length);
    for (const result of results) {
      assert.ok(result.error instanceof DeterminismViolationError, `${result.workflowId} should fail replay, got ${String(result.error)}`);
    }
  });
});
