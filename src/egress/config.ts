/** The `egress:` block of a tool in policy, validated at the edge (snake_case as written in YAML). */
import { z } from 'zod';
import { parseAllowedOrigin, type DestinationPolicy } from './destinations.js';
import { resolveRules } from './redact.js';
import { DEFAULT_TENANT_FIELDS } from './tenant.js';
import { DEFAULT_MAX_RESULT_BYTES } from './size.js';

/**
 * An `allow_hosts` entry must be an origin (`https://api.example.com[:port]`, `https://*.example.com`).
 * A legacy bare host is refused at load rather than read as `https://host:443`: the entry used to
 * mean "this host, any scheme and port", so any reading of it now is a guess, and the tool's digest
 * covers the text as written, so a reinterpretation would change what the tool reaches without
 * changing its digest. Refused, the policy states exactly which origins are reachable, and the
 * author learns it from `toolgate policy check` (with the entry to write) instead of from calls
 * failing at run time.
 */
const AllowedOriginEntry = z.string().superRefine((entry, ctx) => {
  try {
    parseAllowedOrigin(entry);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** Schema of a tool's `egress:` block; every field optional, unknown fields refused. */
export const EgressConfigSchema = z
  .object({
    redact: z
      .array(z.string().min(1))
      .optional()
      .superRefine((names, ctx) => {
        try {
          resolveRules(names);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      }),
    max_result_bytes: z.number().int().positive().optional(),
    tenant_field: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    allow_hosts: z.array(AllowedOriginEntry).optional(),
    allow_private: z.boolean().optional(),
    max_redirects: z.number().int().min(0).max(20).optional(),
  })
  .strict();

/** A tool's `egress:` block as written in policy. */
export type EgressConfig = z.infer<typeof EgressConfigSchema>;

/** The egress settings with defaults applied, in the shape the egress functions take. */
export interface ResolvedEgress {
  redact: readonly string[] | undefined;
  maxResultBytes: number;
  tenantFields: readonly string[];
  destinations: DestinationPolicy;
}

/** Applies defaults: all redaction rules, 1 MiB results, the default tenant fields, no extra origins. */
export function resolveEgress(config: EgressConfig = {}): ResolvedEgress {
  const field = config.tenant_field;
  return {
    redact: config.redact,
    maxResultBytes: config.max_result_bytes ?? DEFAULT_MAX_RESULT_BYTES,
    tenantFields: field === undefined ? DEFAULT_TENANT_FIELDS : typeof field === 'string' ? [field] : field,
    destinations: { allowOrigins: config.allow_hosts ?? [], allowPrivate: config.allow_private ?? false, maxRedirects: config.max_redirects },
  };
}
