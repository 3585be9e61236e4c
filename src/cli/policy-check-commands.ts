/** `toolgate policy check|test`: validate policy files, and run the test cases beside them. */
import type { Command } from 'commander';
import { checkPolicyFiles, runPolicyTests } from '../policy/index.js';

/** Registers `check` and `test` under the `policy` command. */
export function registerPolicyCheckCommands(policy: Command): void {
  policy
    .command('check')
    .description('Validate policy files; exits non-zero with file, line and field of every error')
    .argument('[paths...]', 'policy files or directories', ['policies'])
    .action(async (paths: string[]) => {
      const { ok, lines } = await checkPolicyFiles(paths);
      for (const line of lines) (ok ? process.stdout : process.stderr).write(`${line}\n`);
      process.exitCode = ok ? 0 : 1;
    });
  policy
    .command('test')
    .description('Run the *.test.yaml cases beside the policies')
    .argument('[paths...]', 'test files or directories', ['policies'])
    .action(async (paths: string[]) => {
      const results = await runPolicyTests(paths);
      for (const r of results) {
        process.stdout.write(`${r.passed ? 'ok  ' : 'FAIL'} ${r.file}: ${r.name}${r.message ? ` — ${r.message}` : ''}\n`);
      }
      const failed = results.filter((r) => !r.passed).length;
      process.stdout.write(`${results.length - failed} passed, ${failed} failed\n`);
      process.exitCode = failed === 0 && results.length > 0 ? 0 : 1;
    });
}
