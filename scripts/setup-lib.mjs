// What the setup scripts share (ensure-temporal.mjs, ensure-browser.mjs, cluster/build-temporal.ts):
// finding an executable, asking it for its version, running an installer, and ending with a
// message instead of a stack trace. Types: ./setup-lib.d.mts.
// Plain Node ESM, no dependencies, nothing newer than Node 20: `npm run setup` runs these scripts
// with the machine's own node, before anything else is known to work.

import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join, relative, resolve } from 'node:path';

const IS_WINDOWS = process.platform === 'win32';

/** Raised for any failure that should end the script with a message and a non-zero exit. */
export class SetupError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SetupError';
  }
}

/** The last `lines` lines of a program's output, for an error message. */
export function tail(text, lines = 20) {
  return String(text ?? '')
    .trim()
    .split('\n')
    .slice(-lines)
    .join('\n');
}

/** `path` relative to `root` when it is inside it (shorter messages), else as given. */
export function relativeTo(root, path) {
  const r = relative(root, path);
  return r && !r.startsWith('..') ? r : path;
}

/** Whether `path` is a file this process may execute (Windows has no execute bit: any file). */
export function isExecutableFile(path) {
  try {
    if (!statSync(path).isFile()) return false;
    if (!IS_WINDOWS) accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable file named `fileName` in a directory of PATH, or undefined. */
export function findOnPath(fileName) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, fileName);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Runs `<path> --version` and returns what `pick` makes of its answer (`{ path, stdout, stderr }`):
 * the version line, or a SetupError when the answer is not the expected program's. Throws with the
 * reason when the program does not run or exits non-zero.
 */
export function probeVersion(path, pick) {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 30_000, windowsHide: true });
  if (r.error) throw new SetupError(`${path} --version failed: ${r.error.message}`);
  if (r.status !== 0) throw new SetupError(`${path} --version exited with ${r.status ?? r.signal}: ${tail(r.stderr || r.stdout, 5)}`);
  return pick({ path, stdout: r.stdout || '', stderr: r.stderr || '' });
}

/** {@link probeVersion}, with undefined instead of an error: for candidates that may be passed over. */
export function tryVersion(path, pick) {
  try {
    return probeVersion(path, pick);
  } catch {
    return undefined;
  }
}

/**
 * The program a variable names (TEMPORAL_CLI_PATH, TOOLGATE_CHROMIUM_PATH) with its version line
 * (see {@link probeVersion}), or undefined when the variable is unset. Once set it must name a
 * working program: there is no fallback, and the error says `unsetHint` (what unsetting it does).
 */
export function programFromEnv(variable, pick, unsetHint) {
  const given = process.env[variable];
  if (!given) return undefined;
  const path = resolve(given);
  if (!isExecutableFile(path)) throw new SetupError(`${variable} is set to ${given}, but no executable file is there (${unsetHint})`);
  return { path, version: probeVersion(path, pick) };
}

/** Whether a `--version` answer names exactly `version` (`... version 1.9.1 ...`, not 1.9.10). */
export function reportsVersion(versionLine, version) {
  return new RegExp(`\\bversion ${version.replaceAll('.', '\\.')}\\b`).test(versionLine);
}

/**
 * Runs a command and resolves with its output (stdout and stderr, the last 100-200 kB). `echo`
 * streams the output to stderr as it comes. On failure it rejects with a SetupError naming the
 * command and, unless `errorTail` is 0 (the output was already shown), its last `errorTail` lines.
 * Other options go to `spawn` (`env`, `cwd`).
 */
export function runCommand(command, commandArgs, { echo = false, errorTail = 20, ...spawnOptions } = {}) {
  return new Promise((resolvePromise, reject) => {
    const display = [command, ...commandArgs].join(' ');
    let output = '';
    let child;
    try {
      child = spawn(command, commandArgs, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    } catch (err) {
      reject(new SetupError(`\`${display}\` could not start: ${err.message}`));
      return;
    }
    const collect = (chunk) => {
      output += chunk.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
      if (echo) process.stderr.write(chunk);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (err) => reject(new SetupError(`\`${display}\` could not start: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise(output);
      else reject(new SetupError(`\`${display}\` exited with ${code ?? signal}${errorTail > 0 ? `:\n${tail(output, errorTail)}` : ''}`));
    });
  });
}

/**
 * Ends a script that failed: its message (a SetupError's alone, anything else with its stack) on
 * stderr after `prefix`, and exit code 1 once the event loop is done.
 */
export function reportFailure(prefix, err) {
  process.stderr.write(`${prefix}: ${err instanceof SetupError ? err.message : String(err?.stack ?? err)}\n`);
  process.exitCode = 1;
}
