/**
 * Scenario 7 — "waiting for me" listing (issue 12 "Listing", issue 14 goal 5): N requests wait for
 * approval, of which `eligible` (spread evenly through the N) may be decided by the measured
 * approver's group (`finance`) and the rest only by `manager`. Measured side by side, alternating
 * call by call:
 *
 *   - toolgate: `GET /v1/approvals?limit=50` over HTTP with the finance approver's token (first page);
 *   - baseline: the same visibility query (`waitingQuery`) sent straight to the server with
 *     `workflowService.listWorkflowExecutions`, so toolgate / baseline is the API's own cost;
 *   - the old way, for contrast: list every pending request of the tenant and query each workflow
 *     for its status until a page of eligible ones is found (time-bounded; projected when cut short).
 *
 * "No workflow queries" is shown two ways: the scenario's worker is shut down before the listing is
 * measured (a workflow query would have no worker to answer it), and every RPC the bench's Temporal
 * client sends while measuring is counted per method: `queryWorkflow` must stay 0 and each listing
 * must be exactly one `listWorkflowExecutions`. The counter is checked on the old way, which must
 * count one `queryWorkflow` per workflow it asked. Every listing answer must hold exactly the
 * eligible requests (all of them at the sizes here: eligible <= 50), else the scenario fails.
 *
 * Its own population rather than scenario 5's: that one resolves every request it creates, stops
 * early under its time budget and has a single approver group, so it cannot show "50 of 10,000".
 */
import type { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { issueAgentToken } from '../../src/auth/agent-tokens.js';
import { issueApproverToken } from '../../src/auth/tokens.js';
import { waitingQuery, type WaitingApprover } from '../../src/approvals/waiting.js';
import { ToolGateway } from '../../src/client/index.js';
import { silentLogger } from '../../src/logger.js';
import { PolicyStore } from '../../src/policy/store.js';
import { statusQuery, type RequestStatus } from '../../src/shared/index.js';
import { createToolgateWorker } from '../../src/worker.js';
import { BENCH_ACTOR, BENCH_ENVIRONMENT, benchTools, startBenchApi, type BenchApi, type BenchServer } from '../lib/env.js';
import { log, status } from '../lib/progress.js';
import { ratio, round, since, summarize } from '../lib/stats.js';
import { goal, type BenchSizes, type ResultRow, type ScenarioResult } from '../lib/types.js';

/** A tenant of its own, so other scenarios' requests on the same server never enter the measured query. */
const TENANT = 'bench-listing';
/** The measured approver: in `finance` only, so `bench_pay` requests are theirs and `bench_change` ones are not. */
const APPROVER: WaitingApprover = { id: 'finance-approver', tenant: TENANT, groups: ['finance'] };
/** The page size asked, as the issue's goal states it. */
const PAGE = 50;

/** Two tools needing approval by different groups; everything else as the bench's own policy. */
const LISTING_POLICY = `
version: 1
tools:
  bench_pay:
    risk: high
    approval: finance_review
    allowed_roles: [agent_runtime]
  bench_change:
    risk: high
    approval: manager_review
    allowed_roles: [agent_runtime]
approvals:
  finance_review:
    groups: [finance]
    expires_after: 24h
  manager_review:
    groups: [manager]
    expires_after: 24h
manifest:
  bench_pay:
    run_as: svc-bench
    adapter: { type: code, handler: bench_work }
    args: { type: object, required: [n, text], properties: { n: { type: integer }, text: { type: string } } }
  bench_change:
    run_as: svc-bench
    adapter: { type: code, handler: bench_work }
    args: { type: object, required: [n, text], properties: { n: { type: integer }, text: { type: string } } }
`;

/** Counts the RPCs a Temporal client sends, per method, by wrapping its workflow service (restored by `restore`). */
class RpcCounter {
  readonly counts = new Map<string, number>();
  private readonly originals = new Map<string, unknown>();

  constructor(private readonly service: Record<string, unknown>) {
    for (const [name, impl] of Object.entries(service)) {
      if (typeof impl !== 'function') continue;
      this.originals.set(name, impl);
      service[name] = (...args: unknown[]) => {
        this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
        return (impl as (...a: unknown[]) => unknown)(...args);
      };
    }
  }

  /** Calls of `method` so far. */
  count(method: string): number {
    return this.counts.get(method) ?? 0;
  }

  reset(): void {
    this.counts.clear();
  }

  /** The counts as a plain object, for the results. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)));
  }

  restore(): void {
    for (const [name, impl] of this.originals) this.service[name] = impl;
  }
}

/** Runs `task(i)` for i in `indices` with at most `concurrency` at once. */
async function pool(indices: number[], concurrency: number, task: (i: number) => Promise<void>, label: string): Promise<void> {
  let next = 0;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (next < indices.length) {
      const i = indices[next++] as number;
      await task(i);
      done += 1;
      status(`${label}: ${done}/${indices.length}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, indices.length) }, lane));
}

/** Waits until `query` counts `expected` executions; throws with the tenant's other states after `timeoutMs`. */
async function waitForCount(client: Client, query: string, expected: number, timeoutMs: number, label: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { count } = await client.workflow.count(query);
    status(`${label}: ${count}/${expected}`);
    if (count === expected) return;
    if (count > expected) throw new Error(`${label}: ${count} executions match, expected ${expected}`);
    if (Date.now() > deadline) {
      const others = await client.workflow.count(`ToolgateTenant = '${TENANT}' AND ToolgateStatus != 'pending_approval'`);
      throw new Error(
        `${label}: only ${count}/${expected} after ${Math.round(timeoutMs / 1000)} s (${others.count} of the tenant's requests in another state)`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** What one listing answered: how many items, and whether each is a request the approver may decide. */
interface Answer {
  items: number;
  wrong: string[];
}

/** `GET /v1/approvals?limit=50` as the finance approver; throws unless 200. */
async function listOverHttp(api: BenchApi, token: string): Promise<Answer> {
  const response = await fetch(`${api.apiUrl}/v1/approvals?limit=${PAGE}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /v1/approvals answered ${response.status}: ${text.slice(0, 300)}`);
  const { items } = JSON.parse(text) as { items: { requestId: string; tool: string; eligibleGroups: string[] }[] };
  return {
    items: items.length,
    wrong: items.filter((item) => item.tool !== 'bench_pay' || !item.eligibleGroups.includes('finance')).map((item) => item.requestId),
  };
}

/** The same visibility query, straight to the server. */
async function listDirect(client: Client, query: string): Promise<Answer> {
  const response = await client.workflowService.listWorkflowExecutions({ namespace: client.options.namespace, query, pageSize: PAGE });
  const executions = response.executions ?? [];
  return { items: executions.length, wrong: executions.map((e) => e.execution?.workflowId ?? '').filter((id) => !id.includes('/pay-')) };
}

/** What the old way measured. */
interface OldWay {
  /** Complete listings (each until a page of eligible requests was found or every request was asked). */
  listingsMs: number[];
  /** Workflow queries sent and their total time, over all attempts (complete or cut short). */
  queries: number;
  queryMs: number;
  /** When the budget cut a listing short: how far it got and the projected time of a complete one. */
  cutShort?: { asked: number; of: number; projectedMs: number };
  found: number;
}

/**
 * The old way: every pending request of the tenant from visibility, then a status query to each
 * workflow (in visibility order, `concurrency` at once) until `PAGE` requests the approver may
 * decide are found. Needs a running worker.
 */
async function oldListing(
  client: Client,
  concurrency: number,
  budgetMs: number,
  onQuery: (ms: number) => void,
): Promise<{ ms: number; found: number; asked: number; of: number; complete: boolean }> {
  const t0 = performance.now();
  const ids: string[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.listWorkflowExecutions({
      namespace: client.options.namespace,
      query: `ToolgateStatus = 'pending_approval' AND ToolgateTenant = '${TENANT}' AND ExecutionStatus = 'Running'`,
      pageSize: 1000,
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    for (const e of page.executions ?? []) if (e.execution?.workflowId) ids.push(e.execution.workflowId);
    nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
  } while (nextPageToken);
  let found = 0;
  let asked = 0;
  for (let from = 0; from < ids.length && found < PAGE; from += concurrency) {
    if (since(t0) > budgetMs) return { ms: since(t0), found, asked, of: ids.length, complete: false };
    const statuses = await Promise.all(
      ids.slice(from, from + concurrency).map(async (id) => {
        const t = performance.now();
        const s: RequestStatus = await client.workflow.getHandle(id).query(statusQuery);
        onQuery(since(t));
        return s;
      }),
    );
    asked += statuses.length;
    for (const s of statuses) {
      const mayDecide =
        s.state === 'pending_approval' &&
        s.eligibleGroups.some((g) => APPROVER.groups.includes(g)) &&
        s.actor.id !== APPROVER.id &&
        !s.approvals.some((vote) => vote.digest === s.digest && vote.approverId === APPROVER.id);
      if (mayDecide) found += 1;
    }
    status(`old way: ${asked}/${ids.length} workflows asked, ${found} eligible`);
  }
  return { ms: since(t0), found, asked, of: ids.length, complete: true };
}

/** Scenario 7: see the file comment. */
export async function listingScenario(bench: BenchServer, sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  const { eligible, concurrency, warmup, iterations, budgetSeconds, oldIterations, oldBudgetSeconds } = sizes.listing;
  if (eligible > PAGE) throw new Error(`listing: eligible (${eligible}) must fit one page of ${PAGE}`);
  const run = Date.now().toString(36);
  const taskQueue = `bench-list-${run}`;
  const query = waitingQuery(APPROVER) as string;
  const { keys } = bench;
  let worker: Worker | undefined = await createToolgateWorker({
    connection: bench.nativeConnection,
    taskQueue,
    workflowBundle: bench.toolgateBundle,
    policy: PolicyStore.fromSources([{ file: 'bench-listing-policy.yaml', text: LISTING_POLICY }]),
    tools: benchTools(),
    notifier: { notify: async () => {} },
    logger: silentLogger(),
    trust: keys.trust,
  });
  let running: Promise<void> | undefined = worker.run();
  const stopWorker = async (): Promise<void> => {
    if (!worker) return;
    worker.shutdown();
    await running;
    worker = undefined;
    running = undefined;
  };
  let api: BenchApi | undefined;
  const counter = new RpcCounter(bench.client.workflowService as unknown as Record<string, unknown>);
  try {
    api = await startBenchApi(bench, taskQueue);
    const agentToken = await issueAgentToken(
      { sub: BENCH_ACTOR.id, tenant: TENANT, environment: BENCH_ENVIRONMENT, roles: BENCH_ACTOR.roles },
      { privateKeyPem: keys.identityPrivateKeyPem, ttlSeconds: 6 * 3600 },
    );
    const approverToken = await issueApproverToken(
      { sub: APPROVER.id, tenant: APPROVER.tenant, groups: [...APPROVER.groups] },
      { privateKeyPem: keys.identityPrivateKeyPem, ttlSeconds: 6 * 3600 },
    );
    const agent = new ToolGateway({ url: api.apiUrl, token: agentToken });

    // The population, through the front door: every `step`-th request is finance's (bench_pay), the rest manager's.
    // In chunks of at most 500, each waited for until it is pending: starting thousands at once floods the
    // worker (in this process, beside the front door) until its tasks time out and retry, and creation crawls.
    // Chunks stop when the next would end beyond the budget; every finance request is still created.
    const step = Math.floor(sizes.listing.n / eligible);
    const isFinance = (i: number): boolean => i % step === 0 && i / step < eligible;
    const requestIdOf = (i: number): string => (isFinance(i) ? `pay-${run}-${i}` : `chg-${run}-${i}`);
    const submit = async (i: number): Promise<void> => {
      await agent.start({ requestId: requestIdOf(i), tool: isFinance(i) ? 'bench_pay' : 'bench_change', args: { n: i, text: 'pending' } });
    };
    const pendingQuery = `ToolgateStatus = 'pending_approval' AND ToolgateTenant = '${TENANT}' AND ExecutionStatus = 'Running'`;
    const chunks = Math.max(1, Math.ceil(sizes.listing.n / 500));
    const t0 = performance.now();
    let created = 0;
    for (let c = 1; c <= chunks; c++) {
      const upTo = Math.round((sizes.listing.n * c) / chunks);
      await pool(
        Array.from({ length: upTo - created }, (_, k) => created + k),
        concurrency,
        submit,
        `listing: creating pending requests ${created}..${upTo}`,
      );
      created = upTo;
      await waitForCount(bench.client, pendingQuery, created, 10 * 60_000, 'listing: waiting for approval');
      // Fill the budget: stop when the next chunk, at the rate so far, would end beyond it.
      const nextEndsMs = (since(t0) / created) * Math.round((sizes.listing.n * (c + 1)) / chunks);
      if (c < chunks && nextEndsMs > budgetSeconds * 1000) {
        const missing = Array.from({ length: eligible }, (_, k) => k * step).filter((i) => i >= created);
        log(
          `  listing: stopping at ${created} of ${sizes.listing.n} requests (${(created / (since(t0) / 1000)).toFixed(1)} pending/s; the next chunk would end beyond the ${budgetSeconds} s budget); adding the ${missing.length} finance requests not yet created`,
        );
        await pool(missing, concurrency, submit, 'listing: creating the remaining finance requests');
        created += missing.length;
        await waitForCount(bench.client, pendingQuery, created, 10 * 60_000, 'listing: waiting for approval');
        break;
      }
      status(`listing: ${created} pending after ${(since(t0) / 1000).toFixed(0)} s`);
    }
    const n = created;
    await waitForCount(bench.client, query, eligible, 60_000, 'listing: waiting for finance');
    const createMs = since(t0);
    log(`  listing: ${n} requests waiting (${eligible} for finance) after ${(createMs / 1000).toFixed(1)} s`);

    // The old way, while the worker still runs (it needs one to answer queries).
    counter.reset();
    const old: OldWay = { listingsMs: [], queries: 0, queryMs: 0, found: 0 };
    const oldStart = performance.now();
    for (let k = 0; k < oldIterations; k++) {
      const remaining = oldBudgetSeconds * 1000 - since(oldStart);
      if (remaining <= 0) break;
      const listing = await oldListing(bench.client, 16, remaining, (ms) => {
        old.queries += 1;
        old.queryMs += ms;
      });
      old.found = listing.found;
      if (!listing.complete) {
        old.cutShort = { asked: listing.asked, of: listing.of, projectedMs: round((listing.ms / Math.max(1, listing.asked)) * listing.of) };
        break;
      }
      old.listingsMs.push(listing.ms);
      if (listing.found !== eligible) throw new Error(`old way found ${listing.found} requests for finance, expected ${eligible}`);
    }
    const oldWallMs = since(oldStart);
    // The counter must see what it is meant to prove absent later: one queryWorkflow per workflow asked.
    if (counter.count('queryWorkflow') !== old.queries || old.queries === 0) {
      throw new Error(`RPC counter saw ${counter.count('queryWorkflow')} queryWorkflow calls, the old way sent ${old.queries}`);
    }
    const oldRpc = counter.snapshot();

    // No workflow can answer anything from here on.
    await stopWorker();
    log('  listing: worker stopped; measuring toolgate and the direct visibility query');

    const tg: number[] = [];
    const direct: number[] = [];
    let fewestItems = Number.POSITIVE_INFINITY;
    const check = (system: string, answer: Answer): void => {
      if (answer.items !== eligible || answer.wrong.length > 0) {
        throw new Error(
          `${system} listed ${answer.items} requests (${answer.wrong.length} not finance's: ${answer.wrong.slice(0, 3).join(', ')}), expected the ${eligible} finance requests`,
        );
      }
    };
    for (let k = 0; k < warmup; k++) {
      check('toolgate', await listOverHttp(api, approverToken));
      check('direct query', await listDirect(bench.client, query));
    }
    counter.reset();
    for (let k = 0; k < iterations; k++) {
      // Alternate which goes first, so load drifts hit both alike.
      const order = k % 2 === 0 ? (['tg', 'direct'] as const) : (['direct', 'tg'] as const);
      for (const which of order) {
        const t = performance.now();
        if (which === 'tg') {
          const answer = await listOverHttp(api, approverToken);
          tg.push(since(t));
          fewestItems = Math.min(fewestItems, answer.items);
          check('toolgate', answer);
        } else {
          const answer = await listDirect(bench.client, query);
          direct.push(since(t));
          check('direct query', answer);
        }
      }
      status(`listing: ${k + 1}/${iterations} calls each`);
    }
    const rpc = counter.snapshot();
    const workflowQueries = counter.count('queryWorkflow');
    const otherRpcs = Object.entries(rpc).filter(([name]) => name !== 'listWorkflowExecutions');
    const listCalls = counter.count('listWorkflowExecutions');
    if (otherRpcs.length > 0 || listCalls !== 2 * iterations) {
      throw new Error(
        `while listing, the Temporal client sent ${JSON.stringify(rpc)}; expected only ${2 * iterations} listWorkflowExecutions (one per listing)`,
      );
    }

    // Each system's rate over its own time (the two alternate, so the shared wall time would halve both).
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    const t = summarize(tg, sum(tg));
    const d = summarize(direct, sum(direct));
    const oldSummary = old.listingsMs.length > 0 ? summarize(old.listingsMs, sum(old.listingsMs)) : undefined;
    const oldMs = oldSummary?.p95 ?? old.cutShort?.projectedMs ?? Number.NaN;
    const rows: ResultRow[] = [
      {
        system: 'toolgate (GET /v1/approvals?limit=50 over HTTP, worker stopped)',
        p50: t.p50,
        p95: t.p95,
        p99: t.p99,
        throughput: t.throughput,
        throughputUnit: 'listings/s (sequential)',
        ratio: ratio(t.p95, d.p95),
        note: `${eligible} items every call; ${iterations} calls; ${workflowQueries} workflow queries, ${listCalls / 2} listWorkflowExecutions per ${iterations} listings`,
        extra: { summary: t, fewestItems, rpc },
      },
      {
        system: 'direct visibility query (listWorkflowExecutions, same query)',
        p50: d.p50,
        p95: d.p95,
        p99: d.p99,
        throughput: d.throughput,
        throughputUnit: 'listings/s (sequential)',
        ratio: 1,
        note: `${eligible} executions every call`,
        extra: { summary: d, query },
      },
      {
        system: 'old way (all pending from visibility, then a status query per workflow)',
        ...(oldSummary ? { p50: oldSummary.p50, p95: oldSummary.p95, p99: oldSummary.p99 } : {}),
        throughput: round((old.queries * 1000) / oldWallMs),
        throughputUnit: 'workflow queries/s (16 at once, worker running)',
        ratio: ratio(oldMs, d.p95),
        note: old.cutShort
          ? `cut short by its ${oldBudgetSeconds} s budget after asking ${old.cutShort.asked} of ${old.cutShort.of} workflows (${old.found} eligible found); a complete listing projects to ${(old.cutShort.projectedMs / 1000).toFixed(1)} s`
          : `${old.listingsMs.length} complete listing(s), ${old.queries} workflow queries in all (${Math.round(old.queries / Math.max(1, old.listingsMs.length))} per listing)`,
        extra: {
          listingsMs: old.listingsMs.map(round),
          queries: old.queries,
          meanQueryMs: round(old.queryMs / Math.max(1, old.queries)),
          cutShort: old.cutShort,
          rpc: oldRpc,
        },
      },
    ];
    return {
      id: 7,
      name: `"Waiting for me" listing (N = ${n.toLocaleString('en-US')} pending, ${eligible} for the approver)`,
      baseline: 'the same visibility query sent straight to Temporal',
      ratioOf: 'p95 (old way: one complete listing, or its projection)',
      rows,
      goals: [
        goal('toolgate first page p95 (ms)', t.p95, '<', 250),
        goal('workflow queries while listing', workflowQueries, '<=', 0),
        goal('fewest items on a measured first page / requests the approver may decide', ratio(fewestItems, eligible), '>=', 1),
      ],
      notes: [
        ...(n < sizes.listing.n
          ? [`Ran with ${n} of the ${sizes.listing.n} pending requests asked: creating more did not fit the ${budgetSeconds} s budget on this machine.`]
          : []),
        `${n} requests created through the front door in ${(createMs / 1000).toFixed(1)} s; every ${step}th is a bench_pay request for group finance, the rest bench_change for group manager.`,
        `No workflow queries: the scenario's only worker was shut down before measuring, and the bench's Temporal client sent only ${JSON.stringify(rpc)} during the ${2 * iterations} measured listings (the same counter saw ${old.queries} queryWorkflow calls for the old way).`,
        `Every measured answer held exactly the ${eligible} finance requests (checked on each call, both systems). Listings are sequential, toolgate and direct alternating; the HTTP API runs in the bench process.`,
      ],
      durationMs: since(started),
    };
  } finally {
    counter.restore();
    await stopWorker();
    await api?.close();
  }
}
