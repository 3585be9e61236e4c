/**
 * A worker in its own process for the pending-approvals scenario, so its memory is measured alone
 * and it can be restarted: `toolgate` runs the product's workflow and activities, `bare` the
 * baseline workflows. Speaks to the bench over IPC: `ready` when polling, `memory` on request
 * (after a full GC), `digest` for each approval notification, and shuts down cleanly on `stop`.
 * A toolgate worker trusts the bench run's keys the way a deployed worker does: from the
 * TOOLGATE_TRUSTED_REQUEST_KEYS, TOOLGATE_TRUSTED_DECISION_KEYS and TOOLGATE_WORKER_SEAL_KEY_FILE
 * files the bench writes (`BenchKeys.writeWorkerTrust`).
 *
 * Run by the bench with: node --expose-gc --import tsx bench/pending-worker.ts <address> <taskQueue> <toolgate|bare> <bundlePath> <maxCachedWorkflows>
 */
import { dirname } from 'node:path';
import { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { silentLogger } from '../src/logger.js';
import { PolicyStore } from '../src/policy/store.js';
import { loadWorkerTrust } from '../src/trust/store.js';
import { TemporalRunGuard } from '../src/trust/runs.js';
import { createBaselineActivities } from './baseline-activities.js';
import { BENCH_POLICY, benchTools, quietRuntime } from './lib/env.js';

const [address, taskQueue, kind, codePath, cache] = process.argv.slice(2);
if (!address || !taskQueue || !codePath || (kind !== 'toolgate' && kind !== 'bare')) {
  throw new Error('usage: pending-worker.ts <address> <taskQueue> <toolgate|bare> <bundlePath> <maxCachedWorkflows>');
}
/** The bench's keys, never a state directory's: a worker that made its own keys would deny every request as unverified. */
async function benchTrust() {
  const missing = ['TOOLGATE_TRUSTED_REQUEST_KEYS', 'TOOLGATE_TRUSTED_DECISION_KEYS', 'TOOLGATE_WORKER_SEAL_KEY_FILE'].filter((name) => !process.env[name]);
  if (missing.length > 0) throw new Error(`pending-worker.ts needs the bench's trust: set ${missing.join(', ')}`);
  return loadWorkerTrust(dirname(process.env.TOOLGATE_WORKER_SEAL_KEY_FILE ?? ''), process.env);
}

quietRuntime();
const connection = await NativeConnection.connect({ address });
const activities =
  kind === 'toolgate'
    ? createActivities({
        trust: await benchTrust(),
        policy: PolicyStore.fromSources([{ file: 'bench-policy.yaml', text: BENCH_POLICY }]),
        tools: benchTools(),
        // Approvers learn the digest from the notification; hand it to the bench the same way.
        notifier: {
          notify: async (n) => {
            if (n.kind === 'requested') process.send?.({ type: 'digest', requestId: n.requestId, digest: n.digest });
          },
        },
        logger: silentLogger(),
        runs: new TemporalRunGuard(new Client({ connection }), taskQueue),
      })
    : createBaselineActivities();
// The same options as createToolgateWorker, plus a fixed workflow cache so "flat beyond the cache" is testable.
const worker = await Worker.create({
  connection,
  taskQueue,
  workflowBundle: { codePath },
  activities,
  // As createToolgateWorker: a task left on a stopped worker's sticky queue moves on after 3 s, not the SDK's 10 s.
  stickyQueueScheduleToStartTimeout: '3s',
  maxCachedWorkflows: Number(cache),
});
const send = (message: unknown): void => {
  process.send?.(message);
};
process.on('message', (message: { type: string }) => {
  if (message.type === 'memory') {
    (globalThis as { gc?: () => void }).gc?.();
    const usage = process.memoryUsage();
    send({ type: 'memory', rss: usage.rss, heapUsed: usage.heapUsed, cached: worker.getStatus().numCachedWorkflows });
  } else if (message.type === 'stop') {
    worker.shutdown();
  }
});
const running = worker.run();
send({ type: 'ready' });
await running;
await connection.close();
process.disconnect?.();
