/**
 * The audit-signing key on disk (created by `toolgate dev` and `audit keygen`) and the public
 * keys verification is given, by the key id chain.ts writes in every header.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generateAuditKeyPair, keyIdOf } from './chain.js';

/** Public keys by key id (the id chain.ts writes in every header); a private key stands for its public half. */
export function keysById(publicKeys: readonly (string | KeyObject)[]): Map<string, KeyObject> {
  const map = new Map<string, KeyObject>();
  for (const key of publicKeys) {
    const object = typeof key === 'string' ? createPublicKey(key) : key.type === 'private' ? createPublicKey(key) : key;
    map.set(keyIdOf(object), object);
  }
  return map;
}

/** The audit key files of a state directory (or of `toolgate audit keygen --out`). */
export interface AuditKeyFiles {
  privateKeyFile: string;
  publicKeyFile: string;
}

/**
 * Makes sure the audit-signing key pair exists (what `toolgate dev` does at start, like `audit
 * keygen`): never overwrites, writes the public half if only it is missing. Returns its key id.
 */
export async function ensureAuditKeyPair(files: AuditKeyFiles): Promise<{ keyId: string; created: boolean }> {
  let pem: string | undefined;
  try {
    pem = await readFile(files.privateKeyFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (pem === undefined) {
    const pair = generateAuditKeyPair();
    await mkdir(dirname(files.privateKeyFile), { recursive: true, mode: 0o700 });
    try {
      await writeFile(files.privateKeyFile, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process created it first: use theirs.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return ensureAuditKeyPair(files);
      throw err;
    }
    await writeFile(files.publicKeyFile, pair.publicKeyPem, { mode: 0o644, flag: 'w' });
    return { keyId: pair.keyId, created: true };
  }
  const publicKey = createPublicKey(createPrivateKey(pem));
  try {
    await writeFile(files.publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }).toString(), { mode: 0o644, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return { keyId: keyIdOf(publicKey), created: false };
}

/** Reads public keys for verification: each file a public key (SPKI PEM), or a private key whose public half is taken. */
export async function loadAuditPublicKeys(files: readonly string[]): Promise<KeyObject[]> {
  const keys: KeyObject[] = [];
  for (const file of files) {
    const pem = await readFile(file, 'utf8');
    keys.push(pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem));
  }
  return keys;
}
