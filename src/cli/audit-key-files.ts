/**
 * The audit-signing key files of a process: where `audit keygen` writes the pair, which private key
 * this process signs with, and which public keys `audit verify` checks against.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadAuditPublicKeys } from '../audit/keys.js';
import type { Config } from '../config.js';

/** Where `audit keygen` writes the signing key pair by default, and where `audit export` looks for it. */
export function defaultAuditKeyFiles(stateDir: string): { privateKeyFile: string; publicKeyFile: string } {
  return { privateKeyFile: join(stateDir, 'keys', 'audit-signing.key.pem'), publicKeyFile: join(stateDir, 'keys', 'audit-signing.pub.pem') };
}

/**
 * The audit-signing private key file of this process: `TOOLGATE_AUDIT_SIGNING_KEY_FILE` (the
 * archiver's secret in compose), else `<state dir>/keys/audit-signing.key.pem`.
 */
export function auditSigningKeyFile(config: Config, env: NodeJS.ProcessEnv = process.env): string {
  return env.TOOLGATE_AUDIT_SIGNING_KEY_FILE ? resolve(env.TOOLGATE_AUDIT_SIGNING_KEY_FILE) : defaultAuditKeyFiles(config.stateDir).privateKeyFile;
}

/** Reads the audit-signing private key, with an error that says how to get one (or, `otherwise`, how to name another). */
export async function readAuditSigningKey(file: string, otherwise = 'set TOOLGATE_AUDIT_SIGNING_KEY_FILE'): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(
      `cannot read the audit signing key ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); create one with: toolgate audit keygen, or ${otherwise}`,
    );
  }
  return createPrivateKey(pem);
}

/**
 * The public keys a verification uses: the files given (public keys, or private keys whose
 * public half is taken), else `<state dir>/keys/audit-signing.pub.pem`, else the public half of
 * this process's signing key.
 */
export async function auditVerifyKeys(config: Config, files: readonly string[]): Promise<KeyObject[]> {
  if (files.length > 0) return loadAuditPublicKeys(files);
  const { publicKeyFile } = defaultAuditKeyFiles(config.stateDir);
  const candidates = [publicKeyFile, auditSigningKeyFile(config)];
  for (const file of candidates) {
    try {
      return await loadAuditPublicKeys([file]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  throw new Error(`no audit public key: pass --key <file> (none at ${candidates.join(' or ')})`);
}
