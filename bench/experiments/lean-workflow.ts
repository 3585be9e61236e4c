/**
 * Experiment (scenarios 1 and 5): toolgate's own `toolRequest` workflow, bundled with its imports
 * of the shared module narrowed to the modules it needs at run time (messages and approval rules),
 * so zod and the request schemas stay out of the bundle. The reusable V8 context evaluates a
 * bundle's modules once per workflow; this measures what that costs without editing product code.
 * The workflow's source is read from workflows/tool-request.ts at bench time and only its import
 * lines are rewritten.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';

const root = fileURLToPath(new URL('../../', import.meta.url));
const shared = join(root, 'src/shared');

function exportedNames(file: string): Set<string> {
  const text = readFileSync(join(shared, file), 'utf8');
  return new Set([...text.matchAll(/^export (?:const|function|class|async function) (\w+)/gm)].map((m) => m[1] ?? ''));
}

/** The rewritten workflow source, or throws when its imports no longer look as expected. */
export function leanWorkflowSource(): string {
  const source = readFileSync(join(root, 'workflows/tool-request.ts'), 'utf8');
  const block = /import \{([^}]*)\} from '\.\.\/src\/shared\/index\.js';/m.exec(source);
  if (!block?.[1]) throw new Error('workflows/tool-request.ts no longer imports ../src/shared/index.js as one block');
  const names = block[1].split(',').map((n) => n.trim()).filter(Boolean);
  const messages = exportedNames('messages.ts');
  const approval = exportedNames('approval.ts');
  const schemasText = readFileSync(join(shared, 'schemas.ts'), 'utf8');
  const fromMessages: string[] = [];
  const fromApproval: string[] = [];
  const inlined: string[] = [];
  const types: string[] = [];
  for (const name of names) {
    if (name.startsWith('type ')) types.push(name.slice(5));
    else if (messages.has(name)) fromMessages.push(name);
    else if (approval.has(name)) fromApproval.push(name);
    else {
      const literal = new RegExp(`^export const ${name}(?::[^=]+)? = ([^;]+);`, 'm').exec(schemasText);
      if (!literal?.[1]) throw new Error(`cannot place ${name} outside the zod schemas`);
      inlined.push(`const ${name} = ${literal[1]};`);
    }
  }
  const replacement = [
    `import { ${fromMessages.join(', ')} } from '${join(shared, 'messages.js')}';`,
    `import { ${fromApproval.join(', ')} } from '${join(shared, 'approval.js')}';`,
    `import type { ${types.join(', ')} } from '${join(shared, 'schemas.js')}';`,
    ...inlined,
  ].join('\n');
  const workflowsDir = join(root, 'workflows');
  return source
    .replace(block[0], replacement)
    .replace(/from '(\.\.?\/[^']+)'/g, (_m, path: string) => `from '${resolve(workflowsDir, path)}'`);
}

/** Bundles the lean variant of `toolRequest` (the only workflow the bench runs). */
export async function bundleLeanToolgateWorkflow(): Promise<WorkflowBundle> {
  const dir = mkdtempSync(join(tmpdir(), 'toolgate-lean-'));
  const file = join(dir, 'tool-request.ts');
  writeFileSync(file, leanWorkflowSource());
  writeFileSync(join(dir, 'index.ts'), `export { toolRequest } from './tool-request.js';\n`);
  const silent = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
  return bundleWorkflowCode({
    workflowsPath: join(dir, 'index.ts'),
    logger: silent,
    // The generated file lives outside the project: resolve packages from the project's node_modules.
    webpackConfigHook: (config) => ({ ...config, resolve: { ...config.resolve, modules: [join(root, 'node_modules'), 'node_modules'] } }),
  });
}
