/**
 * A worker in its own process for the pending-approvals scenario, so its memory is measured alone
 * and it can be restarted: `toolgate` runs the product's workflow and activities, `bare` the
 * baseline workflows. Speaks to the bench over IPC: `ready` when polling, `memory` on request
 * (after a full GC), `digest` for each approval notification, and shuts down cleanly on `stop`.
 *
 * Run by the bench with: node --expose-gc --import tsx bench/pending-worker.ts <address> <taskQueue> <toolgate|bare> <bundlePath> <maxCachedWorkflows>
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { silentLogger } from '../src/logger.js';
import { PolicyStore } from '../src/policy-store.js';
import { createBaselineActivities } from './baseline-activities.js';
import { BENCH_POLICY, benchTools, quietRuntime } from './lib/env.js';

const [address, taskQueue, kind, codePath, cache] = process.argv.slice(2);
if (!address || !taskQueue || !codePath || (kind !== 'toolgate' && kind !== 'bare')) {
  throw new Error('usage: pending-worker.ts <address> <taskQueue> <toolgate|bare> <bundlePath> <maxCachedWorkflows>');
}
quietRuntime();
const connection = await NativeConnection.connect({ address });
const activities =
  kind === 'toolgate'
    ? createActivities({
        policy: PolicyStore.fromSources([{ file: 'bench-policy.yaml', text: BENCH_POLICY }]),
        tools: benchTools(),
        // Approvers learn the digest from the notification; hand it to the bench the same way.
        notifier: { notify: async (n) => { if (n.kind === 'requested') process.send?.({ type: 'digest', requestId: n.requestId, digest: n.digest }); } },
        logger: silentLogger(),
      })
    : createBaselineActivities();
// The same options as createToolgateWorker, plus a fixed workflow cache so "flat beyond the cache" is testable.
const worker = await Worker.create({
  connection,
  taskQueue,
  workflowBundle: { codePath },
  activities,
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
