/**
 * Authentication settings from the environment, validated with zod (errors name the variable):
 * which approver verifier to use (the local Ed25519 issuer, or an OIDC provider) and where the
 * link-signing keys come from. Keys and secrets come from files or the environment, never the repo.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { optionalList, optionalText, unsetIfEmpty } from '../env-fields.js';
import { IDENTIFIER_PATTERN } from '../shared/index.js';
import { AuthConfigError } from './errors.js';
import { ensureEd25519KeyPair, publicKeyPemFrom } from './keys.js';
import { DEFAULT_LINK_ISSUER, DEFAULT_LINK_TTL_SECONDS, LinkSigner, LinkVerifier, defaultLinkKeyPaths } from '../approvals/links.js';
import { OidcApproverVerifier } from './oidc.js';
import { ApproverTokenVerifier, DEFAULT_ISSUER, defaultKeyPaths, type ApproverVerifier } from './tokens.js';

/** Where the process keeps its state (keys live under `<stateDir>/keys/`). */
export interface AuthConfig {
  stateDir: string;
}

const claimName = z.preprocess(
  unsetIfEmpty,
  z
    .string()
    .trim()
    .regex(/^\S{1,256}$/, { error: 'must be a claim name or dot path without spaces' })
    .optional(),
);
const seconds = (min: number, max: number) =>
  z.preprocess(
    unsetIfEmpty,
    z.coerce
      .number({ error: 'must be a number of seconds' })
      .int({ error: 'must be a whole number of seconds' })
      .min(min, { error: `must be at least ${min} seconds` })
      .max(max, { error: `must be at most ${max} seconds` })
      .optional(),
  );

const schema = z.object({
  TOOLGATE_AUTH: z.preprocess(unsetIfEmpty, z.enum(['local', 'oidc'], { error: 'must be local or oidc' }).default('local')),
  TOOLGATE_TOKEN_PUBLIC_KEY_FILE: optionalText,
  TOOLGATE_TOKEN_PUBLIC_KEY: optionalText,
  TOOLGATE_TOKEN_ISSUER: optionalText,
  TOOLGATE_OIDC_ISSUER: optionalText,
  TOOLGATE_OIDC_JWKS_URL: z.preprocess(unsetIfEmpty, z.url({ error: 'must be an absolute URL' }).optional()),
  TOOLGATE_OIDC_AUDIENCE: optionalList,
  TOOLGATE_OIDC_ALGORITHMS: optionalList,
  TOOLGATE_OIDC_TYP: optionalText,
  TOOLGATE_OIDC_SUBJECT_CLAIM: claimName,
  TOOLGATE_OIDC_GROUPS_CLAIM: claimName,
  TOOLGATE_OIDC_TENANT_CLAIM: claimName,
  TOOLGATE_OIDC_TENANT: z.preprocess(
    unsetIfEmpty,
    z.string().regex(IDENTIFIER_PATTERN, { error: 'must be a tenant id (1-128 letters, digits and . _ : @ -)' }).optional(),
  ),
  TOOLGATE_OIDC_CLOCK_TOLERANCE_SECONDS: seconds(0, 300),
  TOOLGATE_LINK_PRIVATE_KEY_FILE: optionalText,
  TOOLGATE_LINK_PRIVATE_KEY: optionalText,
  TOOLGATE_LINK_PUBLIC_KEY_FILE: optionalText,
  TOOLGATE_LINK_PUBLIC_KEY: optionalText,
  TOOLGATE_LINK_ISSUER: optionalText,
  TOOLGATE_LINK_TTL_SECONDS: seconds(1, 24 * 3600),
});
type AuthEnv = z.infer<typeof schema>;

function parseEnv(env: NodeJS.ProcessEnv): AuthEnv {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const [first, ...others] = parsed.error.issues;
    const more = others.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new AuthConfigError(String(first?.path[0] ?? 'environment'), [first?.message ?? 'invalid', ...more].join('; '));
  }
  const data = parsed.data;
  exclusive(data, 'TOOLGATE_TOKEN_PUBLIC_KEY_FILE', 'TOOLGATE_TOKEN_PUBLIC_KEY');
  exclusive(data, 'TOOLGATE_LINK_PRIVATE_KEY_FILE', 'TOOLGATE_LINK_PRIVATE_KEY');
  exclusive(data, 'TOOLGATE_LINK_PUBLIC_KEY_FILE', 'TOOLGATE_LINK_PUBLIC_KEY');
  return data;
}

function exclusive(data: AuthEnv, file: keyof AuthEnv, pem: keyof AuthEnv): void {
  if (data[file] !== undefined && data[pem] !== undefined) throw new AuthConfigError(pem, `set either ${file} or ${pem}, not both`);
}

/** PEM from an environment variable, where newlines are often written as `\n`. */
function pemFromEnv(value: string): string {
  return value.includes('\\n') ? value.replace(/\\n/g, '\n') : value;
}

async function readKeyFile(variable: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new AuthConfigError(variable, `cannot read key file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

async function withVariable<T>(variable: string, make: () => Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (err) {
    if (err instanceof AuthConfigError) throw err;
    throw new AuthConfigError(variable, `is not a usable key: ${(err as Error).message}`, { cause: err });
  }
}

const OIDC_OPTION_VARIABLES: Record<string, string> = {
  issuer: 'TOOLGATE_OIDC_ISSUER',
  jwksUrl: 'TOOLGATE_OIDC_JWKS_URL',
  audience: 'TOOLGATE_OIDC_AUDIENCE',
  algorithms: 'TOOLGATE_OIDC_ALGORITHMS',
  tenant: 'TOOLGATE_OIDC_TENANT',
  clockToleranceSeconds: 'TOOLGATE_OIDC_CLOCK_TOLERANCE_SECONDS',
};

/**
 * The approver verifier the environment asks for: `TOOLGATE_AUTH=local` (default; the local
 * issuer's public key from `TOOLGATE_TOKEN_PUBLIC_KEY_FILE`, `TOOLGATE_TOKEN_PUBLIC_KEY` or
 * `<stateDir>/keys/`) or `oidc` (`TOOLGATE_OIDC_*`). Throws `AuthConfigError` naming the variable.
 */
export async function createApproverVerifier(config: AuthConfig, env: NodeJS.ProcessEnv = process.env): Promise<ApproverVerifier> {
  const e = parseEnv(env);
  if (e.TOOLGATE_AUTH === 'oidc') {
    const missing = (['TOOLGATE_OIDC_ISSUER', 'TOOLGATE_OIDC_JWKS_URL', 'TOOLGATE_OIDC_AUDIENCE'] as const).filter(
      (name) => e[name] === undefined || (Array.isArray(e[name]) && e[name].length === 0),
    );
    if (missing[0]) throw new AuthConfigError(missing[0], `is required when TOOLGATE_AUTH=oidc (missing: ${missing.join(', ')})`);
    try {
      return new OidcApproverVerifier({
        issuer: e.TOOLGATE_OIDC_ISSUER!,
        jwksUrl: e.TOOLGATE_OIDC_JWKS_URL!,
        audience: e.TOOLGATE_OIDC_AUDIENCE!,
        algorithms: e.TOOLGATE_OIDC_ALGORITHMS,
        typ: e.TOOLGATE_OIDC_TYP,
        subjectClaim: e.TOOLGATE_OIDC_SUBJECT_CLAIM,
        groupsClaim: e.TOOLGATE_OIDC_GROUPS_CLAIM,
        tenantClaim: e.TOOLGATE_OIDC_TENANT_CLAIM,
        tenant: e.TOOLGATE_OIDC_TENANT,
        clockToleranceSeconds: e.TOOLGATE_OIDC_CLOCK_TOLERANCE_SECONDS,
      });
    } catch (err) {
      if (err instanceof AuthConfigError && OIDC_OPTION_VARIABLES[err.setting]) {
        const variable = OIDC_OPTION_VARIABLES[err.setting]!;
        throw new AuthConfigError(variable, err.message.slice(err.setting.length + 2), { cause: err });
      }
      throw err;
    }
  }
  const issuer = e.TOOLGATE_TOKEN_ISSUER ?? DEFAULT_ISSUER;
  if (e.TOOLGATE_TOKEN_PUBLIC_KEY !== undefined) {
    const pem = pemFromEnv(e.TOOLGATE_TOKEN_PUBLIC_KEY);
    return withVariable('TOOLGATE_TOKEN_PUBLIC_KEY', () => ApproverTokenVerifier.fromPublicKeyPem(pem, issuer));
  }
  if (e.TOOLGATE_TOKEN_PUBLIC_KEY_FILE !== undefined) {
    const pem = await readKeyFile('TOOLGATE_TOKEN_PUBLIC_KEY_FILE', e.TOOLGATE_TOKEN_PUBLIC_KEY_FILE);
    return withVariable('TOOLGATE_TOKEN_PUBLIC_KEY_FILE', () => ApproverTokenVerifier.fromPublicKeyPem(pem, issuer));
  }
  const paths = defaultKeyPaths(config.stateDir);
  await ensureEd25519KeyPair(paths);
  return ApproverTokenVerifier.fromPublicKeyFile(paths.publicKeyFile, issuer);
}

/**
 * The link signer: the private key from `TOOLGATE_LINK_PRIVATE_KEY(_FILE)`, or the local pair
 * `<stateDir>/keys/link-signing.key.pem`, created on first use. Issuer `TOOLGATE_LINK_ISSUER`,
 * lifetime `TOOLGATE_LINK_TTL_SECONDS` (default 900).
 */
export async function createLinkSigner(config: AuthConfig, env: NodeJS.ProcessEnv = process.env): Promise<LinkSigner> {
  const e = parseEnv(env);
  const { variable, pem } = await linkPrivateKey(config, e);
  await assertDistinctFromApproverKey(config, e, publicKeyPemFrom(pem), variable);
  return withVariable(variable, () =>
    LinkSigner.fromPrivateKeyPem(pem, {
      issuer: e.TOOLGATE_LINK_ISSUER ?? DEFAULT_LINK_ISSUER,
      ttlSeconds: e.TOOLGATE_LINK_TTL_SECONDS ?? DEFAULT_LINK_TTL_SECONDS,
    }),
  );
}

/**
 * The link verifier: the public key from `TOOLGATE_LINK_PUBLIC_KEY(_FILE)`, else derived from the
 * private key the signer uses (`TOOLGATE_LINK_PRIVATE_KEY(_FILE)` or the local pair).
 */
export async function createLinkVerifier(config: AuthConfig, env: NodeJS.ProcessEnv = process.env): Promise<LinkVerifier> {
  const e = parseEnv(env);
  let variable: string;
  let pem: string;
  if (e.TOOLGATE_LINK_PUBLIC_KEY !== undefined) {
    variable = 'TOOLGATE_LINK_PUBLIC_KEY';
    pem = pemFromEnv(e.TOOLGATE_LINK_PUBLIC_KEY);
  } else if (e.TOOLGATE_LINK_PUBLIC_KEY_FILE !== undefined) {
    variable = 'TOOLGATE_LINK_PUBLIC_KEY_FILE';
    pem = await readKeyFile(variable, e.TOOLGATE_LINK_PUBLIC_KEY_FILE);
  } else {
    const source = await linkPrivateKey(config, e);
    variable = source.variable;
    pem = await withVariable(variable, async () => publicKeyPemFrom(source.pem));
  }
  await assertDistinctFromApproverKey(config, e, pem, variable);
  return withVariable(variable, () => LinkVerifier.fromPublicKeyPem(pem, { issuer: e.TOOLGATE_LINK_ISSUER ?? DEFAULT_LINK_ISSUER }));
}

async function linkPrivateKey(config: AuthConfig, e: AuthEnv): Promise<{ variable: string; pem: string }> {
  if (e.TOOLGATE_LINK_PRIVATE_KEY !== undefined) return { variable: 'TOOLGATE_LINK_PRIVATE_KEY', pem: pemFromEnv(e.TOOLGATE_LINK_PRIVATE_KEY) };
  if (e.TOOLGATE_LINK_PRIVATE_KEY_FILE !== undefined) {
    return { variable: 'TOOLGATE_LINK_PRIVATE_KEY_FILE', pem: await readKeyFile('TOOLGATE_LINK_PRIVATE_KEY_FILE', e.TOOLGATE_LINK_PRIVATE_KEY_FILE) };
  }
  const paths = defaultLinkKeyPaths(config.stateDir);
  await ensureEd25519KeyPair(paths);
  return { variable: 'TOOLGATE_LINK_PRIVATE_KEY_FILE', pem: await readFile(paths.privateKeyFile, 'utf8') };
}

/** Refuses a link key that is also the approver-token key: the two kinds of token must not share a signer. */
async function assertDistinctFromApproverKey(config: AuthConfig, e: AuthEnv, linkPublicPem: string, variable: string): Promise<void> {
  const candidates: (string | undefined)[] = [
    e.TOOLGATE_TOKEN_PUBLIC_KEY === undefined ? undefined : pemFromEnv(e.TOOLGATE_TOKEN_PUBLIC_KEY),
    e.TOOLGATE_TOKEN_PUBLIC_KEY_FILE === undefined ? undefined : await readFile(e.TOOLGATE_TOKEN_PUBLIC_KEY_FILE, 'utf8').catch(() => undefined),
    await readFile(defaultKeyPaths(config.stateDir).publicKeyFile, 'utf8').catch(() => undefined),
  ];
  const normalize = (pem: string) => pem.replace(/\s+/g, '');
  if (candidates.some((pem) => pem !== undefined && normalize(pem) === normalize(linkPublicPem))) {
    throw new AuthConfigError(variable, 'the link-signing key must not be the approver-token key; give links their own key pair');
  }
}
