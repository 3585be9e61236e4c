/**
 * Kill switches, shared side: which switch covers a request (pure, so either side may use it; the
 * client side, src/policy/kill-switch-client.ts, does). The switch's type is `KillSwitch` in
 * ./request-status.ts and the registry's messages are in ./messages.ts, where the registry workflow
 * (workflows/kill-switch.ts) imports them from.
 */
import type { KillSwitch } from './request-status.js';

/** The switch that covers a tenant's tool, if any (a tenant-wide switch covers every tool). */
export function coveringSwitch(switches: readonly KillSwitch[], tenant: string, tool: string): KillSwitch | undefined {
  return switches.find((s) => s.tenant === tenant && (s.tool === undefined || s.tool === tool));
}
