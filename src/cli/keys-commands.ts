/** `toolgate keys init`: every key a deployment needs, created once, with who must hold which. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { defaultKeyPaths, ensureLocalKeyPair } from '../auth/tokens.js';
import { defaultLinkKeyPaths } from '../approvals/links.js';
import { ensureEd25519KeyPair } from '../auth/keys.js';
import { loadSessionKey } from '../inbox/index.js';
import { defaultKeyringFile, ensureKeyringFile } from '../codec/index.js';
import { defaultAuditKeyFiles } from './audit-key-files.js';
import { loadConfig } from '../config.js';
import { defaultTrustKeyPaths, loadSealSecret } from '../trust/keys.js';

/** Adds `keys init` to the program. */
export function registerKeysCommands(program: Command): void {
  program
    .command('keys')
    .description('The keys of a deployment')
    .command('init')
    .description('Create (never overwrite) every key under <dir>/keys/ and print which process must hold which')
    .option('--dir <dir>', 'the state directory (default: TOOLGATE_STATE_DIR or .toolgate)')
    .action(async (options: { dir?: string }) => {
      const dir = resolve(options.dir ?? loadConfig().stateDir);
      const token = defaultKeyPaths(dir);
      const link = defaultLinkKeyPaths(dir);
      const trust = defaultTrustKeyPaths(dir);
      const codec = defaultKeyringFile(dir);
      const audit = defaultAuditKeyFiles(dir);
      const made: [string, boolean][] = [
        [token.privateKeyFile, await ensureLocalKeyPair(token)],
        [link.privateKeyFile, await ensureEd25519KeyPair(link)],
        [trust.request.privateKeyFile, await ensureEd25519KeyPair(trust.request)],
        [trust.decision.privateKeyFile, await ensureEd25519KeyPair(trust.decision)],
        [codec, (await ensureKeyringFile(codec)).created],
        [audit.privateKeyFile, await ensureEd25519KeyPair(audit)],
      ];
      await loadSealSecret(trust.sealFile, { create: true });
      // The inbox's cookie key: every API replica must share it, or a session opened on one is refused by another.
      const sessionFile = join(dir, 'keys', 'inbox-session.key');
      const sessionExisted = existsSync(sessionFile);
      await loadSessionKey(dir, { ...process.env, TOOLGATE_SESSION_KEY_FILE: '' });
      made.push([sessionFile, !sessionExisted]);
      for (const [file, created] of made) process.stdout.write(`${created ? 'created ' : 'kept    '} ${file}\n`);
      process.stdout.write(
        [
          '',
          'Who holds what (an agent holds only its agent token):',
          `  token issuer (toolgate token issue, or your IdP):  ${token.privateKeyFile}`,
          `  API:     TOOLGATE_TOKEN_PUBLIC_KEY_FILE=${token.publicKeyFile}`,
          `           TOOLGATE_REQUEST_SIGNING_KEY_FILE=${trust.request.privateKeyFile}`,
          `           TOOLGATE_DECISION_SIGNING_KEY_FILE=${trust.decision.privateKeyFile}`,
          `           TOOLGATE_LINK_PUBLIC_KEY_FILE=${link.publicKeyFile}`,
          `           TOOLGATE_SESSION_KEY_FILE=${sessionFile}`,
          `           TOOLGATE_CODEC_KEYS_FILE=${codec}`,
          `  worker:  TOOLGATE_TRUSTED_REQUEST_KEYS=${trust.request.publicKeyFile}`,
          `           TOOLGATE_TRUSTED_DECISION_KEYS=${trust.decision.publicKeyFile}`,
          `           TOOLGATE_WORKER_SEAL_KEY_FILE=${trust.sealFile}`,
          `           TOOLGATE_LINK_PRIVATE_KEY_FILE=${link.privateKeyFile}`,
          `           TOOLGATE_CODEC_KEYS_FILE=${codec}`,
          `  archiver: TOOLGATE_AUDIT_SIGNING_KEY_FILE=${audit.privateKeyFile}`,
          `           TOOLGATE_CODEC_KEYS_FILE=${codec}`,
          `  auditors (toolgate audit verify --key): ${audit.publicKeyFile}`,
          '',
        ].join('\n'),
      );
    });
}
