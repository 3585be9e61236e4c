/**
 * The policy in force for a worker. Loading replaces it only when the new files are valid; when
 * nothing valid was ever loaded, every decision is a denial that carries the load error.
 */
import { loadPolicy, parsePolicy, type LoadedPolicy } from './policy/index.js';

/** The outcome of the latest load attempt. */
export type PolicyState = { policy: LoadedPolicy; error?: undefined } | { policy?: LoadedPolicy; error: Error };

/** Holds the loaded policy and the last load error. */
export class PolicyStore {
  private state: PolicyState = { error: new Error('no policy has been loaded') };

  /** A store holding an already parsed policy. */
  static of(policy: LoadedPolicy): PolicyStore {
    const store = new PolicyStore();
    store.state = { policy };
    return store;
  }

  /** A store holding policy parsed from in-memory YAML sources (tests, embedded use). */
  static fromSources(sources: { file: string; text: string }[]): PolicyStore {
    return PolicyStore.of(parsePolicy(sources));
  }

  /** Loads policy files; on failure keeps the previous policy (if any) and records the error. */
  async load(paths: string[]): Promise<PolicyState> {
    try {
      this.state = { policy: await loadPolicy(paths) };
    } catch (err) {
      this.state = { ...(this.state.policy ? { policy: this.state.policy } : {}), error: err as Error };
    }
    return this.state;
  }

  /** The current state: the policy in force, and the last error if the latest load failed. */
  current(): PolicyState {
    return this.state;
  }
}
