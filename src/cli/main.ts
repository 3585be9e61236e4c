/**
 * The `toolgate` command: builds the program from the command groups (each in its own
 * `*-commands.ts`) and runs it.
 */
import { Command } from 'commander';
import { registerApiCommand } from './api-commands.js';
import { registerArchiverCommand } from './archiver-commands.js';
import { registerAuditCommands } from './audit-commands.js';
import { registerDevCommand } from './dev-commands.js';
import { registerKeysCommands } from './keys-commands.js';
import { registerKillSwitchCommand } from './kill-switch-commands.js';
import { registerManifestCommands } from './manifest-commands.js';
import { registerMcpCommands } from './mcp-commands.js';
import { registerPolicyCheckCommands } from './policy-check-commands.js';
import { registerPolicyCommands } from './policy-commands.js';
import { registerRequestCommands } from './request-commands.js';
import { registerTokenCommands } from './token-commands.js';
import { registerWorkerCommands } from './worker-commands.js';

const program = new Command().name('toolgate').description('A gateway between AI agents and the tools that change the world.').showHelpAfterError();

// The order commands are registered in is the order `toolgate --help` lists them.
registerDevCommand(program);
registerWorkerCommands(program);
registerApiCommand(program);
const policy = program.command('policy').description('Work with policy files');
registerPolicyCheckCommands(policy);
registerKillSwitchCommand(program);
registerTokenCommands(program);
registerMcpCommands(program);
registerAuditCommands(program);
registerKeysCommands(program);
registerPolicyCommands(policy);
registerArchiverCommand(program);
registerManifestCommands(program);
registerRequestCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`toolgate: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
