/**
 * Building the notifier from the environment: `TOOLGATE_WEBHOOKS` (comma-separated
 * `slack=URL`, `json=URL` or bare URLs), `TOOLGATE_APPROVERS` (the approver directory YAML, which
 * enables per-approver links) and the link-signing key settings read by `createLinkSigner`.
 */
import type { Logger } from 'pino';
import { createLinkSigner } from '../auth/config.js';
import { AuthConfigError } from '../auth/errors.js';
import { loadApproverDirectory } from './directory.js';
import { LogNotifier, WebhookNotifier, WebhookTargetError, parseWebhookTarget, type Notifier, type WebhookTarget } from './notifier.js';

/** What `createNotifier` needs. */
export interface NotifierConfig {
  /** Base URL of the approval API as approvers reach it; links point under `/v1/links/`. */
  publicUrl: string;
  /** State directory holding the local link-signing key pair. */
  stateDir: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** Time allowed for each webhook POST, in milliseconds. @default 5000 */
  timeoutMs?: number;
}

/** The webhook targets in `TOOLGATE_WEBHOOKS`; throws `AuthConfigError` naming the variable. */
export function webhookTargetsFromEnv(env: NodeJS.ProcessEnv = process.env): WebhookTarget[] {
  const entries = (env.TOOLGATE_WEBHOOKS ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
  return entries.map((entry) => {
    try {
      return parseWebhookTarget(entry);
    } catch (err) {
      if (err instanceof WebhookTargetError) throw new AuthConfigError('TOOLGATE_WEBHOOKS', err.message, { cause: err });
      throw err;
    }
  });
}

/**
 * The notifier the environment asks for: a `LogNotifier` when no webhook is configured, else a
 * `WebhookNotifier`, minting per-approver links when `TOOLGATE_APPROVERS` names a directory.
 */
export async function createNotifier(config: NotifierConfig): Promise<Notifier> {
  const env = config.env ?? process.env;
  const targets = webhookTargetsFromEnv(env);
  if (targets.length === 0) return new LogNotifier(config.logger);
  const directoryFile = env.TOOLGATE_APPROVERS?.trim();
  if (!directoryFile) {
    config.logger.warn('TOOLGATE_APPROVERS is not set: notifications carry the review URL but no one-click links');
    return new WebhookNotifier(targets, { logger: config.logger, timeoutMs: config.timeoutMs });
  }
  let publicUrl: URL;
  try {
    publicUrl = new URL(config.publicUrl);
  } catch (err) {
    throw new AuthConfigError('TOOLGATE_PUBLIC_URL', `must be an absolute URL, got ${JSON.stringify(config.publicUrl)}`, { cause: err });
  }
  const [directory, signer] = await Promise.all([loadApproverDirectory(directoryFile), createLinkSigner({ stateDir: config.stateDir }, env)]);
  return new WebhookNotifier(targets, {
    logger: config.logger,
    timeoutMs: config.timeoutMs,
    links: { signer, directory, publicUrl: publicUrl.toString() },
  });
}
