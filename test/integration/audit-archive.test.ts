/**
 * Retention and the audit archive on a real Temporal server: the archiver (`runArchiver`, what
 * `toolgate archiver` and `toolgate dev` run) creates the `toolgate-audit-archive` Schedule with
 * the configured interval, overlap SKIP and the `auditArchive` workflow on the `toolgate-audit`
 * queue, warns when the retention is too short for the interval, and archives closed requests as
 * soon as it starts; after a workflow execution is deleted (what retention does), `audit show`
 * finds the request in the archive, saying so, and prints the record it printed from the history;
 * another run adds only what closed since, linked to the last segment; `audit verify` passes on
 * the directory and fails after a byte is changed. And the dev server gets the retention it is
 * given (`startDevServer({ retention })`, as `toolgate dev` starts it).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Connection, ScheduleOverlapPolicy, WorkflowNotFoundError, type ScheduleHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ArchiveRunSummary } from '../../activities/archive.js';
import { ARCHIVE_SCHEDULE_ID, ARCHIVE_TASK_QUEUE, ARCHIVE_WORKFLOW_TYPE } from '../../src/audit/archive-schedule.js';
import { listArchive, type ArchivedRequest } from '../../src/audit/archive-segments.js';
import { temporalArchiveSource } from '../../src/audit/archive-source.js';
import { verifyArchive } from '../../src/audit/archive-verify.js';
import { ensureAuditKeyPair, loadAuditPublicKeys } from '../../src/audit/keys.js';
import { buildAuditRecordOfWorkflow } from '../../src/audit/record.js';
import { formatAuditRecord } from '../../src/audit/record-format.js';
import { defaultAuditKeyFiles } from '../../src/cli/audit-key-files.js';
import { showRequest } from '../../src/cli/audit-show.js';
import { ensureArchiveSchedule, runArchiver } from '../../src/cli/archiver-commands.js';
import { defaultKeyringFile, formatKeyringFile } from '../../src/codec/index.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import type { ToolRequestInput } from '../../src/shared/index.js';
import { requireTemporalCli } from '../../src/temporal/cli.js';
import { namespaceRetentionMs, setNamespaceRetention, startDevServer } from '../../src/temporal/dev-server.js';
import { eventually, startGateway, startTemporal, testKeyring, type GatewayEnv } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { runToolgate as toolgate } from '../helpers/processes.js';

const POLICY = policy()
  .tool('note_write')
  .tool('prod_db_write', { risk: 'critical', roles: [] })
  .codeTool('note_write', { runAs: 'svc-notes', args: argsOf({ n: 'number' }) })
  .codeTool('prod_db_write', { runAs: 'svc-db', args: argsOf() })
  .yaml();

const bot = { id: 'archive-bot', type: 'agent' as const, roles: ['agent_runtime'] };
let seq = 0;
const request = (tool: string, args: Record<string, unknown> = {}): ToolRequestInput => {
  seq += 1;
  return { requestId: `arch-${process.pid}-${Date.now()}-${seq}`, actor: bot, tenant: 'acme', environment: 'production', tool, args };
};

const DAY = 86_400_000;

describe('audit archive on a real Temporal server', { timeout: 300_000 }, () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  let stateDir: string;
  let archiveDir: string;
  let logs = '';
  const stop = new AbortController();
  let archiver: Promise<void> | undefined;
  let schedule: ScheduleHandle;
  const closed: { workflowId: string; requestId: string }[] = [];
  const cliEnv = (): NodeJS.ProcessEnv => ({
    TEMPORAL_ADDRESS: env.address,
    TOOLGATE_STATE_DIR: stateDir,
    TOOLGATE_AUDIT_ARCHIVE_DIR: archiveDir,
    TOOLGATE_LOG_LEVEL: 'warn',
  });
  // Thirteen hours: twice that is more than the one-day retention set below, so the archiver must warn.
  const INTERVAL = '13h';

  /**
   * The summary of the newest action of the schedule once its workflow has finished, after
   * `previous` (a run id: two triggers in one second start workflows of the same id).
   */
  async function nextRun(previous?: string): Promise<{ runId: string; workflowId: string; summary: ArchiveRunSummary }> {
    let seen = '';
    const action = await eventually(
      async () => {
        const info = (await schedule.describe()).info;
        seen = JSON.stringify(info.recentActions.map((a) => a.action.workflow));
        const last = info.recentActions.at(-1);
        return last && last.action.workflow.firstExecutionRunId !== previous ? last.action.workflow : undefined;
      },
      'a new action of the archival schedule',
      30_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message} (after ${previous ?? 'none'}; recent actions ${seen})`);
    });
    const summary = await env.client.workflow.getHandle<() => Promise<ArchiveRunSummary>>(action.workflowId, action.firstExecutionRunId).result();
    return { runId: action.firstExecutionRunId, workflowId: action.workflowId, summary };
  }

  async function archivedEntries(): Promise<ArchivedRequest[]> {
    const entries: ArchivedRequest[] = [];
    for (const segment of (await listArchive(archiveDir)).segments) {
      for (const line of (await readFile(segment.path, 'utf8')).trimEnd().split('\n')) {
        const value = JSON.parse(line) as { seq?: number; record?: ArchivedRequest };
        if (typeof value.seq === 'number') entries.push(value.record!);
      }
    }
    return entries;
  }

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'toolgate-archive-'));
    archiveDir = join(stateDir, 'audit-archive');
    // The state directory of an archiver: the deployment's codec keys and the audit key pair.
    await mkdir(join(stateDir, 'keys'), { recursive: true, mode: 0o700 });
    await writeFile(defaultKeyringFile(stateDir), formatKeyringFile(testKeyring), { mode: 0o600 });
    await ensureAuditKeyPair(defaultAuditKeyFiles(stateDir));
    env = await startTemporal();
    gw = await startGateway(env, {
      taskQueue: `audit-archive-${process.pid}`,
      policy: POLICY,
      tools: { note_write: async ({ args }) => ({ written: args.n }) },
    });
  });
  after(async () => {
    stop.abort();
    await archiver;
    await gw?.close();
    await env?.teardown();
    await rm(stateDir, { recursive: true, force: true });
  });

  test('requests run to completion and the archiver, at its start, archives them under its schedule', async () => {
    for (let i = 0; i < 5; i++) {
      const handle = await gw.gateway.start(request('note_write', { n: i }));
      assert.equal((await handle.outcome()).status, 'completed');
      closed.push({ workflowId: handle.workflowId, requestId: handle.requestId });
    }
    const denied = await gw.gateway.start(request('prod_db_write'));
    assert.equal((await denied.outcome()).status, 'denied');
    closed.push({ workflowId: denied.workflowId, requestId: denied.requestId });
    // Visibility lists a close shortly after it happens; the archiver runs without lag here.
    await eventually(
      async () =>
        (await env.client.workflow.count(`WorkflowType = 'toolRequest' AND ExecutionStatus != 'Running'`)).count === closed.length ? true : undefined,
      'visibility to list every closed request',
    );

    // The namespace retention, explicit: one day, which is less than two 13-hour intervals.
    await setNamespaceRetention(env.connection, 'default', '1d');
    assert.equal(await namespaceRetentionMs(env.connection, 'default'), DAY);

    const config = loadConfig({ TEMPORAL_ADDRESS: env.address, TOOLGATE_STATE_DIR: stateDir, TOOLGATE_AUDIT_ARCHIVE_INTERVAL: INTERVAL });
    assert.equal(config.auditArchiveDir, archiveDir);
    const sink = new Writable({ write: (chunk: Buffer, _e, cb) => ((logs += chunk.toString()), cb()) });
    archiver = runArchiver(config, createLogger('archiver-test', 'info', sink), stop.signal, { lagMs: 0 });
    schedule = env.client.schedule.getHandle(ARCHIVE_SCHEDULE_ID);

    const first = await nextRun();
    assert.match(first.workflowId, new RegExp(`^${ARCHIVE_SCHEDULE_ID}-`));
    assert.equal(first.summary.records, closed.length);
    assert.equal(first.summary.gaps, 0);
    assert.equal(first.summary.segments.length, 1);
    const entries = await archivedEntries();
    assert.deepEqual(entries.map((e) => e.workflowId).sort(), closed.map((c) => c.workflowId).sort());
    for (const e of entries) assert.equal(e.record?.workflowId, e.workflowId);
    assert.equal(entries.find((e) => e.workflowId === closed[5]!.workflowId)?.record?.status, 'denied');
    assert.ok(
      entries.every((e, i) => i === 0 || entries[i - 1]!.closedAt <= e.closedAt),
      'sorted by close time',
    );

    // The schedule, as created: interval from the config, overlap SKIP, the archival workflow on its own queue.
    const description = await schedule.describe();
    assert.deepEqual(
      description.spec.intervals?.map((i) => [i.every, i.offset ?? 0]),
      [[13 * 3600_000, 0]],
    );
    assert.equal(description.policies.overlap, ScheduleOverlapPolicy.SKIP);
    assert.equal(description.policies.catchupWindow, 26 * 3600_000);
    assert.equal(description.action.type, 'startWorkflow');
    assert.equal(description.action.workflowType, ARCHIVE_WORKFLOW_TYPE);
    assert.equal(description.action.taskQueue, ARCHIVE_TASK_QUEUE);
    assert.deepEqual(description.action.args, [{ lagMs: 0 }]);
    assert.equal(description.state.paused, false);

    // The warning: a request closed right after a run could be deleted before the run after next.
    assert.match(logs, /"level":40[^\n]*namespace retention \(1440 min\) is shorter than twice the archive interval plus the lag \(1560 min\)/);
    assert.match(logs, /audit archiver running/);
  });

  test('after its execution is deleted (as retention does), audit show finds the request in the archive and prints the same record', async () => {
    const target = closed[2]!;
    const fromHistory = await buildAuditRecordOfWorkflow(env.client, target.workflowId);
    const run = await env.client.workflow.getHandle(target.workflowId).describe();
    await env.client.workflowService.deleteWorkflowExecution({ namespace: 'default', workflowExecution: { workflowId: target.workflowId, runId: run.runId } });
    // The server deletes asynchronously (about 20 s on the dev server).
    await eventually(
      () =>
        env.client.workflow
          .getHandle(target.workflowId)
          .describe()
          .then(
            () => undefined,
            (err: unknown) => (err instanceof WorkflowNotFoundError ? true : undefined),
          ),
      'the execution to be deleted',
      90_000,
    );

    // A history already gone when read is a gap, not an error.
    assert.deepEqual(
      await temporalArchiveSource(env.client)
        .build({ workflowId: target.workflowId, runId: run.runId, closedAtMs: Date.now(), execution: 'COMPLETED' })
        .then((b) => ('gap' in b ? b.gap.code : 'record')),
      'history_gone',
    );

    const publicKeys = () => loadAuditPublicKeys([defaultAuditKeyFiles(stateDir).publicKeyFile]);
    let out = '';
    let err = '';
    const code = await showRequest(env.client, target.workflowId, { json: false, archiveDir, publicKeys }, { out: (t) => (out += t), err: (t) => (err += t) });
    assert.equal(code, 0, err);
    const [provenance, ...rest] = out.split('\n');
    assert.match(
      provenance!,
      new RegExp(
        `^from the audit archive ${archiveDir}: segment-00000000\\.jsonl, record seq \\d+, closed .*; the workflow history is gone; segment chain verified \\(${closed.length} records, key [0-9a-f]{16}\\)$`,
      ),
    );
    assert.equal(rest.join('\n'), `\n${formatAuditRecord(fromHistory)}`, 'the archived record is the one the history gave');

    // As JSON: the record itself on stdout, where it came from on stderr.
    let json = '';
    let note = '';
    assert.equal(
      await showRequest(env.client, target.workflowId, { json: true, archiveDir, publicKeys }, { out: (t) => (json += t), err: (t) => (note += t) }),
      0,
    );
    assert.deepEqual(JSON.parse(json), JSON.parse(JSON.stringify(fromHistory)));
    assert.match(note, /from the audit archive/);

    // The real command: `toolgate audit show <request> --tenant acme`, archive and key from the state directory.
    const cli = await toolgate(['audit', 'show', target.requestId, '--tenant', 'acme'], cliEnv());
    assert.equal(cli.code, 0, cli.err);
    assert.match(cli.out, /^from the audit archive .*segment-00000000\.jsonl.*segment chain verified/);
    assert.ok(cli.out.includes(formatAuditRecord(fromHistory)));

    // A request that never existed is still an error, not an archive hit.
    await assert.rejects(
      showRequest(env.client, 'toolreq/acme/never-was', { json: false, archiveDir, publicKeys }, { out: () => {}, err: () => {} }),
      /does not hold it/,
    );
  });

  test('archiving again adds only what closed since, linked to the last segment: no duplicates', async () => {
    const before = await archivedEntries();
    const previous = (await schedule.describe()).info.recentActions.at(-1)?.action.workflow.firstExecutionRunId;
    await schedule.trigger();
    const idle = await nextRun(previous);
    assert.equal(idle.summary.records, 0, 'nothing closed since');
    assert.deepEqual(idle.summary.segments, []);
    assert.deepEqual(await archivedEntries(), before);

    const late = await gw.gateway.start(request('note_write', { n: 99 }));
    assert.equal((await late.outcome()).status, 'completed');
    await eventually(
      async () => ((await env.client.workflow.count(`WorkflowId = '${late.workflowId}' AND ExecutionStatus != 'Running'`)).count === 1 ? true : undefined),
      'visibility to list the late request',
    );
    await schedule.trigger();
    const next = await nextRun(idle.runId);
    assert.equal(next.summary.records, 1);
    assert.deepEqual(next.summary.segments, ['segment-00000001.jsonl']);
    const afterRuns = await archivedEntries();
    assert.equal(afterRuns.length, closed.length + 1);
    assert.equal(new Set(afterRuns.map((e) => `${e.workflowId}/${e.runId}`)).size, afterRuns.length, 'each request once');
    assert.equal(afterRuns.at(-1)?.workflowId, late.workflowId);
  });

  test('audit verify passes on the archive directory, and fails after one byte is changed', async () => {
    const verified = await verifyArchive(archiveDir, [await readFile(defaultAuditKeyFiles(stateDir).publicKeyFile, 'utf8')]);
    assert.deepEqual(verified.faults, []);
    assert.deepEqual([verified.segments, verified.records], [2, closed.length + 1]);

    const ok = await toolgate(['audit', 'verify', archiveDir], cliEnv());
    assert.equal(ok.code, 0, ok.out + ok.err);
    assert.match(ok.out, new RegExp(`^ok: archive of 2 segments, ${closed.length + 1} requests \\(0 archived without a record\\)`));
    assert.match(ok.out, /head: segment-00000001\.jsonl sha256 [0-9a-f]{64}/);

    const first = join(archiveDir, 'segment-00000000.jsonl');
    const text = await readFile(first, 'utf8');
    await writeFile(first, text.replace('"status":"completed"', '"status":"c0mpleted"'));
    const bad = await toolgate(['audit', 'verify', archiveDir], cliEnv());
    assert.equal(bad.code, 1, bad.out + bad.err);
    assert.match(bad.out, /^FAILED: 2 fault\(s\)/);
    assert.match(bad.out, /segment-00000000\.jsonl: hash does not match the record \(line \d+, record seq \d+\)/);
    assert.match(bad.out, /segment-00000001\.jsonl: broken link/);
    // The archiver refuses to extend an archive whose last segment does not verify; the first one is only caught by verify.
    await writeFile(first, text);
  });

  test('throughput: 100 more requests archived from real histories in one run, the archive still verifies', async (t) => {
    const COUNT = 100;
    const ids: string[] = [];
    for (let i = 0; i < COUNT; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, (_, j) => gw.gateway.start(request('note_write', { n: i + j }))));
      for (const handle of batch) assert.equal((await handle.outcome()).status, 'completed');
      ids.push(...batch.map((h) => h.workflowId));
    }
    const total = closed.length + 1 + COUNT;
    await eventually(
      async () => ((await env.client.workflow.count(`WorkflowType = 'toolRequest' AND ExecutionStatus != 'Running'`)).count === total - 1 ? true : undefined),
      'visibility to list the new requests',
      30_000,
    );
    const previous = (await schedule.describe()).info.recentActions.at(-1)?.action.workflow.firstExecutionRunId;
    await schedule.trigger();
    const { summary } = await nextRun(previous);
    t.diagnostic(
      `archive: ${summary.records} requests from their histories in ${summary.seconds.toFixed(2)} s = ${Math.round(summary.records / summary.seconds)} records/s (fetch, decrypt, build, sign, fsync)`,
    );
    assert.equal(summary.records, COUNT);
    assert.equal(summary.gaps, 0);
    const verified = await verifyArchive(archiveDir, await loadAuditPublicKeys([defaultAuditKeyFiles(stateDir).publicKeyFile]));
    assert.deepEqual([verified.ok, verified.segments, verified.records], [true, 3, total]);
  });

  test('the schedule is ensured idempotently: a second start updates it in place', async () => {
    const again = await ensureArchiveSchedule(env.client, { intervalMs: 6 * 3600_000, lagMs: 0 });
    assert.equal(again.created, false);
    const description = await again.handle.describe();
    assert.deepEqual(
      description.spec.intervals?.map((i) => [i.every, i.offset ?? 0]),
      [[6 * 3600_000, 0]],
    );
    assert.equal(description.policies.overlap, ScheduleOverlapPolicy.SKIP);
    const listed: string[] = [];
    for await (const s of env.client.schedule.list()) listed.push(s.scheduleId);
    assert.deepEqual(
      listed.filter((id) => id === ARCHIVE_SCHEDULE_ID),
      [ARCHIVE_SCHEDULE_ID],
      'one schedule, not two',
    );
  });
});

describe('dev server retention', { timeout: 120_000 }, () => {
  test('startDevServer({ retention }) sets the namespace retention, as toolgate dev starts it', async () => {
    const server = await startDevServer({ cliPath: requireTemporalCli(), port: 0, ui: false, searchAttributes: [], retention: '45d' });
    try {
      const connection = await Connection.connect({ address: server.address });
      try {
        const description = await connection.workflowService.describeNamespace({ namespace: 'default' });
        assert.equal(Number(description.config?.workflowExecutionRetentionTtl?.seconds), 45 * 86_400);
        assert.equal(await namespaceRetentionMs(connection, 'default'), 45 * DAY);
      } finally {
        await connection.close();
      }
    } finally {
      await server.stop();
    }
  });
});
