/**
 * Keys of the payload codec: a keyring names the current key (used to encrypt) and every key that
 * may still decrypt, so keys rotate without making older history unreadable.
 *
 * Sources, first match wins: `TOOLGATE_CODEC_KEYS` (`k2:<base64>,k1:<base64>`, first is current),
 * `TOOLGATE_CODEC_KEYS_FILE` (JSON `{ "current": "k2", "keys": { "k2": "<base64>", ... } }`), and the
 * key file under `<stateDir>/keys/codec-keys.json`. Only `toolgate dev` and `toolgate keys init`
 * create that file: every other process refuses to start without a key, because a key it made up
 * could not read what the rest of the deployment wrote.
 *
 * Key ids are names inside a keyring, and every ciphertext names the id it was made with. A
 * generated key is named after its fingerprint (`k-` and 16 hex digits of its SHA-256), so two
 * different keys never share a name; ids of other forms (`k1`, `dev-1`) stay valid for existing
 * keyrings, but an id of the fingerprint form must be its key's fingerprint, and one id never
 * names two keys.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ToolgateError } from '../errors.js';

/** AES-256 key length in bytes. */
export const CODEC_KEY_BYTES = 32;

/** The keys the codec may use: `current` encrypts, every entry of `keys` decrypts. */
export interface CodecKeyring {
  current: string;
  keys: Readonly<Record<string, Uint8Array>>;
}

/** Thrown when keys are missing or malformed; the message names the variable or file to fix. */
export class CodecKeyError extends ToolgateError {
  override readonly name = 'CodecKeyError';
  /** Where the bad key came from: an environment variable name or a file. */
  readonly source: string;
  constructor(source: string, message: string, options?: { cause?: unknown }) {
    super('codec_key_invalid', `${source}: ${message}`, { cause: options?.cause });
    this.source = source;
  }
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** The fingerprint form of a key id: `k-` and 16 lowercase hex digits. */
const FINGERPRINT_ID = /^k-[0-9a-f]{16}$/;

/** The fingerprint id of a key: `k-` and the first 16 hex digits of the SHA-256 of its bytes. */
export function keyFingerprint(key: Uint8Array): string {
  return `k-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

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
  if (key.length !== CODEC_KEY_BYTES)
    throw new CodecKeyError(source, `key "${id}" is ${key.length} bytes; AES-256 needs ${CODEC_KEY_BYTES} (generate one with: openssl rand -base64 32)`);
  return new Uint8Array(key);
}

/**
 * Builds a keyring, checking that the current key is among the keys, every key is 32 bytes, and
 * every id of the fingerprint form (`k-<16 hex>`) is its key's fingerprint.
 */
export function createKeyring(current: string, keys: Record<string, Uint8Array | string>, source = 'keyring'): CodecKeyring {
  const out: Record<string, Uint8Array> = {};
  for (const [id, key] of Object.entries(keys)) {
    const bytes = typeof key === 'string' ? decodeKey(source, id, key) : decodeKey(source, id, Buffer.from(key).toString('base64'));
    // A fingerprint-form id that does not match is a copy-paste mix-up: two keys would answer to one name.
    if (FINGERPRINT_ID.test(id) && keyFingerprint(bytes) !== id) {
      throw new CodecKeyError(
        source,
        `key id "${id}" has the fingerprint form but does not match its key (whose fingerprint is ${keyFingerprint(bytes)}): the id names another key`,
      );
    }
    out[id] = bytes;
  }
  if (!(current in out)) throw new CodecKeyError(source, `current key "${current}" is not among the keys (${Object.keys(out).join(', ') || 'none'})`);
  return { current, keys: out };
}

/** Parses `TOOLGATE_CODEC_KEYS`: `id:base64` pairs separated by commas, the first one current. */
export function parseKeyringEnv(value: string, source = 'TOOLGATE_CODEC_KEYS'): CodecKeyring {
  const pairs = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (pairs.length === 0) throw new CodecKeyError(source, 'no keys; expected id:base64[,id:base64...]');
  const keys: Record<string, string> = {};
  for (const pair of pairs) {
    const colon = pair.indexOf(':');
    if (colon <= 0) throw new CodecKeyError(source, `"${pair.slice(0, 12)}..." is not id:base64`);
    const id = pair.slice(0, colon);
    if (id in keys) throw new CodecKeyError(source, `key id "${id}" appears twice: one id may name only one key`);
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
  // JSON.parse keeps the last of two equal names silently: a second key under one id would vanish.
  const duplicate = duplicateJsonNames(text)[0];
  if (duplicate !== undefined) throw new CodecKeyError(source, `"${duplicate}" appears twice: one id may name only one key`);
  const parsed = KeyFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CodecKeyError(source, `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return createKeyring(parsed.data.current, parsed.data.keys, source);
}

/**
 * The member names that occur twice in one object of a (valid) JSON text, as dotted paths
 * (`keys.dev-1`). Only strings and punctuation matter, so a token scan suffices on valid JSON.
 */
export function duplicateJsonNames(text: string): string[] {
  interface Frame {
    object: boolean;
    path: string;
    names: Set<string>;
    expectName: boolean;
    lastName: string;
  }
  const stack: Frame[] = [];
  const duplicates: string[] = [];
  for (const match of text.matchAll(/"(?:[^"\\]|\\.)*"|[{}[\],]/g)) {
    const token = match[0];
    const top = stack.at(-1);
    if (token === '{' || token === '[') {
      const path = top === undefined ? '' : top.object ? (top.path ? `${top.path}.${top.lastName}` : top.lastName) : `${top.path}[]`;
      stack.push({ object: token === '{', path, names: new Set(), expectName: token === '{', lastName: '' });
    } else if (token === '}' || token === ']') {
      stack.pop();
    } else if (token === ',') {
      if (top?.object) top.expectName = true;
    } else if (top?.object && top.expectName) {
      const name = JSON.parse(token) as string;
      if (top.names.has(name)) duplicates.push(top.path ? `${top.path}.${name}` : name);
      top.names.add(name);
      top.lastName = name;
      top.expectName = false;
    }
  }
  return duplicates;
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

/**
 * Returns a keyring with a new random key made current; the old keys stay for decryption. The new
 * key is named `newId`, or its fingerprint when no id is given.
 */
export function rotateKeyring(keyring: CodecKeyring, newId?: string): CodecKeyring {
  const key = generateCodecKey();
  const id = newId ?? keyFingerprint(key);
  if (id in keyring.keys) throw new CodecKeyError('keyring', `key id "${id}" already exists`);
  return createKeyring(id, { ...keyring.keys, [id]: key });
}

/** A keyring of one fresh random key, named by its fingerprint. */
export function generateKeyring(source = 'keyring'): CodecKeyring {
  const key = generateCodecKey();
  return createKeyring(keyFingerprint(key), { [keyFingerprint(key)]: key }, source);
}

/** The dev key file under a state directory. */
export function defaultKeyringFile(stateDir: string): string {
  return join(stateDir, 'keys', 'codec-keys.json');
}

/**
 * Reads the key file, creating it (mode 0600, one random key named by its fingerprint) if it does
 * not exist; returns whether it was created. What `toolgate dev` and `toolgate keys init` call.
 */
export async function ensureKeyringFile(file: string): Promise<{ keyring: CodecKeyring; created: boolean }> {
  try {
    return { keyring: parseKeyringFile(await readFile(file, 'utf8'), file), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const keyring = generateKeyring(file);
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

/** Where `loadKeyring` looks for keys. */
export interface LoadKeyringOptions {
  env?: NodeJS.ProcessEnv;
  /** The state directory whose `keys/codec-keys.json` is read when neither variable is set. */
  stateDir?: string;
  /** @deprecated the old name of `stateDir`. */
  devStateDir?: string;
  /**
   * Create the state directory's key file when it does not exist. Only `toolgate dev` (and
   * `toolgate keys init`, through `ensureKeyringFile`) may: a worker, an API or a CLI that made up
   * its own key would encrypt what nobody else can read, and read nothing the others wrote.
   * @default false
   */
  create?: boolean;
}

/**
 * Loads the keyring from `TOOLGATE_CODEC_KEYS`, else `TOOLGATE_CODEC_KEYS_FILE`, else the key file
 * under `stateDir` (created only with `create`); otherwise throws a `CodecKeyError` naming all three.
 */
export async function loadKeyring(options: LoadKeyringOptions = {}): Promise<CodecKeyring> {
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
  const stateDir = options.stateDir ?? options.devStateDir;
  if (stateDir === undefined) {
    throw new CodecKeyError('TOOLGATE_CODEC_KEYS', 'no payload encryption keys: set TOOLGATE_CODEC_KEYS (id:base64,...) or TOOLGATE_CODEC_KEYS_FILE');
  }
  const stateFile = defaultKeyringFile(stateDir);
  if (options.create) return (await ensureKeyringFile(stateFile)).keyring;
  let text: string;
  try {
    text = await readFile(stateFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CodecKeyError(stateFile, 'cannot read the key file', { cause: err });
    throw new CodecKeyError(
      'TOOLGATE_CODEC_KEYS',
      `no payload encryption keys: set TOOLGATE_CODEC_KEYS (id:base64,...) or TOOLGATE_CODEC_KEYS_FILE, or create ${stateFile} ` +
        '(`toolgate keys init`, or start `toolgate dev` once with this TOOLGATE_STATE_DIR). Every worker, API and client of a ' +
        'deployment needs the same keys, so none of them creates one of its own.',
      { cause: err },
    );
  }
  return parseKeyringFile(text, stateFile);
}
