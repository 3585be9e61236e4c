/** The request digest binds an approval to one exact proposal. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { buildProposal, canonicalDigest, proposalDigest } from '../../src/approvals/digest.js';
import { canonicalJson, canonicalSha256, type PolicyDecision, type ToolRequest } from '../../src/shared/index.js';

function shuffleKeys(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((item, i) => shuffleKeys(item, seed + i));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  entries.sort(([a], [b]) => ((a.length * 31 + seed) % 7) - ((b.length * 31 + seed) % 7) || b.localeCompare(a));
  return Object.fromEntries(entries.map(([k, v]) => [k, shuffleKeys(v, seed + 1)]));
}

const request: ToolRequest = {
  requestId: 'r-1',
  actor: { id: 'bot', type: 'agent', roles: ['agent_runtime'] },
  tenant: 'acme',
  environment: 'production',
  tool: 'create_ticket',
  args: { title: 'Outage', priority: 'urgent', tags: ['a', 'b'], meta: { n: 1 } },
};
const decision: PolicyDecision = {
  outcome: 'approve',
  tool: 'create_ticket',
  risk: 'medium',
  rule: 'tool:create_ticket',
  reasons: [],
  policyDigest: 'p'.repeat(64),
  toolDigest: 't'.repeat(64),
  approval: { name: 'manager', groups: ['manager'], allOf: [], minApprovals: 1, rejectionsToDeny: 1, escalation: [], expiresAfterMs: 1000 },
};

describe('request digest', () => {
  test('reordering keys never changes the digest', () => {
    const proposal = buildProposal(request, 'toolreq:r-1', decision);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), (seed) => {
        assert.equal(canonicalDigest(shuffleKeys(proposal, seed)), proposalDigest(proposal));
      }),
    );
  });

  test('changing any argument value changes the digest', () => {
    const original = proposalDigest(buildProposal(request, 'toolreq:r-1', decision));
    fc.assert(
      fc.property(fc.constantFrom('title', 'priority', 'extra'), fc.jsonValue(), (key, value) => {
        fc.pre(JSON.stringify(value) !== JSON.stringify(request.args[key]));
        const changed = { ...request, args: { ...request.args, [key]: value } };
        assert.notEqual(proposalDigest(buildProposal(changed, 'toolreq:r-1', decision)), original);
      }),
    );
  });

  test('tenant, actor, tool identity, policy and request id are all bound', () => {
    const original = proposalDigest(buildProposal(request, 'toolreq:r-1', decision));
    const variants = [
      buildProposal({ ...request, tenant: 'globex' }, 'toolreq:r-1', decision),
      buildProposal({ ...request, actor: { ...request.actor, id: 'other' } }, 'toolreq:r-1', decision),
      buildProposal({ ...request, requestId: 'r-2' }, 'toolreq:r-1', decision),
      buildProposal(request, 'toolreq:r-2', decision),
      buildProposal(request, 'toolreq:r-1', { ...decision, policyDigest: 'q'.repeat(64) }),
      buildProposal(request, 'toolreq:r-1', { ...decision, toolDigest: 'u'.repeat(64) }),
      buildProposal(request, 'toolreq:r-1', { ...decision, risk: 'high' }),
    ];
    for (const variant of variants) assert.notEqual(proposalDigest(variant), original);
  });
});

describe('the canonical-JSON hash', () => {
  test('is SHA-256 of the RFC 8785 text, byte for byte as recorded digests and signed manifests were made', () => {
    // Key order, number forms (1e+21, -0), escapes and a raw U+2028: the text is pinned, and so is its hash.
    const value = { b: [1e21, 0.1, -0, 10], a: 'é\u2028"', c: { z: null, y: true } };
    const text = '{"a":"é\u2028\\"","b":[1e+21,0.1,0,10],"c":{"y":true,"z":null}}';
    assert.equal(canonicalJson(value), text);
    assert.equal(createHash('sha256').update(text, 'utf8').digest('hex'), '2e232829103017b303e20cd43487ae0d7ad0029ce2942e6f869eb0618f372077');
    assert.equal(canonicalSha256(value), '2e232829103017b303e20cd43487ae0d7ad0029ce2942e6f869eb0618f372077');
    assert.equal(canonicalDigest(value), canonicalSha256(value));
  });

  test('refuses a value JSON cannot carry rather than hashing a stand-in', () => {
    assert.throws(() => canonicalSha256(undefined), TypeError);
    assert.throws(() => canonicalSha256({ n: Number.NaN }));
  });
});
