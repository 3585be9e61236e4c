/**
 * The inbox's settings from the environment: the session key (a file, created on first use under
 * the state directory when none is named) and the OIDC client registration.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { ApproverVerifier } from '../auth/tokens.js';
import type { InboxOidcOptions } from './oidc.js';
import type { InboxOptions } from './inbox-context.js';
import { MIN_SESSION_KEY_BYTES } from './session.js';

/** Key material from a key file: base64 of at least 32 bytes, or the raw bytes themselves. */
function keyFromFileContent(content: Buffer, file: string): Uint8Array {
  const text = content.toString('utf8').trim();
  if (/^[A-Za-z0-9+/_=-]+$/.test(text)) {
    const decoded = Buffer.from(text, 'base64');
    if (decoded.length >= MIN_SESSION_KEY_BYTES) return decoded;
  }
  if (content.length >= MIN_SESSION_KEY_BYTES) return content;
  throw new Error(`the inbox session key in ${file} is shorter than ${MIN_SESSION_KEY_BYTES} bytes`);
}

/**
 * The inbox session key: `TOOLGATE_SESSION_KEY_FILE`, else `<stateDir>/keys/inbox-session.key`,
 * created (32 random bytes, base64, mode 0600) on first use. Several API replicas behind one
 * address must share the file, or a session opened on one is unknown to the others.
 */
export async function loadSessionKey(stateDir: string, env: NodeJS.ProcessEnv = process.env): Promise<Uint8Array> {
  const named = env.TOOLGATE_SESSION_KEY_FILE?.trim();
  const file = named || join(stateDir, 'keys', 'inbox-session.key');
  try {
    return keyFromFileContent(await readFile(file), file);
  } catch (err) {
    if (named || (err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`TOOLGATE_SESSION_KEY_FILE: cannot use ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  try {
    await writeFile(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return keyFromFileContent(await readFile(file), file);
}

/**
 * The inbox's options from the environment:
 * - `TOOLGATE_SESSION_KEY_FILE` (see {@link loadSessionKey});
 * - `TOOLGATE_INBOX_SECURE_COOKIES` = true|false (default: true when NODE_ENV=production);
 * - OIDC sign-in when `TOOLGATE_OIDC_CLIENT_ID` is set: `TOOLGATE_OIDC_ISSUER` (shared with the
 *   API's verifier), `TOOLGATE_OIDC_REDIRECT_URI` (required), `TOOLGATE_OIDC_CLIENT_SECRET_FILE`
 *   (optional; a public client relies on PKCE alone), `TOOLGATE_OIDC_SCOPES` (default `openid profile`).
 */
export async function inboxOptionsFromEnv(
  base: { stateDir: string; apiBaseUrl: string; verifier: ApproverVerifier; logger: Logger },
  env: NodeJS.ProcessEnv = process.env,
): Promise<InboxOptions> {
  const secureText = env.TOOLGATE_INBOX_SECURE_COOKIES?.trim().toLowerCase();
  if (secureText && secureText !== 'true' && secureText !== 'false') throw new Error('TOOLGATE_INBOX_SECURE_COOKIES must be true or false');
  const secureCookies = secureText ? secureText === 'true' : env.NODE_ENV === 'production';
  let oidc: InboxOidcOptions | undefined;
  const clientId = env.TOOLGATE_OIDC_CLIENT_ID?.trim();
  if (clientId) {
    const issuer = env.TOOLGATE_OIDC_ISSUER?.trim();
    const redirectUri = env.TOOLGATE_OIDC_REDIRECT_URI?.trim();
    if (!issuer) throw new Error('TOOLGATE_OIDC_ISSUER is required when TOOLGATE_OIDC_CLIENT_ID is set');
    if (!redirectUri)
      throw new Error('TOOLGATE_OIDC_REDIRECT_URI is required when TOOLGATE_OIDC_CLIENT_ID is set (e.g. https://gate.example.com/inbox/signin/callback)');
    const secretFile = env.TOOLGATE_OIDC_CLIENT_SECRET_FILE?.trim();
    const clientSecret = secretFile ? (await readFile(secretFile, 'utf8')).trim() : undefined;
    const scopes = env.TOOLGATE_OIDC_SCOPES?.split(/[\s,]+/).filter(Boolean);
    oidc = { issuer, clientId, redirectUri, ...(clientSecret ? { clientSecret } : {}), ...(scopes && scopes.length > 0 ? { scopes } : {}) };
  }
  return {
    apiBaseUrl: base.apiBaseUrl,
    verifier: base.verifier,
    logger: base.logger,
    sessionKey: await loadSessionKey(base.stateDir, env),
    secureCookies,
    ...(oidc ? { oidc } : {}),
  };
}
