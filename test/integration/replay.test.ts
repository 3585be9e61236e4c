/**
 * Replay: the committed histories of approve, reject, edit, escalate, expire and deny runs must
 * replay against today's workflow code; a deliberately changed workflow must fail to replay
 * (the negative control that proves this test can fail). See test/replay/record-histories.ts.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Worker, bundleWorkflowCode, type ReplayWorkerOptions } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { WORKFLOWS_PATH } from '../../src/worker.js';

const require = createRequire(import.meta.url);
const HISTORIES = join(import.meta.dirname, '..', 'histories');
const EXPECTED = ['approve', 'deny', 'edit', 'escalate', 'expire', 'reject'];
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

async function histories() {
  const files = (await readdir(HISTORIES)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(
    files.map(async (file) => ({
      name: file.replace(/\.json$/, ''),
      workflowId: `replay-${file}`,
      // Protobuf JSON as `temporal workflow show --output json` writes it; the replayer converts it.
      history: JSON.parse(await readFile(join(HISTORIES, file), 'utf8')) as unknown,
    })),
  );
}

async function replay(workflowsPath: string) {
  const options: ReplayWorkerOptions = { workflowBundle: await bundleWorkflowCode({ workflowsPath, logger: quiet }) };
  const results: { workflowId: string; error?: unknown }[] = [];
  for await (const result of Worker.runReplayHistories(options, await histories())) results.push(result);
  return results;
}

describe('replay of recorded histories', { timeout: 300_000 }, () => {
  test('every path through the workflow has a committed history', async () => {
    assert.deepEqual((await histories()).map((h) => h.name), EXPECTED);
  });

  test('today\'s workflow replays every history', async () => {
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
