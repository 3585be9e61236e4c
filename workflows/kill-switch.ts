/**
 * The kill-switch registry: one long-running workflow per namespace holding the kill switches that
 * are on. Turning one on or lifting it is an Update, so every change is in this workflow's history
 * (who, when, why); policy evaluation and execution read it with a query.
 */
import { continueAsNew, setHandler, uuid4, workflowInfo, condition } from '@temporalio/workflow';
import { killSwitchesQuery, liftKillSwitchUpdate, setKillSwitchUpdate } from '../src/shared/messages.js';
import type { KillSwitch } from '../src/shared/request-status.js';

/** Keeps the kill switches; carries them over when the history grows long. */
export async function killSwitchRegistry(carried: { switches: KillSwitch[] } = { switches: [] }): Promise<void> {
  let switches = [...carried.switches];
  setHandler(killSwitchesQuery, () => switches);
  setHandler(setKillSwitchUpdate, (input) => {
    const active: KillSwitch = {
      id: uuid4(),
      tenant: input.tenant,
      ...(input.tool === undefined ? {} : { tool: input.tool }),
      reason: input.reason,
      by: input.by,
      at: new Date(Date.now()).toISOString(),
    };
    switches = [...switches.filter((s) => !(s.tenant === active.tenant && s.tool === active.tool)), active];
    return active;
  });
  setHandler(liftKillSwitchUpdate, (input) => {
    const lifted = switches.filter((s) => s.tenant === input.tenant && s.tool === input.tool);
    switches = switches.filter((s) => !lifted.includes(s));
    return lifted;
  });
  await condition(() => workflowInfo().continueAsNewSuggested);
  await continueAsNew<typeof killSwitchRegistry>({ switches });
}
