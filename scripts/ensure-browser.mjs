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

import { SetupError, findOnPath, isExecutableFile, programFromEnv, reportFailure, runCommand, tail, tryVersion } from './setup-lib.mjs';

const DEBIAN_PACKAGE = 'chromium';
const FALLBACK_PATH = '/usr/bin/chromium';
const INSTALL_HINT =
  'Install Chromium from your system packages (Debian/Ubuntu: `sudo apt-get install -y chromium`), ' +
  'or point TOOLGATE_CHROMIUM_PATH at an existing Chromium or Chrome binary.';

function progress(message) {
  process.stderr.write(`toolgate: ${message}\n`);
}

/**
 * The version line of a Chromium's `--version` answer: the line naming Chromium/Chrome. Debian's
 * /usr/bin/chromium is a shell wrapper that may print noise on stderr first, so the version line
 * is looked for in stdout rather than taken as the first line of everything.
 */
function chromiumVersionLine({ path, stdout, stderr }) {
  const line = stdout
    .split('\n')
    .find((l) => /chrom/i.test(l))
    ?.trim();
  if (!line) throw new SetupError(`${path} --version printed no Chromium version: ${tail(stdout || stderr, 5)}`);
  return line;
}

/** Runs a command with its output streamed to stderr (apt's progress is the progress); throws on failure. */
async function run(command, commandArgs, env = process.env) {
  progress(`running \`${[command, ...commandArgs].join(' ')}\` ...`);
  // The output is on the screen already: the error need not repeat it.
  await runCommand(command, commandArgs, { env, echo: true, errorTail: 0 });
}

/** The first usable Chromium of the search order, or undefined. */
function findChromium() {
  for (const name of ['chromium', 'chromium-browser']) {
    const onPath = findOnPath(name);
    if (!onPath) continue;
    const version = tryVersion(onPath, chromiumVersionLine);
    if (version) return { path: onPath, version };
    progress(`ignoring ${onPath}: it does not answer --version`);
  }
  if (isExecutableFile(FALLBACK_PATH)) {
    const version = tryVersion(FALLBACK_PATH, chromiumVersionLine);
    if (version) return { path: FALLBACK_PATH, version };
    progress(`ignoring ${FALLBACK_PATH}: it does not answer --version`);
  }
  return undefined;
}

/** Returns { path, version } of a usable Chromium, installing Debian's package when none is found and we may. */
async function ensure() {
  const fromEnv = programFromEnv('TOOLGATE_CHROMIUM_PATH', chromiumVersionLine, "unset it to use the system's chromium");
  if (fromEnv) return fromEnv;

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
  reportFailure('toolgate', err);
}
