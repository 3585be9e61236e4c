/**
 * The policy decision for one tool request. Checks run in a fixed order and the first failure
 * denies: unknown tool, arguments, environment, tenant, role, then the tool's rules (first match
 * wins), then the tool's defaults. It never throws: anything unexpected is a denial (fail closed).
 */
import type { ApprovalPlan, DenialCode, PolicyDecision, Risk, ToolRequest } from '../shared/index.js';
import { celProvenance, describe, toCelValue, type ConditionInput } from './condition.js';
import { NO_APPROVAL } from './document.js';
import type { CompiledTool, LoadedPolicy } from './model.js';

/** Decides `request` under `policy`: allow, deny (with a code) or approve (with the resolved plan). */
export function decide(policy: LoadedPolicy, request: ToolRequest): PolicyDecision {
  try {
    return decideOrThrow(policy, request);
  } catch (error) {
    return {
      outcome: 'deny',
      tool: typeof request?.tool === 'string' ? request.tool : '',
      risk: 'critical',
      rule: 'check:internal_error',
      code: 'policy_unavailable',
      reasons: [`the policy could not be evaluated: ${describe(error)}`],
      policyDigest: policy?.digest ?? '',
    };
  }
}

function decideOrThrow(policy: LoadedPolicy, request: ToolRequest): PolicyDecision {
  const name = request.tool;
  const tool = policy.tools.get(name);
  if (!tool) {
    return {
      outcome: 'deny',
      tool: name,
      risk: 'critical',
      rule: 'check:unknown_tool',
      code: 'unknown_tool',
      reasons: [`tool ${name} is not defined in the policy`],
      policyDigest: policy.digest,
    };
  }
  const deny = (code: DenialCode, reasons: string[], rule = `check:${code}`, risk: Risk = tool.risk): PolicyDecision => ({
    outcome: 'deny',
    tool: name,
    risk,
    rule,
    code,
    reasons,
    ...identity(policy, tool),
  });

  const argProblems = tool.validateArgs(request.args);
  if (argProblems.length > 0) return deny('invalid_arguments', argProblems);
  if (tool.environments && !tool.environments.has(request.environment)) {
    return deny('environment_not_allowed', [`tool ${name} is not allowed in environment ${request.environment} (allowed: ${list(tool.environments)})`]);
  }
  if (tool.tenants && !tool.tenants.has(request.tenant)) {
    return deny('tenant_not_allowed', [`tool ${name} is not allowed for tenant ${request.tenant}`]);
  }
  const roles = Array.isArray(request.actor.roles) ? request.actor.roles : [];
  if (!roles.some((role) => tool.allowedRoles.has(role))) {
    const allowed = tool.allowedRoles.size > 0 ? `one of the roles ${list(tool.allowedRoles)}` : 'a role, but no role may call it';
    return deny('role_not_allowed', [`tool ${name} requires ${allowed}; actor ${request.actor.id} has ${roles.length > 0 ? roles.join(', ') : 'no roles'}`]);
  }

  let risk = tool.risk;
  let approval = tool.approval;
  let rule = `tool:${name}`;
  let reason: string | undefined;
  if (tool.rules.length > 0) {
    const input: ConditionInput = {
      args: toCelValue(request.args) as Record<string, unknown>,
      actor: { id: request.actor.id, type: request.actor.type, roles: [...roles] },
      tenant: request.tenant,
      environment: request.environment,
      tool: name,
      // The runtime's claim of untrusted content: rules use it to ask for more, never to allow more.
      provenance: celProvenance(request.provenance),
    };
    for (const candidate of tool.rules) {
      let matched: unknown;
      try {
        matched = candidate.condition(input);
      } catch (error) {
        return deny('rule_denied', [`rule ${candidate.id} could not be evaluated, so the request is denied: ${describe(error)}`], candidate.id);
      }
      if (typeof matched !== 'boolean') {
        return deny('rule_denied', [`rule ${candidate.id} returned ${typeof matched} instead of a bool, so the request is denied`], candidate.id);
      }
      if (!matched) continue;
      risk = candidate.risk ?? tool.risk;
      rule = candidate.id;
      reason = candidate.reason;
      if (candidate.effect === 'deny') {
        return deny('rule_denied', [candidate.reason ?? `rule ${candidate.id} denies this request`], candidate.id, risk);
      }
      approval = candidate.effect === 'allow' ? NO_APPROVAL : (candidate.approval ?? tool.approval);
      break;
    }
  }

  if (approval === NO_APPROVAL) {
    return {
      outcome: 'allow',
      tool: name,
      risk,
      rule,
      reasons: [reason ?? `tool ${name} is allowed without approval`],
      ...identity(policy, tool),
    };
  }
  const plan = policy.plans.get(approval);
  if (!plan) return deny('policy_unavailable', [`approval plan ${approval} is missing from the policy`], rule, risk);
  return {
    outcome: 'approve',
    tool: name,
    risk,
    rule,
    reasons: [reason ?? `tool ${name} needs approval under plan ${approval}`],
    approval: copyPlan(plan),
    ...identity(policy, tool),
  };
}

/**
 * The tool's identity in the decision: the manifest digest and, when the entry's signatures were
 * verified at load, its signers. Only present when there are any, so the decisions of unsigned
 * tools keep the shape recorded histories have.
 */
function identity(policy: LoadedPolicy, tool: CompiledTool) {
  const { signers } = tool.manifest;
  return {
    policyDigest: policy.digest,
    runAs: tool.manifest.runAs,
    toolDigest: tool.manifest.digest,
    ...(signers && signers.length > 0 ? { toolSigners: signers.map((signer) => ({ role: signer.role, key: signer.key })) } : {}),
  };
}

function copyPlan(plan: ApprovalPlan): ApprovalPlan {
  return {
    ...plan,
    groups: [...plan.groups],
    allOf: [...plan.allOf],
    escalation: plan.escalation.map((tier) => ({ afterMs: tier.afterMs, groups: [...tier.groups] })),
  };
}

function list(values: ReadonlySet<string>): string {
  return [...values].join(', ');
}
