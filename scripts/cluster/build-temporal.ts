// Builds the Temporal server the production-topology cluster runs (scripts/cluster/start.mjs,
// test/cluster/), from the Go module at the version the project pins, and its SQL schema tool:
//
//   .tools/temporal-server-v<pin>/bin/temporal-server     go.temporal.io/server/cmd/server@v<pin>
//   .tools/temporal-server-v<pin>/bin/temporal-sql-tool   go.temporal.io/server/cmd/tools/sql@v<pin>
//   .tools/temporal-server-v<pin>/schema/postgresql/v12/  the versioned SQL schema of that module
//
// The pin is the server inside the Temporal CLI the dev tests use (CLI 1.9.1 = server 1.32.0), so
// the cluster runs the same server code as `toolgate dev`, only on PostgreSQL and as separate
// services. The binaries are built like upstream's Makefile does (CGO_ENABLED=0, tag
// disable_grpc_modules) with `go install` and GOBIN, and reused when present and answering
// `--version` with the pin; the Go build cache makes a rebuild after `rm -rf .tools` cheap.
// If the module's go.mod needs a newer Go than the machine's, set GOTOOLCHAIN before running
// this (the go command then fetches that toolchain from the Go module proxy).
//
// Progress goes to stderr; the final line (the directory) goes to stdout. `--force` rebuilds.
// Run: `node --import tsx scripts/cluster/build-temporal.ts` (npm run cluster:build). No
// dependencies beyond Node's own modules: it runs before anything else is known to work.

import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SetupError, isExecutableFile, relativeTo, reportFailure, reportsVersion, runCommand, tail, tryVersion } from '../setup-lib.mjs';

export { SetupError };

/** The Temporal server version the project pins (the server of Temporal CLI 1.9.1). */
export const TEMPORAL_SERVER_VERSION = '1.32.0';
const MODULE = 'go.temporal.io/server';
const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The files of one built Temporal server. */
export interface TemporalServerPaths {
  /** `.tools/temporal-server-v<version>` */
  home: string;
  /** The server binary (`temporal-server start`). */
  server: string;
  /** The SQL schema tool (`temporal-sql-tool`). */
  sqlTool: string;
  /** The module's `schema/postgresql/v12` (holding `temporal/versioned` and `visibility/versioned`). */
  schemaDir: string;
}

/** Where the build puts everything, for a version. */
export function temporalServerHome(version = TEMPORAL_SERVER_VERSION, root = PROJECT_ROOT): TemporalServerPaths {
  const home = join(root, '.tools', `temporal-server-v${version}`);
  return {
    home,
    server: join(home, 'bin', 'temporal-server'),
    sqlTool: join(home, 'bin', 'temporal-sql-tool'),
    schemaDir: join(home, 'schema', 'postgresql', 'v12'),
  };
}

function progress(message: string): void {
  process.stderr.write(`toolgate cluster: ${message}\n`);
}

function rel(path: string): string {
  return relativeTo(PROJECT_ROOT, path);
}

/** `temporal-server --version` prints `temporal version 1.32.0`; anything else is not the pin. */
function serverAnswersPin(path: string, version: string): boolean {
  const answer = tryVersion(path, ({ stdout }) => stdout);
  return answer !== undefined && reportsVersion(answer, version);
}

/** Runs a command; its output is streamed to stderr (go prints its downloads) unless `echo` is false. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv, options: { echo?: boolean } = {}): Promise<string> {
  progress(`running \`${[command, ...args].join(' ')}\` ...`);
  return runCommand(command, args, { env, cwd: PROJECT_ROOT, echo: options.echo !== false, errorTail: 30 });
}

function goAvailable(): string | undefined {
  const r = spawnSync('go', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Builds (or reuses) the binaries and the schema copy; returns the paths. */
export async function buildTemporalServer({
  version = TEMPORAL_SERVER_VERSION,
  force = false,
}: { version?: string; force?: boolean } = {}): Promise<TemporalServerPaths> {
  const paths = temporalServerHome(version);
  const schemaReady = existsSync(join(paths.schemaDir, 'temporal', 'versioned')) && existsSync(join(paths.schemaDir, 'visibility', 'versioned'));
  if (!force && isExecutableFile(paths.sqlTool) && isExecutableFile(paths.server) && serverAnswersPin(paths.server, version) && schemaReady) {
    progress(`reusing ${rel(paths.home)} (Temporal server ${version}); --force rebuilds`);
    return paths;
  }
  const go = goAvailable();
  if (!go) throw new SetupError('`go` is not on PATH: the cluster builds the Temporal server from its Go module (install Go 1.26 or newer)');
  progress(`${go}; building Temporal server ${version} into ${rel(paths.home)} (the first build takes minutes) ...`);
  const started = Date.now();
  const gobin = join(paths.home, 'bin');
  mkdirSync(gobin, { recursive: true });
  // Upstream's release flags: a static binary without the optional gRPC modules.
  const env = { ...process.env, GOBIN: gobin, CGO_ENABLED: '0', GOFLAGS: [process.env.GOFLAGS, '-buildvcs=false'].filter(Boolean).join(' ') };
  const tags = ['-tags', 'disable_grpc_modules'];
  const binaries: [string, string][] = [
    [`${MODULE}/cmd/server`, paths.server],
    [`${MODULE}/cmd/tools/sql`, paths.sqlTool],
  ];
  for (const [pkg, name] of binaries) {
    const stepStarted = Date.now();
    await run('go', ['install', ...tags, `${pkg}@v${version}`], env);
    // `go install` names a binary after its package's directory (`server`, `sql`): give them upstream's names.
    const built = join(gobin, pkg.split('/').at(-1) ?? pkg);
    if (!isExecutableFile(built)) throw new SetupError(`go install ${pkg} succeeded but ${rel(built)} does not exist`);
    renameSync(built, name);
    progress(`built ${rel(name)} in ${((Date.now() - stepStarted) / 1000).toFixed(1)} s`);
  }
  if (!serverAnswersPin(paths.server, version)) throw new SetupError(`${rel(paths.server)} does not answer --version with ${version}`);

  // The schema ships in the module's source; the module cache holds it after the build.
  const dirOut = await run('go', ['mod', 'download', '-json', `${MODULE}@v${version}`], env, { echo: false });
  const moduleDir = (JSON.parse(dirOut.slice(dirOut.indexOf('{'))) as { Dir?: string }).Dir;
  if (!moduleDir) throw new SetupError(`go mod download printed no module directory:\n${tail(dirOut, 30)}`);
  const source = join(moduleDir, 'schema', 'postgresql', 'v12');
  if (!existsSync(join(source, 'temporal', 'versioned'))) throw new SetupError(`no PostgreSQL schema in the module at ${source}`);
  rmSync(paths.schemaDir, { recursive: true, force: true });
  mkdirSync(dirname(paths.schemaDir), { recursive: true });
  // The module cache is read-only; a copy keeps the cluster independent of the Go setup.
  cpSync(source, paths.schemaDir, { recursive: true });
  // The copy keeps the cache's read-only modes; make it ours, so a later --force can replace it.
  for (const entry of readdirSync(paths.schemaDir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    chmodSync(path, entry.isDirectory() ? 0o755 : 0o644);
  }
  chmodSync(paths.schemaDir, 0o755);
  progress(`copied the PostgreSQL schema to ${rel(paths.schemaDir)}`);
  progress(`built Temporal server ${version} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return paths;
}

// Run as a script (not when imported by start.mjs).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const paths = await buildTemporalServer({ force: process.argv.includes('--force') });
    process.stdout.write(`toolgate cluster: Temporal server ${TEMPORAL_SERVER_VERSION} in ${paths.home}\n`);
  } catch (err) {
    reportFailure('toolgate cluster', err);
  }
}
