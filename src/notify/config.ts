/**
 * Building the notifier from the environment: `TOOLGATE_WEBHOOKS` (comma-separated shared targets,
 * `slack=URL`, `json=URL` or bare URLs, which get the review URL only), `TOOLGATE_APPROVERS` (the
 * approver directory YAML, whose `notify` targets receive each approver's own one-click link) and
 * the link-signing key settings read by `createLinkSigner`.
 */
import type { Logger } from 'pino';
import { createLinkSigner } from '../auth/config.js';
import { AuthConfigError } from '../auth/errors.js';
import { loadApproverDirectory } from './directory.js';
import { ConsoleNotifier, FanoutNotifier, LogNotifier } from './local-notifiers.js';
import { WebhookNotifier, WebhookTargetError, parseWebhookTarget, type Notifier, type WebhookTarget } from './notifier.js';

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
  /**
   * Also print one line per notification here (`toolgate dev` passes stdout): the review URL of
   * each waiting request and how each ended, as a shared message (never a decision link).
   */
  console?: (text: string) => void;
}

/** The webhook targets in `TOOLGATE_WEBHOOKS`; throws `AuthConfigError` naming the variable. */
export function webhookTargetsFromEnv(env: NodeJS.ProcessEnv = process.env): WebhookTarget[] {
  const entries = (env.TOOLGATE_WEBHOOKS ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
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
 * The notifier the environment asks for. With `TOOLGATE_APPROVERS`, approvers who have a `notify`
 * target get their own one-click links there; `TOOLGATE_WEBHOOKS` targets get the review URL only.
 * A `LogNotifier` when neither a shared nor a personal target is configured. With `console`, every
 * notification is also printed there. Throws `AuthConfigError` naming the setting at fault.
 */
export async function createNotifier(config: NotifierConfig): Promise<Notifier> {
  const configured = await configuredNotifier(config);
  return config.console ? new FanoutNotifier([new ConsoleNotifier(config.console), configured]) : configured;
}

/** The notifier of the environment's settings alone (see `createNotifier`). */
async function configuredNotifier(config: NotifierConfig): Promise<Notifier> {
  const env = config.env ?? process.env;
  const targets = webhookTargetsFromEnv(env);
  const directoryFile = env.TOOLGATE_APPROVERS?.trim();
  if (!directoryFile) {
    if (targets.length === 0) return new LogNotifier(config.logger);
    config.logger.warn('TOOLGATE_APPROVERS is not set: notifications carry the review URL but no one-click links');
    return new WebhookNotifier(targets, { logger: config.logger, timeoutMs: config.timeoutMs });
  }
  let publicUrl: URL;
  try {
    publicUrl = new URL(config.publicUrl);
  } catch (err) {
    throw new AuthConfigError('TOOLGATE_PUBLIC_URL', `must be an absolute URL, got ${JSON.stringify(config.publicUrl)}`, { cause: err });
  }
  const directory = await loadApproverDirectory(directoryFile);
  const personal = directory.withPersonalTargets().length;
  if (personal === 0) {
    // Links only ever go to an approver's own target, so without any there is nothing to mint.
    if (targets.length === 0) return new LogNotifier(config.logger);
    config.logger.warn('no approver in TOOLGATE_APPROVERS has a notify target: notifications carry the review URL but no one-click links');
    return new WebhookNotifier(targets, { logger: config.logger, timeoutMs: config.timeoutMs });
  }
  const signer = await createLinkSigner({ stateDir: config.stateDir }, env);
  try {
    return new WebhookNotifier(targets, {
      logger: config.logger,
      timeoutMs: config.timeoutMs,
      links: { signer, directory, publicUrl: publicUrl.toString() },
    });
  } catch (err) {
    // A personal target that is also a shared webhook: name the shared setting, the one that leaks.
    if (err instanceof WebhookTargetError) throw new AuthConfigError('TOOLGATE_WEBHOOKS', err.message, { cause: err });
    throw err;
  }
}
