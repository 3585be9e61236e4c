/**
 * The payload codec and its endpoint: payloads round-trip, ciphertext never shows the plaintext,
 * tampering and unknown keys fail loudly, old keys still decrypt after rotation, and the endpoint
 * admits only authorized callers from the UI's origin. Per-tenant keys: payloads of a tenant's
 * workflow are tagged and encrypted under that tenant's derived key, the tag cannot be changed or
 * stripped, untagged (global and pre-tenant) payloads still decode, and the endpoint lets a
 * tenant's ops decode only that tenant's payloads.
 */
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultPayloadConverter, type Payload, type PayloadCodec, type SerializationContext } from '@temporalio/common';
import proto from '@temporalio/proto';
import express, { type Request } from 'express';
import {
  AesGcmCodec,
  CodecKeyError,
  PayloadDecryptionError,
  createCodecRouter,
  createKeyring,
  isEncryptedPayload,
  payloadTenant,
  tenantOfContext,
  type CodecScope,
  dataConverterFor,
  defaultKeyringFile,
  ensureKeyringFile,
  generateCodecKey,
  keyFingerprint,
  loadKeyring,
  parseKeyringEnv,
  parseKeyringFile,
  rotateKeyring,
} from '../../src/codec/index.js';

const CANARY = 'CANARY-7f3a-do-not-store-in-clear';
const keyring1 = createKeyring('k1', { k1: generateCodecKey() });
const payloadOf = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const valueOf = (p: Payload): unknown => defaultPayloadConverter.fromPayload(p);
const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('latin1');
const utf8 = (s: string) => new TextEncoder().encode(s);
const ctx = (workflowId: string): SerializationContext => ({ type: 'workflow', namespace: 'default', workflowId });
const ACME = ctx('toolreq/acme/r1');
/** The payload with its tenant tag replaced (or removed, for undefined). */
const retagged = (p: Payload, tenant: string | undefined): Payload => {
  const metadata = { ...p.metadata };
  if (tenant === undefined) delete metadata['toolgate-tenant'];
  else metadata['toolgate-tenant'] = utf8(tenant);
  return { ...p, metadata };
};
/** A payload exactly as the codec wrote it before per-tenant keys: master key, AAD = key id, no tag. */
const legacyEncrypt = (payload: Payload, keyId: string, key: Uint8Array): Payload => {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  cipher.setAAD(utf8(keyId));
  const plaintext = proto.temporal.api.common.v1.Payload.encode(payload).finish();
  return {
    metadata: { encoding: utf8('binary/encrypted'), 'encryption-key-id': utf8(keyId) },
    data: new Uint8Array(Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])),
  };
};

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
    await assert.rejects(
      oldCodec.decode([fresh!]),
      (e: unknown) => e instanceof PayloadDecryptionError && e.keyId === 'k2' && /not in the keyring/.test(e.message),
    );
  });

  test('unencrypted payloads (history written before the codec) pass through', async () => {
    const plain = payloadOf({ a: 1 });
    assert.deepEqual(await new AesGcmCodec(keyring1).decode([plain]), [plain]);
  });
});

describe('AesGcmCodec per-tenant keys', () => {
  test('a tenant workflow context tags the payload and round-trips; the derived key is HKDF-SHA256 of the master key', async () => {
    const codec = new AesGcmCodec(keyring1);
    const [enc] = await codec.encode([payloadOf({ note: CANARY })], ACME);
    assert.equal(text(enc!.metadata?.['toolgate-tenant']), 'acme');
    assert.equal(text(enc!.metadata?.['encryption-key-id']), 'k1');
    assert.equal(text(enc!.metadata?.encoding), 'binary/encrypted');
    assert.equal(payloadTenant(enc!), 'acme');
    assert.ok(!text(enc!.data).includes(CANARY));
    assert.deepEqual(valueOf((await codec.decode([enc!]))[0]!), { note: CANARY });
    // The format, independently: key = HKDF(master, salt label, "tenant:acme"), AAD = label, key id, tenant.
    const key = Buffer.from(hkdfSync('sha256', keyring1.keys.k1!, 'toolgate-codec-tenant-v1', 'tenant:acme', 32));
    const data = Buffer.from(enc!.data!);
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12), { authTagLength: 16 });
    decipher.setAAD(utf8(JSON.stringify(['toolgate-tenant-v1', 'k1', 'acme'])));
    decipher.setAuthTag(data.subarray(data.length - 16));
    const plain = Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
    assert.deepEqual(valueOf(proto.temporal.api.common.v1.Payload.decode(plain)), { note: CANARY });
    // ... and it is not the master key: the master key does not open it.
    const viaMaster = createDecipheriv('aes-256-gcm', keyring1.keys.k1!, data.subarray(0, 12), { authTagLength: 16 });
    viaMaster.setAAD(utf8(JSON.stringify(['toolgate-tenant-v1', 'k1', 'acme'])));
    viaMaster.setAuthTag(data.subarray(data.length - 16));
    viaMaster.update(data.subarray(12, data.length - 16));
    assert.throws(() => viaMaster.final());
  });

  test('which contexts name a tenant: request workflows and their activities do; old ids, other workflows and no context are global', async () => {
    const codec = new AesGcmCodec(keyring1);
    const activity: SerializationContext = { type: 'activity', namespace: 'default', workflowId: 'toolreq/globex/r9', activityId: '1', isLocal: false };
    assert.equal(tenantOfContext(activity), 'globex');
    assert.equal(payloadTenant((await codec.encode([payloadOf(1)], activity))[0]!), 'globex');
    for (const context of [
      ctx('toolreq:r1'),
      ctx('toolgate:kill-switches'),
      { type: 'activity', namespace: 'default', isLocal: true } as SerializationContext,
      undefined,
    ]) {
      assert.equal(tenantOfContext(context), undefined);
      const [enc] = await codec.encode([payloadOf(CANARY)], context);
      assert.equal(enc!.metadata?.['toolgate-tenant'], undefined);
      assert.equal(isEncryptedPayload(enc!), true);
      assert.equal(payloadTenant(enc!), undefined);
      assert.equal(valueOf((await codec.decode([enc!]))[0]!), CANARY);
    }
    // Not encrypted: no tenant, not secret, passes through decoding untouched.
    const plain = payloadOf({ a: 1 });
    assert.equal(isEncryptedPayload(plain), false);
    assert.equal(payloadTenant(retagged(plain, 'acme')), undefined);
    assert.deepEqual(await codec.decode([plain]), [plain]);
    await assert.rejects(codec.encodeForTenant([plain], ''), TypeError);
  });

  test("a tenant's payload whose tag is changed, removed or emptied fails authentication; a tag added to a global payload too", async () => {
    const codec = new AesGcmCodec(keyring1);
    const [acme] = await codec.encode([payloadOf(CANARY)], ACME);
    const [global] = await codec.encode([payloadOf(CANARY)]);
    const isAuthFailure = (e: unknown) => e instanceof PayloadDecryptionError && /failed authentication/.test(e.message) && !e.message.includes(CANARY);
    await assert.rejects(codec.decode([retagged(acme!, 'globex')]), isAuthFailure);
    await assert.rejects(codec.decode([retagged(acme!, undefined)]), isAuthFailure);
    await assert.rejects(codec.decode([retagged(acme!, 'Acme')]), isAuthFailure);
    await assert.rejects(codec.decode([retagged(global!, 'acme')]), isAuthFailure);
    await assert.rejects(codec.decode([retagged(acme!, '')]), PayloadDecryptionError);
    await assert.rejects(
      codec.decode([{ ...acme!, metadata: { ...acme!.metadata, 'toolgate-tenant': new Uint8Array([0xff, 0xfe]) } }]),
      PayloadDecryptionError,
    );
    // The untouched payloads still decode: the failures above are the tag's doing.
    assert.deepEqual((await codec.decode([acme!, global!])).map(valueOf), [CANARY, CANARY]);
  });

  test('an untagged payload written before per-tenant keys still decodes', async () => {
    const old = legacyEncrypt(payloadOf({ note: 'old history' }), 'k1', keyring1.keys.k1!);
    assert.equal(payloadTenant(old), undefined);
    assert.deepEqual(valueOf((await new AesGcmCodec(keyring1).decode([old]))[0]!), { note: 'old history' });
  });

  test('rotation with tagged payloads: new ones derive from the new key, old ones from the key their id names', async () => {
    const before = new AesGcmCodec(keyring1);
    const [old] = await before.encode([payloadOf('acme before rotation')], ACME);
    const rotated = new AesGcmCodec(rotateKeyring(keyring1, 'k2'));
    const [fresh] = await rotated.encode([payloadOf('acme after rotation')], ACME);
    assert.equal(text(fresh!.metadata?.['encryption-key-id']), 'k2');
    assert.equal(payloadTenant(fresh!), 'acme');
    assert.deepEqual((await rotated.decode([old!, fresh!])).map(valueOf), ['acme before rotation', 'acme after rotation']);
    await assert.rejects(
      before.decode([fresh!]),
      (e: unknown) => e instanceof PayloadDecryptionError && e.keyId === 'k2' && /not in the keyring/.test(e.message),
    );
    // The key id is authenticated for tagged payloads too: relabelling k1 -> k2 fails.
    const relabelled = { ...old!, metadata: { ...old!.metadata, 'encryption-key-id': utf8('k2') } };
    await assert.rejects(rotated.decode([relabelled]), /failed authentication/);
  });
});

describe('keyring', () => {
  test('TOOLGATE_CODEC_KEYS: first key is current; bad lengths and ids are refused with the variable named', async () => {
    const k2 = Buffer.from(generateCodecKey()).toString('base64');
    const k1 = Buffer.from(generateCodecKey()).toString('base64');
    const ring = await loadKeyring({ env: { TOOLGATE_CODEC_KEYS: `k2:${k2},k1:${k1}` } });
    assert.equal(ring.current, 'k2');
    assert.deepEqual(Object.keys(ring.keys).sort(), ['k1', 'k2']);
    assert.throws(
      () => parseKeyringEnv('k1:c2hvcnQ='),
      (e: unknown) => e instanceof CodecKeyError && /TOOLGATE_CODEC_KEYS/.test(e.message) && /32/.test(e.message),
    );
    assert.throws(() => parseKeyringEnv(`bad id:${k1}`), CodecKeyError);
    await assert.rejects(loadKeyring({ env: {} }), /TOOLGATE_CODEC_KEYS/);
  });

  test('the state directory key file: created only when asked (dev, keys init), mode 0600, then reused; TOOLGATE_CODEC_KEYS_FILE reads it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-codec-'));
    try {
      const file = defaultKeyringFile(dir);
      // A worker, an API or a CLI never makes up a key: the message names every way to provide one.
      await assert.rejects(loadKeyring({ env: {}, stateDir: dir }), (e: unknown) => {
        assert.ok(e instanceof CodecKeyError);
        for (const named of ['TOOLGATE_CODEC_KEYS ', 'TOOLGATE_CODEC_KEYS_FILE', file, 'toolgate keys init', 'toolgate dev'])
          assert.ok(e.message.includes(named), `names ${named}: ${e.message}`);
        return true;
      });
      await assert.rejects(stat(file), /ENOENT/, 'refusing creates nothing');
      await assert.rejects(loadKeyring({ env: {}, devStateDir: dir }), CodecKeyError, 'the old option name does not create either');

      const first = await loadKeyring({ env: {}, stateDir: dir, create: true });
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      // A generated key is named by its fingerprint, never a shared name like dev-1.
      assert.match(first.current, /^k-[0-9a-f]{16}$/);
      assert.equal(first.current, keyFingerprint(first.keys[first.current]!));
      const second = await ensureKeyringFile(file);
      assert.equal(second.created, false);
      assert.deepEqual(second.keyring, first);
      assert.deepEqual(await loadKeyring({ env: {}, stateDir: dir }), first, 'once it exists, everyone reads it');
      const viaEnv = await loadKeyring({ env: { TOOLGATE_CODEC_KEYS_FILE: file } });
      assert.equal(viaEnv.current, first.current);
      assert.match(await readFile(file, 'utf8'), /"current"/);

      // Two state directories: two different keys, two different names.
      const other = await mkdtemp(join(tmpdir(), 'toolgate-codec-'));
      try {
        const otherRing = (await ensureKeyringFile(defaultKeyringFile(other))).keyring;
        assert.notEqual(otherRing.current, first.current);
      } finally {
        await rm(other, { recursive: true, force: true });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('key ids: old names keep working; a fingerprint-form id must match its key; one id never names two keys', async () => {
    const a = generateCodecKey();
    const b = generateCodecKey();
    const b64 = (key: Uint8Array) => Buffer.from(key).toString('base64');
    // Existing keyrings with names of their own (and their ciphertexts, which name the id) keep working.
    const legacy = parseKeyringFile(JSON.stringify({ current: 'dev-1', keys: { 'dev-1': b64(a), k1: b64(b) } }), 'old.json');
    const [sealed] = await new AesGcmCodec(legacy).encode([payloadOf('old history')], ACME);
    assert.equal(text(sealed!.metadata?.['encryption-key-id']), 'dev-1');
    assert.deepEqual((await new AesGcmCodec(legacy).decode([sealed!])).map(valueOf), ['old history']);
    // Rotation without a name names the new key by its fingerprint.
    const rotated = rotateKeyring(legacy);
    assert.equal(rotated.current, keyFingerprint(rotated.keys[rotated.current]!));
    assert.deepEqual((await new AesGcmCodec(rotated).decode([sealed!])).map(valueOf), ['old history']);

    // A fingerprint-form id on another key is refused, naming the id and the source.
    const wrongId = keyFingerprint(a);
    assert.throws(
      () => parseKeyringFile(JSON.stringify({ current: wrongId, keys: { [wrongId]: b64(b) } }), 'keys.json'),
      (e: unknown) =>
        e instanceof CodecKeyError && e.message.startsWith('keys.json: ') && e.message.includes(`"${wrongId}"`) && e.message.includes(keyFingerprint(b)),
    );
    assert.throws(
      () => parseKeyringEnv(`${wrongId}:${b64(b)}`),
      (e: unknown) => e instanceof CodecKeyError && /TOOLGATE_CODEC_KEYS/.test(e.message) && e.message.includes(wrongId),
    );
    assert.equal(parseKeyringEnv(`${keyFingerprint(b)}:${b64(b)}`).current, keyFingerprint(b));

    // Two keys under one id: in the variable, and in a file (where JSON.parse alone would keep the last silently).
    assert.throws(
      () => parseKeyringEnv(`dev-1:${b64(a)},dev-1:${b64(b)}`),
      (e: unknown) => e instanceof CodecKeyError && /"dev-1" appears twice/.test(e.message),
    );
    const twice = `{ "current": "dev-1", "keys": { "dev-1": "${b64(a)}", "dev-1": "${b64(b)}" } }`;
    assert.throws(
      () => parseKeyringFile(twice, 'merged.json'),
      (e: unknown) => e instanceof CodecKeyError && e.message.includes('merged.json') && e.message.includes('"keys.dev-1" appears twice'),
    );
    // The same name at different places is not a duplicate.
    assert.equal(parseKeyringFile(`{ "current": "k1", "keys": { "k1": "${b64(a)}", "k2": "${b64(b)}" } }`, 'ok.json').current, 'k1');

    const dir = await mkdtemp(join(tmpdir(), 'toolgate-codec-'));
    try {
      const file = join(dir, 'keys.json');
      await writeFile(file, twice);
      await assert.rejects(loadKeyring({ env: { TOOLGATE_CODEC_KEYS_FILE: file } }), /appears twice/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('codec endpoint', () => {
  const UI = 'http://localhost:8233';
  const TOKEN = 'ops-token-for-test'; // ops:all
  const ACME_TOKEN = 'acme-ops-token';
  /** Scopes by bearer token; `throws` makes authorize reject, `legacy` returns the old boolean. */
  const scopes: Record<string, CodecScope> = { [TOKEN]: { allTenants: true }, [ACME_TOKEN]: { allTenants: false, tenant: 'acme' } };
  const authorize = async (req: Request): Promise<CodecScope | undefined> => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    if (token === 'throws') throw new Error('verifier down');
    if (token === 'legacy') return true as unknown as CodecScope;
    return scopes[token];
  };
  let server: Server;
  let base: string;
  let root: string;
  const codec = new AesGcmCodec(keyring1);
  /** Counts decode calls, to show a refused request decrypted nothing. */
  const spy = { decodes: 0 };
  const spied = {
    encode: (p: Payload[], c?: SerializationContext) => codec.encode(p, c),
    encodeForTenant: (p: Payload[], t: string | undefined) => codec.encodeForTenant(p, t),
    decode: (p: Payload[]) => {
      spy.decodes += 1;
      return codec.decode(p);
    },
  };
  /** A codec without encodeForTenant (tenant via a serialization context) and one that ignores tenants. */
  const generic: PayloadCodec = { encode: (p, c) => codec.encode(p, c), decode: (p) => codec.decode(p) };
  const blind: PayloadCodec = { encode: (p) => codec.encode(p), decode: (p) => codec.decode(p) };
  before(async () => {
    const app = express();
    app.use('/codec', createCodecRouter({ codec: spied, uiOrigins: [UI], authorize }));
    app.use('/generic', createCodecRouter({ codec: generic, authorize }));
    app.use('/blind', createCodecRouter({ codec: blind, authorize }));
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    root = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    base = `${root}/codec`;
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

  test('refuses calls without a scope with 401 (no token, unknown token, authorize failing, a non-scope), and never decodes for them', async () => {
    const [enc] = await codec.encode([payloadOf(CANARY)], ACME);
    const decodesBefore = spy.decodes;
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Bearer throws' }, { authorization: 'Bearer legacy' }] as Record<
      string,
      string
    >[]) {
      const res = await post('/decode', { payloads: [toJson(enc!)] }, headers);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.ok(!(await res.text()).includes(CANARY));
    }
    const enc401 = await post('/encode', { payloads: [toJson(payloadOf(CANARY))] });
    assert.equal(enc401.status, 401);
    assert.equal(spy.decodes, decodesBefore);
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

  type Body = { payloads: { metadata: Record<string, string>; data: string }[] };
  const fromJsonBody = (p: Body['payloads'][number]): Payload => ({
    metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
    data: new Uint8Array(Buffer.from(p.data, 'base64')),
  });
  const acmeAuth = { authorization: `Bearer ${ACME_TOKEN}` };
  const allAuth = { authorization: `Bearer ${TOKEN}` };

  test("an acme ops scope decodes acme's payloads (and unencrypted ones)", async () => {
    const encoded = await codec.encode([payloadOf({ note: CANARY }), payloadOf('second')], ctx('toolreq/acme/r2'));
    const res = await post('/decode', { payloads: [...encoded, payloadOf('plain')].map(toJson) }, acmeAuth);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), UI);
    const body = (await res.json()) as Body;
    assert.deepEqual(
      body.payloads.map((p) => valueOf(fromJsonBody(p))),
      [{ note: CANARY }, 'second', 'plain'],
    );
  });

  test('an acme ops scope gets 403 naming the index for a globex payload and for an untagged encrypted one, before anything is decrypted', async () => {
    const [a1, a2] = await codec.encode([payloadOf(CANARY), payloadOf(CANARY)], ACME);
    const [globex] = await codec.encode([payloadOf(CANARY)], ctx('toolreq/globex/r1'));
    const [global] = await codec.encode([payloadOf(CANARY)], ctx('toolgate:kill-switches'));
    const legacy = legacyEncrypt(payloadOf(CANARY), 'k1', keyring1.keys.k1!);
    const cases: [Payload[], number, RegExp][] = [
      [[a1!, globex!], 1, /decodes only payloads of tenant "acme"/],
      [[a1!, a2!, payloadOf('plain'), global!], 3, /global payload/],
      [[legacy, a1!], 0, /global payload/],
      [[a1!, retagged(a2!, '\ufeffacme')], 1, /decodes only payloads of tenant "acme"/],
    ];
    for (const [payloads, index, reason] of cases) {
      const decodesBefore = spy.decodes;
      const res = await post('/decode', { payloads: payloads.map(toJson) }, acmeAuth);
      assert.equal(res.status, 403);
      const raw = await res.text();
      assert.ok(!raw.includes(CANARY) && !raw.includes(Buffer.from(CANARY).toString('base64')));
      const body = JSON.parse(raw) as { error: string; field: string };
      assert.equal(body.field, `payloads[${index}]`);
      assert.match(body.error, new RegExp(`^forbidden: payloads\\[${index}\\] belongs to another tenant`));
      assert.match(body.error, reason);
      assert.equal(spy.decodes, decodesBefore, 'nothing was decrypted');
    }
  });

  test('a globex payload retagged as acme passes the tag check but fails authentication (422), without plaintext', async () => {
    const [globex] = await codec.encode([payloadOf(CANARY)], ctx('toolreq/globex/r1'));
    const res = await post('/decode', { payloads: [toJson(retagged(globex!, 'acme'))] }, acmeAuth);
    assert.equal(res.status, 422);
    const raw = await res.text();
    assert.match(raw, /failed authentication/);
    assert.ok(!raw.includes(CANARY));
  });

  test('an ops:all scope decodes every tenant and global payloads', async () => {
    const [acme] = await codec.encode([payloadOf('for acme')], ACME);
    const [globex] = await codec.encode([payloadOf('for globex')], ctx('toolreq/globex/r1'));
    const [global] = await codec.encode([payloadOf('global')]);
    const legacy = legacyEncrypt(payloadOf('legacy'), 'k1', keyring1.keys.k1!);
    const res = await post('/decode', { payloads: [acme!, globex!, global!, legacy].map(toJson) }, allAuth);
    assert.equal(res.status, 200);
    assert.deepEqual(
      ((await res.json()) as Body).payloads.map((p) => valueOf(fromJsonBody(p))),
      ['for acme', 'for globex', 'global', 'legacy'],
    );
  });

  test("/encode: a tenant's scope gets payloads encrypted for its tenant, ops:all global ones", async () => {
    const input = { payloads: [toJson(payloadOf({ note: CANARY }))] };
    for (const path of ['/codec', '/generic']) {
      const res = await fetch(`${root}${path}/encode`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...acmeAuth },
        body: JSON.stringify(input),
      });
      assert.equal(res.status, 200, path);
      const [p] = ((await res.json()) as Body).payloads.map(fromJsonBody);
      assert.equal(payloadTenant(p!), 'acme', path);
      assert.deepEqual(valueOf((await codec.decode([p!]))[0]!), { note: CANARY });
    }
    const res = await post('/encode', input, allAuth);
    const [p] = ((await res.json()) as Body).payloads.map(fromJsonBody);
    assert.equal(isEncryptedPayload(p!), true);
    assert.equal(payloadTenant(p!), undefined);
    // A codec that ignores the tenant is refused rather than handing out global payloads.
    const blindRes = await fetch(`${root}/blind/encode`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...acmeAuth },
      body: JSON.stringify(input),
    });
    assert.equal(blindRes.status, 500);
    assert.ok(!(await blindRes.text()).includes(Buffer.from(CANARY).toString('base64')));
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

describe('decoding inside a request', () => {
  test("a worker or client decoding in the context of a tenant's request decodes only that tenant's payloads", async () => {
    const codec = new AesGcmCodec(keyring1);
    const [acme] = await codec.encode([payloadOf({ secret: CANARY })], ACME);
    const [globex] = await codec.encode([payloadOf({ secret: CANARY })], ctx('toolreq/globex/r1'));
    const [global] = await codec.encode([payloadOf({ secret: CANARY })]);
    assert.deepEqual(valueOf((await codec.decode([acme!], ACME))[0]!), { secret: CANARY });
    // Handed to acme's request (as a signal or query argument), globex's payload and a global one stay
    // sealed: they read as JSON null, so the request neither sees them nor fails on them.
    assert.deepEqual((await codec.decode([globex!, global!], ACME)).map(valueOf), [null, null]);
    // Without a tenant context (ops:all tools, old ids) every payload decodes as before.
    assert.deepEqual(valueOf((await codec.decode([globex!]))[0]!), { secret: CANARY });
    assert.deepEqual(valueOf((await codec.decode([global!], ctx('toolreq:old-id')))[0]!), { secret: CANARY });
  });
});
