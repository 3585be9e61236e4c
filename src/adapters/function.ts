/**
 * The plain function adapter, for any agent runtime: `gatewayFunction('create_ticket', options)`
 * is an async function of the arguments whose every call goes through the gateway and resolves
 * to what the model should see (the tool's result, a refusal, or a pending approval). Who calls
 * is the gateway's token; the options carry no identity.
 */
import type { Provenance } from '../shared/index.js';
import { checkRequest, requestIdForToolCall, resultForModel, runRequest, scopeOf, toolRequest, type AdapterOptions, type RunOptions } from './core.js';

/** Per-call options of a gateway function. */
export interface GatewayCallOptions extends Pick<RunOptions, 'onProgress' | 'signal'> {
  /** The framework's tool-call id: the same id is the same request (retries do not run twice). */
  callId?: string;
  /** An explicit request id (wins over `callId`). */
  requestId?: string;
  /**
   * Which arguments came from untrusted content (`{ untrusted: { 'args.to': ['web_page'] } }`) and
   * the prompt metadata, as the runtime knows them; policy may ask for approval on flagged ones.
   */
  provenance?: Provenance;
}

/** A tool call through the gateway, resolving to the value to hand the model. */
export type GatewayFunction<Args extends Record<string, unknown> = Record<string, unknown>> = (args: Args, call?: GatewayCallOptions) => Promise<unknown>;

/** Wraps one toolgate tool as an async function for any agent runtime. */
export function gatewayFunction<Args extends Record<string, unknown> = Record<string, unknown>>(tool: string, options: AdapterOptions): GatewayFunction<Args> {
  return async (args, call = {}) => {
    const requestId = call.requestId ?? (call.callId !== undefined ? requestIdForToolCall(await scopeOf(options), call.callId) : undefined);
    const result = await runRequest(options.gateway, toolRequest(options, tool, args, requestId, call.provenance), {
      wait: options.wait,
      ...(call.onProgress && { onProgress: call.onProgress }),
      ...(call.signal && { signal: call.signal }),
    });
    return resultForModel(result);
  };
}

/**
 * A function that checks on a pending request of this agent (for a "check approval" tool). The
 * front door shows the agent only its own requests: any other id answers "no request of this agent".
 */
export function gatewayRequestChecker(options: AdapterOptions): (requestId: string, call?: Pick<RunOptions, 'signal'>) => Promise<unknown> {
  return async (requestId, call = {}) =>
    resultForModel(
      await checkRequest(options.gateway, requestId, {
        wait: options.wait === Number.POSITIVE_INFINITY ? 0 : (options.wait ?? 0),
        ...(call.signal && { signal: call.signal }),
      }),
    );
}
