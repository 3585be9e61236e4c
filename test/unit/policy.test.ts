/**
 * The policy engine: the shipped policy and its test cases, every check of decide(), load errors
 * with file/line/field, digest stability, and CEL behaviour (numbers, runtime errors).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { before, describe, test } from 'node:test';
import {
  checkPolicyFiles,
  decide,
  loadPolicy,
  parsePolicy,
  PolicyLoadError,
  runPolicyTests,
  type LoadedPolicy,
  type PolicyIssue,
} from '../../src/policy/index.js';
import type { ToolRequest } from '../../src/shared/index.js';

const POLICY_DIR = resolve(import.meta.dirname, '../../policies');
const SHIPPED_POLICY = join(POLICY_DIR, 'support-triage.yaml');
const SHIPPED_TESTS = join(POLICY_DIR, 'support-triage.test.yaml');

const TEMPLATE = `tools:
  read_kb:
    risk: low
    approval: none
    allowed_roles: ["agent_runtime"]
  create_ticket:
    risk: medium
    approval: manager
    allowed_roles: ["agent_runtime"]
  prod_db_write:
    risk: critical
    approval: security_and_owner
    allowed_roles: []
    environments: ["staging"]
`;

/** A small policy exercising every check; tests derive broken variants from it by text edits. */
const REFUNDS = `version: 1
tools:
  refund:
    risk: medium
    approval: finance
    allowed_roles: [agent_runtime]
    environments: [production, staging]
    tenants: [acme]
    rules:
      - name: huge_refunds
        when: args.amount > 10000
        effect: deny
        reason: refunds over 10000 need a different process
      - name: small_refunds
        when: args.amount <= 100
        effect: allow
        risk: low
      - name: vip_customer
        when: '"vip" in actor.roles'
        approval: finance_lead
        risk: high
approvals:
  finance:
    groups: [finance]
    expires_after: 1h
  finance_lead:
    groups: [finance_lead]
    escalation:
      - after: 10m
        groups: [cfo]
    expires_after: 2h
manifest:
  refund:
    run_as: svc-refunds
    adapter:
      type: code
    args:
      type: object
      properties:
        amount: { type: number }
        currency: { enum: [EUR, USD] }
        note: { type: string }
      required: [amount]
`;

function request(overrides: Partial<ToolRequest> = {}): ToolRequest {
  return {
    requestId: 'req-1',
    actor: { id: 'bot-1', type: 'agent', roles: ['agent_runtime'] },
    tenant: 'acme',
    environment: 'production',
    tool: 'refund',
    args: { amount: 500 },
    ...overrides,
  };
}

function policyOf(text: string, file = 'refunds.yaml'): LoadedPolicy {
  return parsePolicy([{ file, text }]);
}

/** Every issue of a policy that must fail to load. */
function loadIssues(sources: { file: string; text: string }[]): PolicyIssue[] {
  try {
    parsePolicy(sources);
  } catch (error) {
    assert.ok(error instanceof PolicyLoadError, `expected PolicyLoadError, got ${String(error)}`);
    return error.issues;
  }
  assert.fail('the policy loaded, but it should have failed');
}

/** The 1-based line of the first occurrence of `needle` in `text`. */
function lineOf(text: string, needle: string, from = 0): number {
  const at = text.indexOf(needle, from);
  assert.ok(at >= 0, `fixture does not contain ${needle}`);
  return text.slice(0, at).split('\n').length;
}

function findIssue(issues: PolicyIssue[], path: string): PolicyIssue {
  const issue = issues.find((candidate) => candidate.path === path);
  assert.ok(issue, `no issue at ${path}; issues: ${JSON.stringify(issues, null, 2)}`);
  return issue;
}

describe('the shipped support-triage policy', () => {
  test('contains the template verbatim and loads', async () => {
    const text = await readFile(SHIPPED_POLICY, 'utf8');
    assert.ok(text.includes(TEMPLATE), 'policies/support-triage.yaml must contain the template byte for byte');
    const policy = await loadPolicy([SHIPPED_POLICY]);
    assert.deepEqual(policy.toolNames, ['create_ticket', 'execute_shell_command', 'prod_db_write', 'read_kb']);
    assert.match(policy.digest, /^[a-f0-9]{64}$/);
    assert.equal(policy.manifest('prod_db_write')?.adapter.type, 'http');
    assert.equal(policy.manifest('execute_shell_command')?.runAs, 'svc-shell-sandbox');
  });

  test('every case in support-triage.test.yaml passes', async () => {
    const results = await runPolicyTests([SHIPPED_TESTS]);
    assert.ok(results.length >= 45, `expected the full table of cases, got ${results.length}`);
    const failed = results.filter((result) => !result.passed);
    assert.deepEqual(failed, [], failed.map((result) => `${result.name}: ${result.message}`).join('\n'));
    const shell = results.filter((result) => result.name.startsWith('shell '));
    assert.ok(shell.length >= 30, `expected at least 30 shell variants, got ${shell.length}`);
  });

  test('a deliberately wrong expectation fails (negative control)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-policy-'));
    try {
      const file = join(dir, 'wrong.test.yaml');
      await writeFile(
        file,
        `policy: ${JSON.stringify(SHIPPED_POLICY)}
cases:
  - name: rm -rf is not allowed, so expecting allow must fail
    request:
      actor: { id: bot, type: agent, roles: [agent_runtime] }
      tenant: acme
      environment: production
      tool: execute_shell_command
      args: { command: "rm -rf /" }
    expect: { outcome: allow }
  - name: right expectation
    request:
      actor: { id: bot, type: agent, roles: [agent_runtime] }
      tenant: acme
      environment: production
      tool: read_kb
      args: { query: hello }
    expect: { outcome: allow, approval: none }
`,
      );
      const results = await runPolicyTests([dir]);
      assert.equal(results.length, 2);
      assert.equal(results[0]?.passed, false);
      assert.match(results[0]?.message ?? '', /expected outcome allow, got deny/);
      assert.equal(results[1]?.passed, true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('policy check prints a summary line per file', async () => {
    const result = await checkPolicyFiles([POLICY_DIR]);
    assert.equal(result.ok, true, result.lines.join('\n'));
    assert.ok(
      result.lines.some((line) => line.startsWith(`${SHIPPED_POLICY}: ok (4 tools`)),
      result.lines.join('\n'),
    );
  });

  test('policy check prints one file:line:col line per issue', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-policy-'));
    try {
      await writeFile(join(dir, 'broken.yaml'), REFUNDS.replace('risk: medium', 'risk: severe'));
      const result = await checkPolicyFiles([dir]);
      assert.equal(result.ok, false);
      assert.deepEqual(result.lines, [`${join(dir, 'broken.yaml')}:4:11: tools.refund.risk: must be one of low, medium, high, critical`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('decide() checks, in order', () => {
  const policy = policyOf(REFUNDS);

  test('1. an unknown tool is denied with unknown_tool', () => {
    const decision = decide(policy, request({ tool: 'wire_transfer' }));
    assert.equal(decision.outcome, 'deny');
    assert.equal(decision.code, 'unknown_tool');
    assert.equal(decision.rule, 'check:unknown_tool');
    assert.equal(decision.policyDigest, policy.digest);
    assert.equal(decision.runAs, undefined);
  });

  test('2. invalid arguments are denied and every field is named', () => {
    const decision = decide(policy, request({ args: { amount: 'ten', currency: 'GBP', iban: 'DE00' } }));
    assert.equal(decision.code, 'invalid_arguments');
    assert.deepEqual(decision.reasons.sort(), [
      'args.amount: must be number',
      'args.currency: must be equal to one of the allowed values (EUR, USD)',
      "args.iban: unknown field (not in the tool's argument schema)",
    ]);
    assert.equal(decision.runAs, 'svc-refunds');
    assert.equal(decision.toolDigest, policy.manifest('refund')?.digest);
    assert.equal(decide(policy, request({ args: {} })).reasons[0], 'args.amount: is required');
  });

  test('2. arguments are checked before environment, tenant and role', () => {
    const decision = decide(policy, request({ environment: 'dev', tenant: 'other', args: {} }));
    assert.equal(decision.code, 'invalid_arguments');
  });

  test('3. an environment not listed is denied', () => {
    const decision = decide(policy, request({ environment: 'dev' }));
    assert.equal(decision.code, 'environment_not_allowed');
    assert.equal(decision.rule, 'check:environment_not_allowed');
  });

  test('4. a tenant not listed is denied', () => {
    assert.equal(decide(policy, request({ tenant: 'globex' })).code, 'tenant_not_allowed');
  });

  test('5. an actor without an allowed role is denied', () => {
    const decision = decide(policy, request({ actor: { id: 'eve', type: 'human', roles: ['support'] } }));
    assert.equal(decision.code, 'role_not_allowed');
  });

  test('6. the first matching rule decides: deny', () => {
    const decision = decide(policy, request({ args: { amount: 20000 } }));
    assert.equal(decision.outcome, 'deny');
    assert.equal(decision.code, 'rule_denied');
    assert.equal(decision.rule, 'refund/huge_refunds');
    assert.deepEqual(decision.reasons, ['refunds over 10000 need a different process']);
  });

  test('6. the first matching rule decides: allow with lowered risk', () => {
    const decision = decide(policy, request({ args: { amount: 50 }, actor: { id: 'bot', type: 'agent', roles: ['agent_runtime', 'vip'] } }));
    assert.equal(decision.outcome, 'allow');
    assert.equal(decision.rule, 'refund/small_refunds');
    assert.equal(decision.risk, 'low');
    assert.equal(decision.approval, undefined);
  });

  test('6. a rule can switch the approval plan and raise the risk', () => {
    const decision = decide(policy, request({ actor: { id: 'bot', type: 'agent', roles: ['agent_runtime', 'vip'] } }));
    assert.equal(decision.outcome, 'approve');
    assert.equal(decision.rule, 'refund/vip_customer');
    assert.equal(decision.risk, 'high');
    assert.deepEqual(decision.approval, {
      name: 'finance_lead',
      groups: ['finance_lead'],
      allOf: [],
      minApprovals: 1,
      rejectionsToDeny: 1,
      escalation: [{ afterMs: 600_000, groups: ['cfo'] }],
      expiresAfterMs: 7_200_000,
    });
  });

  test('7. with no rule matching, the tool defaults apply', () => {
    const decision = decide(policy, request());
    assert.equal(decision.outcome, 'approve');
    assert.equal(decision.rule, 'tool:refund');
    assert.equal(decision.risk, 'medium');
    assert.equal(decision.approval?.name, 'finance');
    assert.equal(decision.approval?.expiresAfterMs, 3_600_000);
    assert.equal(decision.runAs, 'svc-refunds');
  });

  test('a decision cannot be used to mutate the loaded plan', () => {
    const first = decide(policy, request());
    first.approval?.groups.push('everyone');
    assert.deepEqual(decide(policy, request()).approval?.groups, ['finance']);
  });

  test('never throws: a malformed request is denied', () => {
    const decision = decide(policy, null as unknown as ToolRequest);
    assert.equal(decision.outcome, 'deny');
    assert.equal(decide(policy, request({ args: 'nope' as unknown as Record<string, unknown> })).code, 'invalid_arguments');
  });
});

describe('CEL conditions', () => {
  const rulesPolicy = (when: string, args = '{ type: object }') =>
    policyOf(`version: 1
tools:
  t:
    risk: medium
    approval: none
    allowed_roles: [r]
    rules:
      - name: probe
        when: ${JSON.stringify(when)}
        effect: deny
manifest:
  t:
    run_as: svc
    adapter: { type: code }
    args: ${args}
`);
  const probe = (when: string, args: Record<string, unknown>) =>
    decide(rulesPolicy(when, '{ type: object, additionalProperties: true }'), {
      ...request({ tool: 't', args }),
      actor: { id: 'a', type: 'agent', roles: ['r'] },
    });

  test('JSON numbers compare and compute with int and double literals', () => {
    const cases: [string, Record<string, unknown>, boolean][] = [
      ['args.n > 100', { n: 150 }, true],
      ['args.n > 100', { n: 50 }, false],
      ['args.n + 1 == 151', { n: 150 }, true],
      ['args.n in [150, 200]', { n: 150 }, true],
      ['args.n > 1', { n: 1.5 }, true],
      ['args.n > 1.0', { n: 2 }, true],
      ['double(args.n) * 1.5 > 200.0', { n: 150 }, true],
      ['args.list.exists(x, x == 2)', { list: [1, 2, 3] }, true],
      ['size(args.s) == 3', { s: 'abc' }, true],
    ];
    for (const [when, args, matches] of cases) {
      const decision = probe(when, args);
      assert.equal(decision.outcome, matches ? 'deny' : 'allow', `${when} with ${JSON.stringify(args)}: ${decision.reasons.join(' ')}`);
      if (matches) assert.equal(decision.rule, 't/probe');
    }
  });

  test('a rule that errors at runtime denies, naming the rule', () => {
    const decision = probe('args.missing > 3', {});
    assert.equal(decision.outcome, 'deny');
    assert.equal(decision.code, 'rule_denied');
    assert.equal(decision.rule, 't/probe');
    assert.match(decision.reasons[0] ?? '', /rule t\/probe could not be evaluated.*missing/);
  });

  test('a rule that returns a non-bool denies', () => {
    const decision = probe('args.s', { s: 'text' });
    assert.equal(decision.code, 'rule_denied');
    assert.match(decision.reasons[0] ?? '', /returned string/);
  });

  test('an expression whose type is not bool is a load error', () => {
    assert.throws(() => rulesPolicy('tenant + "x"'), /must evaluate to bool/);
  });

  test('an unknown variable is a load error', () => {
    assert.throws(() => rulesPolicy('user.admin'), /invalid CEL expression/);
  });
});

describe('load errors carry file, line and field', () => {
  test('unknown key', () => {
    const text = REFUNDS.replace('    risk: medium\n', '    risk: medium\n    riks: high\n');
    const issue = findIssue(loadIssues([{ file: 'a.yaml', text }]), 'tools.refund.riks');
    assert.deepEqual([issue.file, issue.line, issue.column], ['a.yaml', lineOf(text, 'riks'), 5]);
    assert.match(issue.message, /unknown key "riks"/);
  });

  test('wrong type', () => {
    const text = REFUNDS.replace('allowed_roles: [agent_runtime]', 'allowed_roles: agent_runtime');
    const issue = findIssue(loadIssues([{ file: 'a.yaml', text }]), 'tools.refund.allowed_roles');
    assert.equal(issue.line, lineOf(text, 'allowed_roles'));
    assert.match(issue.message, /must be a list/);
  });

  test('missing required field (reported at the nearest existing parent)', () => {
    const text = REFUNDS.replace('    approval: finance\n', '');
    const issue = findIssue(loadIssues([{ file: 'a.yaml', text }]), 'tools.refund.approval');
    assert.equal(issue.line, lineOf(text, '    risk: medium'));
    assert.equal(issue.message, 'is required');
  });

  test('undefined approval plan', () => {
    const text = REFUNDS.replace('approval: finance\n', 'approval: finanse\n');
    const issue = findIssue(loadIssues([{ file: 'a.yaml', text }]), 'tools.refund.approval');
    assert.equal(issue.line, lineOf(text, 'finanse'));
    assert.match(issue.message, /approval plan "finanse" is not defined under approvals \(known: finance, finance_lead/);
  });

  test('tool without manifest, and manifest without tool', () => {
    const text = REFUNDS.replace('manifest:\n  refund:', 'manifest:\n  refunds:');
    const issues = loadIssues([{ file: 'a.yaml', text }]);
    assert.equal(findIssue(issues, 'tools.refund').line, lineOf(text, '  refund:'));
    assert.match(findIssue(issues, 'tools.refund').message, /no manifest entry/);
    assert.equal(findIssue(issues, 'manifest.refunds').line, lineOf(text, 'refunds:'));
  });

  test('bad CEL syntax', () => {
    const text = REFUNDS.replace('when: args.amount <= 100', 'when: args.amount <= ');
    const issue = findIssue(loadIssues([{ file: 'a.yaml', text }]), 'tools.refund.rules[1].when');
    assert.equal(issue.line, lineOf(text, 'when: args.amount <= '));
    assert.match(issue.message, /invalid CEL expression/);
  });

  test('duplicate tool across two files names both files', () => {
    const second = REFUNDS.replace(/^approvals:[\s\S]*$/m, '');
    const issues = loadIssues([
      { file: 'first.yaml', text: REFUNDS },
      { file: 'second.yaml', text: second },
    ]);
    const issue = findIssue(issues, 'tools.refund');
    assert.equal(issue.file, 'second.yaml');
    assert.equal(issue.line, lineOf(second, 'refund:'));
    assert.match(issue.message, /defined in both first\.yaml and second\.yaml/);
  });

  test('duplicate YAML key', () => {
    const text = REFUNDS.replace('    risk: medium\n', '    risk: medium\n    risk: high\n');
    const issues = loadIssues([{ file: 'a.yaml', text }]);
    const issue = findIssue(issues, 'tools.refund.risk');
    assert.equal(issue.line, lineOf(text, 'risk: high'));
    assert.match(issue.message, /duplicate key/);
  });

  test('oversized file', () => {
    const text = `${REFUNDS}# ${'x'.repeat(1024 * 1024)}\n`;
    const issue = findIssue(loadIssues([{ file: 'big.yaml', text }]), '(file)');
    assert.equal(issue.line, 1);
    assert.match(issue.message, /at most 1048576 bytes/);
  });

  test('oversized file on disk is refused before reading', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-policy-'));
    try {
      await writeFile(join(dir, 'big.yaml'), `${REFUNDS}# ${'x'.repeat(1024 * 1024)}\n`);
      await assert.rejects(loadPolicy([dir]), (error: unknown) => error instanceof PolicyLoadError && /at most 1048576 bytes/.test(error.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('alias bomb', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let level = 1; level < 9; level++) {
      const previous = String.fromCharCode(96 + level);
      const name = String.fromCharCode(97 + level);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(',')}]`);
    }
    const text = `version: 1\nx:\n${levels.map((line) => `  ${line}`).join('\n')}\n`;
    const issues = loadIssues([{ file: 'bomb.yaml', text }]);
    assert.equal(issues.length, 1);
    assert.equal(issues[0]?.file, 'bomb.yaml');
    assert.equal(issues[0]?.line, lineOf(text, '*a'));
    assert.match(issues[0]?.message ?? '', /alias/);
  });

  test('custom tags are refused', () => {
    const text = REFUNDS.replace('risk: medium', 'risk: !!js/function "medium"');
    const issue = findIssue(loadIssues([{ file: 'a.yaml', text }]), 'tools.refund.risk');
    assert.equal(issue.line, lineOf(text, '!!js'));
  });

  test('the error message lists every issue as file:line:col: path: message', () => {
    const text = REFUNDS.replace('risk: medium', 'risk: severe').replace('run_as: svc-refunds', 'run_as: 42');
    let caught: unknown;
    try {
      policyOf(text, 'r.yaml');
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof PolicyLoadError);
    assert.equal(caught.issues.length, 2);
    assert.match(caught.message, /r\.yaml:4:11: tools\.refund\.risk: must be one of low, medium, high, critical/);
    assert.match(caught.message, new RegExp(`r\\.yaml:${lineOf(text, 'run_as')}:13: manifest\\.refund\\.run_as: run_as must be a string`));
  });

  test('semantic checks: escalation order, reserved plan name, rule without effect', () => {
    const text = REFUNDS.replace('after: 10m', 'after: 3h')
      .replace('  finance:\n', '  none:\n')
      .replace('        approval: finance_lead\n        risk: high\n', '');
    const issues = loadIssues([{ file: 'a.yaml', text }]);
    assert.match(findIssue(issues, 'approvals.finance_lead.escalation[0].after').message, /earlier than expires_after/);
    assert.match(findIssue(issues, 'approvals.none').message, /reserved/);
    assert.match(findIssue(issues, 'tools.refund.rules[2]').message, /at least one of effect, risk, approval/);
  });

  test('an argument schema that is not type object, or has unknown keywords, is refused', () => {
    const text = REFUNDS.replace('amount: { type: number }', 'amount: { type: number, maximun: 5 }');
    assert.match(findIssue(loadIssues([{ file: 'a.yaml', text }]), 'manifest.refund.args').message, /unknown keyword: "maximun"/);
    const notObject = REFUNDS.replace('      type: object\n      properties:', '      type: array\n      properties:');
    assert.match(findIssue(loadIssues([{ file: 'a.yaml', text: notObject }]), 'manifest.refund.args.type').message, /type: object/);
  });

  test('missing files and empty sets are load errors', async () => {
    await assert.rejects(loadPolicy(['/nonexistent/policy.yaml']), (error: unknown) => error instanceof PolicyLoadError && /cannot read/.test(error.message));
    assert.throws(() => parsePolicy([]), PolicyLoadError);
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-policy-'));
    try {
      await assert.rejects(loadPolicy([dir]), (error: unknown) => error instanceof PolicyLoadError && /no policy files found/.test(error.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the policy digest', () => {
  const reordered = `# same policy, other key order and layout
manifest:
  refund:
    args: {required: [amount], type: object, properties: {note: {type: string}, currency: {enum: [EUR, USD]}, amount: {type: number}}}
    adapter: {type: code}
    run_as: svc-refunds
approvals:
  finance_lead: {expires_after: 2h, escalation: [{groups: [cfo], after: 10m}], groups: [finance_lead]}
  finance: {expires_after: 1h, groups: [finance]}
version: 1
tools:
  refund:
    rules:
      - {name: huge_refunds, when: args.amount > 10000, effect: deny, reason: refunds over 10000 need a different process}
      - {effect: allow, risk: low, name: small_refunds, when: args.amount <= 100}
      - {name: vip_customer, when: '"vip" in actor.roles', approval: finance_lead, risk: high}
    tenants: [acme]
    environments: [production, staging]
    allowed_roles: [agent_runtime]
    approval: finance
    risk: medium
`;

  test('key order and whitespace do not change it', () => {
    assert.equal(policyOf(reordered).digest, policyOf(REFUNDS).digest);
    assert.equal(policyOf(reordered).manifest('refund')?.digest, policyOf(REFUNDS).manifest('refund')?.digest);
  });

  test('splitting the same document across files does not change it', () => {
    const [tools, rest] = REFUNDS.split('approvals:\n');
    const split = parsePolicy([
      { file: 'tools.yaml', text: tools ?? '' },
      { file: 'rest.yaml', text: `version: 1\napprovals:\n${rest ?? ''}` },
    ]);
    assert.equal(split.digest, policyOf(REFUNDS).digest);
  });

  test('a value change changes it, and a manifest change changes the tool digest', () => {
    assert.notEqual(policyOf(REFUNDS.replace('expires_after: 1h', 'expires_after: 2h')).digest, policyOf(REFUNDS).digest);
    const changed = policyOf(REFUNDS.replace('run_as: svc-refunds', 'run_as: svc-refunds-v2'));
    assert.notEqual(changed.digest, policyOf(REFUNDS).digest);
    assert.notEqual(changed.manifest('refund')?.digest, policyOf(REFUNDS).manifest('refund')?.digest);
  });
});

describe('egress in policy', () => {
  const withEgress = REFUNDS.replace(
    '    run_as: svc-refunds\n',
    '    run_as: svc-refunds\n    egress: { redact: [pii, openai_key], max_result_bytes: 2048, allow_hosts: [https://refunds.example] }\n',
  );

  test('the manifest entry carries the egress block, and it is part of the tool digest', () => {
    const policy = policyOf(withEgress);
    assert.deepEqual(policy.manifest('refund')?.egress, { redact: ['pii', 'openai_key'], max_result_bytes: 2048, allow_hosts: ['https://refunds.example'] });
    assert.deepEqual(policyOf(REFUNDS).manifest('refund')?.egress, {});
    assert.notEqual(policy.digest, policyOf(REFUNDS).digest);
    // What may leave is part of the tool's identity: approvals bound to the old digest do not apply.
    assert.notEqual(policy.manifest('refund')?.digest, policyOf(REFUNDS).manifest('refund')?.digest);
  });

  test('an unknown redaction rule or egress key is a located load error', () => {
    const unknownRule = withEgress.replace('openai_key', 'openai_keys');
    assert.throws(
      () => policyOf(unknownRule),
      (error: unknown) => error instanceof PolicyLoadError && /egress.*unknown rule or category "openai_keys"/s.test(error.message),
    );
    const unknownKey = withEgress.replace('max_result_bytes', 'max_bytes');
    assert.throws(
      () => policyOf(unknownKey),
      (error: unknown) => error instanceof PolicyLoadError && /unknown key "max_bytes"/.test(error.message),
    );
  });
});

describe('scale', () => {
  let policy: LoadedPolicy;
  before(() => {
    // 10 files of 1,000 tools each: a single file would exceed the 1 MiB limit.
    const sources = Array.from({ length: 10 }, (_, part) => {
      const tools: string[] = [];
      const manifest: string[] = [];
      for (let i = part * 1000; i < (part + 1) * 1000; i++) {
        tools.push(
          `  tool_${i}:\n    risk: low\n    approval: none\n    allowed_roles: [r]\n    rules:\n      - {name: big, when: 'args.n > ${i}', effect: deny}`,
        );
        manifest.push(`  tool_${i}:\n    run_as: svc\n    adapter: {type: code}\n    args: {type: object, properties: {n: {type: integer}}}`);
      }
      return { file: `part-${part}.yaml`, text: `version: 1\ntools:\n${tools.join('\n')}\nmanifest:\n${manifest.join('\n')}\n` };
    });
    policy = parsePolicy(sources);
  });

  // Correctness at size only; how fast it decides is measured by the benchmarks, not asserted here.
  test('10,000 tools load, and each decides by its own rule', () => {
    for (let i = 0; i < 10_000; i++) {
      const decision = decide(policy, { ...request({ tool: `tool_${i}`, args: { n: 5 } }), actor: { id: 'a', type: 'agent', roles: ['r'] } });
      assert.equal(decision.outcome, i < 5 ? 'deny' : 'allow');
    }
  });
});
