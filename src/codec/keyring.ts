/**
 * Keys of the payload codec: a keyring names the current key (used to encrypt) and every key that
 * may still decrypt, so keys rotate without making older history unreadable.
 *
 * Sources, first match wins: `TOOLGATE_CODEC_KEYS` (`k2:<base64>,k1:<base64>`, first is current),
 * `TOOLGATE_CODEC_KEYS_FILE` (JSON `{ "current": "k2", "keys": { "k2": "<base64>", ... } }`), and for
 * `toolgate dev` a key file generated on first use under `<stateDir>/keys/codec-keys.json`.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';

/** AES-256 key length in bytes. */
export const CODEC_KEY_BYTES = 32;

/** The keys the codec may use: `current` encrypts, every entry of `keys` decrypts. */
export interface CodecKeyring {
  current: string;
  keys: Readonly<Record<string, Uint8Array>>;
}

/** Thrown when keys are missing or malformed; the message names the variable or file to fix. */
export class CodecKeyError extends Error {
  override readonly name = 'CodecKeyError';
  /** Where the bad key came from: an environment variable name or a file. */
  readonly source: string;
  constructor(source: string, message: string, options?: { cause?: unknown }) {
    super(`${source}: ${message}`, { cause: options?.cause });
    this.source = source;
  }
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

const KeyFileSchema = z
  .object({
    current: z.string().regex(KEY_ID, 'a key id of 1-64 characters A-Za-z0-9._-'),
    keys: z.record(z.string().regex(KEY_ID, 'a key id of 1-64 characters A-Za-z0-9._-'), z.string().min(1)),
  })
  .strict();

function decodeKey(source: string, id: string, base64: string): Uint8Array {
  if (!KEY_ID.test(id)) throw new CodecKeyError(source, `key id "${id}" must be 1-64 characters of A-Za-z0-9._-`);
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(base64)) throw new CodecKeyError(source, `key "${id}" is not base64`);
  const key = Buffer.from(base64, 'base64');
  if (key.length !== CODEC_KEY_BYTES) throw new CodecKeyError(source, `key "${id}" is ${key.length} bytes; AES-256 needs ${CODEC_KEY_BYTES} (generate one with: openssl rand -base64 32)`);
  return new Uint8Array(key);
}

/** Builds a keyring, checking that the current key is among the keys and every key is 32 bytes. */
export function createKeyring(current: string, keys: Record<string, Uint8Array | string>, source = 'keyring'): CodecKeyring {
  const out: Record<string, Uint8Array> = {};
  for (const [id, key] of Object.entries(keys)) out[id] = typeof key === 'string' ? decodeKey(source, id, key) : decodeKey(source, id, Buffer.from(key).toString('base64'));
  if (!(current in out)) throw new CodecKeyError(source, `current key "${current}" is not among the keys (${Object.keys(out).join(', ') || 'none'})`);
  return { current, keys: out };
}

/** Parses `TOOLGATE_CODEC_KEYS`: `id:base64` pairs separated by commas, the first one current. */
export function parseKeyringEnv(value: string, source = 'TOOLGATE_CODEC_KEYS'): CodecKeyring {
  const pairs = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (pairs.length === 0) throw new CodecKeyError(source, 'no keys; expected id:base64[,id:base64...]');
  const keys: Record<string, string> = {};
  for (const pair of pairs) {
    const colon = pair.indexOf(':');
    if (colon <= 0) throw new CodecKeyError(source, `"${pair.slice(0, 12)}..." is not id:base64`);
    const id = pair.slice(0, colon);
    if (id in keys) throw new CodecKeyError(source, `key id "${id}" appears twice`);
    keys[id] = pair.slice(colon + 1);
  }
  return createKeyring(pairs[0]!.slice(0, pairs[0]!.indexOf(':')), keys, source);
}

/** Parses a key file's JSON text. */
export function parseKeyringFile(text: string, source: string): CodecKeyring {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CodecKeyError(source, 'not valid JSON', { cause: err });
  }
  const parsed = KeyFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CodecKeyError(source, `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return createKeyring(parsed.data.current, parsed.data.keys, source);
}

/** Serialises a keyring in the key-file format. */
export function formatKeyringFile(keyring: CodecKeyring): string {
  const keys = Object.fromEntries(Object.entries(keyring.keys).map(([id, key]) => [id, Buffer.from(key).toString('base64')]));
  return `${JSON.stringify({ current: keyring.current, keys }, null, 2)}\n`;
}

/** A fresh random 256-bit key. */
export function generateCodecKey(): Uint8Array {
  return new Uint8Array(randomBytes(CODEC_KEY_BYTES));
}

/** Returns a keyring with a new random key made current; the old keys stay for decryption. */
export function rotateKeyring(keyring: CodecKeyring, newId: string): CodecKeyring {
  if (newId in keyring.keys) throw new CodecKeyError('keyring', `key id "${newId}" already exists`);
  return createKeyring(newId, { ...keyring.keys, [newId]: generateCodecKey() });
}

/** The dev key file under a state directory. */
export function defaultKeyringFile(stateDir: string): string {
  return join(stateDir, 'keys', 'codec-keys.json');
}

/** Reads the key file, creating it (mode 0600, one random key `dev-1`) if it does not exist; returns whether it was created. */
export async function ensureKeyringFile(file: string): Promise<{ keyring: CodecKeyring; created: boolean }> {
  try {
    return { keyring: parseKeyringFile(await readFile(file, 'utf8'), file), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const keyring = createKeyring('dev-1', { 'dev-1': generateCodecKey() }, file);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  try {
    // `wx`: if another process created it meanwhile, use theirs rather than overwrite it.
    await writeFile(file, formatKeyringFile(keyring), { mode: 0o600, flag: 'wx' });
    return { keyring, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { keyring: parseKeyringFile(await readFile(file, 'utf8'), file), created: false };
  }
}

/**
 * Loads the keyring from `TOOLGATE_CODEC_KEYS`, else `TOOLGATE_CODEC_KEYS_FILE`, else (when
 * `devStateDir` is given, as `toolgate dev` does) the generated dev key file; otherwise throws.
 */
export async function loadKeyring(options: { env?: NodeJS.ProcessEnv; devStateDir?: string } = {}): Promise<CodecKeyring> {
  const env = options.env ?? process.env;
  if (env.TOOLGATE_CODEC_KEYS) return parseKeyringEnv(env.TOOLGATE_CODEC_KEYS);
  const file = env.TOOLGATE_CODEC_KEYS_FILE;
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new CodecKeyError('TOOLGATE_CODEC_KEYS_FILE', `cannot read ${file}`, { cause: err });
    }
    return parseKeyringFile(text, file);
  }
  if (options.devStateDir !== undefined) return (await ensureKeyringFile(defaultKeyringFile(options.devStateDir))).keyring;
  throw new CodecKeyError('TOOLGATE_CODEC_KEYS', 'no payload encryption keys: set TOOLGATE_CODEC_KEYS (id:base64,...) or TOOLGATE_CODEC_KEYS_FILE');
}
