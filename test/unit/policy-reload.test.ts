/**
 * A worker's policy follows its files without a restart: a valid edit is in force within moments
 * (file watch), SIGHUP reloads on demand, and a broken edit is logged while the previous policy
 * stays in force — a request never sees a half-loaded policy or none.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { PolicyStore } from '../../src/policy/store.js';

const policy = (runAs: string) => `
version: 1
tools:
  lookup: { risk: low, approval: none, allowed_roles: [agent_runtime] }
manifest:
  lookup:
    run_as: ${runAs}
    adapter: { type: code }
    args: { type: object }
`;

/** Polls until `check` holds or fails after `ms`. */
async function eventually(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('policy hot reload: edits apply, a broken edit keeps the policy in force, SIGHUP reloads', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-reload-'));
  const file = join(dir, 'policy.yaml');
  const lines: Array<{ msg: string; err?: string; inForce?: string; digest?: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
  const store = new PolicyStore();
  let stop: (() => void) | undefined;
  try {
    await writeFile(file, policy('svc-one'));
    await store.load([file]);
    const first = store.current().policy;
    assert.ok(first);
    stop = await store.watch([file], { logger, debounceMs: 50, signal: 'SIGHUP' });
    const runAs = () => store.current().policy?.manifest('lookup')?.runAs;

    // An editor's save: write a temporary file and rename it over the old one.
    await writeFile(`${file}.tmp`, policy('svc-two'));
    await rename(`${file}.tmp`, file);
    await eventually('the edit to be in force', () => runAs() === 'svc-two');
    const second = store.current().policy;
    assert.notEqual(second?.digest, first.digest);

    // A broken edit: the error is recorded and logged, the previous policy stays in force.
    await writeFile(file, 'version: 1\ntools: [this is not a map\n');
    await eventually('the failed reload to be recorded', () => store.current().error !== undefined);
    assert.equal(store.current().policy?.digest, second?.digest);
    assert.equal(runAs(), 'svc-two');
    const failure = lines.find((line) => line.msg.startsWith('policy reload failed'));
    assert.ok(failure, 'the failed reload is logged');
    assert.equal(failure.inForce, second?.digest);

    // Fixed, with the watcher stopped: SIGHUP alone reloads.
    stop();
    stop = await store.watch([file], { logger, signal: 'SIGHUP', files: false });
    await writeFile(file, policy('svc-three'));
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(runAs(), 'svc-two', 'no watcher: nothing changes until the signal');
    process.emit('SIGHUP', 'SIGHUP');
    await eventually('SIGHUP to reload', () => runAs() === 'svc-three');
    assert.equal(store.current().error, undefined);
  } finally {
    stop?.();
    await rm(dir, { recursive: true, force: true });
  }
});

test('concurrent reloads end with the newest files, never an older load', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-reload-'));
  const file = join(dir, 'policy.yaml');
  try {
    const store = new PolicyStore();
    const loads: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      await writeFile(file, policy(`svc-${i}`));
      loads.push(store.load([file]));
    }
    await Promise.all(loads);
    assert.equal(store.current().policy?.manifest('lookup')?.runAs, 'svc-19');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
