#!/usr/bin/env node
// Ensures a Chromium for the browser tests (test/browser/), from the operating system's packages only.
//
// Search order (the same as test/helpers/browser.ts):
//   1. TOOLGATE_CHROMIUM_PATH, if set (it must exist and answer `--version`; no fallback otherwise)
//   2. `chromium` or `chromium-browser` on PATH
//   3. /usr/bin/chromium
// If none is usable and this runs as root on a machine with apt-get, it installs Debian's `chromium`
// package (`apt-get update` once, then `apt-get install -y chromium`). It never downloads a browser
// from anywhere else (no `playwright install`): CI and developers reach only the package registries.
// Otherwise it exits non-zero and says how to install one.
//
// Progress goes to stderr; the final line (path and version) goes to stdout.
// Plain Node ESM, no dependencies: it runs before anything else is known to work.

import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

const DEBIAN_PACKAGE = 'chromium';
const FALLBACK_PATH = '/usr/bin/chromium';
const INSTALL_HINT =
  'Install Chromium from your system packages (Debian/Ubuntu: `sudo apt-get install -y chromium`), ' +
  'or point TOOLGATE_CHROMIUM_PATH at an existing Chromium or Chrome binary.';

/** Raised for any failure that should end the script with a message and a non-zero exit. */
class SetupError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SetupError';
  }
}

function progress(message) {
  process.stderr.write(`toolgate: ${message}\n`);
}

function isExecutableFile(path) {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function tail(text, lines = 20) {
  return String(text ?? '')
    .trim()
    .split('\n')
    .slice(-lines)
    .join('\n');
}

/**
 * Runs `<path> --version`; returns the line naming Chromium/Chrome, or throws with the reason.
 * Debian's /usr/bin/chromium is a shell wrapper that may print noise on stderr first, so the
 * version line is looked for in stdout rather than taken as the first line of everything.
 */
function probeVersion(path) {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new SetupError(`${path} --version failed: ${r.error.message}`);
  if (r.status !== 0) throw new SetupError(`${path} --version exited with ${r.status ?? r.signal}: ${tail(r.stderr || r.stdout, 5)}`);
  const line = (r.stdout || '')
    .split('\n')
    .find((l) => /chrom/i.test(l))
    ?.trim();
  if (!line) throw new SetupError(`${path} --version printed no Chromium version: ${tail(r.stdout || r.stderr, 5)}`);
  return line;
}

function tryVersion(path) {
  try {
    return probeVersion(path);
  } catch {
    return undefined;
  }
}

function findOnPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Runs a command with its output streamed to stderr (apt's progress is the progress); throws on failure. */
function run(command, commandArgs, env = process.env) {
  return new Promise((resolvePromise, reject) => {
    const display = [command, ...commandArgs].join(' ');
    progress(`running \`${display}\` ...`);
    const child = spawn(command, commandArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk) => process.stderr.write(chunk));
    child.stderr.on('data', (chunk) => process.stderr.write(chunk));
    child.on('error', (err) => reject(new SetupError(`\`${display}\` could not start: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new SetupError(`\`${display}\` exited with ${code ?? signal}`));
    });
  });
}

/** The first usable Chromium of the search order, or undefined. */
function findChromium() {
  for (const name of ['chromium', 'chromium-browser']) {
    const onPath = findOnPath(name);
    if (!onPath) continue;
    const version = tryVersion(onPath);
    if (version) return { path: onPath, version };
    progress(`ignoring ${onPath}: it does not answer --version`);
  }
  if (isExecutableFile(FALLBACK_PATH)) {
    const version = tryVersion(FALLBACK_PATH);
    if (version) return { path: FALLBACK_PATH, version };
    progress(`ignoring ${FALLBACK_PATH}: it does not answer --version`);
  }
  return undefined;
}

/** Returns { path, version } of a usable Chromium, installing Debian's package when none is found and we may. */
async function ensure() {
  const fromEnv = process.env.TOOLGATE_CHROMIUM_PATH;
  if (fromEnv) {
    const path = resolve(fromEnv);
    if (!isExecutableFile(path)) {
      throw new SetupError(`TOOLGATE_CHROMIUM_PATH is set to ${fromEnv}, but no executable file is there (unset it to use the system's chromium)`);
    }
    return { path, version: probeVersion(path) };
  }

  const found = findChromium();
  if (found) return found;

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const aptGet = findOnPath('apt-get');
  if (!isRoot || !aptGet) {
    throw new SetupError(
      `no Chromium found (looked for TOOLGATE_CHROMIUM_PATH, chromium and chromium-browser on PATH, ${FALLBACK_PATH})` +
        `${!aptGet ? '; apt-get is not available here' : '; not root, so it is not installed automatically'}.\n${INSTALL_HINT}`,
    );
  }

  const started = Date.now();
  progress(`no Chromium found; installing Debian's \`${DEBIAN_PACKAGE}\` package with apt-get ...`);
  // Non-interactive: CI has no standard input, and a debconf prompt would hang the run.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run(aptGet, ['update'], env);
  await run(aptGet, ['install', '-y', DEBIAN_PACKAGE], env);
  const installed = findChromium();
  if (!installed) throw new SetupError(`apt-get installed ${DEBIAN_PACKAGE}, but no usable Chromium is found afterwards.\n${INSTALL_HINT}`);
  progress(`installed ${DEBIAN_PACKAGE} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return installed;
}

try {
  const { path, version } = await ensure();
  process.stdout.write(`toolgate: Chromium ${path} (${version})\n`);
} catch (err) {
  process.stderr.write(`toolgate: ${err instanceof SetupError ? err.message : (err?.stack ?? err)}\n`);
  process.exitCode = 1;
}
