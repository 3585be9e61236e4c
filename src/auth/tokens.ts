/**
 * Approver identity: bearer JWTs signed with Ed25519, verified with pinned algorithm, issuer,
 * audience, explicit `typ` and required expiry (RFC 8725). The embedded default signs them with a
 * local key pair under `.toolgate/keys/`, created on first use and never committed.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SignJWT, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8, importSPKI, jwtVerify, type CryptoKey } from 'jose';
import { z } from 'zod';
import { ApproverSchema, formatIssues, type Approver } from '../shared/index.js';

/** The only signing algorithm toolgate issues and accepts for approver tokens. */
export const APPROVER_TOKEN_ALG = 'EdDSA';
/** The explicit JWT type of approver tokens, so no other JWT can be replayed as one. */
export const APPROVER_TOKEN_TYP = 'toolgate-approver+jwt';
/** Default issuer of the local token issuer. */
export const DEFAULT_ISSUER = 'toolgate-local';
/** Audience of approver tokens. */
export const APPROVER_AUDIENCE = 'toolgate-approvals';

/** Where the local key pair lives. */
export interface KeyPaths {
  privateKeyFile: string;
  publicKeyFile: string;
}

/** The default key paths under a state directory. */
export function defaultKeyPaths(stateDir: string): KeyPaths {
  return {
    privateKeyFile: join(stateDir, 'keys', 'approver-token.key.pem'),
    publicKeyFile: join(stateDir, 'keys', 'approver-token.pub.pem'),
  };
}

/** Creates the local Ed25519 key pair if it does not exist yet; returns whether it was created. */
export async function ensureLocalKeyPair(paths: KeyPaths): Promise<boolean> {
  if (existsSync(paths.privateKeyFile) && existsSync(paths.publicKeyFile)) return false;
  const { privateKey, publicKey } = await generateKeyPair(APPROVER_TOKEN_ALG, { crv: 'Ed25519', extractable: true });
  await mkdir(dirname(paths.privateKeyFile), { recursive: true, mode: 0o700 });
  await writeFile(paths.privateKeyFile, await exportPKCS8(privateKey), { mode: 0o600 });
  await chmod(paths.privateKeyFile, 0o600);
  await mkdir(dirname(paths.publicKeyFile), { recursive: true });
  await writeFile(paths.publicKeyFile, await exportSPKI(publicKey));
  return true;
}

/** What an approver token asserts. */
export interface ApproverClaims {
  sub: string;
  tenant: string;
  groups: string[];
}

/** Mints an approver token with the local private key. */
export async function issueApproverToken(
  claims: ApproverClaims,
  options: { privateKeyPem: string; ttlSeconds?: number; issuer?: string },
): Promise<string> {
  const approver = ApproverSchema.safeParse({ id: claims.sub, tenant: claims.tenant, groups: claims.groups });
  if (!approver.success) throw new TokenError(`cannot issue token: ${formatIssues(approver.error).join('; ')}`);
  const key = await importPKCS8(options.privateKeyPem, APPROVER_TOKEN_ALG);
  return new SignJWT({ tenant: claims.tenant, groups: claims.groups })
    .setProtectedHeader({ alg: APPROVER_TOKEN_ALG, typ: APPROVER_TOKEN_TYP })
    .setSubject(claims.sub)
    .setIssuer(options.issuer ?? DEFAULT_ISSUER)
    .setAudience(APPROVER_AUDIENCE)
    .setIssuedAt()
    .setNotBefore('0s')
    .setExpirationTime(Math.floor(Date.now() / 1000) + (options.ttlSeconds ?? 8 * 3600))
    .sign(key);
}

/** A token was missing, malformed, badly signed, expired or carried invalid claims. */
export class TokenError extends Error {
  override readonly name = 'TokenError';
}

const claimsSchema = z.object({
  sub: z.string({ error: 'sub claim is required' }),
  tenant: z.string({ error: 'tenant claim is required' }),
  groups: z.array(z.string(), { error: 'groups claim must be an array of strings' }).default([]),
});

/** Verifies approver tokens against a public key. */
export class ApproverTokenVerifier {
  private constructor(
    private readonly key: CryptoKey,
    private readonly issuer: string,
  ) {}

  /** A verifier for the local issuer's public key (PEM, SPKI). */
  static async fromPublicKeyPem(pem: string, issuer = DEFAULT_ISSUER): Promise<ApproverTokenVerifier> {
    return new ApproverTokenVerifier(await importSPKI(pem, APPROVER_TOKEN_ALG), issuer);
  }

  /** A verifier reading the public key file. */
  static async fromPublicKeyFile(file: string, issuer = DEFAULT_ISSUER): Promise<ApproverTokenVerifier> {
    return ApproverTokenVerifier.fromPublicKeyPem(await readFile(file, 'utf8'), issuer);
  }

  /** The approver a token identifies; throws `TokenError` saying what is wrong with it. */
  async verify(token: string): Promise<Approver> {
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: [APPROVER_TOKEN_ALG],
        issuer: this.issuer,
        audience: APPROVER_AUDIENCE,
        typ: APPROVER_TOKEN_TYP,
        requiredClaims: ['exp', 'sub', 'iss', 'aud'],
      }));
    } catch (err) {
      throw new TokenError(`invalid token: ${(err as Error).message}`, { cause: err });
    }
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) throw new TokenError(`invalid token: ${formatIssues(claims.error).join('; ')}`);
    const approver = ApproverSchema.safeParse({ id: claims.data.sub, tenant: claims.data.tenant, groups: claims.data.groups });
    if (!approver.success) throw new TokenError(`invalid token: ${formatIssues(approver.error).join('; ')}`);
    return approver.data;
  }
}
