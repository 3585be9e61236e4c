/**
 * Scenario 5 — pending approvals at scale: N requests waiting for a person, against N bare
 * workflows waiting on an Update. Measures the Temporal server's resident memory (/proc/<pid>/status)
 * and the worker's (a separate process, with a fixed workflow cache) per pending request, checks the
 * worker stays flat once the cache is full, then restarts the worker and resolves all N (toolgate:
 * requests submitted through the front door over HTTP with the agent's token, HTTP decisions
 * through the real API; bare: a client's starts and Updates). The worker process trusts the bench
 * run's keys through the same variables a deployed worker reads.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { approveUpdate } from '../baseline-workflows.js';
import { approveOverHttp, digestOverHttp, rssOf, startBenchApi, type BenchApi, type BenchServer } from '../lib/env.js';
import { log, status } from '../lib/progress.js';
import { ratio, round, since, summarize, type LatencySummary } from '../lib/stats.js';
import { goal, type BenchSizes, type ResultRow, type ScenarioResult } from '../lib/types.js';

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

/** The task queue of one system's phase (the toolgate one is also the front door's). */
const queueOf = (kind: Kind, run: string): string => `bench-pend-${kind}-${run}`;

/** A worker process and its IPC. */
class WorkerProcess {
  private constructor(private readonly child: ChildProcess) {}

  static async start(
    address: string,
    taskQueue: string,
    kind: Kind,
    codePath: string,
    cache: number,
    digests: Map<string, string>,
    trustEnv: Record<string, string>,
  ): Promise<WorkerProcess> {
    const child = fork(WORKER_SCRIPT, [address, taskQueue, kind, codePath, String(cache)], {
      execArgv: ['--expose-gc', '--import', 'tsx'],
      env: { ...process.env, ...trustEnv },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`worker process exited with ${code} before it was ready`)));
      child.on('message', (message: { type: string; requestId?: string; digest?: string }) => {
        if (message.type === 'ready') resolve();
        if (message.type === 'digest' && message.requestId && message.digest) digests.set(message.requestId, message.digest);
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

/** What one system's pending phase measured. */
export interface PhaseResult {
  /** Requests this phase ran (fewer than asked when the time budget stopped it). */
  n: number;
  samples: Sample[];
  before: Sample;
  startMs: number;
  resolveMs: number;
  resolved: number;
  /** Latency of each decision (HTTP or Update) and of decision → workflow completed, after the restart. */
  decision: LatencySummary;
  completion: LatencySummary;
}

/**
 * One system's pending phase: start N, sample memory, restart the worker, resolve all N. `api`'s
 * front door must start workflows on this phase's queue (`queueOf(kind, run)`); `trustEnv` is the
 * worker process's trust (`BenchKeys.writeWorkerTrust`).
 */
export async function phase(
  bench: BenchServer,
  api: BenchApi,
  kind: Kind,
  codePath: string,
  sizes: BenchSizes,
  run: string,
  trustEnv: Record<string, string>,
  limits: { n?: number; budgetMs?: number } = {},
): Promise<PhaseResult> {
  const { maxCachedWorkflows, checkpoints, concurrency } = sizes.pending;
  let n = limits.n ?? sizes.pending.n;
  const taskQueue = queueOf(kind, run);
  const { gateway } = api;
  const idOf = (i: number): string => `pend-${kind}-${run}-${i}`;
  const digests = new Map<string, string>();
  const startWorker = () => WorkerProcess.start(bench.server.address, taskQueue, kind, codePath, maxCachedWorkflows, digests, trustEnv);
  let worker = await startWorker();
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
            await gateway.start({ requestId: idOf(i), tool: 'bench_change', args: { n: i, text: 'pending' } });
          } else {
            await bench.client.workflow.start('bareAwaitUpdate', { taskQueue, workflowId: idOf(i), args: [{ n: i, text: 'pending' }] });
          }
        },
        `pending ${kind}: starting`,
      );
      startedCount = upTo;
      await waitForCount(bench, query, upTo, `pending ${kind}`);
      samples.push({ pending: upTo, serverRss: rssOf(serverPid), worker: await worker.memory() });
      // Bounded run: resolving takes about as long as starting; stop adding requests when the rest would not fit the budget
      // (never before 4× the cache, so flatness beyond the cache is still measured).
      const projectedMs = (since(t0) / upTo) * n * 2.2;
      if (limits.budgetMs !== undefined && c < checkpoints && upTo >= 4 * maxCachedWorkflows && projectedMs > limits.budgetMs) {
        log(
          `  pending ${kind}: stopping at ${upTo} of ${n} requests (projected ${Math.round(projectedMs / 1000)} s > budget ${Math.round(limits.budgetMs / 1000)} s)`,
        );
        n = upTo;
        break;
      }
    }
    const startMs = since(t0);
    log(`  pending ${kind}: ${n} waiting after ${(startMs / 1000).toFixed(1)} s; restarting the worker`);

    await worker.stop();
    worker = await startWorker();
    const t1 = performance.now();
    let resolved = 0;
    const decisionMs: number[] = [];
    const completionMs: number[] = [];
    await pool(
      0,
      n,
      concurrency,
      async (i) => {
        if (kind === 'toolgate') {
          const handle = await gateway.get(idOf(i));
          // The digest from the approval notification, as an approver's link would carry it (else from the approver's view).
          const digest = digests.get(idOf(i)) ?? (await digestOverHttp(api, idOf(i)));
          const t = performance.now();
          await approveOverHttp(api, idOf(i), digest);
          decisionMs.push(since(t));
          const outcome = await handle.outcome();
          completionMs.push(since(t));
          if (outcome.status === 'completed') resolved += 1;
        } else {
          const handle = bench.client.workflow.getHandle(idOf(i));
          const t = performance.now();
          await handle.executeUpdate(approveUpdate, { args: [{ approver: 'bench-approver' }] });
          decisionMs.push(since(t));
          await handle.result();
          completionMs.push(since(t));
          resolved += 1;
        }
      },
      `pending ${kind}: resolving after restart`,
    );
    const resolveMs = since(t1);
    log(
      `  pending ${kind}: ${resolved}/${n} resolved in ${(resolveMs / 1000).toFixed(1)} s after the restart (decision p50 ${summarize(decisionMs, 1).p50.toFixed(0)} ms, p99 ${summarize(decisionMs, 1).p99.toFixed(0)} ms)`,
    );
    return { n, samples, before, startMs, resolveMs, resolved, decision: summarize(decisionMs, resolveMs), completion: summarize(completionMs, resolveMs) };
  } finally {
    await worker.stop();
  }
}

const KiB = 1024;

export async function pendingScenario(bench: BenchServer, sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  const run = Date.now().toString(36);
  const dir = mkdtempSync(join(tmpdir(), 'toolgate-bench-'));
  const trustEnv = bench.keys.writeWorkerTrust(dir);
  const api = await startBenchApi(bench, queueOf('toolgate', run));
  try {
    const toolgatePath = join(dir, 'toolgate-workflows.js');
    const barePath = join(dir, 'baseline-workflows.js');
    writeFileSync(toolgatePath, bench.toolgateBundle.code);
    writeFileSync(barePath, bench.baselineBundle.code);
    // toolgate first, under the time budget; the bare baseline then runs the same number of requests.
    const tg = await phase(bench, api, 'toolgate', toolgatePath, sizes, run, trustEnv, { budgetMs: sizes.pending.budgetSeconds * 1000 });
    const bare = await phase(bench, api, 'bare', barePath, sizes, run, trustEnv, { n: tg.n });
    const { n } = tg;
    const { maxCachedWorkflows } = sizes.pending;

    const perRequest = (p: PhaseResult) => {
      const last = p.samples.at(-1) ?? p.before;
      return {
        server: (last.serverRss - p.before.serverRss) / n,
        worker: (last.worker.rss - p.before.worker.rss) / n,
        heap: (last.worker.heapUsed - p.before.worker.heapUsed) / n,
      };
    };
    /**
     * Worker RSS growth per pending request once the cache is full, as a fraction of what a cached
     * workflow costs (RSS growth per request while the cache fills): ~0 when memory is flat.
     * RSS, not heap: workflows run in a worker thread whose heap `process.memoryUsage()` does not show.
     */
    const beyondCache = (p: PhaseResult): { perCached: number; beyond: number; fraction: number } => {
      const after = p.samples.filter((s) => s.pending >= maxCachedWorkflows);
      const first = after[0];
      const last = after.at(-1);
      if (!first || !last || last.pending === first.pending) return { perCached: Number.NaN, beyond: Number.NaN, fraction: Number.NaN };
      const perCached = (first.worker.rss - p.before.worker.rss) / Math.min(first.pending, maxCachedWorkflows);
      const beyond = (last.worker.rss - first.worker.rss) / (last.pending - first.pending);
      return { perCached, beyond, fraction: round(beyond / perCached) };
    };
    const b = perRequest(bare);
    const t = perRequest(tg);
    const row = (system: string, p: PhaseResult, m: { server: number; worker: number; heap: number }, base: { server: number; worker: number }): ResultRow => ({
      system,
      p50: p.completion.p50,
      p95: p.completion.p95,
      p99: p.completion.p99,
      throughput: round((n * 1000) / p.resolveMs),
      throughputUnit: 'resolutions/s after restart',
      ratio: ratio(m.server, base.server),
      note: `server ${(m.server / KiB).toFixed(2)} KiB/req, worker RSS ${(m.worker / KiB).toFixed(2)} KiB/req (${ratio(m.worker, base.worker)}×), beyond the cache ${(beyondCache(p).beyond / KiB).toFixed(1)} KiB/req vs ${(beyondCache(p).perCached / KiB).toFixed(0)} KiB per cached workflow; ${p.resolved}/${n} resolved`,
      extra: {
        serverBytesPerPending: round(m.server),
        workerRssBytesPerPending: round(m.worker),
        workerHeapBytesPerPending: round(m.heap),
        workerRssBeyondCache: beyondCache(p),
        startSeconds: round(p.startMs / 1000),
        resolveSeconds: round(p.resolveMs / 1000),
        resolved: p.resolved,
        decisionAfterRestart: p.decision,
        completionAfterRestart: p.completion,
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
        // Flat: a request beyond the cache costs under a tenth of what a cached workflow costs.
        goal('worker RSS per request beyond the cache / per cached workflow', tgBeyond.fraction, '<', 0.1),
        goal('requests resolved after the worker restart / N', ratio(tg.resolved, n), '>=', 1),
      ],
      notes: [
        ...(n < sizes.pending.n
          ? [
              `Ran ${n} of the ${sizes.pending.n} requests asked: the toolgate phase's projected time exceeded its ${sizes.pending.budgetSeconds} s budget on this machine.`,
            ]
          : []),
        `maxCachedWorkflows = ${maxCachedWorkflows}; worker in its own process, RSS read after a main-thread GC; server RSS from /proc/<pid>/status.`,
        `Bare: RSS per request beyond the cache ${(bareBeyond.beyond / KiB).toFixed(1)} KiB vs ${(bareBeyond.perCached / KiB).toFixed(0)} KiB per cached workflow (fraction ${bareBeyond.fraction}).`,
        'Latency columns: from the decision being sent (after the worker restart) to the workflow completing, with the given concurrency.',
        'Memory deltas are RSS differences between before the first start and N waiting; Go and V8 GC timing makes them noisy at small N.',
      ],
      durationMs: since(started),
    };
  } finally {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
