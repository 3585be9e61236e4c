/**
 * The keys of the trust boundary, on the Node side: Ed25519 signing keys of the front door
 * (request assertions) and of the approval API (decision assertions), the public keys workers
 * trust, and the workers' evaluation-seal secret. Key ids are RFC 7638 JWK thumbprints, so a key
 * names itself and two processes agree on its id without configuration.
 */
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { TrustedKey } from '../shared/assertions.js';
import type { KeyPaths } from '../auth/keys.js';
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';

/** A private signing key with its id. */
export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  /** What verifiers need: the id and the raw public key. */
  trusted: TrustedKey;
}

/** A key file or PEM that is not a usable Ed25519 key; the message names where it came from. */
export class TrustKeyError extends ToolgateError {
  override readonly name = 'TrustKeyError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('trust_key_invalid', message, options);
  }
}

/** The trusted form (id and raw public key) of an Ed25519 public or private key. */
export async function trustedKeyOf(key: KeyObject): Promise<TrustedKey> {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new TrustKeyError(`expected an Ed25519 key, got ${publicKey.asymmetricKeyType ?? 'a symmetric key'}`);
  const jwk = publicKey.export({ format: 'jwk' }) as JWK;
  return { kid: await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk.x as string }), x: jwk.x as string };
}

/** A signing key from a PKCS#8 PEM Ed25519 private key; `source` names it in errors. */
export async function signingKeyFromPem(pem: string, source: string): Promise<SigningKey> {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new TrustKeyError(`${source}: not a PEM private key (${(err as Error).message})`);
  }
  try {
    const trusted = await trustedKeyOf(privateKey);
    return { kid: trusted.kid, privateKey, trusted };
  } catch (err) {
    throw new TrustKeyError(`${source}: ${(err as Error).message}`);
  }
}

/** A trusted key from an SPKI PEM Ed25519 public key (or a private key, whose public half is taken). */
export async function trustedKeyFromPem(pem: string, source: string): Promise<TrustedKey> {
  try {
    return await trustedKeyOf(pem.includes('PRIVATE KEY') ? createPrivateKey(pem) : createPublicKey(pem));
  } catch (err) {
    throw new TrustKeyError(`${source}: not a usable Ed25519 key (${(err as Error).message})`);
  }
}

/** The default paths of the boundary's key pairs and seal under a state directory. */
export function defaultTrustKeyPaths(stateDir: string): { request: KeyPaths; decision: KeyPaths; sealFile: string } {
  const keys = join(stateDir, 'keys');
  return {
    request: { privateKeyFile: join(keys, 'request-signing.key.pem'), publicKeyFile: join(keys, 'request-signing.pub.pem') },
    decision: { privateKeyFile: join(keys, 'decision-signing.key.pem'), publicKeyFile: join(keys, 'decision-signing.pub.pem') },
    sealFile: join(keys, 'worker-seal.key'),
  };
}

/**
 * Reads the workers' 32-byte seal secret (base64 text), creating it on first use when `create`
 * (atomically and exclusively, mode 0600, so concurrent workers agree on one secret).
 */
export async function loadSealSecret(file: string, options: { create: boolean }): Promise<Buffer> {
  const read = async () => {
    const secret = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
    if (secret.length < 32) throw new TrustKeyError(`${file}: the worker seal secret must be at least 32 bytes, base64`);
    return secret;
  };
  try {
    return await read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !options.create) {
      if (err instanceof TrustKeyError) throw err;
      throw new TrustKeyError(`${file}: cannot read the worker seal secret (${(err as Error).message})`);
    }
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${randomBytes(8).toString('hex')}.tmp`;
  await writeFile(temporary, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(temporary, file);
    await chmod(file, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // another worker won the race: use its secret
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
  return read();
}
