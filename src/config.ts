/** Process configuration from environment variables, validated at start-up with the variable named in every error. */
import { join, resolve } from 'node:path';
import { msToNumber } from '@temporalio/common';
import { z } from 'zod';
import { defaultKeyPaths } from './auth/tokens.js';
import { IDENTIFIER_PATTERN } from './shared/index.js';
import { ToolgateError, type ToolgateErrorOptions } from './errors.js';

const list = z.string().transform((text) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);

const schema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TOOLGATE_STATE_DIR: z.string().min(1).default('.toolgate'),
  TOOLGATE_POLICY: list.default(['policies']),
  TOOLGATE_SHADOW_POLICY: list.default([]),
  TOOLGATE_API_HOST: z.string().min(1).default('127.0.0.1'),
  TOOLGATE_API_PORT: z.coerce.number({ error: 'must be a port number' }).int().min(0).max(65535).default(8787),
  TOOLGATE_PUBLIC_URL: z.url({ error: 'must be an absolute URL' }).optional(),
  TOOLGATE_TOKEN_PUBLIC_KEY_FILE: z.string().min(1).optional(),
  TOOLGATE_TOKEN_PRIVATE_KEY_FILE: z.string().min(1).optional(),
  TOOLGATE_TOKEN_ISSUER: z.string().min(1).default('toolgate-local'),
  TOOLGATE_UI_ORIGINS: list.default([]),
  TOOLGATE_RATE_LIMIT_STORE: z
    .string()
    .default('memory')
    .refine((v) => v === 'memory' || /^postgres(ql)?:\/\//.test(v), { error: 'must be memory or a postgres:// connection URL' }),
  TOOLGATE_RETENTION: duration('a retention such as 30d', 24 * 3600_000, '1 day').default('30d'),
  TOOLGATE_AUDIT_ARCHIVE_DIR: z.string().min(1).optional(),
  TOOLGATE_AUDIT_ARCHIVE_INTERVAL: duration('an interval such as 15m', 60_000, '1 minute').default('15m'),
  TOOLGATE_METRICS_ADDRESS: z
    .string()
    .default('off')
    .refine((v) => v === 'off' || /^[^\s:]+:\d{1,5}$/.test(v), { error: 'must be host:port or off' }),
  TOOLGATE_MANIFEST_SIGNERS: z.string().min(1).optional(),
  TOOLGATE_MANIFEST_REQUIRE: list
    .default([])
    .refine((roles) => roles.every((role) => IDENTIFIER_PATTERN.test(role)), { error: 'must be comma-separated role names' }),
});

/** A duration in Temporal's notation (`30d`, `15m`, `1h`) of at least `minMs`, kept as written. */
function duration(expected: string, minMs: number, minText: string) {
  return z.string().refine(
    (text) => {
      try {
        return msToNumber(text as Parameters<typeof msToNumber>[0]) >= minMs;
      } catch {
        return false;
      }
    },
    { error: `must be ${expected} (at least ${minText})` },
  );
}

/** The validated configuration. */
export interface Config {
  temporalAddress: string;
  namespace: string;
  stateDir: string;
  policyPaths: string[];
  /** A candidate policy the worker runs in shadow (recorded and counted, never enforced); empty: none. */
  shadowPolicyPaths: string[];
  apiHost: string;
  apiPort: number;
  publicUrl: string;
  publicKeyFile: string;
  privateKeyFile: string;
  tokenIssuer: string;
  /** Origins of the Temporal UI that may call the codec endpoint (CORS). */
  uiOrigins: string[];
  /** Where rate-limit counters live: `memory` (one process) or a PostgreSQL URL shared by every worker. */
  rateLimitStore: string;
  /** How long the namespace keeps closed requests' histories (Temporal duration, e.g. `30d`). */
  retention: string;
  /** Where the audit archive (segments of the signed hash chain) is written and read. */
  auditArchiveDir: string;
  /** How often the archival schedule runs, in ms. */
  auditArchiveIntervalMs: number;
  /** `host:port` of the worker's Prometheus endpoint, or `off` (the default: `toolgate dev` and the API serve `/metrics` themselves). */
  metricsAddress: string;
  /** The file mapping manifest-signing roles to their public keys (`TOOLGATE_MANIFEST_SIGNERS`); absent: signatures are not checked. */
  manifestSignersFile?: string;
  /** Roles that must have signed every manifest entry (`TOOLGATE_MANIFEST_REQUIRE`); empty: none required. */
  manifestRequire: string[];
}

/** A configuration variable was invalid; the message names it and what was expected. */
export class ConfigError extends ToolgateError {
  override readonly name = 'ConfigError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('config_invalid', message, options);
  }
}

/** Reads and validates the configuration from `env`. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(`invalid configuration: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  }
  const c = parsed.data;
  if (c.TOOLGATE_MANIFEST_REQUIRE.length > 0 && !c.TOOLGATE_MANIFEST_SIGNERS) {
    // A requirement without keys to check it against must stop the process, not quietly check nothing.
    throw new ConfigError("invalid configuration: TOOLGATE_MANIFEST_REQUIRE: needs TOOLGATE_MANIFEST_SIGNERS (the file of the roles' public keys)");
  }
  const stateDir = resolve(c.TOOLGATE_STATE_DIR);
  const localKeys = defaultKeyPaths(stateDir);
  return {
    temporalAddress: c.TEMPORAL_ADDRESS,
    namespace: c.TEMPORAL_NAMESPACE,
    stateDir,
    policyPaths: c.TOOLGATE_POLICY,
    shadowPolicyPaths: c.TOOLGATE_SHADOW_POLICY,
    apiHost: c.TOOLGATE_API_HOST,
    apiPort: c.TOOLGATE_API_PORT,
    publicUrl: c.TOOLGATE_PUBLIC_URL ?? `http://${c.TOOLGATE_API_HOST}:${c.TOOLGATE_API_PORT}`,
    publicKeyFile: resolve(c.TOOLGATE_TOKEN_PUBLIC_KEY_FILE ?? localKeys.publicKeyFile),
    privateKeyFile: resolve(c.TOOLGATE_TOKEN_PRIVATE_KEY_FILE ?? localKeys.privateKeyFile),
    tokenIssuer: c.TOOLGATE_TOKEN_ISSUER,
    uiOrigins: c.TOOLGATE_UI_ORIGINS,
    rateLimitStore: c.TOOLGATE_RATE_LIMIT_STORE,
    retention: c.TOOLGATE_RETENTION,
    auditArchiveDir: resolve(c.TOOLGATE_AUDIT_ARCHIVE_DIR ?? join(stateDir, 'audit-archive')),
    auditArchiveIntervalMs: msToNumber(c.TOOLGATE_AUDIT_ARCHIVE_INTERVAL as Parameters<typeof msToNumber>[0]),
    metricsAddress: c.TOOLGATE_METRICS_ADDRESS,
    ...(c.TOOLGATE_MANIFEST_SIGNERS ? { manifestSignersFile: resolve(c.TOOLGATE_MANIFEST_SIGNERS) } : {}),
    manifestRequire: c.TOOLGATE_MANIFEST_REQUIRE,
  };
}
