/**
 * Kill switches, client side: reading and changing them through a Temporal client. They live in
 * the kill-switch registry workflow, so they are durable, shared by every worker and API process,
 * and every change is in its history. The policy activity refuses a request a switch covers
 * (rule `kill-switch:<id>`), and the preview and execution activities check again before acting;
 * `toolgate kill-switch` sets and lifts them.
 *
 * The three kill-switch modules, one per side:
 *   src/policy/kill-switch-client.ts  this one: workers and the CLI (Temporal client)
 *   workflows/kill-switch.ts          the registry workflow (deterministic, in the workflow bundle)
 *   src/shared/kill-switch.ts         the scope matching both sides use (`coveringSwitch`)
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import {
  KILL_SWITCH_WORKFLOW_ID,
  KILL_SWITCH_WORKFLOW_TYPE,
  TASK_QUEUE,
  coveringSwitch,
  killSignal,
  killSwitchesQuery,
  liftKillSwitchUpdate,
  searchAttributes,
  setKillSwitchUpdate,
  type KillSwitch,
} from '../shared/index.js';

/** How long a worker may answer from its last read of the switches. @default 1000 */
export const KILL_SWITCH_CACHE_MS = 1000;

/** Kill switches through the registry workflow. */
export class KillSwitches {
  private cached?: { at: number; switches: KillSwitch[] };

  constructor(
    private readonly client: Client,
    private readonly options: { taskQueue?: string; cacheMs?: number } = {},
  ) {}

  /** The switches on now (read at most `cacheMs` ago). */
  async list(options: { fresh?: boolean } = {}): Promise<KillSwitch[]> {
    const cacheMs = this.options.cacheMs ?? KILL_SWITCH_CACHE_MS;
    if (!options.fresh && this.cached && Date.now() - this.cached.at < cacheMs) return this.cached.switches;
    let switches: KillSwitch[];
    try {
      switches = await this.client.workflow.getHandle(KILL_SWITCH_WORKFLOW_ID).query(killSwitchesQuery);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      switches = [];
    }
    this.cached = { at: Date.now(), switches };
    return switches;
  }

  /** The switch covering this tenant's tool, if one is on. */
  async covering(tenant: string, tool: string): Promise<KillSwitch | undefined> {
    return coveringSwitch(await this.list(), tenant, tool);
  }

  /** Turns a switch on; starts the registry on first use. */
  async set(input: { tenant: string; tool?: string; reason: string; by: string }): Promise<KillSwitch> {
    await this.ensureRegistry();
    return this.client.workflow.getHandle(KILL_SWITCH_WORKFLOW_ID).executeUpdate(setKillSwitchUpdate, { args: [input] });
  }

  /** Lifts the switches of exactly this scope; returns those lifted. */
  async lift(input: { tenant: string; tool?: string; by: string }): Promise<KillSwitch[]> {
    await this.ensureRegistry();
    return this.client.workflow.getHandle(KILL_SWITCH_WORKFLOW_ID).executeUpdate(liftKillSwitchUpdate, { args: [input] });
  }

  /**
   * Sends a kill order to every running request in the switch's scope; returns how many were
   * signalled. Visibility is eventually consistent: a request it misses is still refused by the
   * execution activity, which checks the switches before acting.
   */
  async denyPending(killSwitch: KillSwitch): Promise<number> {
    const scope = [
      `${searchAttributes.tenant.name} = '${killSwitch.tenant}'`,
      ...(killSwitch.tool ? [`${searchAttributes.tool.name} = '${killSwitch.tool}'`] : []),
      `ExecutionStatus = 'Running'`,
      `WorkflowType = 'toolRequest'`,
    ].join(' AND ');
    let count = 0;
    for await (const execution of this.client.workflow.list({ query: scope, pageSize: 500 })) {
      try {
        await this.client.workflow
          .getHandle(execution.workflowId)
          .signal(killSignal, { switchId: killSwitch.id, reason: killSwitch.reason, by: killSwitch.by, at: killSwitch.at });
        count += 1;
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
    return count;
  }

  private async ensureRegistry(): Promise<void> {
    await this.client.workflow.start(KILL_SWITCH_WORKFLOW_TYPE, {
      workflowId: KILL_SWITCH_WORKFLOW_ID,
      taskQueue: this.options.taskQueue ?? TASK_QUEUE,
      args: [{ switches: [] }],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
  }
}
