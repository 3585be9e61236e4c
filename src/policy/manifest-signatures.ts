/**
 * Co-signed tool manifests. A manifest entry may carry Ed25519 signatures over its digest — the
 * very digest a policy decision records as `toolDigest` and the execution activity compares right
 * before acting — each made by a key of one role (e.g. `security` and the tool's `owner`) with
 * `toolgate manifest sign`. Which keys belong to which role, and which roles every entry needs,
 * come from the deployment (`TOOLGATE_MANIFEST_SIGNERS`, `TOOLGATE_MANIFEST_REQUIRE`), never from
 * the policy files: those files are what the signatures protect, so whoever can edit them must not
 * also be able to say whose signature counts.
 *
 * With a trust configuration, every signature present must verify (an unknown role or key, a key
 * of another role, a signature over other bytes is a load error, never silently dropped) and every
 * required role must have signed; the verified signers become part of the tool's identity in each
 * decision. Without one, signatures are carried but not checked, and no signer is recorded.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { keyIdOf } from '../audit/chain.js';
import type { Config } from '../config.js';
import { IDENTIFIER_PATTERN, canonicalJson, canonicalSha256, type ManifestSigner } from '../shared/index.js';
import { formatPolicyIssue } from './errors.js';
import { readYaml } from './source.js';
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';

/** A manifest signing key's id: `k-` and 16 hex digits of the SHA-256 of its SPKI DER (the prefix keeps YAML from reading it as a number). */
export const MANIFEST_KEY_ID_PATTERN = /^k-[0-9a-f]{16}$/;

/** An Ed25519 signature (64 bytes) in base64url without padding. */
export const MANIFEST_SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{86}$/;

/** What a manifest signature is over, named so that no other signature of the same key can be taken for one. */
export const MANIFEST_SIGNATURE_PURPOSE = 'toolgate.manifest-signature.v1';

/** Most signatures one entry may carry. */
export const MAX_MANIFEST_SIGNATURES = 16;

/** One signature beside a manifest entry, as written under `signatures:`. */
export interface ManifestSignature {
  role: string;
  /** The signing key's id (`k-<16 hex>`). */
  key: string;
  /** Base64url Ed25519 signature over {@link manifestSignatureMessage}. */
  sig: string;
}

/**
 * The digest that names a manifest entry: SHA-256 hex of the RFC 8785 canonical JSON of
 * `{ name, manifest }`, the entry as written minus its `signatures` (a signature cannot be part
 * of what it signs; entries without signatures keep the digest they always had), plus, for an
 * `mcp` entry, `mcp_server`: the definition of the server it names, as written. The loader, the
 * decision (`toolDigest`), the execution check and the signatures all use this one function.
 */
export function manifestDigest(name: string, raw: unknown, mcpServer?: unknown): string {
  let manifest = raw;
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && Object.hasOwn(raw, 'signatures')) {
    const rest: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
    delete rest.signatures;
    manifest = rest;
  }
  // An `mcp` entry only names its server; what the worker runs (command, args, env, URL, headers)
  // is the server's definition under `mcp_servers`, so that definition is part of the entry's
  // identity — signed with it, and checked again right before execution.
  return canonicalSha256(mcpServer === undefined ? { name, manifest } : { name, manifest, mcp_server: mcpServer });
}

/** The key id of a manifest signing key (public key, or a private key whose public half is taken). */
export function manifestKeyId(key: KeyObject | string): string {
  const publicKey = typeof key === 'string' ? createPublicKey(key) : key.type === 'private' ? createPublicKey(key) : key;
  return `k-${keyIdOf(publicKey)}`;
}

/**
 * The bytes a signature covers: canonical JSON of the purpose, the tool, the role and the digest.
 * The role is inside, so a signature made as `security` cannot be relabelled `owner`; the digest
 * already covers the tool's name, so a signature copied onto another entry does not verify.
 */
export function manifestSignatureMessage(tool: string, role: string, digest: string): Buffer {
  return Buffer.from(canonicalJson({ purpose: MANIFEST_SIGNATURE_PURPOSE, tool, role, digest }), 'utf8');
}

/** Signs the entry `tool` of digest `digest` as `role` with an Ed25519 private key. */
export function signManifestEntry(tool: string, digest: string, role: string, privateKey: KeyObject): ManifestSignature {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519')
    throw new ManifestSigningError('a manifest signing key must be an Ed25519 private key');
  const sig = sign(null, manifestSignatureMessage(tool, role, digest), privateKey).toString('base64url');
  return { role, key: manifestKeyId(privateKey), sig };
}

/** Reads an Ed25519 private key (PKCS#8 PEM) for `toolgate manifest sign`, with errors that say what is wrong. */
export async function readManifestSigningKey(file: string): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new ManifestSigningError(
      `cannot read the signing key ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); create one with: toolgate manifest keygen --out <dir>`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new ManifestSigningError(`${file} is not a PEM private key (the signing key is the *.key.pem file of toolgate manifest keygen)`);
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new ManifestSigningError(`${file} is a ${key.asymmetricKeyType ?? 'non-asymmetric'} key; manifest signatures use Ed25519`);
  return key;
}

/** A signing key could not be used. */
export class ManifestSigningError extends ToolgateError {
  override readonly name = 'ManifestSigningError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('manifest_signing_failed', message, options);
  }
}

/** One public key trusted to sign manifests as one role. */
export interface TrustedManifestKey {
  role: string;
  keyId: string;
  publicKey: KeyObject;
  /** Only these tools may be signed with it (a tool owner's key); absent: any tool. */
  tools?: ReadonlySet<string>;
  /** Where it was read from, for messages. */
  file?: string;
}

/** The deployment's manifest trust: which keys sign as which role, and which roles every entry needs. */
export interface ManifestTrust {
  /** Trusted keys by key id (a key belongs to exactly one role). */
  readonly keys: ReadonlyMap<string, TrustedManifestKey>;
  /** Role names, in the order configured. */
  readonly roles: readonly string[];
  /** Roles every manifest entry must be signed by. */
  readonly require: readonly string[];
  /** Where the configuration came from (`TOOLGATE_MANIFEST_SIGNERS=<file>`), for messages. */
  readonly source: string;
}

/** The manifest trust configuration is unusable; the message names the file, the role and the key. */
export class ManifestTrustError extends ToolgateError {
  override readonly name = 'ManifestTrustError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('manifest_untrusted', message, options);
  }
}

/** A key of a role, as given to {@link manifestTrustOf}. */
export interface ManifestTrustKeyInput {
  publicKey: KeyObject | string;
  tools?: readonly string[];
  file?: string;
}

/**
 * Builds a trust configuration from public keys by role. Refuses a key that is not Ed25519, a key
 * listed under two roles (two required roles must be two different keys, or one holder could
 * co-sign alone) and a required role without keys.
 */
export function manifestTrustOf(
  roles: Record<string, readonly ManifestTrustKeyInput[]>,
  require: readonly string[] = [],
  source = '(in memory)',
): ManifestTrust {
  const keys = new Map<string, TrustedManifestKey>();
  for (const [role, list] of Object.entries(roles)) {
    if (!IDENTIFIER_PATTERN.test(role)) throw new ManifestTrustError(`${source}: role "${role}" must be an identifier (letters, digits and . _ : @ -)`);
    for (const input of list) {
      const where = input.file ?? 'a key';
      let publicKey: KeyObject;
      try {
        publicKey = typeof input.publicKey === 'string' ? createPublicKey(input.publicKey) : input.publicKey;
      } catch (err) {
        throw new ManifestTrustError(`${source}: role ${role}: ${where} is not a PEM public key (${(err as Error).message})`);
      }
      if (publicKey.type !== 'public') throw new ManifestTrustError(`${source}: role ${role}: ${where} is a private key; list the public key (*.pub.pem)`);
      if (publicKey.asymmetricKeyType !== 'ed25519')
        throw new ManifestTrustError(`${source}: role ${role}: ${where} is a ${publicKey.asymmetricKeyType} key; manifest signatures use Ed25519`);
      const keyId = manifestKeyId(publicKey);
      const existing = keys.get(keyId);
      if (existing) {
        throw new ManifestTrustError(
          existing.role === role
            ? `${source}: role ${role} lists key ${keyId} twice${input.file ? ` (${existing.file ?? '?'} and ${input.file})` : ''}`
            : `${source}: key ${keyId} is listed under both ${existing.role} and ${role}; each role needs its own key, or one key holder could co-sign alone`,
        );
      }
      keys.set(keyId, { role, keyId, publicKey, ...(input.tools ? { tools: new Set(input.tools) } : {}), ...(input.file ? { file: input.file } : {}) });
    }
  }
  const configured = Object.keys(roles);
  for (const role of require) {
    if (!configured.includes(role) || (roles[role] ?? []).length === 0) {
      throw new ManifestTrustError(
        `TOOLGATE_MANIFEST_REQUIRE names role ${role}, which has no keys in ${source} (roles there: ${configured.join(', ') || 'none'})`,
      );
    }
  }
  return { keys, roles: configured, require: [...new Set(require)], source };
}

const roleName = z.string().regex(IDENTIFIER_PATTERN, { error: 'role names are identifiers (letters, digits and . _ : @ -)' });
const KeyRefSchema = z.union(
  [
    z.string().min(1),
    z.strictObject({
      key: z.string({ error: 'key must be the path of a public key file' }).min(1),
      tools: z
        .array(z.string().regex(IDENTIFIER_PATTERN, { error: 'tool names are identifiers' }))
        .min(1, { error: 'list at least one tool, or leave tools out' })
        .optional(),
    }),
  ],
  { error: 'each key is a public key file path, or { key: <path>, tools: [tool, ...] }' },
);
const TrustFileSchema = z.record(
  roleName,
  z.array(KeyRefSchema, { error: 'must be a list of public key files' }).min(1, { error: 'must list at least one key' }),
  {
    error: 'must map each role to a list of public key files',
  },
);

/**
 * Reads a manifest trust file (`TOOLGATE_MANIFEST_SIGNERS`): YAML mapping each role to public
 * key files (SPKI PEM, paths relative to the file), each optionally limited to some tools:
 *
 * ```yaml
 * security: [keys/security-alice.pub.pem, keys/security-bob.pub.pem]
 * owner:
 *   - { key: keys/payments-team.pub.pem, tools: [refund_payment] }
 * ```
 */
export async function loadManifestTrust(file: string, require: readonly string[] = []): Promise<ManifestTrust> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ManifestTrustError(
      `cannot read the manifest signers file ${file} (TOOLGATE_MANIFEST_SIGNERS): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const read = readYaml(file, text);
  if (!read.source)
    throw new ManifestTrustError(`the manifest signers file does not parse:\n${read.issues.map((issue) => `  ${formatPolicyIssue(issue)}`).join('\n')}`);
  const parsed = TrustFileSchema.safeParse(read.source.value ?? {});
  if (!parsed.success) {
    const source = read.source;
    const lines = parsed.error.issues.map((issue) =>
      formatPolicyIssue(
        source.issue(
          issue.path.filter((p): p is string | number => typeof p !== 'symbol'),
          issue.message,
        ),
      ),
    );
    throw new ManifestTrustError(`the manifest signers file is not valid:\n${lines.map((line) => `  ${line}`).join('\n')}`);
  }
  const base = dirname(resolve(file));
  const roles: Record<string, ManifestTrustKeyInput[]> = {};
  for (const [role, refs] of Object.entries(parsed.data)) {
    roles[role] = [];
    for (const ref of refs) {
      const path = resolve(base, typeof ref === 'string' ? ref : ref.key);
      let pem: string;
      try {
        pem = await readFile(path, 'utf8');
      } catch (err) {
        throw new ManifestTrustError(`${file}: role ${role}: cannot read key ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      // Never derive a trusted public key from a private key file: it has no business in this file.
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem))
        throw new ManifestTrustError(`${file}: role ${role}: ${path} is a private key; list the public key (*.pub.pem)`);
      roles[role].push({ publicKey: pem, file: path, ...(typeof ref !== 'string' && ref.tools ? { tools: ref.tools } : {}) });
    }
  }
  return manifestTrustOf(roles, require, file);
}

/**
 * The deployment's manifest trust from its configuration (`TOOLGATE_MANIFEST_SIGNERS`,
 * `TOOLGATE_MANIFEST_REQUIRE`), or undefined when no signers file is configured.
 */
export async function manifestTrustFromConfig(config: Pick<Config, 'manifestSignersFile' | 'manifestRequire'>): Promise<ManifestTrust | undefined> {
  if (!config.manifestSignersFile) {
    if (config.manifestRequire.length > 0)
      throw new ManifestTrustError("TOOLGATE_MANIFEST_REQUIRE is set but TOOLGATE_MANIFEST_SIGNERS is not: set it to the file of the roles' public keys");
    return undefined;
  }
  return loadManifestTrust(config.manifestSignersFile, config.manifestRequire);
}

/** A problem with one entry's signatures, at a path inside the entry. */
export interface SignatureProblem {
  /** Path below `manifest.<tool>`: `[]` for the entry itself, `['signatures', i]` for one signature. */
  path: (string | number)[];
  message: string;
}

/**
 * Verifies the signatures of the entry `tool` (of digest `digest`) against `trust`: every
 * signature must verify, and every required role must be among them. Returns the verified
 * signers (sorted by role) and the problems; any problem refuses the entry.
 */
export function verifyManifestSignatures(
  tool: string,
  digest: string,
  signatures: readonly ManifestSignature[] | undefined,
  trust: ManifestTrust,
): { signers: ManifestSigner[]; problems: SignatureProblem[] } {
  const problems: SignatureProblem[] = [];
  const signers: ManifestSigner[] = [];
  const seen = new Set<string>();
  for (const [index, signature] of (signatures ?? []).entries()) {
    const at = (message: string) => problems.push({ path: ['signatures', index], message });
    const { role, key } = signature;
    if (seen.has(role)) {
      at(`role ${role} signed tool ${tool} twice; keep one signature per role`);
      continue;
    }
    seen.add(role);
    if (!trust.roles.includes(role)) {
      at(
        `tool ${tool} carries a signature by role ${role}, which ${trust.source} does not configure (roles: ${trust.roles.join(', ') || 'none'}); remove it or configure the role`,
      );
      continue;
    }
    const trusted = trust.keys.get(key);
    if (!trusted) {
      const known = [...trust.keys.values()].filter((k) => k.role === role).map((k) => k.keyId);
      at(`tool ${tool} is signed as ${role} with key ${key}, which is not a trusted ${role} key (trusted: ${known.join(', ') || 'none'})`);
      continue;
    }
    if (trusted.role !== role) {
      at(`tool ${tool} is signed as ${role} with key ${key}, but that key is trusted for role ${trusted.role} only; a key signs only for its own role`);
      continue;
    }
    if (trusted.tools && !trusted.tools.has(tool)) {
      at(`key ${key} of role ${role} may sign only ${[...trusted.tools].join(', ')}, not tool ${tool}`);
      continue;
    }
    const valid = (() => {
      try {
        return verify(null, manifestSignatureMessage(tool, role, digest), trusted.publicKey, Buffer.from(signature.sig, 'base64url'));
      } catch {
        return false;
      }
    })();
    if (!valid) {
      at(
        `the ${role} signature (${key}) of tool ${tool} does not match the entry as it is now (digest ${digest.slice(0, 12)}…): ` +
          'the entry changed after it was signed, or the signature was made for another entry; review the change and sign it again (toolgate manifest sign)',
      );
      continue;
    }
    signers.push({ role, key });
  }
  const signed = new Set(signers.map((signer) => signer.role));
  const missing = trust.require.filter((role) => !signed.has(role));
  // A role whose signature is present but refused is reported there; only roles never tried are "missing".
  const absent = missing.filter((role) => !seen.has(role));
  if (absent.length > 0) {
    problems.push({
      path: [],
      message:
        `tool ${tool} is not signed by ${absent.join(' and ')} (this deployment requires ${trust.require.join(' and ')}: TOOLGATE_MANIFEST_REQUIRE); ` +
        `sign it with: toolgate manifest sign --role ${absent[0]} --key <private key file> --tool ${tool} <policy files>`,
    });
  }
  signers.sort((a, b) => a.role.localeCompare(b.role));
  return { signers, problems };
}

/** Signers in a phrase: `security (k-…), owner (k-…)`. */
export function describeSigners(signers: readonly ManifestSigner[]): string {
  return signers.map((signer) => `${signer.role} (${signer.key})`).join(', ');
}
