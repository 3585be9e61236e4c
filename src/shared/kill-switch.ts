/** Kill-switch scope matching, shared by the registry workflow, the activities and the CLI. */
import type { KillSwitch } from './schemas.js';

/** The switch that covers a tenant's tool, if any (a tenant-wide switch covers every tool). */
export function coveringSwitch(switches: readonly KillSwitch[], tenant: string, tool: string): KillSwitch | undefined {
  return switches.find((s) => s.tenant === tenant && (s.tool === undefined || s.tool === tool));
}
