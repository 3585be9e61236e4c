/**
 * Local Ed25519 key pairs under the state directory, created on first use. The private key file is
 * created atomically and exclusively (write a temporary file, then hard-link it into place), so two
 * processes starting at once agree on one key; the public key file is always derived from it.
 */
import { createPublicKey, randomUUID } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { exportPKCS8, generateKeyPair } from 'jose';

/** Where a local key pair lives. */
export interface KeyPaths {
  privateKeyFile: string;
  publicKeyFile: string;
}

/** Creates the Ed25519 key pair at `paths` if needed; returns whether this call created the private key. */
export async function ensureEd25519KeyPair(paths: KeyPaths): Promise<boolean> {
  const created = await createPrivateKeyOnce(paths.privateKeyFile);
  const publicPem = publicKeyPemFrom(await readFile(paths.privateKeyFile, 'utf8'));
  const existing = await readFile(paths.publicKeyFile, 'utf8').catch(() => undefined);
  if (existing !== publicPem) {
    // Written aside and renamed into place: a process starting at the same moment never reads half a key.
    await mkdir(dirname(paths.publicKeyFile), { recursive: true });
    const temporary = `${paths.publicKeyFile}.${randomUUID()}.tmp`;
    await writeFile(temporary, publicPem);
    await rename(temporary, paths.publicKeyFile);
  }
  return created;
}

/** The SPKI PEM public key of a PKCS#8 PEM private key. */
export function publicKeyPemFrom(privateKeyPem: string): string {
  return createPublicKey(privateKeyPem).export({ type: 'spki', format: 'pem' }).toString();
}

async function createPrivateKeyOnce(file: string): Promise<boolean> {
  if (
    await readFile(file).then(
      () => true,
      () => false,
    )
  )
    return false;
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const temporary = `${file}.${randomUUID()}.tmp`;
  await writeFile(temporary, await exportPKCS8(privateKey), { mode: 0o600, flag: 'wx' });
  try {
    await link(temporary, file);
    await chmod(file, 0o600);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false; // another process won the race: use its key
    throw err;
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}
