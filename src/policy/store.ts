/**
 * The policy in force for a worker. Loading replaces it only when the new files are valid; when
 * nothing valid was ever loaded, every decision is a denial that carries the load error.
 *
 * A worker reloads its policy while it runs (`watch`: on a change of the files, or on SIGHUP):
 * the new files are read and checked in full before one assignment swaps them in, so a request
 * sees either the old policy or the new one, never a mix, and a reload that fails keeps the old.
 */
import { watch as watchPath, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { loadPolicy, parsePolicy, type PolicyLoadOptions } from './load.js';
import type { LoadedPolicy } from './model.js';

/** The outcome of the latest load attempt. */
export type PolicyState = { policy: LoadedPolicy; error?: undefined } | { policy?: LoadedPolicy; error: Error };

/** Options of {@link PolicyStore.watch}. */
export interface PolicyWatchOptions {
  logger: Logger;
  /** Changes closer together than this are one reload (editors write a file in several steps). @default 200 */
  debounceMs?: number;
  /** Also reload on this signal (`toolgate worker` passes SIGHUP). */
  signal?: NodeJS.Signals;
  /** Watch the files (where file events are unreliable, e.g. some network file systems, reload by signal only). @default true */
  files?: boolean;
}

/** Holds the loaded policy and the last load error. */
export class PolicyStore {
  private state: PolicyState = { error: new Error('no policy has been loaded') };
  /** Loads run one after another, so a slow older load never overwrites a newer one. */
  private loading: Promise<unknown> = Promise.resolve();

  /**
   * `options` apply to every load and reload (the deployment's manifest signers: an edited entry
   * whose signatures no longer verify fails its reload, and the policy in force stays).
   */
  constructor(private readonly options: PolicyLoadOptions = {}) {}

  /** A store holding an already parsed policy (loaded later with `options`). */
  static of(policy: LoadedPolicy, options: PolicyLoadOptions = {}): PolicyStore {
    const store = new PolicyStore(options);
    store.state = { policy };
    return store;
  }

  /** A store holding policy parsed from in-memory YAML sources (tests, embedded use). */
  static fromSources(sources: { file: string; text: string }[], options: PolicyLoadOptions = {}): PolicyStore {
    return PolicyStore.of(parsePolicy(sources, options), options);
  }

  /** Loads policy files; on failure keeps the previous policy (if any) and records the error. */
  async load(paths: string[]): Promise<PolicyState> {
    const next = this.loading.then(async () => {
      try {
        this.state = { policy: await loadPolicy(paths, this.options) };
      } catch (err) {
        this.state = { ...(this.state.policy ? { policy: this.state.policy } : {}), error: err as Error };
      }
      return this.state;
    });
    this.loading = next.catch(() => undefined);
    return next;
  }

  /** The current state: the policy in force, and the last error if the latest load failed. */
  current(): PolicyState {
    return this.state;
  }

  /**
   * Reloads `paths` whenever a policy file under them changes (their directories are watched, so
   * files replaced by rename are seen too) and on `options.signal`. Each reload is logged with the
   * new digest, or with the error and the digest still in force. Returns a function that stops watching.
   */
  async watch(paths: string[], options: PolicyWatchOptions): Promise<() => void> {
    const { logger } = options;
    const debounceMs = options.debounceMs ?? 200;
    let timer: NodeJS.Timeout | undefined;
    const reload = (why: string): void => {
      const before = this.state.policy?.digest;
      void this.load(paths).then((state) => {
        if (state.error) {
          logger.error({ why, err: state.error.message, inForce: state.policy?.digest ?? null }, 'policy reload failed: the previous policy stays in force');
        } else if (state.policy.digest !== before) {
          logger.info({ why, digest: state.policy.digest, previous: before ?? null, files: state.policy.files }, 'policy reloaded');
        }
      });
    };
    const schedule = (why: string): void => {
      clearTimeout(timer);
      timer = setTimeout(() => reload(why), debounceMs);
    };
    const watchers: FSWatcher[] = [];
    const dirs = new Set<string>();
    for (const path of paths) {
      const isDir = await stat(path).then(
        (s) => s.isDirectory(),
        () => false,
      );
      dirs.add(isDir ? path : dirname(path));
    }
    for (const dir of options.files === false ? [] : dirs) {
      try {
        // Any change in the directory counts: a Kubernetes ConfigMap, for one, swaps a `..data`
        // symlink rather than the YAML files. A reload that changes nothing logs nothing.
        const watcher = watchPath(dir, (_event, name) => schedule(`changed: ${String(name ?? dir)}`));
        watcher.on('error', (err) => logger.warn({ dir, err: err.message }, 'policy watch failed; reload with SIGHUP'));
        watchers.push(watcher);
      } catch (err) {
        logger.warn({ dir, err: (err as Error).message }, 'cannot watch the policy directory; reload with SIGHUP');
      }
    }
    const onSignal = (): void => reload(`signal ${options.signal}`);
    if (options.signal) process.on(options.signal, onSignal);
    return () => {
      clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
      if (options.signal) process.off(options.signal, onSignal);
    };
  }
}
