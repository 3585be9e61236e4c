/**
 * The remote codec endpoint the Temporal UI calls to show decrypted payloads to authorized ops:
 * `POST /encode` and `POST /decode` with `{ payloads: [{ metadata: { k: base64 }, data: base64 }] }`.
 * CORS admits the configured UI origin with credentials; every POST needs a caller that the
 * injected `authorize` accepts (bearer token check), else 401.
 */
import cors from 'cors';
import express, { type Request, type Router } from 'express';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';

/** Largest request body accepted by the codec endpoint. @default '4mb' */
export const CODEC_BODY_LIMIT = '4mb';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const Base64Schema = z.string().max(8 * 1024 * 1024).regex(BASE64, 'expected base64');

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

/** Options of the codec endpoint. */
export interface CodecRouterOptions {
  codec: PayloadCodec;
  /** Resolves true when the caller may see decoded payloads (e.g. a bearer token with an ops role). */
  authorize: (req: Request) => Promise<boolean>;
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
    let allowed = false;
    try {
      allowed = await options.authorize(req);
    } catch {
      allowed = false; // fail closed
    }
    if (!allowed) {
      res.status(401).set('www-authenticate', 'Bearer').json({ error: 'unauthorized: a bearer token of an ops user is required to encode or decode payloads' });
      return;
    }
    next();
  });
  router.use(express.json({ limit: CODEC_BODY_LIMIT }));
  for (const op of ['encode', 'decode'] as const) {
    router.post(`/${op}`, async (req, res) => {
      const parsed = CodecRequestSchema.safeParse(req.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const field = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
        res.status(400).json({ error: `${field || 'body'}: ${issue.message}`, field: field || 'body' });
        return;
      }
      try {
        const out = await options.codec[op](parsed.data.payloads.map(fromJson));
        res.json({ payloads: out.map(toJson) });
      } catch (err) {
        res.status(422).json({ error: `cannot ${op} payloads: ${(err as Error).message}` });
      }
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
