/**
 * Sealed cookies for the approver inbox: AES-256-GCM over a JSON payload, with a key derived
 * (HKDF-SHA256) per purpose from the inbox's session key, and the cookie's name as additional
 * data — so one cookie can neither be read, altered, nor replayed under another name. Each payload
 * carries its own expiry, checked on opening, because a browser may keep a cookie longer than asked.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** Least length of the inbox session key, in bytes (it is the input keying material of HKDF). */
export const MIN_SESSION_KEY_BYTES = 32;

const VERSION = 'v1';

/** Seals and opens cookie values for one purpose. */
export class CookieSealer {
  private readonly key: Buffer;

  /** `secret`: at least 32 bytes of key material; `purpose` separates the keys of different cookies. */
  constructor(secret: Uint8Array, purpose: string) {
    if (secret.byteLength < MIN_SESSION_KEY_BYTES) {
      throw new RangeError(`the inbox session key must be at least ${MIN_SESSION_KEY_BYTES} bytes`);
    }
    this.key = Buffer.from(hkdfSync('sha256', secret, Buffer.from('toolgate-inbox'), Buffer.from(`cookie:${purpose}`), 32));
  }

  /** The sealed form of `payload` for the cookie `name`, valid until `expiresAt` (ms since epoch). */
  seal(name: string, payload: unknown, expiresAt: number): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(`${VERSION}:${name}`));
    const body = Buffer.concat([cipher.update(JSON.stringify({ exp: expiresAt, data: payload }), 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  /** The payload sealed in `value` for the cookie `name`, or undefined when it is not genuine or has expired. */
  open<T>(name: string, value: string | undefined, now = Date.now()): T | undefined {
    if (!value || value.length > 8192) return undefined;
    const [version, ivText, bodyText, extra] = value.split('.');
    if (version !== VERSION || !ivText || !bodyText || extra !== undefined) return undefined;
    try {
      const iv = Buffer.from(ivText, 'base64url');
      const body = Buffer.from(bodyText, 'base64url');
      if (iv.length !== 12 || body.length < 17) return undefined;
      const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
      decipher.setAAD(Buffer.from(`${VERSION}:${name}`));
      decipher.setAuthTag(body.subarray(body.length - 16));
      const text = Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
      const parsed = JSON.parse(text) as { exp?: unknown; data?: T };
      if (typeof parsed.exp !== 'number' || parsed.exp <= now) return undefined;
      return parsed.data;
    } catch {
      // A tampered, truncated or foreign cookie is simply no cookie.
      return undefined;
    }
  }
}

/** Attributes of the inbox's cookies. */
export interface CookieAttributes {
  path: string;
  secure: boolean;
  /** Lifetime in seconds; 0 deletes the cookie. */
  maxAgeSeconds: number;
}

/** A `Set-Cookie` value: always HttpOnly and SameSite=Lax; Secure when asked. */
export function serializeCookie(name: string, value: string, attributes: CookieAttributes): string {
  const parts = [`${name}=${value}`, `Path=${attributes.path}`, 'HttpOnly', 'SameSite=Lax', `Max-Age=${Math.max(0, Math.floor(attributes.maxAgeSeconds))}`];
  if (attributes.maxAgeSeconds <= 0) parts.push('Expires=Thu, 01 Jan 1970 00:00:00 GMT');
  if (attributes.secure) parts.push('Secure');
  return parts.join('; ');
}

/** The cookies of a request's `Cookie` header (the first of each name; values are taken verbatim). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index <= 0) continue;
    const name = part.slice(0, index).trim();
    if (!cookies.has(name)) cookies.set(name, part.slice(index + 1).trim());
  }
  return cookies;
}
