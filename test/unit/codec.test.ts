/**
 * The payload codec and its endpoint: payloads round-trip, ciphertext never shows the plaintext,
 * tampering and unknown keys fail loudly, old keys still decrypt after rotation, and the endpoint
 * admits only authorized callers from the UI's origin.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import express from 'express';
import {
  AesGcmCodec,
  CodecKeyError,
  PayloadDecryptionError,
  createCodecRouter,
  createKeyring,
  dataConverterFor,
  defaultKeyringFile,
  ensureKeyringFile,
  generateCodecKey,
  loadKeyring,
  parseKeyringEnv,
  rotateKeyring,
} from '../../src/codec/index.js';

const CANARY = 'CANARY-7f3a-do-not-store-in-clear';
const keyring1 = createKeyring('k1', { k1: generateCodecKey() });
const payloadOf = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const valueOf = (p: Payload): unknown => defaultPayloadConverter.fromPayload(p);
const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('latin1');

describe('AesGcmCodec', () => {
  test('round-trips payloads; the ciphertext does not contain the canary; each payload has its own IV', async () => {
    const codec = new AesGcmCodec(keyring1);
    const input = [payloadOf({ args: { note: CANARY } }), payloadOf(CANARY), payloadOf(null)];
    const encoded = await codec.encode(input);
    for (const p of encoded) {
      assert.equal(text(p.metadata?.encoding), 'binary/encrypted');
      assert.equal(text(p.metadata?.['encryption-key-id']), 'k1');
      assert.ok(!text(p.data).includes(CANARY));
      assert.ok(!Buffer.from(p.data!).toString('base64').includes(Buffer.from(CANARY).toString('base64')));
    }
    const again = await codec.encode([input[1]!]);
    assert.notDeepEqual(again[0]!.data, encoded[1]!.data);
    const decoded = await codec.decode(encoded);
    assert.deepEqual(decoded.map(valueOf), [{ args: { note: CANARY } }, CANARY, null]);
    assert.deepEqual(dataConverterFor(keyring1).payloadCodecs.length, 1);
  });

  test('a flipped byte in the data or a swapped key id fails authentication', async () => {
    const codec = new AesGcmCodec(keyring1);
    const [enc] = await codec.encode([payloadOf(CANARY)]);
    for (const index of [0, 12, enc!.data!.length - 1]) {
      const data = new Uint8Array(enc!.data!);
      data[index]! ^= 0x01;
      await assert.rejects(codec.decode([{ ...enc!, data }]), PayloadDecryptionError);
    }
    const both = createKeyring('k1', { k1: keyring1.keys.k1!, k0: generateCodecKey() });
    const relabelled = { ...enc!, metadata: { ...enc!.metadata, 'encryption-key-id': new TextEncoder().encode('k0') } };
    await assert.rejects(new AesGcmCodec(both).decode([relabelled]), /failed authentication/);
  });

  test('rotation: new payloads use the new key, payloads under the old key still decode; unknown key ids name themselves', async () => {
    const oldCodec = new AesGcmCodec(keyring1);
    const [old] = await oldCodec.encode([payloadOf('written before rotation')]);
    const rotated = rotateKeyring(keyring1, 'k2');
    const codec = new AesGcmCodec(rotated);
    const [fresh] = await codec.encode([payloadOf('after')]);
    assert.equal(text(fresh!.metadata?.['encryption-key-id']), 'k2');
    assert.deepEqual((await codec.decode([old!, fresh!])).map(valueOf), ['written before rotation', 'after']);
    await assert.rejects(oldCodec.decode([fresh!]), (e: unknown) => e instanceof PayloadDecryptionError && e.keyId === 'k2' && /not in the keyring/.test(e.message));
  });

  test('unencrypted payloads (history written before the codec) pass through', async () => {
    const plain = payloadOf({ a: 1 });
    assert.deepEqual(await new AesGcmCodec(keyring1).decode([plain]), [plain]);
  });
});

describe('keyring', () => {
  test('TOOLGATE_CODEC_KEYS: first key is current; bad lengths and ids are refused with the variable named', async () => {
    const k2 = Buffer.from(generateCodecKey()).toString('base64');
    const k1 = Buffer.from(generateCodecKey()).toString('base64');
    const ring = await loadKeyring({ env: { TOOLGATE_CODEC_KEYS: `k2:${k2},k1:${k1}` } });
    assert.equal(ring.current, 'k2');
    assert.deepEqual(Object.keys(ring.keys).sort(), ['k1', 'k2']);
    assert.throws(() => parseKeyringEnv('k1:c2hvcnQ='), (e: unknown) => e instanceof CodecKeyError && /TOOLGATE_CODEC_KEYS/.test(e.message) && /32/.test(e.message));
    assert.throws(() => parseKeyringEnv(`bad id:${k1}`), CodecKeyError);
    await assert.rejects(loadKeyring({ env: {} }), /TOOLGATE_CODEC_KEYS/);
  });

  test('dev default: a key file is generated once with mode 0600 and reused; TOOLGATE_CODEC_KEYS_FILE reads it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-codec-'));
    try {
      const first = await loadKeyring({ env: {}, devStateDir: dir });
      const file = defaultKeyringFile(dir);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      const second = await ensureKeyringFile(file);
      assert.equal(second.created, false);
      assert.deepEqual(second.keyring, first);
      const viaEnv = await loadKeyring({ env: { TOOLGATE_CODEC_KEYS_FILE: file } });
      assert.equal(viaEnv.current, first.current);
      assert.match(await readFile(file, 'utf8'), /"current"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('codec endpoint', () => {
  const UI = 'http://localhost:8233';
  const TOKEN = 'ops-token-for-test';
  let server: Server;
  let base: string;
  const codec = new AesGcmCodec(keyring1);
  before(async () => {
    const app = express();
    app.use('/codec', createCodecRouter({ codec, uiOrigins: [UI], authorize: async (req) => req.headers.authorization === `Bearer ${TOKEN}` }));
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/codec`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const toJson = (p: Payload) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  });
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', origin: UI, ...headers }, body: JSON.stringify(body) });

  test('refuses calls without a valid bearer token with 401, and never decodes for them', async () => {
    const [enc] = await codec.encode([payloadOf(CANARY)]);
    for (const headers of [{}, { authorization: 'Bearer wrong' }] as Record<string, string>[]) {
      const res = await post('/decode', { payloads: [toJson(enc!)] }, headers);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.ok(!(await res.text()).includes(CANARY));
    }
  });

  test('decodes and encodes for an authorized caller (200)', async () => {
    const [enc] = await codec.encode([payloadOf({ note: CANARY })]);
    const res = await post('/decode', { payloads: [toJson(enc!)] }, { authorization: `Bearer ${TOKEN}` });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), UI);
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    const body = (await res.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    assert.deepEqual(JSON.parse(Buffer.from(body.payloads[0]!.data, 'base64').toString('utf8')), { note: CANARY });
    const encRes = await post('/encode', body, { authorization: `Bearer ${TOKEN}` });
    const encoded = (await encRes.json()) as typeof body;
    assert.equal(Buffer.from(encoded.payloads[0]!.metadata.encoding!, 'base64').toString(), 'binary/encrypted');
  });

  test('a malformed body is refused with 400 naming the field', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const cases: [unknown, RegExp][] = [
      [{}, /^payloads/],
      [{ payloads: [{ data: 'not base64!' }] }, /^payloads\[0\]\.data/],
      [{ payloads: [{ metadata: { encoding: 42 } }] }, /^payloads\[0\]\.metadata\.encoding/],
    ];
    for (const [body, field] of cases) {
      const res = await post('/decode', body, auth);
      assert.equal(res.status, 400);
      assert.match(((await res.json()) as { field: string }).field, field);
    }
    const notJson = await fetch(`${base}/decode`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: '{' });
    assert.equal(notJson.status, 400);
  });

  test('CORS preflight from the UI origin succeeds without credentials; other origins get no CORS grant', async () => {
    const pre = await fetch(`${base}/decode`, {
      method: 'OPTIONS',
      headers: { origin: UI, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization,x-namespace' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), UI);
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /content-type,authorization,x-namespace/);
    const evil = await fetch(`${base}/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.test', 'access-control-request-method': 'POST' } });
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
  });
});
