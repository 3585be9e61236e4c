/**
 * A `tools:` entry compiled: its approval plans checked against the policy's, its rules' CEL
 * conditions compiled, its role, environment and tenant sets built.
 */
import { compileCondition } from './condition.js';
import { NO_APPROVAL, type ToolPolicyDocument } from './document.js';
import type { PolicyIssue } from './errors.js';
import type { CompiledRule, CompiledTool } from './model.js';
import type { Defined } from './sections.js';

/** One tool's policy compiled (without its manifest entry), or undefined after reporting its issues. */
export function compileTool(
  name: string,
  { source, value: tool }: Defined<ToolPolicyDocument>,
  approvals: ReadonlyMap<string, unknown>,
  issues: PolicyIssue[],
): Omit<CompiledTool, 'manifest' | 'validateArgs'> | undefined {
  const before = issues.length;
  const checkPlan = (plan: string, path: (string | number)[]) => {
    if (plan !== NO_APPROVAL && !approvals.has(plan)) {
      const known = [...approvals.keys()];
      issues.push(
        source.issue(
          path,
          `approval plan "${plan}" is not defined under approvals (known: ${known.length > 0 ? known.join(', ') : 'none'}; or use "${NO_APPROVAL}")`,
        ),
      );
    }
  };
  checkPlan(tool.approval, ['tools', name, 'approval']);
  const seen = new Set<string>();
  const rules: CompiledRule[] = [];
  for (const [index, rule] of (tool.rules ?? []).entries()) {
    const at = (...path: string[]) => ['tools', name, 'rules', index, ...path];
    if (seen.has(rule.name)) issues.push(source.issue(at('name'), `rule name "${rule.name}" is used twice in tool ${name}; rule names must be unique`));
    seen.add(rule.name);
    if (rule.effect === undefined && rule.risk === undefined && rule.approval === undefined) {
      issues.push(source.issue(at(), 'a rule must set at least one of effect, risk, approval'));
    }
    if (rule.approval !== undefined) checkPlan(rule.approval, at('approval'));
    if (rule.effect === 'deny' && rule.approval !== undefined) issues.push(source.issue(at('approval'), 'a deny rule cannot set an approval plan'));
    if (rule.effect === 'allow' && rule.approval !== undefined && rule.approval !== NO_APPROVAL) {
      issues.push(source.issue(at('approval'), `effect: allow means approval ${NO_APPROVAL}; remove effect or approval`));
    }
    const compiled = compileCondition(rule.when);
    if ('error' in compiled) {
      issues.push(source.issue(at('when'), compiled.error));
      continue;
    }
    rules.push({
      name: rule.name,
      id: `${name}/${rule.name}`,
      condition: compiled.condition,
      ...(rule.effect !== undefined && { effect: rule.effect }),
      ...(rule.risk !== undefined && { risk: rule.risk }),
      ...(rule.approval !== undefined && { approval: rule.approval }),
      ...(rule.reason !== undefined && { reason: rule.reason }),
    });
  }
  if (issues.length > before) return undefined;
  return {
    name,
    risk: tool.risk,
    approval: tool.approval,
    allowedRoles: new Set(tool.allowed_roles),
    ...(tool.environments && { environments: new Set(tool.environments) }),
    ...(tool.tenants && { tenants: new Set(tool.tenants) }),
    rules,
  };
}

/**
 * Whether policy can ever send `tool` to approval: its default plan is not `none`, or a rule sets a
 * plan. A preview runs only then (the workflow calls it only for an `approve` decision).
 */
export function mayNeedApproval(tool: ToolPolicyDocument): boolean {
  return tool.approval !== NO_APPROVAL || (tool.rules ?? []).some((rule) => rule.approval !== undefined && rule.approval !== NO_APPROVAL);
}
