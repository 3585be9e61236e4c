/**
 * A suite's gateway in one line: `useGateway(options)` registers, in the suite being defined,
 * a `before` hook that starts Temporal and the gateway and an `after` hook that always stops them
 * (and whatever the suite deferred), even when the start failed half way.
 *
 * ```ts
 * describe('refunds', () => {
 *   const { gw } = useGateway({ taskQueue: `refunds-${process.pid}`, policy: POLICY, tools });
 *   test('...', async () => { await gw.gateway.call(...); });
 * });
 * ```
 *
 * Options that need something started first (a tool service whose URL goes into the policy) come
 * from a function, which gets Temporal's environment and `defer` to register the service's stop.
 * Further `before` hooks of the suite run after this one (node:test runs hooks in the order they
 * are registered), so they can use `gw`. Everything stops in the reverse order it started:
 * what a later hook deferred, then the gateway, then what the options function deferred, then
 * Temporal. A suite stops its own resources with `suite.defer` rather than an `after` of its own,
 * which would run only after the gateway and Temporal are gone.
 */
import { after, before } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startGateway, startTemporal, type GatewayEnv, type GatewayEnvOptions } from './gateway-env.js';

/** What the options function of {@link useGateway} gets. */
export interface GatewaySetup {
  /** The running Temporal environment. */
  env: TestWorkflowEnvironment;
  /** Registers a stop, run in `after` after the gateway stopped (stops run last registered first). */
  readonly defer: (stop: () => unknown) => void;
}

/**
 * The running gateway of a suite. `env` and `gw` stand for the objects `before` starts, so a suite
 * destructures them once (`const { env, gw } = useGateway(...)`) and uses them in its tests and
 * later hooks like the objects themselves; touching either before the start throws.
 */
export interface GatewaySuite {
  readonly env: TestWorkflowEnvironment;
  readonly gw: GatewayEnv;
  /** Registers a stop, run in `after` before the gateway stops (stops run last registered first). */
  readonly defer: (stop: () => unknown) => void;
}

/**
 * An object standing for the one `current()` returns once it exists: property reads go to it
 * (methods bound to it), so it can be handed out before the suite's `before` hook created it.
 */
function lateBound<T extends object>(current: () => T | undefined, what: string): T {
  const target = (): T => {
    const value = current();
    if (!value) throw new Error(`useGateway: ${what} is not started yet (use it inside a test or a later hook)`);
    return value;
  };
  return new Proxy({} as T, {
    get(_, key) {
      const object = target();
      const value: unknown = Reflect.get(object, key, object);
      return typeof value === 'function' ? value.bind(object) : value;
    },
    has: (_, key) => Reflect.has(target(), key),
  });
}

/** Registers `before`/`after` hooks that start and stop Temporal and a gateway for the current suite (see the module comment). */
export function useGateway(options: GatewayEnvOptions | ((setup: GatewaySetup) => GatewayEnvOptions | Promise<GatewayEnvOptions>)): GatewaySuite {
  let env: TestWorkflowEnvironment | undefined;
  let gw: GatewayEnv | undefined;
  const stops: (() => unknown)[] = [];
  const defer = (stop: () => unknown) => void stops.push(stop);

  before(async () => {
    env = await startTemporal();
    const started = env;
    defer(() => started.teardown());
    const resolved = typeof options === 'function' ? await options({ env, defer }) : options;
    gw = await startGateway(env, resolved);
    const running = gw;
    defer(() => running.close());
  });

  after(async () => {
    // Last started, first stopped; every stop runs even when one fails (the first error is reported).
    const errors: unknown[] = [];
    for (const stop of stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  });

  return { env: lateBound(() => env, 'Temporal'), gw: lateBound(() => gw, 'the gateway'), defer };
}
