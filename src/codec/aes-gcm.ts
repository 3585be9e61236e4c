/**
 * The payload codec that keeps arguments, results and failure details out of Temporal in clear:
 * each payload is serialised (temporal.api.common.v1.Payload) and encrypted with AES-256-GCM with a
 * fresh 96-bit IV; the key id travels in the payload metadata and is bound to the ciphertext as
 * associated data.
 *
 * **Per-tenant keys.** A payload that belongs to a tenant's workflow (its serialization context
 * names a workflow id `toolreq/<tenant>/<requestId>`) is encrypted with a data key derived for that
 * tenant from the current master key (HKDF-SHA256), and carries the tenant in its metadata
 * (`toolgate-tenant`). The tag is bound into the associated data together with the key id, so it
 * cannot be changed, added or stripped without the payload failing authentication: the codec
 * endpoint may therefore decide who may decode a payload from its tag alone, before decrypting.
 * Every other payload (old `toolreq:<id>` workflows, the kill-switch registry, calls without a
 * context) is "global": encrypted with the master key itself and no tag, exactly as before
 * per-tenant keys, so histories written before them still decode.
 *
 * **Where the SDK passes a context** (checked against @temporalio/* 1.24 in node_modules):
 * - worker, workflow side (`WorkflowCodecRunner`): every payload of an activation and completion
 *   is coded with `{ type: 'workflow', workflowId }` of the workflow itself, including failures
 *   (the generated visitor walks `Failure.encodedAttributes`, where `encodeCommonAttributes` puts
 *   messages and stacks, and `cause`), memos, query and update results. Commands aimed elsewhere
 *   get the target's context: scheduled activities `{ type: 'activity', workflowId }` of the
 *   scheduling workflow, child workflows and signals to external workflows the target's id (so a
 *   signal to the kill-switch registry is global). Headers and search attributes are not coded.
 * - worker, activity side (`activity.js`, `worker.js`): arguments, results, heartbeat details and
 *   failures (`encodeErrorToFailure`, which codes `encodedAttributes` with the same context) carry
 *   `{ type: 'activity', workflowId }` of the workflow that scheduled the activity.
 * - client (`workflow-client.js`): start, signal-with-start, signal, query, update, terminate,
 *   result, memo (start, describe, list) and failures (`decodeOptionalFailureToOptionalError`)
 *   all carry `{ type: 'workflow', workflowId }` of the target workflow.
 * - without a context: async activity completion by task token (unless the caller passes one),
 *   schedule memos, code that calls the codec directly (the audit record's history decoding,
 *   the codec endpoint). None of these encode tenant data in toolgate today; where one would,
 *   its payloads would simply be global.
 * Decoding never relies on the context: the authenticated tag in the payload decides the key, so
 * a payload decodes the same wherever it is read (history, the UI endpoint, a replay).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec, type SerializationContext } from '@temporalio/common';
import proto from '@temporalio/proto';
import { parseRequestWorkflowId, workflowIdFor } from '../shared/messages.js';
import { ToolgateError, type ErrorCode } from '../errors.js';
import type { CodecKeyring } from './keyring.js';

// The proto package is CommonJS: take the namespace from its default export under ESM.
const { temporal } = proto;

/** `encoding` metadata value of encrypted payloads. */
export const ENCODING_ENCRYPTED = 'binary/encrypted';
/** Metadata key holding the id of the key a payload was encrypted with. */
export const METADATA_ENCRYPTION_KEY_ID = 'encryption-key-id';
/** Metadata key holding the tenant (utf-8) an encrypted payload belongs to; absent on global payloads. */
export const METADATA_TENANT = 'toolgate-tenant';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const utf8 = new TextEncoder();
// `ignoreBOM`: keep a leading BOM, so decoded ids and tags are exactly the bytes that were authenticated.
const fromUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const ENCRYPTED_BYTES = utf8.encode(ENCODING_ENCRYPTED);

/** HKDF salt of tenant data keys: a fixed label, so a derived key is only ever used for this purpose. */
const TENANT_KEY_SALT = utf8.encode('toolgate-codec-tenant-v1');
/**
 * Most derived keys kept in memory. Deriving one costs microseconds, so the bound only keeps an
 * `ops:all` caller that sends payloads tagged with many made-up tenants from growing the cache.
 */
const MAX_CACHED_TENANT_KEYS = 1024;

/** Thrown when a payload cannot be decrypted: unknown key id, malformed tenant tag, tampered or truncated ciphertext. */
export class PayloadDecryptionError extends ToolgateError {
  override readonly name: string = 'PayloadDecryptionError';
  /** The key id the payload names, when it names one. */
  readonly keyId?: string;
  constructor(message: string, options?: { keyId?: string; cause?: unknown }, code: ErrorCode = 'payload_undecryptable') {
    super(code, message, { cause: options?.cause });
    this.keyId = options?.keyId;
  }
}

/**
 * The payload names a key this keyring does not hold (code `key_not_in_keyring`): the reader's
 * configuration is at fault, not the payload, so readers stop instead of skipping the payload.
 */
export class KeyNotInKeyring extends PayloadDecryptionError {
  override readonly name = 'KeyNotInKeyring';
  declare readonly keyId: string;
  constructor(keyId: string, message: string) {
    super(message, { keyId }, 'key_not_in_keyring');
  }
}

/**
 * The tenant whose data a serialization context is about: the tenant of the workflow id of a
 * workflow context, or of the scheduling workflow of an activity context, when that id is a
 * `toolreq/<tenant>/<requestId>` id; undefined (global) for any other id or no context.
 */
export function tenantOfContext(context: SerializationContext | undefined): string | undefined {
  const workflowId = context?.workflowId;
  return workflowId ? parseRequestWorkflowId(workflowId)?.tenant : undefined;
}

/**
 * A serialization context that makes `AesGcmCodec.encode` (or any codec reading the context the
 * same way) encrypt for `tenant`: a workflow context naming a request workflow of that tenant.
 */
export function serializationContextForTenant(tenant: string, namespace = 'default'): SerializationContext {
  return { type: 'workflow', namespace, workflowId: workflowIdFor(tenant, 'codec-endpoint') };
}

/**
 * Whether a payload is encrypted by this codec (its `encoding` is `binary/encrypted`). Compared as
 * bytes, so a payload whose encoding is not even valid utf-8 is simply "not encrypted".
 */
export function isEncryptedPayload(payload: Payload): boolean {
  const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
  return !!encoding && Buffer.from(encoding.buffer, encoding.byteOffset, encoding.byteLength).equals(ENCRYPTED_BYTES);
}

/**
 * The tenant an encrypted payload is tagged with, read without decrypting: undefined for a global
 * (untagged) encrypted payload, and for a payload that is not encrypted at all — such a payload is
 * not secret (decoding passes it through unchanged), so it belongs to no one; use
 * `isEncryptedPayload` to tell the two apart. The tag is only trustworthy because decryption
 * authenticates it: a payload whose tag was altered fails to decode. Throws
 * `PayloadDecryptionError` when the tag of an encrypted payload is empty or not utf-8.
 */
export function payloadTenant(payload: Payload): string | undefined {
  if (!isEncryptedPayload(payload)) return undefined;
  const tag = payload.metadata?.[METADATA_TENANT];
  if (tag === undefined || tag === null) return undefined;
  let tenant: string;
  try {
    tenant = fromUtf8.decode(tag);
  } catch (err) {
    throw new PayloadDecryptionError(`encrypted payload has a ${METADATA_TENANT} tag that is not utf-8`, { cause: err });
  }
  if (tenant.length === 0) throw new PayloadDecryptionError(`encrypted payload has an empty ${METADATA_TENANT} tag`);
  return tenant;
}

/**
 * The associated data of a payload. Global payloads keep the pre-tenant form (the key id alone)
 * so existing history still authenticates. Tagged payloads bind a label, the key id and the tenant
 * in an unambiguous JSON array; it cannot equal a bare key id (key ids never start with `[`).
 */
function associatedData(keyId: string, tenant: string | undefined): Uint8Array {
  return utf8.encode(tenant === undefined ? keyId : JSON.stringify(['toolgate-tenant-v1', keyId, tenant]));
}

/**
 * AES-256-GCM `PayloadCodec` with key rotation and per-tenant data keys: encrypts with the current
 * key (or the tenant key derived from it), decrypts with any known key.
 */
export class AesGcmCodec implements PayloadCodec {
  readonly #keyring: CodecKeyring;
  /** Derived tenant keys by `JSON.stringify([keyId, tenant])`, oldest first (insertion order). */
  readonly #tenantKeys = new Map<string, Uint8Array>();

  constructor(keyring: CodecKeyring) {
    if (!keyring.keys[keyring.current]) throw new Error(`codec keyring: current key "${keyring.current}" is missing`);
    this.#keyring = keyring;
  }

  /** The id new payloads are encrypted with. */
  get currentKeyId(): string {
    return this.#keyring.current;
  }

  /**
   * Encrypts every payload with the current key: for the tenant of the context's workflow id
   * (`toolreq/<tenant>/...`), tagged and under that tenant's derived key; otherwise global.
   */
  async encode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    return this.encodeForTenant(payloads, tenantOfContext(context));
  }

  /** Encrypts every payload for `tenant` (tagged, the tenant's derived key), or global when `tenant` is undefined. */
  async encodeForTenant(payloads: Payload[], tenant: string | undefined): Promise<Payload[]> {
    // An empty tag would be refused when decoding; refuse it here rather than write undecodable history.
    if (tenant === '') throw new TypeError('encodeForTenant: tenant must not be empty (pass undefined for global payloads)');
    const keyId = this.#keyring.current;
    const key = this.#keyFor(keyId, this.#keyring.keys[keyId]!, tenant);
    const aad = associatedData(keyId, tenant);
    return payloads.map((payload) => {
      const metadata: Record<string, Uint8Array> = {
        [METADATA_ENCODING_KEY]: utf8.encode(ENCODING_ENCRYPTED),
        [METADATA_ENCRYPTION_KEY_ID]: utf8.encode(keyId),
      };
      if (tenant !== undefined) metadata[METADATA_TENANT] = utf8.encode(tenant);
      const plaintext = temporal.api.common.v1.Payload.encode(payload).finish();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad);
      const body = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
      return { metadata, data: new Uint8Array(body) };
    });
  }

  /**
   * Decrypts payloads this codec encrypted; payloads with another encoding pass through unchanged.
   * The key is chosen by the payload's own key id and tenant tag, never by the context (which is
   * absent where history is read outside the SDK, e.g. by the codec endpoint).
   */
  async decode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    // Inside a tenant's request, only that tenant's payloads decode: otherwise a process that holds
    // the keys (a worker, the API) would decrypt another tenant's payload handed to it (as a signal
    // or a query argument, say) and re-encrypt what it answers for the requesting tenant.
    //
    // Such a payload decodes to JSON null rather than failing: a failure would fail the workflow task
    // on every attempt and wedge the request (expiry and all), or fail a whole listing. Every reader
    // of a request's payloads treats null as the malformed input it is.
    const expected = tenantOfContext(context);
    return payloads.map((payload) => {
      if (!isEncryptedPayload(payload)) return payload;
      if (expected !== undefined && payloadTenant(payload) !== expected) return FOREIGN_PAYLOAD;
      const idBytes = payload.metadata?.[METADATA_ENCRYPTION_KEY_ID];
      if (!idBytes) throw new PayloadDecryptionError(`encrypted payload has no ${METADATA_ENCRYPTION_KEY_ID} metadata`);
      let keyId: string;
      try {
        keyId = fromUtf8.decode(idBytes);
      } catch (err) {
        throw new PayloadDecryptionError(`encrypted payload has a ${METADATA_ENCRYPTION_KEY_ID} that is not utf-8`, { cause: err });
      }
      const master = Object.hasOwn(this.#keyring.keys, keyId) ? this.#keyring.keys[keyId] : undefined;
      if (!master) {
        throw new KeyNotInKeyring(
          keyId,
          `payload was encrypted with key "${keyId}", which is not in the keyring (known: ${Object.keys(this.#keyring.keys).join(', ')}); add it to TOOLGATE_CODEC_KEYS or the key file`,
        );
      }
      const tenant = payloadTenant(payload);
      const data = payload.data ?? new Uint8Array();
      if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadDecryptionError(`encrypted payload is truncated (${data.length} bytes)`, { keyId });
      try {
        const decipher = createDecipheriv('aes-256-gcm', this.#keyFor(keyId, master, tenant), data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
        decipher.setAAD(associatedData(keyId, tenant));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        const plaintext = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
        return temporal.api.common.v1.Payload.decode(plaintext);
      } catch (err) {
        const whose = tenant === undefined ? 'global' : `tenant "${tenant}"`;
        throw new PayloadDecryptionError(
          `encrypted payload (key "${keyId}", ${whose}) failed authentication: it was altered, its tenant tag was changed or removed, or the key is wrong`,
          {
            keyId,
            cause: err,
          },
        );
      }
    });
  }

  /** The master key itself for global payloads; the tenant's HKDF-derived key (cached) otherwise. */
  #keyFor(keyId: string, master: Uint8Array, tenant: string | undefined): Uint8Array {
    if (tenant === undefined) return master;
    const cacheKey = JSON.stringify([keyId, tenant]);
    const cached = this.#tenantKeys.get(cacheKey);
    if (cached) return cached;
    const derived = new Uint8Array(hkdfSync('sha256', master, TENANT_KEY_SALT, utf8.encode(`tenant:${tenant}`), master.length));
    if (this.#tenantKeys.size >= MAX_CACHED_TENANT_KEYS) this.#tenantKeys.delete(this.#tenantKeys.keys().next().value!);
    this.#tenantKeys.set(cacheKey, derived);
    return derived;
  }
}

/** What a payload of another tenant (or of none) decodes to inside a tenant's request: JSON null. */
const FOREIGN_PAYLOAD: Payload = { metadata: { [METADATA_ENCODING_KEY]: utf8.encode('json/plain') }, data: utf8.encode('null') };

/** Path of the module exporting the failure converter that encodes failure messages and stacks (see failure-converter.ts). */
export const FAILURE_CONVERTER_PATH = createRequire(import.meta.url).resolve('./failure-converter.ts');

/**
 * The data converter for `Client`, `Worker` and `TestWorkflowEnvironment` (`dataConverter`
 * option): payloads encrypted by the AES-GCM codec (per tenant where the SDK's serialization
 * context names a tenant's workflow), and failures with `encodeCommonAttributes` so their messages
 * and stacks are encrypted too, under the same context. A prebuilt workflow bundle must be built
 * with the same `failureConverterPath`.
 */
export function dataConverterFor(keyring: CodecKeyring): { payloadCodecs: PayloadCodec[]; failureConverterPath: string } {
  return { payloadCodecs: [new AesGcmCodec(keyring)], failureConverterPath: FAILURE_CONVERTER_PATH };
}
