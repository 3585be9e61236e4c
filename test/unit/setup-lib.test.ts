/**
 * What the setup scripts share (scripts/setup-lib.mjs): finding executables, reading `--version`
 * answers, running installers, and the messages a failure ends with. The scripts themselves run
 * before anything else works, so these parts are checked here, with real processes.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as setup from '../../scripts/setup-lib.mjs';

const dir = mkdtempSync(join(tmpdir(), 'toolgate-setup-lib-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A shell script at `dir/<name>` (executable unless `mode` says otherwise). */
function script(name: string, body: string, mode = 0o755): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, mode);
  return path;
}

const firstLine = ({ stdout }: { stdout: string }) => stdout.trim().split('\n')[0] ?? '';

describe('setup-lib: finding programs', () => {
  test('isExecutableFile: an executable file yes; a plain file, a directory or nothing no', () => {
    assert.equal(setup.isExecutableFile(script('runs', 'exit 0')), true);
    assert.equal(setup.isExecutableFile(script('plain', 'exit 0', 0o644)), false);
    assert.equal(setup.isExecutableFile(dir), false);
    assert.equal(setup.isExecutableFile(join(dir, 'missing')), false);
  });

  test('findOnPath: the first executable of that name in PATH, skipping non-executable ones', () => {
    const first = mkdtempSync(join(dir, 'a-'));
    const second = mkdtempSync(join(dir, 'b-'));
    writeFileSync(join(first, 'tool'), 'not executable');
    writeFileSync(join(second, 'tool'), '#!/bin/sh\n');
    chmodSync(join(second, 'tool'), 0o755);
    const saved = process.env.PATH;
    process.env.PATH = ['', first, second].join(':');
    try {
      assert.equal(setup.findOnPath('tool'), join(second, 'tool'));
      assert.equal(setup.findOnPath('no-such-tool'), undefined);
    } finally {
      process.env.PATH = saved;
    }
  });

  test('relativeTo: inside the root relative, outside as given', () => {
    assert.equal(setup.relativeTo('/p', '/p/.tools/venv'), '.tools/venv');
    assert.equal(setup.relativeTo('/p', '/elsewhere/bin'), '/elsewhere/bin');
  });
});

describe('setup-lib: --version answers', () => {
  test('probeVersion returns what pick makes of the answer; pick sees the path and both streams', () => {
    const path = script('answers', 'echo noise >&2; echo "tool version 1.9.1 (Server 1.32.0)"; echo more');
    assert.equal(setup.probeVersion(path, firstLine), 'tool version 1.9.1 (Server 1.32.0)');
    assert.deepEqual(
      setup.probeVersion(path, (answer) => JSON.stringify(answer)),
      JSON.stringify({ path, stdout: 'tool version 1.9.1 (Server 1.32.0)\nmore\n', stderr: 'noise\n' }),
    );
  });

  test('a program that exits non-zero or does not start is a SetupError naming it; tryVersion says undefined', () => {
    const failing = script('fails', 'echo line1 >&2; echo broken >&2; exit 3');
    assert.throws(
      () => setup.probeVersion(failing, firstLine),
      (err: unknown) => err instanceof setup.SetupError && err.message === `${failing} --version exited with 3: line1\nbroken`,
    );
    assert.throws(
      () => setup.probeVersion(join(dir, 'missing'), firstLine),
      (err: unknown) => err instanceof setup.SetupError && /--version failed: /.test(err.message),
    );
    assert.equal(setup.tryVersion(failing, firstLine), undefined);
    assert.equal(
      setup.tryVersion(script('other', 'echo other'), () => {
        throw new setup.SetupError('not ours');
      }),
      undefined,
    );
  });

  test('programFromEnv: unset is undefined; set, it must name a working program, with no fallback', () => {
    const variable = 'TOOLGATE_SETUP_LIB_TEST_PATH';
    const path = script('named', 'echo "named version 2.0.0"');
    try {
      delete process.env[variable];
      assert.equal(setup.programFromEnv(variable, firstLine, 'unset it to search'), undefined);
      process.env[variable] = path;
      assert.deepEqual(setup.programFromEnv(variable, firstLine, 'unset it to search'), { path, version: 'named version 2.0.0' });
      process.env[variable] = join(dir, 'missing');
      assert.throws(
        () => setup.programFromEnv(variable, firstLine, 'unset it to search'),
        (err: unknown) =>
          err instanceof setup.SetupError &&
          err.message === `${variable} is set to ${join(dir, 'missing')}, but no executable file is there (unset it to search)`,
      );
    } finally {
      delete process.env[variable];
    }
  });

  test('reportsVersion matches the exact version only', () => {
    assert.equal(setup.reportsVersion('temporal version 1.9.1 (Server 1.32.0)', '1.9.1'), true);
    assert.equal(setup.reportsVersion('temporal version 1.9.10', '1.9.1'), false);
    assert.equal(setup.reportsVersion('temporal version 1x9x1', '1.9.1'), false);
    assert.equal(setup.reportsVersion('Server 1.9.1', '1.9.1'), false);
  });
});

describe('setup-lib: running commands', () => {
  test('resolves with stdout and stderr together; passes env and cwd', async () => {
    const output = await setup.runCommand('/bin/sh', ['-c', 'echo "$GREETING from $(pwd)"; echo err >&2'], {
      env: { ...process.env, GREETING: 'hello' },
      cwd: dir,
    });
    assert.match(output, new RegExp(`^hello from ${dir}\\n`));
    assert.match(output, /err\n/);
  });

  test('a failure names the command and quotes the last errorTail lines of its output, none with errorTail 0', async () => {
    const body = 'for i in 1 2 3 4 5; do echo "line $i"; done; exit 2';
    await assert.rejects(setup.runCommand('/bin/sh', ['-c', body], { errorTail: 2 }), (err: unknown) => {
      return err instanceof setup.SetupError && err.message === `\`/bin/sh -c ${body}\` exited with 2:\nline 4\nline 5`;
    });
    await assert.rejects(setup.runCommand('/bin/sh', ['-c', body], { errorTail: 0 }), (err: unknown) => {
      return err instanceof setup.SetupError && err.message === `\`/bin/sh -c ${body}\` exited with 2`;
    });
  });

  test('a command that cannot start is a SetupError', async () => {
    await assert.rejects(
      setup.runCommand(join(dir, 'missing'), []),
      (err: unknown) => err instanceof setup.SetupError && /could not start: /.test(err.message),
    );
  });

  test('tail keeps the last lines, trimmed', () => {
    assert.equal(setup.tail('\na\nb\nc\n\n', 2), 'b\nc');
    assert.equal(setup.tail(undefined), '');
  });
});
