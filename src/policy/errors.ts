/**
 * Load errors of the policy engine. Every problem in a policy file is reported as a
 * `PolicyIssue` with its file, line, column and field path, so the author can go straight to it.
 */
import { ToolgateError } from '../errors.js';

/** One problem found in a policy (or policy test) file. */
export interface PolicyIssue {
  file: string;
  line?: number;
  column?: number;
  /** Dotted path of the field in the YAML document, e.g. `tools.create_ticket.approval`. */
  path: string;
  message: string;
}

/** Formats an issue as `file:line:col: path: message` (line and column left out when unknown). */
export function formatPolicyIssue(issue: PolicyIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}:${issue.column ?? 1}`;
  return `${where}: ${issue.path}: ${issue.message}`;
}

/** Thrown when policy files cannot be read, parsed or validated; lists every issue found. */
export class PolicyLoadError extends ToolgateError {
  /** Every problem found, in file order. */
  readonly issues: PolicyIssue[];

  constructor(issues: PolicyIssue[], options?: { cause?: unknown }) {
    const count = issues.length === 1 ? '1 issue' : `${issues.length} issues`;
    super('policy_invalid', `policy failed to load (${count}):\n${issues.map((issue) => `  ${formatPolicyIssue(issue)}`).join('\n')}`, options);
    this.name = 'PolicyLoadError';
    this.issues = issues;
  }
}
