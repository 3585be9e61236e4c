/**
 * The import conventions ESLint cannot see from one file at a time:
 *
 * - No import cycles between the project's own modules, type-only imports included. A type-only
 *   cycle costs nothing at run time, but it still means two modules are one design knotted
 *   together (lint plugins' cycle rules skip type-only imports, so this test is the check).
 * - The workflow boundary in eslint.config.js (determinism: no Node built-ins, no I/O modules, no
 *   `process`/`fetch`) covers exactly the files the workflow bundles contain. The bundles are
 *   built with the SDK's own bundler, so what counts is what the workers really load: when a
 *   workflow starts importing one more file from src/, this fails until the lint block lists it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { bundleWorkflowCode } from '@temporalio/worker';
import { ESLint, type Linter } from 'eslint';
import ts from 'typescript';
import { ARCHIVE_WORKFLOWS_PATH } from '../../src/cli/archiver-commands.js';
import { FAILURE_CONVERTER_PATH } from '../../src/codec/index.js';
import { WORKFLOWS_PATH } from '../../src/worker.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Every file of the TypeScript project at `root` (its tsconfig.json's `include`), absolute. */
function projectFiles(root: string): { files: string[]; options: ts.CompilerOptions } {
  const configPath = join(root, 'tsconfig.json');
  const read = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path));
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root, undefined, configPath);
  return { files: parsed.fileNames.map((file) => resolve(file)), options: parsed.options };
}

/**
 * The project's import graph: for each file, the project files it imports or re-exports from,
 * type-only declarations included (`import type`, `export type ... from`). Dynamic `import()` is
 * left out: it loads lazily, which is how a deliberate back-reference is written.
 */
function importGraph(root: string): Map<string, Set<string>> {
  const { files, options } = projectFiles(root);
  const known = new Set(files);
  const graph = new Map<string, Set<string>>();
  for (const file of files) {
    const source = ts.createSourceFile(file, ts.sys.readFile(file) ?? '', ts.ScriptTarget.Latest, false);
    const targets = new Set<string>();
    for (const statement of source.statements) {
      const specifier =
        (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier && ts.isStringLiteral(statement.moduleSpecifier)
          ? statement.moduleSpecifier.text
          : ts.isImportEqualsDeclaration(statement) &&
              ts.isExternalModuleReference(statement.moduleReference) &&
              ts.isStringLiteral(statement.moduleReference.expression)
            ? statement.moduleReference.expression.text
            : undefined;
      if (specifier === undefined) continue;
      const resolved = ts.resolveModuleName(specifier, file, options, ts.sys).resolvedModule;
      if (resolved && !resolved.isExternalLibraryImport && known.has(resolve(resolved.resolvedFileName))) targets.add(resolve(resolved.resolvedFileName));
    }
    graph.set(file, targets);
  }
  return graph;
}

/** The import cycles of `graph`: one cycle (as a path that returns to its start) per strongly connected component. */
function importCycles(graph: Map<string, Set<string>>): string[][] {
  // Tarjan's algorithm, iterative: the graph has hundreds of files and deep chains.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: { node: string; edges: Iterator<string> }[] = [];
    const visit = (node: string) => {
      index.set(node, next);
      low.set(node, next);
      next += 1;
      stack.push(node);
      onStack.add(node);
      work.push({ node, edges: (graph.get(node) ?? new Set()).values() });
    };
    visit(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const edge = frame.edges.next();
      if (!edge.done) {
        const target = edge.value;
        if (!index.has(target)) visit(target);
        else if (onStack.has(target)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(target)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        if (component.length > 1 || graph.get(frame.node)?.has(frame.node)) components.push(component);
      }
    }
  }
  return components.map((component) => cyclePath(graph, new Set(component)));
}

/** One cycle through a strongly connected component, found breadth-first from its first file. */
function cyclePath(graph: Map<string, Set<string>>, component: Set<string>): string[] {
  const [start] = component;
  const cameFrom = new Map<string, string>();
  const queue = [start!];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const target of graph.get(node) ?? []) {
      if (!component.has(target)) continue;
      if (target === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(cameFrom.get(path[0]!)!);
        return [...path, start];
      }
      if (!cameFrom.has(target)) {
        cameFrom.set(target, node);
        queue.push(target);
      }
    }
  }
  return [...component];
}

/** The project's own files (not node_modules, not the bundler's generated entry points) in the bundle of `options`. */
async function bundledFiles(options: { workflowsPath: string; failureConverterPath?: string }): Promise<string[]> {
  const files = new Set<string>();
  const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
  await bundleWorkflowCode({
    ...options,
    logger: quiet,
    webpackConfigHook: (config) => ({
      ...config,
      plugins: [
        ...(config.plugins ?? []),
        {
          apply(compiler: { hooks: { done: { tap(name: string, fn: (stats: { compilation: { modules: Iterable<BundledModule> } }) => void): void } } }) {
            compiler.hooks.done.tap('toolgate-bundled-files', (stats) => {
              const collect = (module: BundledModule) => {
                if (module.resource) files.add(module.resource.split('?')[0]!);
                for (const inner of module.modules ?? []) collect(inner);
              };
              for (const module of stats.compilation.modules) collect(module);
            });
          },
        } as never,
      ],
    }),
  });
  return [...files].filter(
    (file) => !file.includes(`${'/'}node_modules${'/'}`) && /\.[cm]?[jt]s$/.test(file) && !file.endsWith('-autogenerated-entrypoint.cjs'),
  );
}

/** A webpack module as far as this test reads it: a file, or a concatenation of modules. */
interface BundledModule {
  resource?: string;
  modules?: BundledModule[];
}

/** Whether the lint config gives `file` the workflow determinism rules (the boundary block of eslint.config.js). */
function hasDeterminismRules(config: Linter.Config): boolean {
  const severityOn = (entry: unknown) => Array.isArray(entry) && (entry[0] === 2 || entry[0] === 'error');
  const imports = config.rules?.['no-restricted-imports'];
  const globals = config.rules?.['no-restricted-globals'];
  if (!severityOn(imports) || !severityOn(globals)) return false;
  const paths = ((imports as unknown[])[1] as { paths?: { name: string }[] } | undefined)?.paths?.map((path) => path.name) ?? [];
  const globalNames = (globals as unknown[]).slice(1).map((entry) => (typeof entry === 'string' ? entry : (entry as { name: string }).name));
  return (
    ['node:fs', 'fs', '@temporalio/activity', '@temporalio/client'].every((name) => paths.includes(name)) &&
    ['process', 'fetch'].every((name) => globalNames.includes(name))
  );
}

const rel = (file: string) => relative(ROOT, file);

/**
 * Cycles known and waiting for their fix, each as the set of its files. The check below asks for
 * exactly these: a new cycle fails it, and so does one of these once it is broken (delete it here).
 * None today.
 */
const KNOWN_CYCLES: string[][] = [];

describe('import cycles', () => {
  test('no module of the project imports itself back, type-only imports included', () => {
    const cycles = importCycles(importGraph(ROOT));
    const isKnown = (cycle: string[], files: string[]) => files.length === new Set(cycle).size && files.every((file) => cycle.includes(join(ROOT, file)));
    assert.deepEqual(
      cycles.filter((cycle) => !KNOWN_CYCLES.some((files) => isKnown(cycle, files))).map((cycle) => cycle.map(rel).join(' → ')),
      [],
      'break each cycle by moving what both sides need into a module of its own',
    );
    assert.deepEqual(
      KNOWN_CYCLES.filter((files) => !cycles.some((cycle) => isKnown(cycle, files))),
      [],
      'these known cycles are gone: delete them from KNOWN_CYCLES',
    );
  });

  test('the check finds a cycle made only of type imports', () => {
    // A small project of its own, so the test proves it can fail without touching the real tree.
    const dir = mkdtempSync(join(tmpdir(), 'toolgate-cycles-'));
    try {
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['*.ts'] }),
      );
      writeFileSync(
        join(dir, 'app.ts'),
        "import { render } from './page.js';\nexport interface View { id: string }\nexport const page = render({ id: 'x' });\n",
      );
      writeFileSync(join(dir, 'page.ts'), "import type { View } from './app.js';\nexport const render = (view: View) => view.id;\n");
      writeFileSync(join(dir, 'leaf.ts'), "export { render } from './page.js';\n");
      const cycles = importCycles(importGraph(dir));
      assert.equal(cycles.length, 1);
      assert.deepEqual(new Set(cycles[0]!.map((file) => relative(dir, file))), new Set(['app.ts', 'page.ts']));
      assert.equal(cycles[0]![0], cycles[0]!.at(-1), 'the path returns to where it started');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the workflow lint boundary', () => {
  test('covers exactly the files the workflow bundles contain', async () => {
    const bundled = new Set([
      // The workers' bundle: the workflows and the failure converter loaded by path (src/codec).
      ...(await bundledFiles({ workflowsPath: WORKFLOWS_PATH, failureConverterPath: FAILURE_CONVERTER_PATH })),
      // The audit archiver's bundle (toolgate archiver).
      ...(await bundledFiles({ workflowsPath: ARCHIVE_WORKFLOWS_PATH })),
    ]);
    // The bundles are not empty by accident (a wrong path would make every check below pass).
    for (const expected of ['workflows/tool-request.ts', 'workflows/audit-archive.ts', 'src/codec/failure-converter.ts', 'src/shared/messages.ts']) {
      assert.ok(bundled.has(join(ROOT, expected)), `${expected} is in a workflow bundle`);
    }

    const eslint = new ESLint({ cwd: ROOT });
    const covered = async (file: string) => hasDeterminismRules((await eslint.calculateConfigForFile(file)) as Linter.Config);
    const uncovered: string[] = [];
    for (const file of bundled) if (!(await covered(file))) uncovered.push(rel(file));
    assert.deepEqual(uncovered.sort(), [], 'add these files to WORKFLOW_BUNDLE_SRC_FILES in eslint.config.js: they run in the workflow sandbox');

    // And the list stays exact: a file that left the bundles is not held to the sandbox's rules.
    // (workflows/ is covered as a whole: everything there is workflow code by convention.)
    const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.ts'))
      .map((name) => join(ROOT, 'src', name));
    const coveredButNotBundled: string[] = [];
    for (const file of sources) if ((await covered(file)) && !bundled.has(file)) coveredButNotBundled.push(rel(file));
    assert.deepEqual(
      coveredButNotBundled.sort(),
      [],
      'remove these files from WORKFLOW_BUNDLE_SRC_FILES in eslint.config.js: no workflow bundle contains them',
    );
  });

  test('the check tells a covered file from an uncovered one', async () => {
    const eslint = new ESLint({ cwd: ROOT });
    assert.equal(hasDeterminismRules((await eslint.calculateConfigForFile(join(ROOT, 'workflows/tool-request.ts'))) as Linter.Config), true);
    assert.equal(hasDeterminismRules((await eslint.calculateConfigForFile(join(ROOT, 'src/shared/approval.ts'))) as Linter.Config), true);
    assert.equal(hasDeterminismRules((await eslint.calculateConfigForFile(join(ROOT, 'src/notify/notifier.ts'))) as Linter.Config), false);
    assert.equal(hasDeterminismRules((await eslint.calculateConfigForFile(join(ROOT, 'src/shared/requests.ts'))) as Linter.Config), false);
  });
});
