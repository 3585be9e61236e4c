/**
 * The README's promise, end to end with real processes: `toolgate dev` starts Temporal (SQLite
 * state), worker and API; the demo — an agent with an agent token and nothing else, going through
 * the front door — shows its three outcomes, approved once by running the commands it prints and
 * once with `--approve-as`; Ctrl-C shuts everything down cleanly; and a restart on the same state
 * directory still knows the requests.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { dataConverterFor, loadKeyring } from '../../src/codec/index.js';
import { workflowIdFor } from '../../src/shared/index.js';
import { findFreePort } from '../../src/temporal/dev-server.js';

const NODE = process.execPath;
const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

interface Running {
  child: ChildProcess;
  output: () => string;
}

function run(args: string[], env: NodeJS.ProcessEnv, command = NODE): Running {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { child, output: () => text };
}

async function waitFor(running: Running, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(running.output())) {
    if (running.child.exitCode !== null) throw new Error(`process exited (${running.child.exitCode}):\n${running.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${running.output().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** The approval commands the demo printed (the indented lines after "Approve it with"), as one shell script. */
function printedApproval(output: string): string {
  const block = /Approve it with[^\n]*\n(?:[^\n]*\n)?\n((?: {3}[^\n]+\n)+)/.exec(output)?.[1];
  assert.ok(block, `the demo printed no approval commands:\n${output}`);
  return block.replace(/^ {3}/gm, '');
}

/** The outcomes every demo run shows: allowed, approved by a person, refused. */
function assertDemoOutcomes(out: string): string {
  assert.match(out, /1\. read_kb[\s\S]*result: \{"articles":\[\{"id":"KB-204"/);
  assert.match(out, /curl -sS -X POST http:\/\/127\.0\.0\.1:\d+\/v1\/approvals\/demo-\w+-ticket\/decision/);
  assert.match(out, /result: \{"ticketId":"TCK-\d+","title":"ACME: checkout outage","priority":"urgent","runAs":"svc-ticketing"\}/);
  assert.match(out, /refused: \{"ok":false,"status":"denied"/);
  const ticketId = /approvals\/(demo-\w+-ticket)\/decision/.exec(out)?.[1];
  assert.ok(ticketId);
  return ticketId;
}

describe('toolgate dev and the demo', () => {
  const started: ChildProcess[] = [];
  let stateDir = '';
  after(async () => {
    for (const child of started) if (child.exitCode === null) child.kill('SIGKILL');
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  test('one command runs the gateway; the demo is allowed, approved and refused; state survives a restart', async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'toolgate-dev-'));
    const port = await findFreePort();
    const uiPort = await findFreePort();
    const apiPort = await findFreePort();
    const env = {
      TOOLGATE_STATE_DIR: stateDir,
      TOOLGATE_API_PORT: String(apiPort),
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
      TOOLGATE_LOG_LEVEL: 'warn',
    };
    const devArgs = [...CLI, 'dev', '--port', String(port), '--ui-port', String(uiPort)];

    const dev = run(devArgs, env);
    started.push(dev.child);
    await waitFor(dev, /Press Ctrl-C to stop/, 90_000);
    assert.match(dev.output(), new RegExp(`Temporal UI: +http://127\\.0\\.0\\.1:${uiPort}`));
    assert.match(dev.output(), /toolgate token issue --sub alice --groups manager --tenant acme/);
    const health = await fetch(`http://127.0.0.1:${apiPort}/healthz`);
    assert.equal(health.status, 200);

    // Interactive: the demo waits until someone runs the commands it printed, as a reader would paste them.
    const waiting = run(['--import', 'tsx', 'scripts/demo.ts'], env);
    started.push(waiting.child);
    await waitFor(waiting, /-d '\{"decision":"approve"[^\n]*\n\n/, 90_000);
    // npx resolves `toolgate` to this package's own bin; offline, so it can never ask a registry.
    const approver = run(['-euo', 'pipefail', '-c', printedApproval(waiting.output())], { ...env, npm_config_offline: 'true' }, 'bash');
    assert.equal(await exitOf(approver.child), 0, `the printed approval commands failed:\n${approver.output()}`);
    assert.match(approver.output(), /"requestId":"demo-\w+-ticket"/, approver.output());
    assert.equal(await exitOf(waiting.child), 0, waiting.output());
    assertDemoOutcomes(waiting.output());

    const demo = run(['--import', 'tsx', 'scripts/demo.ts', '--approve-as', 'maria'], env);
    started.push(demo.child);
    assert.equal(await exitOf(demo.child), 0, demo.output());
    assert.match(demo.output(), /approved as maria: HTTP 200/);
    const ticketId = assertDemoOutcomes(demo.output());

    dev.child.kill('SIGINT');
    assert.equal(await exitOf(dev.child), 0, `dev did not stop cleanly:\n${dev.output().slice(-3000)}`);

    const again = run(devArgs, env);
    started.push(again.child);
    await waitFor(again, /Press Ctrl-C to stop/, 90_000);
    const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
    try {
      // History is encrypted with the key `toolgate dev` generated under the state directory.
      const dataConverter = dataConverterFor(await loadKeyring({ env: {}, devStateDir: stateDir }));
      const description = await new Client({ connection, dataConverter }).workflow.getHandle(workflowIdFor('acme', ticketId)).describe();
      assert.equal(description.status.name, 'COMPLETED');
    } finally {
      await connection.close();
    }
    again.child.kill('SIGTERM');
    assert.equal(await exitOf(again.child), 0);
  });
});
