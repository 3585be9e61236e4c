/**
 * Terminal and process hygiene of the real CLI:
 * - a Ctrl-C in a terminal (one SIGINT to the whole process group) stops `toolgate dev`,
 *   `toolgate worker` and `toolgate api` gracefully, with exit code 0 and no error output, and
 *   leaves no Temporal server behind;
 * - workers, APIs and CLI commands refuse to start without the deployment's payload key instead of
 *   making up one of their own; only `toolgate dev` creates it, named by its fingerprint;
 * - `toolgate dev` prints an `export` line when it runs off the default ports or state directory,
 *   a ready sign-in command with the inbox URL, and the review link of each request that starts
 *   waiting for approval (and how it ended), with no webhook configured.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { ToolGateway } from '../../src/client/index.js';
import { defaultKeyringFile, keyFingerprint, parseKeyringFile } from '../../src/codec/index.js';
import { devExportLine } from '../../src/temporal/dev-server.js';
import { callApi, findFreePort, localTokens, REPO_ROOT, until } from '../helpers/processes.js';

/** A toolgate process in a process group of its own, as a terminal runs a foreground command. */
interface GroupProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnInGroup(args: string[], env: NodeJS.ProcessEnv): GroupProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, TOOLGATE_CODEC_KEYS: '', TOOLGATE_CODEC_KEYS_FILE: '', TOOLGATE_WEBHOOKS: '', TOOLGATE_APPROVERS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor(proc: GroupProcess, pattern: RegExp, timeoutMs: number, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(stream === 'stdout' ? proc.stdout() : proc.stderr());
    if (match) return match;
    if (proc.child.exitCode !== null || proc.child.signalCode !== null)
      throw new Error(`exited before printing ${pattern}:\n${proc.stdout()}\n${proc.stderr()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${proc.stdout().slice(-3000)}\n${proc.stderr().slice(-3000)}`);
    await sleep(100);
  }
}

/** Sends one SIGINT to the process group, as Ctrl-C in a terminal does; resolves with how it ended and how long it took. */
async function ctrlC(proc: GroupProcess, timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const started = Date.now();
  process.kill(-proc.child.pid!, 'SIGINT');
  const ended = await Promise.race([proc.exited, sleep(timeoutMs, undefined)]);
  if (!ended) {
    process.kill(-proc.child.pid!, 'SIGKILL');
    throw new Error(`still running ${timeoutMs} ms after Ctrl-C:\n${proc.stderr().slice(-3000)}`);
  }
  return { ...ended, ms: Date.now() - started };
}

/** Error output: anything on stderr that is not a JSON log line below level warn (40). */
function errorOutput(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => {
      try {
        return (JSON.parse(line) as { level?: number }).level! >= 40;
      } catch {
        return true;
      }
    });
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('terminal and process hygiene', { timeout: 300_000 }, () => {
  const groups: GroupProcess[] = [];
  const dirs: string[] = [];
  const track = (proc: GroupProcess): GroupProcess => (groups.push(proc), proc);
  const tempDir = async (name: string): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), `toolgate-${name}-`));
    dirs.push(dir);
    return dir;
  };

  after(async () => {
    for (const proc of groups) {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        try {
          process.kill(-proc.child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  test('worker, API and history-reading commands refuse to start without the payload key, and create none', async () => {
    const stateDir = await tempDir('nokeys');
    const keyFile = defaultKeyringFile(stateDir);
    // Nothing listens there: a command that got past its keys would fail differently (or hang).
    const env = { TOOLGATE_STATE_DIR: stateDir, TEMPORAL_ADDRESS: `127.0.0.1:${await findFreePort()}`, TOOLGATE_API_PORT: String(await findFreePort()) };
    const commands = [['worker'], ['api'], ['kill-switch', '--list'], ['audit', 'show', 'some-request', '--tenant', 'acme']];
    await Promise.all(
      commands.map(async (args) => {
        const proc = track(spawnInGroup(args, env));
        const ended = await Promise.race([proc.exited, sleep(60_000, undefined)]);
        assert.ok(ended, `toolgate ${args.join(' ')} did not exit`);
        assert.equal(ended.code, 1, `toolgate ${args.join(' ')} exits 1:\n${proc.stderr()}`);
        for (const named of ['TOOLGATE_CODEC_KEYS ', 'TOOLGATE_CODEC_KEYS_FILE', keyFile, 'toolgate keys init']) {
          assert.ok(proc.stderr().includes(named), `toolgate ${args.join(' ')} names ${named}:\n${proc.stderr()}`);
        }
      }),
    );
    await assert.rejects(stat(keyFile), /ENOENT/, 'no command created a key of its own');
  });

  test('toolgate dev: export line, sign-in command, review links of waiting requests; Ctrl-C stops dev, worker and API with exit 0', async () => {
    const stateDir = await tempDir('dev');
    const [port, uiPort, apiPort] = [await findFreePort(), await findFreePort(), await findFreePort()];
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const env = { TOOLGATE_STATE_DIR: stateDir, TOOLGATE_API_PORT: String(apiPort), TOOLGATE_LOG_LEVEL: 'info' };
    const dev = track(spawnInGroup(['dev', '--port', String(port), '--ui-port', String(uiPort)], env));
    await waitFor(dev, /Press Ctrl-C to stop/, 120_000);

    // Off the default ports and state directory: one line for another terminal to paste.
    const exportLine = /^ {2}export (.*)$/m.exec(dev.stdout())?.[1];
    assert.ok(exportLine, `no export line:\n${dev.stdout()}`);
    assert.deepEqual(Object.fromEntries(exportLine.split(' ').map((pair) => pair.split('=') as [string, string])), {
      TOOLGATE_URL: apiUrl,
      TOOLGATE_API_PORT: String(apiPort),
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
      TOOLGATE_STATE_DIR: stateDir,
    });
    assert.ok(dev.stdout().includes(`open ${apiUrl}/inbox/ and sign in`), 'the inbox URL is printed');
    assert.match(dev.stdout(), /sign in with the approver token from:\n {2}npx toolgate token issue --sub alice --groups manager --tenant acme\n/);

    // dev created the payload key, named by its fingerprint.
    const keyring = parseKeyringFile(await readFile(defaultKeyringFile(stateDir), 'utf8'), 'codec-keys.json');
    assert.match(keyring.current, /^k-[0-9a-f]{16}$/);
    assert.equal(keyring.current, keyFingerprint(keyring.keys[keyring.current]!));

    // A request that waits for approval: its review link (the inbox page) is printed, no webhook needed.
    const tokens = await localTokens(stateDir);
    const agent = new ToolGateway({
      url: apiUrl,
      token: await tokens.agent({ sub: 'support-bot', tenant: 'acme', environment: 'production', roles: ['agent_runtime'] }),
    });
    const requestId = `hygiene-${Date.now()}`;
    const handle = await agent.start({
      requestId,
      tool: 'create_ticket',
      args: { title: 'ACME: checkout outage', body: 'Customers cannot pay.', priority: 'urgent', customer_id: 'cus_4821' },
      reason: 'customer reported an outage',
    });
    const line = (await waitFor(dev, new RegExp(`^toolgate: approval needed: create_ticket .*$`, 'm'), 60_000))[0];
    assert.ok(line.includes(' · tenant acme · requested by support-bot · groups manager'), line);
    assert.ok(line.endsWith(` · review ${apiUrl}/inbox/requests/${requestId}`), line);
    assert.ok(!line.includes('/v1/links/'), 'a terminal gets no decision link');

    // Approve it as the banner says (an approver token of the local issuer); the outcome is printed too.
    const alice = await tokens.approver({ sub: 'alice', tenant: 'acme', groups: ['manager'] });
    const review = await callApi(apiUrl, 'GET', `/v1/approvals/${requestId}`, { token: alice });
    assert.equal(review.status, 200, JSON.stringify(review.body));
    const decided = await callApi(apiUrl, 'POST', `/v1/approvals/${requestId}/decision`, {
      token: alice,
      body: { decision: 'approve', digest: review.body.digest },
    });
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
    assert.equal((await handle.outcome()).status, 'completed');
    await waitFor(dev, new RegExp(`^toolgate: request ${requestId} \\(create_ticket, tenant acme, requested by support-bot\\) completed`, 'm'), 30_000);

    // `toolgate worker` and `toolgate api` on the same deployment (dev's keys and Temporal), each in its own terminal.
    const clientEnv = { TOOLGATE_STATE_DIR: stateDir, TEMPORAL_ADDRESS: `127.0.0.1:${port}`, TOOLGATE_LOG_LEVEL: 'info' };
    const worker = track(spawnInGroup(['worker'], { ...clientEnv, TOOLGATE_API_PORT: String(apiPort) }));
    const secondApiPort = await findFreePort();
    const api = track(spawnInGroup(['api'], { ...clientEnv, TOOLGATE_API_PORT: String(secondApiPort) }));
    await waitFor(worker, /"msg":"worker running"/, 90_000, 'stderr');
    await until('the second API', 60_000, async () => ((await fetch(`http://127.0.0.1:${secondApiPort}/healthz`)).ok ? true : undefined));
    for (const [name, proc] of [
      ['worker', worker],
      ['api', api],
    ] as const) {
      const ended = await ctrlC(proc);
      assert.deepEqual([ended.code, ended.signal], [0, null], `${name} exits 0 on Ctrl-C:\n${proc.stderr().slice(-3000)}`);
      assert.deepEqual(errorOutput(proc.stderr()), [], `${name} prints no error`);
      assert.match(proc.stderr(), /"msg":"stopped"/);
    }

    const ended = await ctrlC(dev);
    assert.deepEqual([ended.code, ended.signal], [0, null], `dev exits 0 on Ctrl-C:\n${dev.stderr().slice(-3000)}`);
    assert.deepEqual(errorOutput(dev.stderr()), [], 'dev prints no error');
    assert.match(dev.stderr(), /"msg":"stopped"/);
    // The Temporal server went with it (frontend and UI ports closed), and the API too.
    for (const closed of [port, uiPort, apiPort]) assert.equal(await portOpen(closed), false, `port ${closed} is closed`);
  });

  test('a Ctrl-C while toolgate dev is still starting stops it with exit 0, and no Temporal server is left', async () => {
    const stateDir = await tempDir('early');
    const [port, uiPort, apiPort] = [await findFreePort(), await findFreePort(), await findFreePort()];
    const dev = track(
      spawnInGroup(['dev', '--port', String(port), '--ui-port', String(uiPort)], {
        TOOLGATE_STATE_DIR: stateDir,
        TOOLGATE_API_PORT: String(apiPort),
        TOOLGATE_LOG_LEVEL: 'info',
      }),
    );
    // Its signal handling is in place once it creates keys; the Temporal server is starting then.
    await waitFor(dev, /"msg":"created the payload encryption key"/, 60_000, 'stderr');
    const ended = await ctrlC(dev, 60_000);
    assert.deepEqual([ended.code, ended.signal], [0, null], `dev exits 0:\n${dev.stderr().slice(-3000)}`);
    assert.deepEqual(errorOutput(dev.stderr()), []);
    assert.ok(!dev.stdout().includes('Press Ctrl-C to stop'), 'no banner after the Ctrl-C');
    for (const closed of [port, uiPort, apiPort]) assert.equal(await portOpen(closed), false, `port ${closed} is closed`);
  });

  test('the export line: none at the defaults; every setting another terminal needs otherwise, quoted for the shell', () => {
    const cwd = '/home/dev/project';
    const defaults = {
      publicUrl: 'http://127.0.0.1:8787',
      apiHost: '127.0.0.1',
      apiPort: 8787,
      publicUrlSet: false,
      temporalAddress: '127.0.0.1:7233',
      port: 7233,
      uiPort: 8233,
      stateDir: '/home/dev/project/.toolgate',
    };
    assert.equal(devExportLine(defaults, cwd), undefined);
    assert.equal(
      devExportLine({ ...defaults, stateDir: '/tmp/my state' }, cwd),
      "export TOOLGATE_URL=http://127.0.0.1:8787 TOOLGATE_API_PORT=8787 TEMPORAL_ADDRESS=127.0.0.1:7233 TOOLGATE_STATE_DIR='/tmp/my state'",
    );
    assert.match(devExportLine({ ...defaults, port: 7300, temporalAddress: '127.0.0.1:7300' }, cwd)!, / TEMPORAL_ADDRESS=127\.0\.0\.1:7300 /);
    assert.match(devExportLine({ ...defaults, uiPort: 9000 }, cwd)!, /^export TOOLGATE_URL=/);
    assert.equal(
      devExportLine({ ...defaults, apiPort: 9999, publicUrl: 'https://gate.example', publicUrlSet: true }, cwd),
      'export TOOLGATE_URL=https://gate.example TOOLGATE_API_PORT=9999 TOOLGATE_PUBLIC_URL=https://gate.example TEMPORAL_ADDRESS=127.0.0.1:7233 TOOLGATE_STATE_DIR=/home/dev/project/.toolgate',
    );
  });
});
