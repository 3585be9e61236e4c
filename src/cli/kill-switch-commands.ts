/**
 * `toolgate kill-switch`: refuse every new request of a tenant (or one of its tools) and deny the
 * pending ones; `--lift` restores service, `--list` shows the switches that are on.
 */
import { Client, Connection } from '@temporalio/client';
import { type Command, InvalidArgumentError } from 'commander';
import { dataConverterFor } from '../codec/index.js';
import { loadConfig } from '../config.js';
import { KILL_SWITCH_CACHE_MS, KillSwitches } from '../policy/kill-switch-client.js';
import { IDENTIFIER_PATTERN } from '../shared/index.js';
import { codecKeyring } from './loaders.js';

/** Registers `toolgate kill-switch`. */
export function registerKillSwitchCommand(program: Command): void {
  program
    .command('kill-switch')
    .description('Refuse every new request of a tenant (or one tool) and deny the pending ones; --lift restores service')
    .option('--tenant <tenant>', 'the tenant to stop')
    .option('--tool <tool>', 'only this tool')
    .option('--reason <text>', 'why, for the audit trail', 'kill switch')
    .option('--by <who>', 'who pulls the switch, for the audit trail', process.env.USER ?? 'operator')
    .option('--lift', 'lift the switch of exactly this scope')
    .option('--list', 'list the switches that are on')
    .action(async (options: { tenant?: string; tool?: string; reason: string; by: string; lift?: boolean; list?: boolean }) => {
      const config = loadConfig();
      // Keys before the connection: without the deployment's key there is nothing to do.
      const dataConverter = dataConverterFor(await codecKeyring(config));
      const connection = await Connection.connect({ address: config.temporalAddress });
      try {
        const switches = new KillSwitches(new Client({ connection, namespace: config.namespace, dataConverter }));
        if (options.list) {
          for (const s of await switches.list({ fresh: true })) {
            process.stdout.write(`${s.tenant}${s.tool ? `/${s.tool}` : ' (all tools)'}  by ${s.by} at ${s.at}: ${s.reason}\n`);
          }
          return;
        }
        if (!options.tenant || !IDENTIFIER_PATTERN.test(options.tenant)) throw new InvalidArgumentError('--tenant <tenant> is required (an identifier)');
        if (options.tool !== undefined && !IDENTIFIER_PATTERN.test(options.tool)) throw new InvalidArgumentError('--tool must be a tool name');
        const scope = { tenant: options.tenant, ...(options.tool ? { tool: options.tool } : {}), by: options.by };
        if (options.lift) {
          const lifted = await switches.lift(scope);
          process.stdout.write(
            lifted.length > 0
              ? `lifted ${lifted.length} switch(es) for ${options.tenant}${options.tool ? `/${options.tool}` : ''}\n`
              : 'no switch of exactly this scope was on\n',
          );
          return;
        }
        const on = await switches.set({ ...scope, reason: options.reason });
        process.stderr.write(`kill switch on for ${on.tenant}${on.tool ? `/${on.tool}` : ' (all tools)'}; new requests are refused\n`);
        // Workers read the switches at most KILL_SWITCH_CACHE_MS old: wait that long before reporting, then deny what waits.
        await new Promise((resolve) => setTimeout(resolve, KILL_SWITCH_CACHE_MS));
        const denied = await switches.denyPending(on);
        process.stdout.write(`kill switch ${on.id} on; ${denied} pending request(s) denied\n`);
      } finally {
        await connection.close();
      }
    });
}
