/**
 * The redaction rules against a corpus of true positives and near-misses for every rule: recall
 * must be 1 and false positives 0. Per-rule figures are printed for the closing note.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  REDACTION_RULES,
  UnknownRedactionRuleError,
  createRedactor,
  luhnValid,
  redactText,
  redactValue,
  resolveRules,
  ssnValid,
  type RedactionHits,
} from '../../src/egress/redact.js';

interface Corpus {
  positives: { rule: string; text: string; secret: string | null }[];
  negatives: { text: string; note: string }[];
}

const corpus = JSON.parse(readFileSync(new URL('../fixtures/redaction-corpus.json', import.meta.url), 'utf8')) as Corpus;

describe('redaction corpus', () => {
  test('every shipped rule has positives and the corpus has near-misses; recall = 1 and FP = 0 per rule', (t) => {
    const stats = new Map(REDACTION_RULES.map((r) => [r.name, { positives: 0, detected: 0, fp: 0 }]));
    const misses: string[] = [];
    for (const p of corpus.positives) {
      const s = stats.get(p.rule);
      assert.ok(s, `corpus names unknown rule ${p.rule}`);
      s.positives += 1;
      const hits: RedactionHits = {};
      const out = redactText(p.text, REDACTION_RULES, hits);
      const gone = p.secret === null || !out.includes(p.secret);
      if ((hits[p.rule] ?? 0) > 0 && gone && out.includes(`[REDACTED:${p.rule}]`)) s.detected += 1;
      else misses.push(`${p.rule}: ${JSON.stringify(p.text)} -> ${JSON.stringify(out)}`);
    }
    const fps: string[] = [];
    for (const n of corpus.negatives) {
      const hits: RedactionHits = {};
      const out = redactText(n.text, REDACTION_RULES, hits);
      for (const [rule, count] of Object.entries(hits)) {
        stats.get(rule)!.fp += count;
        fps.push(`${rule} on ${n.note}: ${JSON.stringify(n.text)} -> ${JSON.stringify(out)}`);
      }
    }
    const rows = [...stats].map(([rule, s]) => ({ rule, positives: s.positives, recall: s.positives ? s.detected / s.positives : NaN, fp: s.fp }));
    t.diagnostic(`redaction corpus: ${corpus.positives.length} positives, ${corpus.negatives.length} near-misses`);
    for (const r of rows) t.diagnostic(`${r.rule.padEnd(22)} positives=${r.positives} recall=${r.recall.toFixed(2)} fp=${r.fp}`);
    assert.deepEqual(misses, [], 'missed positives');
    assert.deepEqual(fps, [], 'false positives');
    for (const r of rows) assert.ok(r.positives > 0, `rule ${r.rule} has no positive in the corpus`);
  });
});

describe('redactValue', () => {
  const canary = 'ghp_' + 'C4n4ryT0k3n'.repeat(3) + 'abc';

  test('walks nested values, keys and errors without changing the input', () => {
    const err = new Error(`upstream said: token ${canary}`, { cause: new Error('mail maria@example.com') });
    const input = {
      rows: [{ note: `key ${canary}`, n: 7, ok: true, at: null }],
      [`k-${canary}`]: 1,
      password: 'plain words here',
      error: err,
    };
    const before = JSON.stringify(input);
    const { value, hits } = redactValue(input);
    const dumped = JSON.stringify(value);
    assert.equal(JSON.stringify(input), before);
    assert.ok(!dumped.includes(canary), dumped);
    assert.ok(!dumped.includes('maria@example.com'));
    assert.ok(!dumped.includes('plain words here'));
    assert.equal((value as any).rows[0].n, 7);
    assert.equal((value as any).error.name, 'Error');
    assert.match((value as any).error.message, /\[REDACTED:github_token\]/);
    assert.match((value as any).error.cause.message, /\[REDACTED:email\]/);
    assert.equal(hits.github_token, 3 + 1); // note, key, message, stack (message appears in stack)
    assert.equal(hits.secret_assignment, 1);
  });

  test('cycles and excessive depth are cut, not followed', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    assert.deepEqual(redactValue(a).value, { x: 1, self: '[REDACTED:cycle]' });
    let deep: unknown = 'leaf';
    for (let i = 0; i < 100; i++) deep = [deep];
    assert.ok(JSON.stringify(redactValue(deep, { maxDepth: 10 }).value).includes('[REDACTED:depth]'));
  });

  test('a tool can select categories or single rules; unknown names are refused with the list', () => {
    const onlySecrets = createRedactor(['secrets']);
    assert.equal(onlySecrets.text('mail maria@example.com'), 'mail maria@example.com');
    assert.equal(createRedactor(['email']).text('mail maria@example.com'), 'mail [REDACTED:email]');
    assert.equal(resolveRules([]).length, REDACTION_RULES.length);
    assert.throws(() => resolveRules(['secrets', 'ssn']), (e: unknown) => e instanceof UnknownRedactionRuleError && e.unknown[0] === 'ssn');
  });

  test('validators: Luhn and SSN rules', () => {
    assert.ok(luhnValid('4111111111111111'));
    assert.ok(!luhnValid('4111111111111112'));
    assert.ok(ssnValid('536-90-4399'));
    assert.ok(!ssnValid('900-12-3456'));
  });

  test('adversarial inputs finish quickly (bounded quantifiers, no catastrophic backtracking)', { timeout: 10_000 }, (t) => {
    const inputs = [
      'a'.repeat(200_000),
      '-----BEGIN RSA PRIVATE KEY-----' + 'A'.repeat(100_000),
      'x:'.repeat(50_000) + '@',
      '1 '.repeat(50_000),
      'Bearer ' + 'a'.repeat(100_000),
      'eyJ' + 'a'.repeat(50_000) + '.eyJ' + 'b'.repeat(50_000),
      ('password=' + 'p'.repeat(300) + ' ').repeat(300),
      'a@'.repeat(50_000),
      'AB12 '.repeat(40_000),
    ];
    const started = performance.now();
    for (const text of inputs) redactText(text);
    t.diagnostic(`adversarial inputs (${inputs.reduce((n, s) => n + s.length, 0)} chars): ${(performance.now() - started).toFixed(0)} ms`);
  });

  test('throughput on a realistic result is printed', (t) => {
    const row = { id: '123e4567-e89b-12d3-a456-426614174000', title: 'Checkout outage', body: 'Customer reported that checkout fails since 10:30; see ticket 4821. '.repeat(4), owner: 'support' };
    const rows = Array.from({ length: 2000 }, () => ({ ...row }));
    const started = performance.now();
    redactValue(rows);
    const ms = performance.now() - started;
    const bytes = JSON.stringify(rows).length;
    t.diagnostic(`redactValue: ${rows.length} rows, ${(bytes / 1024).toFixed(0)} KiB in ${ms.toFixed(0)} ms (${(bytes / 1024 / 1024 / (ms / 1000)).toFixed(1)} MiB/s)`);
  });
});
