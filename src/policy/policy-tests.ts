/**
 * Policy tests: `*.test.yaml` files next to the policies, each naming the policy it exercises and
 * listing table-driven cases (a request and the decision expected for it).
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { DENIAL_CODES, RISK_LEVELS, ToolRequestInputSchema, type PolicyDecision } from '../shared/index.js';
import { decide } from './decide.js';
import { PolicyLoadError } from './errors.js';
import { loadPolicy } from './load.js';
import { expandPaths, readSource } from './policy-files.js';
import { zodIssues } from './sections.js';
import type { LoadedPolicy } from './model.js';
import { readYaml } from './source.js';

/** The outcome of one policy test case. */
export interface PolicyTestResult {
  file: string;
  name: string;
  passed: boolean;
  /** Why the case failed. */
  message?: string;
}

const ExpectationSchema = z.strictObject({
  outcome: z.enum(['allow', 'deny', 'approve'], { error: 'must be allow, deny or approve' }),
  code: z.enum(DENIAL_CODES, { error: `must be one of ${DENIAL_CODES.join(', ')}` }).optional(),
  rule: z.string({ error: 'must be a string' }).optional(),
  risk: z.enum(RISK_LEVELS, { error: `must be one of ${RISK_LEVELS.join(', ')}` }).optional(),
  approval: z.string({ error: 'must be "none" or an approval plan name' }).optional(),
});

/** The shape of a `*.test.yaml` file. */
export const PolicyTestFileSchema = z.strictObject({
  policy: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], { error: 'must be a policy file path (or a list of them), relative to this file' }),
  cases: z
    .array(
      z.strictObject({
        name: z.string({ error: 'must be a string' }).min(1),
        request: ToolRequestInputSchema,
        expect: ExpectationSchema,
      }),
      { error: 'must be a list of cases' },
    )
    .min(1, { error: 'must contain at least one case' }),
});
type Expectation = z.infer<typeof ExpectationSchema>;

/** True for policy test file names (`*.test.yaml`, `*.test.yml`). */
export function isPolicyTestFile(name: string): boolean {
  return /\.test\.ya?ml$/.test(name);
}

/**
 * Runs the cases of the given test files (directories contribute their `*.test.yaml` files)
 * against the policies they name; throws `PolicyLoadError` when a test file or policy is invalid.
 */
export async function runPolicyTests(paths: string[]): Promise<PolicyTestResult[]> {
  const { files, issues } = await expandPaths(paths, isPolicyTestFile);
  if (issues.length === 0 && files.length === 0) {
    throw new PolicyLoadError([{ file: paths.join(', ') || '(none)', path: '(tests)', message: 'no policy test files found; expected *.test.yaml files' }]);
  }
  const suites: { file: string; policyPaths: string[]; cases: z.infer<typeof PolicyTestFileSchema>['cases'] }[] = [];
  for (const file of files) {
    const read = await readSource(file);
    if ('issue' in read) {
      issues.push(read.issue);
      continue;
    }
    const yaml = readYaml(file, read.text);
    issues.push(...yaml.issues);
    if (!yaml.source) continue;
    const parsed = PolicyTestFileSchema.safeParse(yaml.source.value);
    if (!parsed.success) {
      issues.push(...zodIssues(yaml.source, parsed.error));
      continue;
    }
    const seen = new Set<string>();
    for (const [index, testCase] of parsed.data.cases.entries()) {
      if (seen.has(testCase.name)) issues.push(yaml.source.issue(['cases', index, 'name'], `case name "${testCase.name}" is used twice`));
      seen.add(testCase.name);
    }
    const policy = parsed.data.policy;
    const policyPaths = (typeof policy === 'string' ? [policy] : policy).map((path) => resolve(dirname(file), path));
    suites.push({ file, policyPaths, cases: parsed.data.cases });
  }
  if (issues.length > 0) throw new PolicyLoadError(issues);

  const policies = new Map<string, LoadedPolicy>();
  const results: PolicyTestResult[] = [];
  for (const suite of suites) {
    const key = JSON.stringify(suite.policyPaths);
    let policy = policies.get(key);
    if (!policy) {
      policy = await loadPolicy(suite.policyPaths);
      policies.set(key, policy);
    }
    for (const [index, testCase] of suite.cases.entries()) {
      const request = ToolRequestInputSchema.parse(testCase.request);
      const decision = decide(policy, { ...request, requestId: request.requestId ?? `policy-test-${index + 1}` });
      const mismatches = compare(testCase.expect, decision);
      results.push({
        file: suite.file,
        name: testCase.name,
        passed: mismatches.length === 0,
        ...(mismatches.length > 0 && { message: `${mismatches.join('; ')} (decision: ${summarize(decision)})` }),
      });
    }
  }
  return results;
}

function compare(expect: Expectation, decision: PolicyDecision): string[] {
  const actual = {
    outcome: decision.outcome,
    code: decision.code,
    rule: decision.rule,
    risk: decision.risk,
    approval: decision.approval?.name ?? 'none',
  };
  const mismatches: string[] = [];
  for (const field of ['outcome', 'code', 'rule', 'risk', 'approval'] as const) {
    const wanted = expect[field];
    if (wanted !== undefined && wanted !== actual[field]) mismatches.push(`expected ${field} ${wanted}, got ${actual[field] ?? '(none)'}`);
  }
  return mismatches;
}

function summarize(decision: PolicyDecision): string {
  const code = decision.code ? ` ${decision.code}` : '';
  return `${decision.outcome}${code} by ${decision.rule}, risk ${decision.risk}: ${decision.reasons.join(' ')}`;
}
