/**
 * The payload codec that keeps arguments, results and failure details out of Temporal in clear:
 * each payload is serialised (temporal.api.common.v1.Payload) and encrypted with AES-256-GCM under
 * the keyring's current key, with a fresh 96-bit IV; the key id travels in the payload metadata
 * and is bound to the ciphertext as associated data.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { CodecKeyring } from './keyring.js';

// The proto package is CommonJS: take the namespace from its default export under ESM.
const { temporal } = proto;

/** `encoding` metadata value of encrypted payloads. */
export const ENCODING_ENCRYPTED = 'binary/encrypted';
/** Metadata key holding the id of the key a payload was encrypted with. */
export const METADATA_ENCRYPTION_KEY_ID = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Thrown when a payload cannot be decrypted: unknown key id, tampered or truncated ciphertext. */
export class PayloadDecryptionError extends Error {
  override readonly name = 'PayloadDecryptionError';
  /** The key id the payload names, when it names one. */
  readonly keyId?: string;
  constructor(message: string, options?: { keyId?: string; cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.keyId = options?.keyId;
  }
}

/** AES-256-GCM `PayloadCodec` with key rotation: encrypts with the current key, decrypts with any known key. */
export class AesGcmCodec implements PayloadCodec {
  readonly #keyring: CodecKeyring;

  constructor(keyring: CodecKeyring) {
    if (!keyring.keys[keyring.current]) throw new Error(`codec keyring: current key "${keyring.current}" is missing`);
    this.#keyring = keyring;
  }

  /** The id new payloads are encrypted with. */
  get currentKeyId(): string {
    return this.#keyring.current;
  }

  /** Encrypts every payload with the current key. */
  async encode(payloads: Payload[]): Promise<Payload[]> {
    const keyId = this.#keyring.current;
    const key = this.#keyring.keys[keyId]!;
    return payloads.map((payload) => {
      const plaintext = temporal.api.common.v1.Payload.encode(payload).finish();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(utf8.encode(keyId));
      const body = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { [METADATA_ENCODING_KEY]: utf8.encode(ENCODING_ENCRYPTED), [METADATA_ENCRYPTION_KEY_ID]: utf8.encode(keyId) },
        data: new Uint8Array(body),
      };
    });
  }

  /** Decrypts payloads this codec encrypted; payloads with another encoding pass through unchanged. */
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
      if (!encoding || fromUtf8.decode(encoding) !== ENCODING_ENCRYPTED) return payload;
      const idBytes = payload.metadata?.[METADATA_ENCRYPTION_KEY_ID];
      if (!idBytes) throw new PayloadDecryptionError(`encrypted payload has no ${METADATA_ENCRYPTION_KEY_ID} metadata`);
      const keyId = fromUtf8.decode(idBytes);
      const key = Object.hasOwn(this.#keyring.keys, keyId) ? this.#keyring.keys[keyId] : undefined;
      if (!key) {
        throw new PayloadDecryptionError(
          `payload was encrypted with key "${keyId}", which is not in the keyring (known: ${Object.keys(this.#keyring.keys).join(', ')}); add it to TOOLGATE_CODEC_KEYS or the key file`,
          { keyId },
        );
      }
      const data = payload.data ?? new Uint8Array();
      if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadDecryptionError(`encrypted payload is truncated (${data.length} bytes)`, { keyId });
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
        decipher.setAAD(idBytes);
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        const plaintext = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
        return temporal.api.common.v1.Payload.decode(plaintext);
      } catch (err) {
        throw new PayloadDecryptionError(`encrypted payload (key "${keyId}") failed authentication: it was altered or the key is wrong`, { keyId, cause: err });
      }
    });
  }
}

/** Path of the module exporting the failure converter that encodes failure messages and stacks (see failure-converter.ts). */
export const FAILURE_CONVERTER_PATH = createRequire(import.meta.url).resolve('./failure-converter.ts');

/**
 * The data converter for `Client`, `Worker` and `TestWorkflowEnvironment` (`dataConverter`
 * option): payloads encrypted by the AES-GCM codec, and failures with `encodeCommonAttributes`
 * so their messages and stacks are encrypted too. A prebuilt workflow bundle must be built with
 * the same `failureConverterPath`.
 */
export function dataConverterFor(keyring: CodecKeyring): { payloadCodecs: PayloadCodec[]; failureConverterPath: string } {
  return { payloadCodecs: [new AesGcmCodec(keyring)], failureConverterPath: FAILURE_CONVERTER_PATH };
}
