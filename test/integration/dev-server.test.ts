import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { requireTemporalCli, resolveTemporalCli, TemporalCliNotFound } from '../../src/temporal/cli.js';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server.js';

const SEARCH_ATTRIBUTES = ['ToolgateTool', 'ToolgateTenant', 'ToolgateActor', 'ToolgateRisk', 'ToolgateStatus'];
const SEARCH_ATTRIBUTE_ARGS = SEARCH_ATTRIBUTES.flatMap((name) => ['--search-attribute', `${name}=Keyword`]);

void describe('Temporal CLI resolution', () => {
  void it('requireTemporalCli throws TemporalCliNotFound when TEMPORAL_CLI_PATH points to a missing file', () => {
    const missing = join(tmpdir(), 'toolgate-no-such-dir', 'temporal');
    const env = { ...process.env, TEMPORAL_CLI_PATH: missing };
    assert.equal(resolveTemporalCli(undefined, env), undefined);
    assert.throws(
      () => requireTemporalCli(undefined, env),
      (err: unknown) =>
        err instanceof TemporalCliNotFound &&
        err.message.includes('TEMPORAL_CLI_PATH') &&
        err.message.includes('npm run setup') &&
        err.message.includes(missing),
    );
  });

  void it('requireTemporalCli reads TEMPORAL_CLI_PATH from process.env by default', () => {
    const saved = process.env.TEMPORAL_CLI_PATH;
    process.env.TEMPORAL_CLI_PATH = join(tmpdir(), 'toolgate-no-such-dir', 'temporal');
    try {
      assert.throws(() => requireTemporalCli(), TemporalCliNotFound);
    } finally {
      if (saved === undefined) delete process.env.TEMPORAL_CLI_PATH;
      else process.env.TEMPORAL_CLI_PATH = saved;
    }
  });
});

void describe('Temporal dev server on a SQLite file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'toolgate-dev-server-'));
  const dbFile = join(dir, 'nested', 'temporal.sqlite');
  const output: string[] = [];
  let server: DevServer | undefined;

  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (): Promise<DevServer> =>
    startDevServer({
      // Fails (never skips) when the binary cannot be found: run `npm run setup`.
      cliPath: requireTemporalCli(),
      dbFile,
      port: 0,
      ui: false,
      searchAttributes: SEARCH_ATTRIBUTE_ARGS,
      onOutput: (line) => output.push(line),
    });

  void it('keeps search attributes and a workflow execution across a restart', { timeout: 60_000 }, async () => {
    const workflowId = `nobody-polls-${Date.now()}`;

    server = await start();
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(server.uiUrl, undefined);
    {
      const connection = await Connection.connect({ address: server.address });
      try {
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
        for (const name of SEARCH_ATTRIBUTES) assert.ok(customAttributes && name in customAttributes, `${name} registered`);
        const client = new Client({ connection });
        const handle = await client.workflow.start('nobodyPolls', { taskQueue: 'nowhere', workflowId, args: [] });
        assert.equal((await handle.describe()).status.name, 'RUNNING');
      } finally {
        await connection.close();
      }
    }
    await server.stop();
    assert.ok((await server.exited) !== undefined);

    server = await start();
    {
      const connection = await Connection.connect({ address: server.address });
      try {
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
        for (const name of SEARCH_ATTRIBUTES) assert.ok(customAttributes && name in customAttributes, `${name} still registered`);
        const client = new Client({ connection });
        const description = await client.workflow.getHandle(workflowId).describe();
        assert.equal(description.workflowId, workflowId);
        assert.equal(description.type, 'nobodyPolls');
        assert.equal(description.taskQueue, 'nowhere');
        assert.equal(description.status.name, 'RUNNING');
      } finally {
        await connection.close();
      }
    }
    await server.stop();
    server = undefined;
  });

  void it('rejects with the server output when the server exits early', { timeout: 30_000 }, async () => {
    await assert.rejects(
      startDevServer({
        cliPath: requireTemporalCli(),
        port: 0,
        ui: false,
        searchAttributes: ['--search-attribute', 'Broken=NoSuchType'],
      }),
      (err: unknown) => err instanceof Error && err.name === 'DevServerStartError' && /exited/.test(err.message),
    );
  });
});
