/**
 * Break-glass overrides on the policy side: the `break_glass:` section's validation (every error
 * names its field), merging and the policy digest, and `decide()` on `override` requests: the
 * grant (the whole decision), every refusal branch, the order rules are tried in, and requests
 * without a link deciding exactly as they did before the section existed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import canonicalize from 'canonicalize';
import { parse as parseYaml } from 'yaml';
import { BREAK_GLASS_BOUNDS, findBreakGlassRule, OVERRIDABLE_DENIAL_CODES } from '../../src/policy/break-glass.js';
import { decide, parsePolicy, PolicyLoadError, type LoadedPolicy, type PolicyIssue } from '../../src/policy/index.js';
import type { PolicyDecision, RequestLink, ToolRequest } from '../../src/shared/index.js';
import { argsOf, policy, type BreakGlassSpec, type PolicyBuilder } from '../helpers/policy-builder.js';

/** Deploys: denied during a change freeze (a rule), only deployers, only prod and staging, only tenant acme. */
function deployPolicy(): PolicyBuilder {
  return policy()
    .tool('deploy_service', {
      risk: 'high',
      approval: 'release',
      roles: ['deployer'],
      environments: ['prod', 'staging'],
      tenants: ['acme'],
      rules: [
        { name: 'change_freeze', when: 'has(args.frozen) && args.frozen == true', effect: 'deny', risk: 'critical', reason: 'deploys are frozen' },
        { name: 'hotfix', when: 'args.service == "hotfix"', effect: 'allow', risk: 'medium' },
      ],
    })
    .tool('read_logs', { roles: ['deployer'] })
    .plan('release', { groups: ['release_managers'], expiresAfter: '2h' })
    .codeTool('deploy_service', { runAs: 'svc-deployer', args: argsOf({ service: 'string', frozen: 'boolean' }, { required: ['service'] }) })
    .codeTool('read_logs', { runAs: 'svc-logs', args: argsOf({ service: 'string' }) });
}

/** The deploys without a break_glass section: the tests of that section append it as YAML text. */
const BASE = deployPolicy().yaml();

/** The override of the change freeze: on-call SREs, security told, 15 minutes for the second person, prod only. */
const CHANGE_FREEZE: BreakGlassSpec = { tools: ['deploy_service'], groups: ['sre-oncall'], notify: ['security'], expiresAfter: '15m', environments: ['prod'] };

/** The deploys with these break-glass rules (by default the change freeze's), built. */
function withBreakGlass(rules: Record<string, BreakGlassSpec> = { change_freeze: CHANGE_FREEZE }): string {
  const builder = deployPolicy();
  for (const [name, rule] of Object.entries(rules)) builder.breakGlass(name, rule);
  return builder.yaml();
}

/** {@link CHANGE_FREEZE} as YAML text, for the tests of how the section is read. */
const BREAK_GLASS = `break_glass:
  change_freeze:
    tools: [deploy_service]
    groups: [sre-oncall]
    notify: [security]
    expires_after: 15m
    environments: [prod]
`;

function load(text: string): LoadedPolicy {
  return parsePolicy([{ file: 'deploy.yaml', text }]);
}

function issuesOf(sources: { file: string; text: string }[]): PolicyIssue[] {
  try {
    parsePolicy(sources);
  } catch (error) {
    assert.ok(error instanceof PolicyLoadError, `expected PolicyLoadError, got ${String(error)}`);
    return error.issues;
  }
  assert.fail('the policy loaded, but it should have failed');
}

function issueAt(text: string, path: string): PolicyIssue {
  const issues = issuesOf([{ file: 'deploy.yaml', text }]);
  const issue = issues.find((candidate) => candidate.path === path);
  assert.ok(issue, `no issue at ${path}; issues: ${JSON.stringify(issues, null, 2)}`);
  return issue;
}

/** BASE with a break_glass section whose change_freeze rule has `body` (YAML lines indented 4). */
function withRule(body: string): string {
  return `${BASE}break_glass:\n  change_freeze:\n${body}`;
}

const VALID_RULE = {
  tools: '    tools: [deploy_service]\n',
  groups: '    groups: [sre-oncall]\n',
  notify: '    notify: [security]\n',
  expires: '    expires_after: 15m\n',
};
function ruleWith(changes: Partial<Record<keyof typeof VALID_RULE, string>>, extra = ''): string {
  const parts = { ...VALID_RULE, ...changes };
  return withRule(`${parts.tools}${parts.groups}${parts.notify}${parts.expires}${extra}`);
}

const LINK: RequestLink = {
  kind: 'override',
  requestId: 'req-denied',
  tool: 'deploy_service',
  by: { id: 'alice', groups: ['sre-oncall', 'staff'] },
  reason: 'prod is down and the fix is ready',
};

function request(overrides: Partial<ToolRequest> = {}): ToolRequest {
  return {
    requestId: 'req-override',
    actor: { id: 'deploy-bot', type: 'agent', roles: ['deployer'] },
    tenant: 'acme',
    environment: 'prod',
    tool: 'deploy_service',
    args: { service: 'api', frozen: true },
    link: LINK,
    ...overrides,
  };
}

function assertRefused(decision: PolicyDecision, pattern: RegExp): void {
  assert.equal(decision.outcome, 'deny', JSON.stringify(decision));
  assert.equal(decision.code, 'override_refused');
  assert.equal(decision.rule, 'check:override_refused');
  assert.equal(decision.override, undefined);
  assert.equal(decision.approval, undefined);
  assert.equal(decision.reasons.length, 1);
  assert.match(decision.reasons[0] ?? '', pattern);
}

describe('break_glass: validation at load', () => {
  test('a valid rule loads into LoadedPolicy.breakGlass', () => {
    const policy = load(`${BASE}${BREAK_GLASS}`);
    assert.deepEqual(
      [...policy.breakGlass.entries()],
      [
        [
          'change_freeze',
          {
            name: 'change_freeze',
            tools: ['deploy_service'],
            groups: ['sre-oncall'],
            notify: ['security'],
            expiresAfterMs: 15 * 60_000,
            environments: ['prod'],
          },
        ],
      ],
    );
    assert.equal(load(BASE).breakGlass.size, 0, 'a policy without the section has no rules');
  });

  test('environments are optional', () => {
    const rule = load(ruleWith({})).breakGlass.get('change_freeze');
    assert.ok(rule);
    assert.equal('environments' in rule, false);
  });

  test('tools must exist', () => {
    const text = ruleWith({ tools: '    tools: [deploy_service, launch_rocket]\n' });
    const issue = issueAt(text, 'break_glass.change_freeze.tools[1]');
    assert.match(issue.message, /tool "launch_rocket" is not defined under tools/);
    const at = text.indexOf('launch_rocket');
    assert.equal(issue.line, text.slice(0, at).split('\n').length);
    assert.equal(issue.column, at - text.lastIndexOf('\n', at));
  });

  test('tools must not be empty', () => {
    assert.match(issueAt(ruleWith({ tools: '    tools: []\n' }), 'break_glass.change_freeze.tools').message, /at least one tool/);
  });

  test('groups must be a non-empty list of identifiers', () => {
    assert.match(issueAt(ruleWith({ groups: '    groups: []\n' }), 'break_glass.change_freeze.groups').message, /at least one group/);
    assert.match(issueAt(ruleWith({ groups: '    groups: ["sre oncall"]\n' }), 'break_glass.change_freeze.groups[0]').message, /must be 1-128 characters/);
    assert.match(issueAt(ruleWith({ groups: '' }), 'break_glass.change_freeze.groups').message, /is required/);
  });

  test('notify is required and non-empty', () => {
    assert.match(issueAt(ruleWith({ notify: '' }), 'break_glass.change_freeze.notify').message, /is required/);
    assert.match(issueAt(ruleWith({ notify: '    notify: []\n' }), 'break_glass.change_freeze.notify').message, /at least one group/);
  });

  test('expires_after is required and between 1m and 1h', () => {
    assert.match(issueAt(ruleWith({ expires: '' }), 'break_glass.change_freeze.expires_after').message, /is required/);
    assert.match(
      issueAt(ruleWith({ expires: '    expires_after: 59s\n' }), 'break_glass.change_freeze.expires_after').message,
      /"59s" must be between 1m and 1h/,
    );
    assert.match(
      issueAt(ruleWith({ expires: '    expires_after: 61m\n' }), 'break_glass.change_freeze.expires_after').message,
      /"61m" must be between 1m and 1h/,
    );
    assert.match(issueAt(ruleWith({ expires: '    expires_after: soon\n' }), 'break_glass.change_freeze.expires_after').message, /is not a duration/);
    // The bounds themselves are allowed.
    assert.equal(load(ruleWith({ expires: '    expires_after: 1m\n' })).breakGlass.get('change_freeze')?.expiresAfterMs, BREAK_GLASS_BOUNDS.minExpiresAfterMs);
    assert.equal(load(ruleWith({ expires: '    expires_after: 1h\n' })).breakGlass.get('change_freeze')?.expiresAfterMs, BREAK_GLASS_BOUNDS.maxExpiresAfterMs);
  });

  test('environments, when given, is a non-empty list of identifiers', () => {
    assert.match(issueAt(ruleWith({}, '    environments: []\n'), 'break_glass.change_freeze.environments').message, /at least one environment/);
    assert.match(issueAt(ruleWith({}, '    environments: prod\n'), 'break_glass.change_freeze.environments').message, /must be a list of environments/);
  });

  test('unknown keys and bad rule names are refused', () => {
    const unknown = issueAt(ruleWith({}, '    approvers: [cto]\n'), 'break_glass.change_freeze.approvers');
    assert.equal(unknown.message, 'unknown key "approvers"');
    assert.match(issueAt(`${BASE}break_glass:\n  "bad name":\n${Object.values(VALID_RULE).join('')}`, 'break_glass.bad name').message, /invalid name/);
    assert.match(issueAt(`${BASE}break_glass: [change_freeze]\n`, 'break_glass').message, /must be a map of rule name to break-glass rule/);
  });

  test('a rule defined in two files is a load error naming both', () => {
    const second = `version: 1\n${BREAK_GLASS}`;
    const issues = issuesOf([
      { file: 'deploy.yaml', text: `${BASE}${BREAK_GLASS}` },
      { file: 'second.yaml', text: second },
    ]);
    const issue = issues.find((candidate) => candidate.path === 'break_glass.change_freeze');
    assert.ok(issue, JSON.stringify(issues));
    assert.equal(issue.file, 'second.yaml');
    assert.match(issue.message, /break-glass rule "change_freeze" is defined in both deploy.yaml and second.yaml/);
  });

  test('rules of several files are merged, in name order', () => {
    const other = policy()
      .breakGlass('a_first', { tools: ['read_logs'], groups: ['sre-oncall'], notify: ['security'], expiresAfter: '5m' })
      .yaml();
    const merged = parsePolicy([
      { file: 'deploy.yaml', text: withBreakGlass() },
      { file: 'other.yaml', text: other },
    ]);
    assert.deepEqual([...merged.breakGlass.keys()], ['a_first', 'change_freeze']);
  });
});

describe('break_glass: the policy digest', () => {
  test('a policy without break_glass keeps the digest of its merged document as before', () => {
    const document = parseYaml(BASE) as Record<string, unknown>;
    const expected = createHash('sha256')
      .update(canonicalize({ version: 1, tools: document['tools'], approvals: document['approvals'], manifest: document['manifest'] }) ?? '', 'utf8')
      .digest('hex');
    assert.equal(load(BASE).digest, expected);
  });

  test('adding, changing or removing a rule changes the digest', () => {
    const without = load(BASE).digest;
    const withRuleDigest = load(withBreakGlass()).digest;
    const longer = load(withBreakGlass({ change_freeze: { ...CHANGE_FREEZE, expiresAfter: '30m' } })).digest;
    const moreNotified = load(withBreakGlass({ change_freeze: { ...CHANGE_FREEZE, notify: ['security', 'audit'] } })).digest;
    assert.equal(new Set([without, withRuleDigest, longer, moreNotified]).size, 4);
    assert.equal(load(withBreakGlass()).digest, withRuleDigest, 'the same document has the same digest');
  });
});

describe('decide(): break-glass overrides', () => {
  const policy = load(withBreakGlass());

  test('exports the overridable codes', () => {
    assert.deepEqual([...OVERRIDABLE_DENIAL_CODES], ['rule_denied', 'role_not_allowed', 'environment_not_allowed']);
  });

  test('a rule denial is granted as a second person approval round (the whole decision)', () => {
    const tool = policy.manifest('deploy_service');
    assert.ok(tool);
    assert.deepEqual(decide(policy, request()), {
      outcome: 'approve',
      tool: 'deploy_service',
      risk: 'critical',
      rule: 'break_glass:change_freeze',
      reasons: ['break-glass change_freeze: alice overrides deploy_service/change_freeze (rule_denied): prod is down and the fix is ready'],
      approval: {
        name: 'break_glass:change_freeze',
        groups: ['sre-oncall'],
        allOf: [],
        minApprovals: 1,
        rejectionsToDeny: 1,
        escalation: [],
        expiresAfterMs: 15 * 60_000,
      },
      override: {
        breakGlass: 'change_freeze',
        deniedRule: 'deploy_service/change_freeze',
        deniedCode: 'rule_denied',
        deniedReasons: ['deploys are frozen'],
        by: 'alice',
        reason: 'prod is down and the fix is ready',
        notify: ['security'],
      },
      policyDigest: policy.digest,
      runAs: 'svc-deployer',
      toolDigest: tool.digest,
    });
  });

  test('role and environment denials are overridable too', () => {
    const anyEnv = load(withBreakGlass({ change_freeze: { ...CHANGE_FREEZE, environments: undefined } }));
    const role = decide(anyEnv, request({ actor: { id: 'deploy-bot', type: 'agent', roles: ['viewer'] } }));
    assert.equal(role.outcome, 'approve', JSON.stringify(role));
    assert.equal(role.override?.deniedCode, 'role_not_allowed');
    assert.equal(role.risk, 'high', "the denial's risk");
    const environment = decide(anyEnv, request({ environment: 'dev' }));
    assert.equal(environment.outcome, 'approve', JSON.stringify(environment));
    assert.equal(environment.override?.deniedCode, 'environment_not_allowed');
    assert.equal(environment.rule, 'break_glass:change_freeze');
  });

  test('refused when policy does not deny the request (allow or approve)', () => {
    assertRefused(decide(policy, request({ args: { service: 'api' } })), /does not deny this request \(it is approve by tool:deploy_service\)/);
    assertRefused(decide(policy, request({ args: { service: 'hotfix' } })), /does not deny this request \(it is allow by deploy_service\/hotfix\)/);
  });

  test('refused for denials that are not overridable', () => {
    const invalid = decide(policy, request({ args: { frozen: true } }));
    assertRefused(invalid, /a invalid_arguments denial \(check:invalid_arguments\) cannot be overridden/);
    assert.equal(invalid.risk, 'high', "the denial's risk");
    assert.equal(invalid.toolDigest, policy.manifest('deploy_service')?.digest, 'the tool identity is recorded');
    assertRefused(decide(policy, request({ tenant: 'globex' })), /a tenant_not_allowed denial/);
    const unknown = decide(policy, request({ tool: 'launch_rocket', link: { ...LINK, tool: 'launch_rocket' } }));
    assertRefused(unknown, /a unknown_tool denial/);
    assert.equal(unknown.risk, 'critical');
    assert.equal(unknown.policyDigest, policy.digest);
  });

  test("refused when the link names another tool than the request's", () => {
    assertRefused(decide(policy, request({ link: { ...LINK, tool: 'read_logs' } })), /the original called read_logs, this request calls deploy_service/);
  });

  test('refused when no rule covers the asker, the tool or the environment', () => {
    assertRefused(
      decide(policy, request({ link: { ...LINK, by: { id: 'mallory', groups: ['staff'] } } })),
      /no break-glass rule lets mallory \(groups: staff\) override deploy_service in environment prod/,
    );
    assertRefused(decide(policy, request({ link: { ...LINK, by: { id: 'mallory', groups: [] } } })), /\(groups: none\)/);
    assertRefused(decide(policy, request({ environment: 'staging' })), /in environment staging/);
    const otherTool = load(withBreakGlass({ change_freeze: { ...CHANGE_FREEZE, tools: ['read_logs'] } }));
    assertRefused(decide(otherTool, request()), /no break-glass rule lets alice/);
  });

  test('the first rule by name whose groups match grants it', () => {
    const two = load(
      withBreakGlass({
        zz_wide: { tools: ['deploy_service'], groups: ['staff'], notify: ['audit'], expiresAfter: '1h' },
        b_narrow: { tools: ['deploy_service'], groups: ['sre-oncall'], notify: ['security'], expiresAfter: '5m' },
        a_other_group: { tools: ['deploy_service'], groups: ['dba'], notify: ['security'], expiresAfter: '5m' },
      }),
    );
    const decision = decide(two, request());
    assert.equal(decision.rule, 'break_glass:b_narrow');
    assert.equal(decision.approval?.expiresAfterMs, 5 * 60_000);
    const staffOnly = decide(two, request({ link: { ...LINK, by: { id: 'bob', groups: ['staff'] } } }));
    assert.equal(staffOnly.rule, 'break_glass:zz_wide');
    assert.deepEqual(staffOnly.override?.notify, ['audit']);
    assert.equal(findBreakGlassRule(two, { tool: 'deploy_service', environment: 'prod', groups: ['dba', 'staff'] })?.name, 'a_other_group');
  });

  test('requests without a link decide exactly as before', () => {
    const plain = load(BASE);
    const cases: Partial<ToolRequest>[] = [
      {},
      { args: { service: 'api' } },
      { args: { service: 'hotfix' } },
      { environment: 'dev' },
      { tenant: 'globex' },
      { actor: { id: 'x', type: 'agent', roles: [] } },
    ];
    for (const overrides of cases) {
      const { link: _unused, ...unlinked } = request(overrides);
      assert.equal(_unused, LINK);
      const before = decide(plain, unlinked);
      const after = decide(policy, unlinked);
      assert.deepEqual({ ...after, policyDigest: '' }, { ...before, policyDigest: '' }, JSON.stringify(overrides));
      assert.equal(after.override, undefined);
    }
  });

  test('a link of an unknown kind is refused, never decided as a plain request', () => {
    const decision = decide(policy, request({ args: { service: 'api' }, link: { ...LINK, kind: 'replay' as unknown as 'override' } }));
    assert.equal(decision.outcome, 'deny');
    assert.equal(decision.code, 'invalid_request');
    assert.equal(decision.rule, 'check:invalid_link');
  });
});
