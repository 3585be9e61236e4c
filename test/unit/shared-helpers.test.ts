/**
 * Small shared pieces that several modules rely on: the environment fields of the auth and trust
 * configuration (src/env-fields.ts) and the tolerant JSON body reader the client SDK and the inbox
 * use (src/shared/json-body.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { optionalList, optionalText, unsetIfEmpty } from '../../src/env-fields.js';
import { jsonBodyOf } from '../../src/shared/json-body.js';

describe('env-fields', () => {
  const schema = z.object({ FILE: optionalText, FILES: optionalList });

  test('blank variables are unset', () => {
    assert.equal(unsetIfEmpty('  '), undefined);
    assert.equal(unsetIfEmpty(''), undefined);
    assert.equal(unsetIfEmpty(' x '), ' x ');
    assert.equal(unsetIfEmpty(3), 3);
    const parsed = schema.parse({ FILE: ' ', FILES: '' });
    assert.equal(parsed.FILE, undefined);
    assert.equal(parsed.FILES, undefined);
    assert.equal(schema.safeParse({}).success, true);
  });

  test('text is trimmed; a list is split on commas, trimmed, empty items dropped', () => {
    assert.deepEqual(schema.parse({ FILE: ' /keys/a.pem ', FILES: ' a.pem, ,b.pem ,' }), { FILE: '/keys/a.pem', FILES: ['a.pem', 'b.pem'] });
  });
});

describe('jsonBodyOf', () => {
  test('JSON is parsed; an empty body or one that is not JSON reads as undefined', async () => {
    assert.deepEqual(await jsonBodyOf(new Response('{"error":{"code":"busy"}}')), { error: { code: 'busy' } });
    assert.equal(await jsonBodyOf(new Response('')), undefined);
    assert.equal(await jsonBodyOf(new Response(null, { status: 204 })), undefined);
    assert.equal(await jsonBodyOf(new Response('<html>502 Bad Gateway</html>', { status: 502 })), undefined);
  });
});
