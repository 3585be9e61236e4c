/**
 * What a toolgate process loads at start: its payload-encryption keys, and the policy in force
 * (loaded, then watched: edits take effect without a restart).
 */
import type { Logger } from 'pino';
import { loadKeyring, type CodecKeyring } from '../codec/index.js';
import type { Config } from '../config.js';
import { manifestTrustFromConfig } from '../policy/index.js';
import { PolicyStore } from '../policy/store.js';
import { onAbort } from './lifecycle.js';

/**
 * The payload-encryption keys of this process: `TOOLGATE_CODEC_KEYS`, else `TOOLGATE_CODEC_KEYS_FILE`,
 * else the key file under the state directory. Only `toolgate dev` creates that file (`create`);
 * every other process refuses to start without it, naming the three ways to provide keys,
 * because a key of its own could not read what the rest of the deployment wrote.
 */
export async function codecKeyring(config: Config, options: { create?: boolean } = {}): Promise<CodecKeyring> {
  return loadKeyring({ stateDir: config.stateDir, create: options.create ?? false });
}

/**
 * The policy in force (`TOOLGATE_POLICY`), loaded with the deployment's manifest signers and
 * watched until `signal` aborts. A policy that does not load is logged, and every request is
 * denied until it is fixed.
 */
export async function loadPolicyStore(config: Config, logger: Logger, signal?: AbortSignal): Promise<PolicyStore> {
  // The deployment's manifest signers (never the policy files') check every load and reload; an unusable signers file stops the process.
  const store = new PolicyStore({ manifestTrust: await manifestTrustFromConfig(config) });
  const state = await store.load(config.policyPaths);
  if (state.error) {
    logger.error({ err: state.error.message }, 'policy failed to load: every request will be denied until it is fixed');
  } else {
    logger.info({ files: state.policy.files, digest: state.policy.digest }, 'policy loaded');
  }
  // Edits take effect without a restart; a broken edit is logged and the policy in force stays.
  const stop = await store.watch(config.policyPaths, { logger, signal: 'SIGHUP' });
  if (signal) onAbort(signal, stop);
  return store;
}
