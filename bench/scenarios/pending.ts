/**
 * Scenario 5 — pending approvals at scale: N requests waiting for a person, against N bare
 * workflows waiting on an Update. Measures the Temporal server's resident memory (/proc/<pid>/status)
 * and the worker's (a separate process, with a fixed workflow cache) per pending request, checks the
 * worker stays flat once the cache is full, then restarts the worker and resolves all N (toolgate:
 * HTTP decisions through the real API; bare: client Updates).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { approveUpdate } from '../baseline-workflows.js';
import { BENCH_ACTOR, approveOverHttp, rssOf, startBenchApi, type BenchApi, type BenchServer } from '../lib/env.js';
import { log, status } from '../lib/progress.js';
import { ratio, round, since } from '../lib/stats.js';
import { goal, type BenchSizes, type ResultRow, type ScenarioResult } from '../lib/types.js';
import { ToolGateway } from '../../src/client/index.js';

type Kind = 'toolgate' | 'bare';
interface WorkerMemory {
  rss: number;
  heapUsed: number;
  cached: number;
}
interface Sample {
  pending: number;
  serverRss: number;
  worker: WorkerMemory;
}

const WORKER_SCRIPT = fileURLToPath(new URL('../pending-worker.ts', import.meta.url));

/** A worker process and its IPC. */
class WorkerProcess {
  private constructor(private readonly child: ChildProcess) {}

  static async start(address: string, taskQueue: string, kind: Kind, codePath: string, cache: number): Promise<WorkerProcess> {
    const child = fork(WORKER_SCRIPT, [address, taskQueue, kind, codePath, String(cache)], {
      execArgv: ['--expose-gc', '--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`worker process exited with ${code} before it was ready`)));
      child.on('message', (message: { type: string }) => {
        if (message.type === 'ready') resolve();
      });
    });
    child.removeAllListeners('exit');
    return new WorkerProcess(child);
  }

  memory(): Promise<WorkerMemory> {
    return new Promise((resolve) => {
      const onMessage = (message: { type: string } & WorkerMemory): void => {
        if (message.type !== 'memory') return;
        this.child.off('message', onMessage);
        resolve({ rss: message.rss, heapUsed: message.heapUsed, cached: message.cached });
      };
      this.child.on('message', onMessage);
      this.child.send({ type: 'memory' });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Runs `task(i)` for i in [from, to) with at most `concurrency` at once. */
async function pool(from: number, to: number, concurrency: number, task: (i: number) => Promise<void>, label: string): Promise<void> {
  let next = from;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (next < to) {
      const i = next++;
      await task(i);
      done += 1;
      status(`${label}: ${done}/${to - from}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(0, to - from)) }, lane));
}

async function waitForCount(bench: BenchServer, query: string, expected: number, label: string): Promise<void> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const { count } = await bench.client.workflow.count(query);
    status(`${label}: ${count}/${expected} waiting`);
    if (count >= expected) return;
    if (Date.now() > deadline) throw new Error(`${label}: only ${count}/${expected} reached waiting`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

interface PhaseResult {
  samples: Sample[];
  before: Sample;
  startMs: number;
  resolveMs: number;
  resolved: number;
}

async function phase(bench: BenchServer, api: BenchApi, kind: Kind, codePath: string, sizes: BenchSizes, run: string): Promise<PhaseResult> {
  const { n, maxCachedWorkflows, checkpoints, concurrency } = sizes.pending;
  const taskQueue = `bench-pend-${kind}-${run}`;
  const gateway = new ToolGateway({ client: bench.client, taskQueue });
  const idOf = (i: number): string => `pend-${kind}-${run}-${i}`;
  let worker = await WorkerProcess.start(bench.server.address, taskQueue, kind, codePath, maxCachedWorkflows);
  const serverPid = bench.server.pid;
  try {
    const before: Sample = { pending: 0, serverRss: rssOf(serverPid), worker: await worker.memory() };
    const samples: Sample[] = [];
    const query =
      kind === 'toolgate' ? `TaskQueue = "${taskQueue}" AND ToolgateStatus = "pending_approval"` : `TaskQueue = "${taskQueue}" AND BenchState = "waiting"`;
    const t0 = performance.now();
    let startedCount = 0;
    for (let c = 1; c <= checkpoints; c++) {
      const upTo = Math.round((n * c) / checkpoints);
      await pool(
        startedCount,
        upTo,
        concurrency,
        async (i) => {
          if (kind === 'toolgate') {
            await gateway.start({ requestId: idOf(i), actor: BENCH_ACTOR, tenant: 'bench', environment: 'bench', tool: 'bench_change', args: { n: i, text: 'pending' } });
          } else {
            await bench.client.workflow.start('bareAwaitUpdate', { taskQueue, workflowId: idOf(i), args: [{ n: i, text: 'pending' }] });
          }
        },
        `pending ${kind}: starting`,
      );
      startedCount = upTo;
      await waitForCount(bench, query, upTo, `pending ${kind}`);
      samples.push({ pending: upTo, serverRss: rssOf(serverPid), worker: await worker.memory() });
    }
    const startMs = since(t0);
    log(`  pending ${kind}: ${n} waiting after ${(startMs / 1000).toFixed(1)} s; restarting the worker`);

    await worker.stop();
    worker = await WorkerProcess.start(bench.server.address, taskQueue, kind, codePath, maxCachedWorkflows);
    const t1 = performance.now();
    let resolved = 0;
    await pool(
      0,
      n,
      concurrency,
      async (i) => {
        if (kind === 'toolgate') {
          const handle = await gateway.get(idOf(i));
          const { digest } = await handle.status();
          await approveOverHttp(api, idOf(i), digest);
          const outcome = await handle.outcome();
          if (outcome.status === 'completed') resolved += 1;
        } else {
          const handle = bench.client.workflow.getHandle(idOf(i));
          await handle.executeUpdate(approveUpdate, { args: [{ approver: 'bench-approver' }] });
          await handle.result();
          resolved += 1;
        }
      },
      `pending ${kind}: resolving after restart`,
    );
    const resolveMs = since(t1);
    log(`  pending ${kind}: ${resolved}/${n} resolved in ${(resolveMs / 1000).toFixed(1)} s after the restart`);
    return { samples, before, startMs, resolveMs, resolved };
  } finally {
    await worker.stop();
  }
}

const KiB = 1024;

export async function pendingScenario(bench: BenchServer, sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  const run = Date.now().toString(36);
  const dir = mkdtempSync(join(tmpdir(), 'toolgate-bench-'));
  const api = await startBenchApi(bench);
  try {
    const toolgatePath = join(dir, 'toolgate-workflows.js');
    const barePath = join(dir, 'baseline-workflows.js');
    writeFileSync(toolgatePath, bench.toolgateBundle.code);
    writeFileSync(barePath, bench.baselineBundle.code);
    const bare = await phase(bench, api, 'bare', barePath, sizes, run);
    const tg = await phase(bench, api, 'toolgate', toolgatePath, sizes, run);
    const { n, maxCachedWorkflows } = sizes.pending;

    const perRequest = (p: PhaseResult) => {
      const last = p.samples.at(-1) ?? p.before;
      return { server: (last.serverRss - p.before.serverRss) / n, worker: (last.worker.rss - p.before.worker.rss) / n, heap: (last.worker.heapUsed - p.before.worker.heapUsed) / n };
    };
    /** Worker heap growth per pending request once the cache is full: ~0 when memory is flat. */
    const beyondCache = (p: PhaseResult): number => {
      const after = p.samples.filter((s) => s.pending >= maxCachedWorkflows);
      const first = after[0];
      const last = after.at(-1);
      if (!first || !last || last.pending === first.pending) return Number.NaN;
      return (last.worker.heapUsed - first.worker.heapUsed) / (last.pending - first.pending);
    };
    const b = perRequest(bare);
    const t = perRequest(tg);
    const row = (system: string, p: PhaseResult, m: { server: number; worker: number; heap: number }, base: { server: number; worker: number }): ResultRow => ({
      system,
      throughput: round((n * 1000) / p.resolveMs),
      throughputUnit: 'resolutions/s after restart',
      ratio: ratio(m.server, base.server),
      note: `server ${(m.server / KiB).toFixed(2)} KiB/req, worker RSS ${(m.worker / KiB).toFixed(2)} KiB/req (${ratio(m.worker, base.worker)}×), heap beyond cache ${(beyondCache(p) / KiB).toFixed(3)} KiB/req; ${p.resolved}/${n} resolved`,
      extra: {
        serverBytesPerPending: round(m.server),
        workerRssBytesPerPending: round(m.worker),
        workerHeapBytesPerPending: round(m.heap),
        workerHeapBytesPerPendingBeyondCache: round(beyondCache(p)),
        startSeconds: round(p.startMs / 1000),
        resolveSeconds: round(p.resolveMs / 1000),
        resolved: p.resolved,
        before: p.before,
        samples: p.samples,
      },
    });
    const tgBeyond = beyondCache(tg);
    const bareBeyond = beyondCache(bare);
    return {
      id: 5,
      name: `Pending approvals at scale (N = ${n.toLocaleString('en-US')})`,
      baseline: 'bare workflows waiting on an Update',
      ratioOf: 'server memory per pending request',
      rows: [row('toolgate (pending_approval)', tg, t, b), row('bare workflow (condition + Update)', bare, b, b)],
      goals: [
        goal('server memory per pending request, toolgate / bare', ratio(t.server, b.server), '<=', 1.1),
        goal('worker memory per pending request, toolgate / bare', ratio(t.worker, b.worker), '<=', 1.1),
        // Flat: heap growth per request beyond the cache stays under 1 KiB (a cached workflow costs far more).
        goal('worker heap growth beyond the cache (KiB per pending request)', round(tgBeyond / KiB), '<', 1),
        goal('requests resolved after the worker restart / N', ratio(tg.resolved, n), '>=', 1),
      ],
      notes: [
        `maxCachedWorkflows = ${maxCachedWorkflows}; worker in its own process, memory read after a full GC; server RSS from /proc/<pid>/status.`,
        `Bare heap growth beyond the cache: ${(bareBeyond / KiB).toFixed(3)} KiB per request.`,
        'Memory deltas are RSS differences between before the first start and N waiting; Go and V8 GC timing makes them noisy at small N.',
      ],
      durationMs: since(started),
    };
  } finally {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
