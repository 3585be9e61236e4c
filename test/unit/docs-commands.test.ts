/**
 * Every command in the documentation is run: by this test, or by the test the documentation names.
 * Each fenced shell block (```sh, bash, shell or console) of README.md, CONTRIBUTING.md,
 * bench/README.md and docs/*.md carries one mark after its language (CONTRIBUTING.md, "Commands in
 * the docs", is the convention's reference):
 *
 * - ```` ```sh runnable ````: this test runs the block with bash (`-e`, `pipefail`; a command that
 *   fails inside `$(...)` fails the block too) in a fresh workspace: its own HOME, TOOLGATE_STATE_DIR
 *   and TMPDIR, a copy of the repository's sources and policies (node_modules linked), stdin closed, no
 *   network but loopback (a network namespace where the system allows one), a time limit. `toolgate`
 *   and `npx toolgate` are the repository's CLI (bin/toolgate.mjs on the pinned Node), `npx tsx` the
 *   repository's tsx; `npm` and any other `npx` package fail, so nothing installs or downloads. The
 *   block must exit 0 and, when an HTML comment `<!-- expect-output: text -->` follows the block
 *   (invisible on the rendered page), print that text: a command that quietly did nothing fails.
 * - ```` ```sh covered-by=<file>[,<file>] ````: repository-relative files (tests, or `.ci/run`) that run
 *   these commands. They must exist and, together, name every command of the block: each
 *   `toolgate <sub> [<sub>]` (as that phrase or as quoted arguments, `'policy', 'replay'`), each
 *   `npm run <script>`/`npm start`/`npm test` (or the file that script runs, from package.json),
 *   each `tsx`/`node <file>`, and each route a `curl` calls (its first two path segments). Every
 *   `--flag` given to a toolgate command must be an option that command's `--help` lists, and every
 *   `npm run` script must exist.
 *
 * A block with neither mark, or with words the check does not know, fails the check.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { DOCS_ROOT as ROOT, docPages, fencedBlocks } from '../helpers/markdown.js';

/** The info-string languages of shell blocks. */
const SHELL_LANGUAGES = new Set(['sh', 'bash', 'shell', 'console']);
/** How long one runnable block may take: a handful of CLI starts (about 2 s each) on a busy 2-core machine. */
const BLOCK_TIMEOUT_MS = 120_000;
/**
 * What a runnable block's workspace copies from the repository (about 2.5 MB): commands may edit
 * them (`manifest sign`, `tools pin` write policy files), and a script run by path must see its own
 * path (a symlinked `bench/audit-chain.ts` would not recognise itself as the main module and exit 0
 * having done nothing).
 */
const COPIED_ENTRIES = ['policies', 'src', 'bench', 'scripts', 'workflows', 'activities', 'package.json', 'tsconfig.json'];
/** What it links instead: read-only, and too big to copy per block. */
const LINKED_ENTRIES = ['node_modules'];

/** A fenced shell block of a page and its mark. */
interface ShellBlock {
  readonly page: string;
  readonly line: number;
  readonly lang: string;
  readonly body: string;
  readonly runnable: boolean;
  /** The files of `covered-by=`, repository-relative; empty when absent. */
  readonly coveredBy: string[];
  /** Words of the info string that are neither mark (typos must not pass as unmarked-but-fine). */
  readonly unknownWords: string[];
  /** What a runnable block must print: the `<!-- expect-output: text -->` comment right after it, if any. */
  readonly expectOutput: string | undefined;
}

/** The shell blocks of a page, with their marks parsed from the info string. */
function shellBlocks(page: string, markdown: string): ShellBlock[] {
  const out: ShellBlock[] = [];
  const lines = markdown.split('\n');
  for (const block of fencedBlocks(markdown)) {
    const [lang = '', ...words] = block.info.split(/\s+/).filter(Boolean);
    if (!SHELL_LANGUAGES.has(lang)) continue;
    let runnable = false;
    const coveredBy: string[] = [];
    const unknownWords: string[] = [];
    for (const word of words) {
      const covered = /^covered-by=(.*)$/.exec(word);
      if (word === 'runnable') runnable = true;
      else if (covered) coveredBy.push(...covered[1]!.split(',').filter(Boolean));
      else unknownWords.push(word);
    }
    const next = lines.slice(block.endLine).find((text) => text.trim() !== '');
    const expectOutput = next === undefined ? undefined : /^\s*<!--\s*expect-output:\s*(.*?)\s*-->\s*$/.exec(next)?.[1];
    out.push({ page, line: block.line, lang, body: block.body, runnable, coveredBy, unknownWords, expectOutput });
  }
  return out;
}

/**
 * The block's commands as one text, as a shell reads them: comments dropped (an unquoted `#` at
 * the start of a word), line continuations joined; quotes are kept. A console block contributes
 * only its `$ ` lines.
 */
function commandText(block: Pick<ShellBlock, 'lang' | 'body'>): string {
  const source =
    block.lang === 'console'
      ? block.body
          .split('\n')
          .filter((line) => line.startsWith('$ '))
          .map((line) => line.slice(2))
          .join('\n')
      : block.body;
  let out = '';
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (quote === "'") {
      out += c;
      if (c === "'") quote = null;
    } else if (c === '\\' && i + 1 < source.length) {
      out += source[i + 1] === '\n' ? ' ' : c + source[i + 1]!;
      i++;
    } else if (quote === '"') {
      out += c;
      if (c === '"') quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
      out += c;
    } else if (c === '#' && (i === 0 || /\s/.test(source[i - 1]!))) {
      while (i + 1 < source.length && source[i + 1] !== '\n') i++;
    } else {
      out += c;
    }
  }
  return out;
}

/** Where the simple command that starts at `start` ends: the first unquoted newline, `;`, `&`, `|` or `)`. */
function commandEnd(text: string, start: number): number {
  let quote: string | null = null;
  for (let i = start; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if ('\n;&|)'.includes(c)) {
      return i;
    }
  }
  return text.length;
}

/** A `toolgate` command of a block: its subcommand words (at most two) and the long options it passes. */
interface ToolgateInvocation {
  readonly words: string[];
  readonly flags: string[];
}

/** Every `toolgate ...` (or `npx toolgate ...`) command in a block's command text. */
function toolgateInvocations(text: string): ToolgateInvocation[] {
  const out: ToolgateInvocation[] = [];
  for (const match of text.matchAll(/(?<![\w./=-])toolgate(?=[ \t])/g)) {
    const start = match.index + match[0].length;
    const segment = text.slice(start, commandEnd(text, start));
    const words: string[] = [];
    for (const token of segment.trim().split(/\s+/)) {
      if (words.length === 2 || !/^[a-z][a-z0-9-]*$/.test(token)) break;
      words.push(token);
    }
    const flags = [...segment.matchAll(/(?<=^|[\s[])--[a-z][a-z0-9-]*/g)].map((m) => m[0]);
    out.push({ words, flags: [...new Set(flags)] });
  }
  return out;
}

/** One command of a covered block that the covering files must name, and the ways they may name it. */
interface CommandKey {
  readonly text: string;
  readonly patterns: RegExp[];
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The words as quoted arguments of an argv array: `'policy', 'replay'`. */
const argvPattern = (words: string[]): RegExp => new RegExp(words.map((word) => `['"\`]${escapeRegExp(word)}['"\`]`).join('\\s*,\\s*'));

/** The first repository script a package.json script runs (`tsx bench/run.ts` → bench/run.ts), if any. */
function scriptTarget(command: string | undefined): string | undefined {
  return command === undefined ? undefined : /(?<![\w./*-])([\w.-]+\/[\w./-]*\.(?:ts|mts|mjs|js))(?![\w./*-])/.exec(command)?.[1];
}

/** The commands of a block a covering file must name (see the file comment for the forms accepted). */
function commandKeys(text: string, scripts: Record<string, string>): CommandKey[] {
  const keys: CommandKey[] = [];
  for (const { words } of toolgateInvocations(text)) {
    const phrase = new RegExp(`toolgate${words.map((word) => `\\s+${escapeRegExp(word)}`).join('')}(?![\\w-])`);
    keys.push({ text: ['toolgate', ...words].join(' '), patterns: words.length > 0 ? [phrase, argvPattern(words)] : [phrase] });
  }
  for (const match of text.matchAll(/(?<![\w.-])npm\s+(?:run(?:-script)?\s+([\w:.-]+)|(start|test)(?![\w:-]))/g)) {
    const script = (match[1] ?? match[2])!;
    const patterns = [new RegExp(`npm\\s+run\\s+${escapeRegExp(script)}(?![\\w:-])`), argvPattern(['run', script])];
    if (match[2] !== undefined) patterns.push(new RegExp(`npm\\s+${script}(?![\\w:-])`));
    const target = scriptTarget(scripts[script]);
    if (target !== undefined) patterns.push(new RegExp(escapeRegExp(target)));
    keys.push({ text: match[1] !== undefined ? `npm run ${script}` : `npm ${script}`, patterns });
  }
  for (const match of text.matchAll(/(?<![\w./-])(?:tsx|node)\s+(?:-\S+\s+(?:tsx\s+)?)*([\w.-]+\/[\w./-]*\.(?:ts|mts|mjs|js))(?![\w./-])/g)) {
    keys.push({ text: match[1]!, patterns: [new RegExp(escapeRegExp(match[1]!))] });
  }
  for (const match of text.matchAll(/(?<![\w./-])curl(?=\s)/g)) {
    const segment = text.slice(match.index, commandEnd(text, match.index));
    for (const url of segment.matchAll(/https?:\/\/[^\s'"/]+(\/[^\s'"?#]*)/g)) {
      const route = `/${url[1]!.split('/').filter(Boolean).slice(0, 2).join('/')}`;
      if (route !== '/') keys.push({ text: `curl ${route}`, patterns: [new RegExp(escapeRegExp(route))] });
    }
  }
  const unique = new Map<string, CommandKey>();
  for (const key of keys) if (!unique.has(key.text)) unique.set(key.text, key);
  return [...unique.values()];
}

/** What the mark check reads: repository files, package.json's scripts, and a toolgate command's `--help`. */
interface CheckContext {
  read(path: string): string | undefined;
  readonly scripts: Record<string, string>;
  /** The `--help` output of `toolgate <words>`; undefined when the CLI refuses it. */
  help(words: string[]): Promise<string | undefined>;
}

/** The problems of one page's shell blocks: marks, covering files, the commands they name, toolgate options. */
async function markProblems(page: string, markdown: string, context: CheckContext): Promise<string[]> {
  const problems: string[] = [];
  for (const block of shellBlocks(page, markdown)) {
    const where = `${page}:${block.line}`;
    for (const word of block.unknownWords) problems.push(`${where}: unknown word "${word}" in the info string (use runnable or covered-by=<file>)`);
    if (block.runnable && block.coveredBy.length > 0) problems.push(`${where}: both runnable and covered-by: pick one`);
    if (!block.runnable && block.coveredBy.length === 0) problems.push(`${where}: a ${block.lang} block that is neither runnable nor covered-by=<test file>`);
    if (block.runnable && block.lang === 'console') problems.push(`${where}: a console block shows output; write the commands as an sh block to run them`);
    if (!block.runnable && block.expectOutput !== undefined) problems.push(`${where}: expect-output after a block that is not runnable`);
    if (block.coveredBy.length === 0) continue;
    const texts: string[] = [];
    for (const file of block.coveredBy) {
      const text = relative(ROOT, resolve(ROOT, file)).startsWith('..') ? undefined : context.read(file);
      if (text === undefined) problems.push(`${where}: covered-by ${file} does not exist`);
      else texts.push(text);
    }
    const commands = commandText(block);
    const keys = commandKeys(commands, context.scripts);
    if (keys.length === 0)
      problems.push(`${where}: covered-by, but it names no command this check can find (toolgate, npm, tsx/node <file>, curl <url>): make it runnable`);
    if (texts.length === block.coveredBy.length) {
      for (const key of keys) {
        if (!texts.some((text) => key.patterns.some((pattern) => pattern.test(text)))) {
          problems.push(`${where}: ${key.text} is not named by ${block.coveredBy.join(', ')}`);
        }
      }
    }
    for (const match of commands.matchAll(/(?<![\w.-])npm\s+run(?:-script)?\s+([\w:.-]+)/g)) {
      if (context.scripts[match[1]!] === undefined) problems.push(`${where}: npm run ${match[1]}: package.json has no such script`);
    }
    for (const { words, flags } of toolgateInvocations(commands)) {
      const command = ['toolgate', ...words].join(' ');
      const help = await context.help(words);
      if (help === undefined || !new RegExp(`^Usage: ${escapeRegExp(command)}(?:\\s|$)`, 'm').test(help)) {
        problems.push(`${where}: ${command} is not a toolgate command`);
        continue;
      }
      const known = new Set(help.match(/--[a-z][a-z0-9-]*/g) ?? []);
      for (const flag of flags) if (!known.has(flag)) problems.push(`${where}: ${command} has no option ${flag}`);
    }
  }
  return problems;
}

/** Reads a repository file as text; undefined when it is absent or a directory. */
function readRepoFile(path: string): string | undefined {
  const full = join(ROOT, path);
  if (!existsSync(full) || !statSync(full).isFile()) return undefined;
  return readFileSync(full, 'utf8');
}

const helpCache = new Map<string, Promise<string | undefined>>();

/** `toolgate <words> --help` from the real CLI (once per command), on the pinned Node this test runs on. */
function cliHelp(words: string[]): Promise<string | undefined> {
  const key = words.join(' ');
  let help = helpCache.get(key);
  if (help === undefined) {
    help = new Promise((resolveHelp) => {
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'toolgate.mjs'), ...words, '--help'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
      child.on('close', (code) => resolveHelp(code === 0 ? out : undefined));
    });
    helpCache.set(key, help);
  }
  return help;
}

/** How a runnable block ended. */
interface BlockRun {
  readonly code: number | null;
  readonly timedOut: boolean;
  /** Commands that failed, as bash's ERR trap saw them (also inside `$(...)`, whose failure `export X=$(...)` would hide). */
  readonly failed: string[];
  /** stdout and stderr, interleaved (the last 200 000 characters). */
  readonly output: string;
  readonly ms: number;
}

/** Whether a block run counts as passing: exit 0 within its time, no command failed anywhere, the expected text printed. */
const passed = (run: BlockRun, expectOutput?: string): boolean =>
  run.code === 0 && !run.timedOut && run.failed.length === 0 && (expectOutput === undefined || run.output.includes(expectOutput));

/** Whether this system lets an unprivileged process have its own network namespace (loopback only). */
const NETWORK_NAMESPACE = spawnSync('unshare', ['-rn', 'true'], { stdio: 'ignore' }).status === 0;

/** Runs bash on `scriptFile`, inside a fresh network namespace with loopback up when the system allows one. */
function blockCommand(scriptFile: string): [string, string[]] {
  const bash = ['bash', '--noprofile', '--norc', scriptFile];
  if (!NETWORK_NAMESPACE) return [bash[0]!, bash.slice(1)];
  return ['unshare', ['-rn', '--', 'sh', '-c', 'ip link set lo up 2>/dev/null; exec "$@"', 'sh', ...bash]];
}

/** The block's script: bash strictness and an ERR trap that records every failing command, then the block as written. */
function blockScript(body: string): string {
  return ['set -eE -o pipefail', 'shopt -s inherit_errexit', `trap 'printf "%s\\n" "$BASH_COMMAND" >> "$DOCS_BLOCK_ERRORS"' ERR`, body, ''].join('\n');
}

/** Writes an executable shim script. */
function shim(path: string, script: string): void {
  writeFileSync(path, script);
  chmodSync(path, 0o755);
}

/** Runs a block's commands in a fresh workspace (see the file comment) and removes the workspace afterwards. */
async function runBlock(body: string, options: { timeoutMs?: number } = {}): Promise<BlockRun> {
  const base = mkdtempSync(join(tmpdir(), 'toolgate-docs-block-'));
  try {
    const [home, state, temp, bin, work] = ['home', 'state', 'tmp', 'bin', 'work'].map((name) => join(base, name)) as [string, string, string, string, string];
    for (const dir of [home, state, temp, bin, work]) mkdirSync(dir);
    const node = JSON.stringify(process.execPath);
    shim(join(bin, 'toolgate'), `#!/bin/sh\nexec ${node} ${JSON.stringify(join(ROOT, 'bin', 'toolgate.mjs'))} "$@"\n`);
    shim(
      join(bin, 'npx'),
      [
        '#!/bin/sh',
        'case "$1" in',
        '  toolgate) shift; exec toolgate "$@" ;;',
        `  tsx) shift; exec ${node} ${JSON.stringify(join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'))} "$@" ;;`,
        '  *) echo "npx $1: documentation checks run only toolgate and tsx (mark the block covered-by)" >&2; exit 127 ;;',
        'esac',
        '',
      ].join('\n'),
    );
    shim(join(bin, 'npm'), '#!/bin/sh\necho "npm $*: documentation checks do not run npm (mark the block covered-by)" >&2\nexit 127\n');
    symlinkSync(process.execPath, join(bin, 'node'));
    for (const entry of COPIED_ENTRIES) cpSync(join(ROOT, entry), join(work, entry), { recursive: true });
    for (const entry of LINKED_ENTRIES) if (existsSync(join(ROOT, entry))) symlinkSync(join(ROOT, entry), join(work, entry));
    const scriptFile = join(base, 'block.sh');
    const errorsFile = join(base, 'failed-commands');
    writeFileSync(scriptFile, blockScript(body));
    const closedPort = 'http://127.0.0.1:9';
    const env: NodeJS.ProcessEnv = {
      PATH: `${bin}:${process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
      HOME: home,
      TOOLGATE_STATE_DIR: state,
      TMPDIR: temp,
      LANG: 'C.UTF-8',
      NO_COLOR: '1',
      DOCS_BLOCK_ERRORS: errorsFile,
      // Without a network namespace, whatever honours proxies reaches a closed port instead of the network.
      http_proxy: closedPort,
      https_proxy: closedPort,
      HTTP_PROXY: closedPort,
      HTTPS_PROXY: closedPort,
      no_proxy: '127.0.0.1,localhost,::1',
      NO_PROXY: '127.0.0.1,localhost,::1',
    };
    const started = Date.now();
    const [command, args] = blockCommand(scriptFile);
    // Its own process group, so the time limit ends everything the block started.
    const child = spawn(command, args, { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const append = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-200_000);
    };
    child.stdout.on('data', append);
    child.stderr.on('data', append);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group is gone already: it ended just as the time ran out.
      }
    }, options.timeoutMs ?? BLOCK_TIMEOUT_MS);
    const code = await new Promise<number | null>((resolveCode) => child.on('close', (exitCode) => resolveCode(exitCode)));
    clearTimeout(timer);
    const failed = existsSync(errorsFile) ? readFileSync(errorsFile, 'utf8').split('\n').filter(Boolean) : [];
    return { code, timedOut, failed, output, ms: Date.now() - started };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

/** A failed run, for the assertion message (the output's last 6 000 characters). */
function describeRun(run: BlockRun, expectOutput?: string): string {
  const why = run.timedOut
    ? 'timed out'
    : run.code !== 0
      ? `exited ${run.code}`
      : run.failed.length > 0
        ? `a command failed: ${run.failed.join('; ')}`
        : `did not print ${JSON.stringify(expectOutput)}`;
  return `${why} after ${run.ms} ms\n${run.output.slice(-6000)}`;
}

const PAGES = docPages();
const ALL_BLOCKS = PAGES.flatMap((page) => shellBlocks(page, readRepoFile(page) ?? ''));
const PACKAGE_SCRIPTS = (JSON.parse(readRepoFile('package.json') ?? '{}') as { scripts?: Record<string, string> }).scripts ?? {};
const REPO_CONTEXT: CheckContext = { read: readRepoFile, scripts: PACKAGE_SCRIPTS, help: cliHelp };

describe('documentation commands', () => {
  test('every shell block is runnable or names the files that run it', { timeout: 300_000 }, async (t) => {
    const runnable = ALL_BLOCKS.filter((block) => block.runnable).length;
    const covered = ALL_BLOCKS.filter((block) => block.coveredBy.length > 0).length;
    t.diagnostic(`${ALL_BLOCKS.length} shell blocks in ${PAGES.length} pages: ${runnable} runnable, ${covered} covered-by`);
    assert.ok(ALL_BLOCKS.length >= 10 && runnable >= 5, `the pages' shell blocks were found (${ALL_BLOCKS.length}, ${runnable} runnable)`);
    // Start every --help at once (each is a CLI start, mostly CPU): the checks below then read them from the cache.
    for (const block of ALL_BLOCKS) if (block.coveredBy.length > 0) for (const { words } of toolgateInvocations(commandText(block))) void cliHelp(words);
    const problems: string[] = [];
    for (const page of PAGES) problems.push(...(await markProblems(page, readRepoFile(page) ?? '', REPO_CONTEXT)));
    assert.deepEqual(problems, []);
  });

  for (const block of ALL_BLOCKS.filter((candidate) => candidate.runnable && candidate.lang !== 'console')) {
    test(`${block.page}:${block.line} runs`, { timeout: BLOCK_TIMEOUT_MS + 30_000 }, async (t) => {
      const run = await runBlock(block.body);
      t.diagnostic(`${run.ms} ms, exit ${run.code}`);
      assert.ok(passed(run, block.expectOutput), describeRun(run, block.expectOutput));
    });
  }
});

describe('the documentation commands check can fail (made-up pages)', () => {
  test('unmarked blocks, missing or silent covering files, unknown commands and options', async () => {
    const page = [
      '# Made up',
      '```sh',
      'npx toolgate policy check policies/',
      '```',
      '```sh covered-by=test/integration/no-such.test.ts',
      'npx toolgate worker',
      '```',
      '```sh covered-by=test/fake.test.ts',
      'npx toolgate kill-switch --list   # the fake test never names kill-switch',
      '```',
      '```bash runable',
      'npx toolgate policy test',
      '```',
      '```sh runnable covered-by=test/fake.test.ts',
      'npx toolgate worker',
      '```',
      '```console runnable',
      '$ npx toolgate worker',
      '```',
      '```sh covered-by=test/fake.test.ts',
      'docker compose up -d',
      '```',
      '```sh covered-by=test/fake.test.ts',
      'TOOLGATE_X=1 npx toolgate worker --frobnicate   # a made-up option',
      'npx toolgate polcy check',
      '```',
      '```sh covered-by=test/fake.test.ts,../outside.ts',
      'npm run bench',
      'npm run benhc -- --only 1',
      '```',
      '```sh covered-by=test/fake.test.ts',
      'npx toolgate policy replay --since 7d [--json] candidate/ \\',
      '  --tenant acme   # all named by the fake test: fine',
      'BENCH_SIZE=tiny npm run bench',
      'npm start',
      'npx tsx bench/audit-chain.ts 1000',
      'curl -s -X POST http://127.0.0.1:8787/v1/tool-requests/x -d \'{"a": "# not a comment"}\'',
      '```',
      '',
      '<!-- expect-output: only runnable blocks are run -->',
      '```console covered-by=test/fake.test.ts',
      '$ npx toolgate worker',
      'npx toolgate output-is-not-a-command',
      '```',
      '```yaml',
      'not: a shell block',
      '```',
    ].join('\n');
    const files: Record<string, string> = {
      'test/fake.test.ts': [
        "spawn(node, ['src/cli/main.ts', 'policy', 'replay', '--json']);",
        "spawn(node, ['bench/run.ts', '--tiny']); // what npm run bench runs",
        "spawn(node, ['src/cli/main.ts', 'worker']); // and bench/audit-chain.ts",
        "await api('POST', '/v1/tool-requests', { body });",
      ].join('\n'),
    };
    const helps: Record<string, string> = {
      worker: 'Usage: toolgate worker [options]\n\nOptions:\n  -h, --help  display help for command\n',
      'policy replay': 'Usage: toolgate policy replay [options] <paths...>\n  --since <time>\n  --tenant <tenant>\n  --json\n',
    };
    const context: CheckContext = {
      read: (path) => files[path],
      scripts: { bench: 'tsx bench/run.ts', start: 'npm run setup && tsx src/cli/main.ts dev' },
      help: (words) => Promise.resolve(helps[words.join(' ')]),
    };
    assert.deepEqual(await markProblems('docs/made-up.md', page, context), [
      'docs/made-up.md:2: a sh block that is neither runnable nor covered-by=<test file>',
      'docs/made-up.md:5: covered-by test/integration/no-such.test.ts does not exist',
      'docs/made-up.md:8: toolgate kill-switch is not named by test/fake.test.ts',
      'docs/made-up.md:8: toolgate kill-switch is not a toolgate command',
      'docs/made-up.md:11: unknown word "runable" in the info string (use runnable or covered-by=<file>)',
      'docs/made-up.md:11: a bash block that is neither runnable nor covered-by=<test file>',
      'docs/made-up.md:14: both runnable and covered-by: pick one',
      'docs/made-up.md:17: a console block shows output; write the commands as an sh block to run them',
      'docs/made-up.md:20: covered-by, but it names no command this check can find (toolgate, npm, tsx/node <file>, curl <url>): make it runnable',
      'docs/made-up.md:23: toolgate polcy check is not named by test/fake.test.ts',
      'docs/made-up.md:23: toolgate worker has no option --frobnicate',
      'docs/made-up.md:23: toolgate polcy check is not a toolgate command',
      'docs/made-up.md:27: covered-by ../outside.ts does not exist',
      'docs/made-up.md:27: npm run benhc: package.json has no such script',
      'docs/made-up.md:31: expect-output after a block that is not runnable',
    ]);
  });

  test("an option the real CLI's --help does not list is found", async () => {
    const page = ['```sh covered-by=test/unit/docs-commands.test.ts', 'npx toolgate token issue --agent --sub a --tenant acme --frobnicate x', '```'].join(
      '\n',
    );
    assert.deepEqual(await markProblems('docs/made-up.md', page, REPO_CONTEXT), ['docs/made-up.md:1: toolgate token issue has no option --frobnicate']);
  });

  test(
    'a runnable block fails when it exits non-zero, when a command inside $(...) fails, without its expected output, and when it runs too long',
    { timeout: 60_000 },
    async () => {
      const exits = await runBlock('echo before\nfalse\necho after');
      assert.equal(passed(exits), false);
      assert.equal(exits.code, 1);
      assert.deepEqual(exits.failed, ['false']);
      assert.match(exits.output, /before/);
      assert.doesNotMatch(exits.output, /after/);

      const hidden = await runBlock('export TOKEN=$(false)\necho "exported anyway"');
      assert.equal(hidden.code, 0, 'export hides the failure from the exit code');
      assert.equal(passed(hidden), false);
      assert.deepEqual(hidden.failed, ['false']);

      const quiet = await runBlock('echo something else');
      assert.equal(passed(quiet), true);
      assert.equal(passed(quiet, 'verify/baseline time ratio'), false, 'exit 0 without the expected output fails');

      const slow = await runBlock('sleep 30 &\nsleep 30', { timeoutMs: 500 });
      assert.equal(slow.timedOut, true);
      assert.equal(passed(slow), false);
      assert.ok(slow.ms < 10_000, `the time limit ended the block and its children (${slow.ms} ms)`);
    },
  );

  test('a runnable block fails when the real CLI exits non-zero', { timeout: 120_000 }, async () => {
    const run = await runBlock('npx toolgate policy check no-such-policies/');
    assert.equal(passed(run), false, run.output);
    assert.notEqual(run.code, 0);
    assert.match(run.failed.join('\n'), /toolgate policy check no-such-policies/);
  });

  test('a runnable block runs in its own workspace: HOME, state dir, stdin closed, the repository CLI, no npm', { timeout: 60_000 }, async () => {
    const run = await runBlock(
      [
        'case "$HOME" in "$(dirname "$PWD")"/*) ;; *) echo "HOME outside the workspace: $HOME"; exit 1 ;; esac',
        'case "$TOOLGATE_STATE_DIR" in "$(dirname "$PWD")"/*) ;; *) echo "state dir outside: $TOOLGATE_STATE_DIR"; exit 1 ;; esac',
        'test -d "$TOOLGATE_STATE_DIR" && test -d "$TMPDIR"',
        'if read -r line; then echo "stdin is open"; exit 1; fi',
        'test "$(command -v toolgate)" = "$(dirname "$PWD")/bin/toolgate"',
        'test -f policies/support-triage.yaml && test ! -L policies   # a copy: commands may edit it',
        'if npm run bench 2>/dev/null; then echo "npm ran"; exit 1; fi',
        'if npx some-package 2>/dev/null; then echo "npx fetched"; exit 1; fi',
        'echo sandbox-ok',
      ].join('\n'),
    );
    assert.ok(passed(run), describeRun(run));
    assert.match(run.output, /sandbox-ok/);
  });
});
