/**
 * The remote codec endpoint the Temporal UI calls to show decrypted payloads to authorized ops:
 * `POST /encode` and `POST /decode` with `{ payloads: [{ metadata: { k: base64 }, data: base64 }] }`.
 * CORS admits the configured UI origin with credentials; every POST needs a caller that the
 * injected `authorize` resolves to a scope (bearer token check), else 401.
 *
 * Scopes follow the payloads' tenant tags (see aes-gcm.ts): a caller scoped to one tenant may
 * decode only payloads tagged with that tenant (and unencrypted ones, which hold no secret);
 * a payload of another tenant or a global (untagged) encrypted payload is refused with 403 before
 * anything is decrypted. An all-tenants caller decodes everything. Encoding follows the same
 * line: a tenant's caller gets payloads encrypted for their tenant, an all-tenants caller global ones.
 */
import cors from 'cors';
import express, { type Request, type Router } from 'express';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';
import { isEncryptedPayload, payloadTenant, serializationContextForTenant } from './aes-gcm.js';

/** Largest request body accepted by the codec endpoint. @default '4mb' */
export const CODEC_BODY_LIMIT = '4mb';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const Base64Schema = z
  .string()
  .max(8 * 1024 * 1024)
  .regex(BASE64, 'expected base64');

/** The remote-codec JSON body: payloads with base64 metadata values and data. */
export const CodecRequestSchema = z.object({
  payloads: z
    .array(
      z.object({
        metadata: z.record(z.string(), Base64Schema).nullish(),
        data: Base64Schema.nullish(),
      }),
    )
    .max(1000),
});

/**
 * Whose payloads a caller of the codec endpoint may decode: every tenant's (and global payloads),
 * or one tenant's only.
 */
export type CodecScope = { allTenants: true } | { allTenants: false; tenant: string };

/** A codec that can encrypt for a named tenant, as `AesGcmCodec` can. */
export interface TenantPayloadCodec extends PayloadCodec {
  /** Encrypts for `tenant` (tagged), or global payloads when `tenant` is undefined. */
  encodeForTenant(payloads: Payload[], tenant: string | undefined): Promise<Payload[]>;
}

/** Options of the codec endpoint. */
export interface CodecRouterOptions {
  /**
   * The codec, normally `AesGcmCodec`. One without `encodeForTenant` is asked to encode for a
   * tenant through a serialization context naming a workflow of that tenant; if its output is not
   * tagged for the tenant, the endpoint refuses rather than hand out global payloads.
   */
  codec: PayloadCodec | TenantPayloadCodec;
  /**
   * Resolves the caller's scope (e.g. from a bearer token with an ops role), or undefined when the
   * caller may not use the endpoint at all (401). A rejection counts as undefined.
   */
  authorize: (req: Request) => Promise<CodecScope | undefined>;
  /** Origins of the Temporal UI allowed by CORS, e.g. `http://localhost:8233`. @default [] (no cross-origin access) */
  uiOrigins?: readonly string[];
}

type JsonPayload = z.infer<typeof CodecRequestSchema>['payloads'][number];

function fromJson(p: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = new Uint8Array(Buffer.from(v, 'base64'));
  return { metadata, data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')) };
}

function toJson(p: Payload): { metadata: Record<string, string>; data: string } {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) if (v) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

/** The index of the first encrypted payload the scope may not decode, with the reason; undefined when all are allowed. */
function firstForbidden(payloads: readonly Payload[], scope: CodecScope): { index: number; reason: string } | undefined {
  if (scope.allTenants) return undefined;
  for (const [index, payload] of payloads.entries()) {
    // Unencrypted payloads hold no secret: decoding passes them through unchanged.
    if (!isEncryptedPayload(payload)) continue;
    let tenant: string | undefined;
    try {
      tenant = payloadTenant(payload);
    } catch {
      return { index, reason: 'belongs to another tenant or to none: its tenant tag is malformed' };
    }
    if (tenant === undefined) {
      return {
        index,
        reason:
          'belongs to another tenant or to none: it is a global payload (no tenant tag: written before per-tenant keys, or by a workflow of no tenant such as the kill-switch registry), which only "ops:all" may decode',
      };
    }
    if (tenant !== scope.tenant)
      return { index, reason: `belongs to another tenant; this ops scope decodes only payloads of tenant "${scope.tenant}" ("ops:all" decodes any)` };
  }
  return undefined;
}

/** Whether every payload is encrypted and tagged for `tenant`; a malformed tag counts as no. */
function allTaggedFor(payloads: readonly Payload[], tenant: string): boolean {
  try {
    return payloads.every((p) => isEncryptedPayload(p) && payloadTenant(p) === tenant);
  } catch {
    return false;
  }
}

function hasEncodeForTenant(codec: PayloadCodec | TenantPayloadCodec): codec is TenantPayloadCodec {
  return typeof (codec as Partial<TenantPayloadCodec>).encodeForTenant === 'function';
}

/** Creates the express Router serving `POST /encode`, `POST /decode` and their CORS preflights. */
export function createCodecRouter(options: CodecRouterOptions): Router {
  const origins = new Set(options.uiOrigins ?? []);
  const router = express.Router();
  router.use(
    cors({
      origin: (origin, callback) => callback(null, origin !== undefined && origins.has(origin)),
      methods: ['POST', 'OPTIONS'],
      allowedHeaders: ['content-type', 'authorization', 'x-namespace'],
      credentials: true,
      maxAge: 600,
    }),
  );
  router.use(async (req, res, next) => {
    let scope: CodecScope | undefined;
    try {
      scope = await options.authorize(req);
    } catch {
      scope = undefined; // fail closed
    }
    // Anything but a well-formed scope is no scope: a truthy non-scope (say, a leftover boolean) must not open the endpoint.
    const valid = scope?.allTenants === true || (scope?.allTenants === false && typeof scope.tenant === 'string' && scope.tenant.length > 0);
    if (!valid) {
      res.status(401).set('www-authenticate', 'Bearer').json({ error: 'unauthorized: a bearer token of an ops user is required to encode or decode payloads' });
      return;
    }
    res.locals.codecScope = scope;
    next();
  });
  router.use(express.json({ limit: CODEC_BODY_LIMIT }));
  for (const op of ['encode', 'decode'] as const) {
    router.post(`/${op}`, async (req, res) => {
      const parsed = CodecRequestSchema.safeParse(req.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const field = issue.path
          .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
          .join('')
          .replace(/^\./, '');
        res.status(400).json({ error: `${field || 'body'}: ${issue.message}`, field: field || 'body' });
        return;
      }
      const scope = res.locals.codecScope as CodecScope;
      const payloads = parsed.data.payloads.map(fromJson);
      if (op === 'decode') {
        // Decided from the tags alone, before decrypting anything: a tag is authenticated by the
        // decryption that would follow, so a forged tag only makes that decryption fail.
        const forbidden = firstForbidden(payloads, scope);
        if (forbidden) {
          const field = `payloads[${forbidden.index}]`;
          res.status(403).json({ error: `forbidden: ${field} ${forbidden.reason}`, field });
          return;
        }
      }
      let out: Payload[];
      try {
        if (op === 'decode') out = await options.codec.decode(payloads);
        else if (scope.allTenants) out = await options.codec.encode(payloads);
        else if (hasEncodeForTenant(options.codec)) out = await options.codec.encodeForTenant(payloads, scope.tenant);
        else out = await options.codec.encode(payloads, serializationContextForTenant(scope.tenant, req.get('x-namespace') || 'default'));
      } catch (err) {
        res.status(422).json({ error: `cannot ${op} payloads: ${(err as Error).message}` });
        return;
      }
      if (op === 'encode' && !scope.allTenants && !allTaggedFor(out, scope.tenant)) {
        // A codec that ignored the tenant would hand this caller payloads they could never decode again, or global ones.
        res.status(500).json({ error: `cannot encode payloads: the codec did not encrypt them for tenant "${scope.tenant}"` });
        return;
      }
      res.json({ payloads: out.map(toJson) });
    });
  }
  router.use((err: unknown, _req: Request, res: express.Response, next: express.NextFunction) => {
    const status = (err as { status?: number }).status;
    if (status === 400 || status === 413) {
      res.status(status).json({ error: status === 413 ? `body: larger than ${CODEC_BODY_LIMIT}` : 'body: not valid JSON', field: 'body' });
      return;
    }
    next(err);
  });
  return router;
}
