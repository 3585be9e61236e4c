/**
 * `toolgate health`, the worker's container health check: healthy only while a worker of this
 * host polls the task queue, and unhealthy again soon after it dies, although Temporal keeps
 * listing the dead poller for a while (it is judged by when it last polled, not by being listed).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  REPO_ROOT,
  TemporalProcess,
  findFreePort,
  processKeyring,
  provisionBoundaryKeys,
  startWorkerProcess,
  type GatewayProcessEnv,
} from '../helpers/processes.js';

/** Runs `toolgate health` with `env`; resolves with its exit code and output. */
function health(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'health', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

test('toolgate health: unhealthy without a worker, healthy while it polls, unhealthy soon after it is killed', { timeout: 180_000 }, async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'toolgate-health-'));
  const temporal = await TemporalProcess.start(join(stateDir, 'temporal.db'));
  const env: GatewayProcessEnv = {
    TEMPORAL_ADDRESS: temporal.address,
    TOOLGATE_STATE_DIR: stateDir,
    TOOLGATE_POLICY: join(REPO_ROOT, 'policies'),
    TOOLGATE_API_PORT: String(await findFreePort()),
  };
  try {
    const none = await health(env);
    assert.equal(none.code, 1, none.out);
    assert.match(none.out, /no worker of host .* polls task queue toolgate/);

    await processKeyring(env);
    await provisionBoundaryKeys(env);
    const worker = await startWorkerProcess(env);
    const alive = await health(env);
    assert.equal(alive.code, 0, alive.out);
    assert.match(alive.out, /^healthy: \d+@/);

    await worker.kill();
    await sleep(4_000);
    const dead = await health(env, '--max-age', '3');
    assert.equal(dead.code, 1, dead.out);
    assert.match(dead.out, /last polled \d+ s ago|no worker of host/);
    const bad = await health(env, '--max-age', 'soon');
    assert.equal(bad.code, 2);
    assert.match(bad.out, /--max-age must be a positive number of seconds/);
  } finally {
    await temporal.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
});
