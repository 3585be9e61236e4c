/**
 * The policy decision for one tool request. Checks run in a fixed order and the first failure
 * denies: unknown tool, arguments, environment, tenant, role, then the tool's rules (first match
 * wins), then the tool's defaults. It never throws: anything unexpected is a denial (fail closed).
 *
 * A request linked to an earlier one (`request.link`, set only by the approval API) is judged
 * further: an `override` turns an overridable denial into a second person's approval under a
 * break-glass rule (or is refused); a `rollback` must run the undo tool the original's manifest
 * names (or is refused), and is otherwise the undo tool's own decision. Requests without a link
 * decide exactly as they always did, so recorded histories replay unchanged.
 */
import type { ApprovalPlan, DenialCode, OverrideGrant, PolicyDecision, RequestLink, Risk, ToolRequest } from '../shared/index.js';
import { BREAK_GLASS_RULE_PREFIX, breakGlassPlan, findBreakGlassRule, isOverridable, OVERRIDABLE_DENIAL_CODES } from './break-glass.js';
import { celProvenance, describe, toCelValue, type ConditionInput } from './condition.js';
import { NO_APPROVAL } from './document.js';
import type { CompiledTool, LoadedPolicy } from './model.js';

/** Decides `request` under `policy`: allow, deny (with a code) or approve (with the resolved plan). */
export function decide(policy: LoadedPolicy, request: ToolRequest): PolicyDecision {
  try {
    const link = request.link;
    if (link === undefined || link === null) return decideOrThrow(policy, request);
    if (link.kind === 'override') return decideOverride(policy, request, link);
    if (link.kind === 'rollback') return decideRollback(policy, request, link);
    // A link of a kind this policy engine does not know: it cannot say what to check, so it refuses.
    return refuseLink(policy, request, 'invalid_request', 'check:invalid_link', [
      `request link of kind ${String((link as { kind?: unknown }).kind)} is not known`,
    ]);
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
      // Nobody waits on it and a repeat is harmless: it may run inside the workflow task that decided it.
      ...(risk === 'low' && tool.manifest.idempotent ? { localExecution: true as const } : {}),
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
 * A break-glass override: the request decided as usual (without its link) must be an overridable
 * denial of the linked original's tool, and a break-glass rule must let the asker's groups
 * override it here. Then it is granted as an approval round by a second person of the rule.
 */
function decideOverride(policy: LoadedPolicy, request: ToolRequest, link: RequestLink): PolicyDecision {
  const denied = decideOrThrow(policy, withoutLink(request));
  const refuse = (reasons: string[]) => refuseLink(policy, request, 'override_refused', 'check:override_refused', reasons, denied.risk);
  if (denied.outcome !== 'deny') {
    return refuse([
      `override of ${link.requestId} refused: policy does not deny this request (it is ${denied.outcome} by ${denied.rule}), so there is nothing to override`,
    ]);
  }
  if (!isOverridable(denied.code)) {
    return refuse([
      `override of ${link.requestId} refused: a ${denied.code ?? 'denial'} denial (${denied.rule}) cannot be overridden; break-glass overrides only ${OVERRIDABLE_DENIAL_CODES.join(', ')}`,
    ]);
  }
  if (link.tool !== request.tool) {
    return refuse([`override of ${link.requestId} refused: the original called ${link.tool}, this request calls ${request.tool}`]);
  }
  const rule = findBreakGlassRule(policy, { tool: request.tool, environment: request.environment, groups: link.by.groups });
  if (!rule) {
    return refuse([
      `override of ${link.requestId} refused: no break-glass rule lets ${link.by.id} (groups: ${link.by.groups.length > 0 ? link.by.groups.join(', ') : 'none'}) override ${request.tool} in environment ${request.environment}`,
    ]);
  }
  const tool = policy.tools.get(request.tool) as CompiledTool;
  const code = denied.code as DenialCode;
  const override: OverrideGrant = {
    breakGlass: rule.name,
    deniedRule: denied.rule,
    deniedCode: code,
    deniedReasons: [...denied.reasons],
    by: link.by.id,
    reason: link.reason,
    notify: [...rule.notify],
  };
  return {
    outcome: 'approve',
    tool: request.tool,
    risk: denied.risk,
    rule: `${BREAK_GLASS_RULE_PREFIX}${rule.name}`,
    reasons: [`break-glass ${rule.name}: ${link.by.id} overrides ${denied.rule} (${code}): ${link.reason}`],
    approval: breakGlassPlan(rule),
    override,
    ...identity(policy, tool),
  };
}

/**
 * A rollback: only the undo tool the original tool's manifest names may run as its rollback; the
 * undo tool's own policy then decides (roles, rules, approval) exactly as for any request.
 */
function decideRollback(policy: LoadedPolicy, request: ToolRequest, link: RequestLink): PolicyDecision {
  const undo = policy.manifest(link.tool)?.undo;
  if (!undo) {
    return refuseLink(policy, request, 'rollback_refused', 'check:rollback_refused', [
      `rollback of ${link.requestId} refused: the manifest of ${link.tool} declares no undo tool`,
    ]);
  }
  if (undo.tool !== request.tool) {
    return refuseLink(policy, request, 'rollback_refused', 'check:rollback_refused', [
      `rollback of ${link.requestId} refused: ${link.tool} is undone by ${undo.tool}, not by ${request.tool}`,
    ]);
  }
  return decideOrThrow(policy, withoutLink(request));
}

/** A denial of a linked request, with the tool's identity when the policy knows the tool. */
function refuseLink(policy: LoadedPolicy, request: ToolRequest, code: DenialCode, rule: string, reasons: string[], risk?: Risk): PolicyDecision {
  const tool = policy.tools.get(request.tool);
  return {
    outcome: 'deny',
    tool: request.tool,
    risk: risk ?? tool?.risk ?? 'critical',
    rule,
    code,
    reasons,
    ...(tool ? identity(policy, tool) : { policyDigest: policy.digest }),
  };
}

/** The request as policy judges it on its own: the same fields, no link. */
function withoutLink(request: ToolRequest): ToolRequest {
  const rest = { ...request };
  delete rest.link;
  return rest;
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
