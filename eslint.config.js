// Lint rules that catch durable-code mistakes: floating promises, type-only imports, duplicate
// imports, deep imports into the Temporal SDK's internals, and any I/O or Node built-in reaching
// the deterministic code of the workflow bundle. Import cycles are checked by
// test/unit/import-conventions.test.ts, which also keeps the workflow boundary below equal to what
// the bundler really bundles.
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const nodeBuiltins = builtinModules.flatMap((name) => [name, `node:${name}`]);

/**
 * The files outside workflows/ that the workflow bundles contain (the workers' bundle: the
 * workflows plus the failure converter it loads by path; the archiver's bundle). They run in the
 * workflow sandbox, so they get the workflows' determinism rules. test/unit/import-conventions.test.ts
 * bundles the workflows and fails when this list and the bundle's modules differ.
 */
const WORKFLOW_BUNDLE_SRC_FILES = [
  'src/codec/failure-converter.ts',
  'src/shared/approval.ts',
  'src/shared/assertions.ts',
  'src/shared/identity.ts',
  'src/shared/messages.ts',
  'src/shared/outcome-details.ts',
];

/** Node built-ins and modules that do I/O or do not run in the workflow sandbox. */
const determinismPaths = [
  ...nodeBuiltins.map((name) => ({ name, message: 'Workflow code must be deterministic: no Node built-ins or I/O. Use an activity.' })),
  ...['express', 'yaml', 'pino', 'jose', 'ajv', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'].map((name) => ({
    name,
    message: 'Workflow code must be deterministic: this module does I/O or is not allowed in the workflow sandbox. Use an activity.',
  })),
];

/** Globals that are I/O or process state, which a replay would not see the same way. */
const determinismGlobals = [
  { name: 'fetch', message: 'No I/O in workflows.' },
  { name: 'process', message: 'No process access in workflows.' },
];

/**
 * The Temporal SDK's `lib/` folders are its internals: they move between releases without notice.
 * The few the project needs are re-exported, each with its reason, by src/temporal/internals.ts.
 */
const sdkInternals = {
  group: ['@temporalio/*/lib', '@temporalio/*/lib/**'],
  message: "Temporal SDK internals: import them from src/temporal/internals.ts (add the export there, with why it's needed).",
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.tools/**', '.toolgate/**', 'bench/results/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'bin/*.mjs', 'scripts/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      // One import (and one re-export) per module, types inline: `import { x, type Y } from 'm'`.
      'no-duplicate-imports': ['error', { includeExports: true }],
      // The typescript-eslint twin of the core rule, so the workflow boundary's own
      // `no-restricted-imports` below does not replace this one for the files it covers.
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [sdkInternals] }],
    },
  },
  {
    // The one place allowed to reach into the SDK's internals.
    files: ['src/temporal/internals.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // node:test's describe/test return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'test', 'it', 'suite'] }] },
      ],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // The workflows: deterministic, and from src/ only the shared module.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: determinismPaths,
          patterns: [
            { group: ['../src/*', '!../src/shared', '../src/*/**', '!../src/shared/**'], message: 'Workflows may import only the shared module from src/.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', ...determinismGlobals],
    },
  },
  {
    // What the workflows import from src/ runs in the same sandbox: the same rules, and nothing
    // from outside its own folder (that would pull more of src/ into the bundle).
    files: WORKFLOW_BUNDLE_SRC_FILES,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: determinismPaths,
          patterns: [{ group: ['../*'], message: 'Code in the workflow bundle imports only from its own folder and packages allowed in the sandbox.' }],
        },
      ],
      'no-restricted-globals': ['error', ...determinismGlobals],
    },
  },
  {
    files: ['bin/*.mjs', 'scripts/*.mjs', 'eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
