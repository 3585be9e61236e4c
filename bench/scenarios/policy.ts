/**
 * Scenario 4 — policy decision latency, in process, at N tools each with one CEL rule (N = 10,
 * 1,000, 10,000 at full size): toolgate's `decide()` against the same decisions written for
 * Cedar (`@cedar-policy/cedar-wasm`, policies pre-parsed once), casbin (one policy line per outcome,
 * matcher over request attributes, three policy lines per tool) and a floor: the same policy documents
 * compiled once into one JS closure per tool (ajv for the argument schema, sets for roles and
 * environments, the rule's condition compiled to a closure). The floor does the same work toolgate does
 * minus CEL's interpreter and the decision's explanation, so toolgate ÷ floor is the price of those.
 * Every engine answers the same requests; their outcomes are cross-checked.
 *
 * The decision: tool t<i> is allowed in production for role agent_runtime; an agent asking for an
 * amount over 1000 needs approval; everything else is denied.
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { Ajv } from 'ajv';
import { newEnforcer, newModelFromString, StringAdapter } from 'casbin';
import { parse as parseYaml } from 'yaml';
import { decide, parsePolicy } from '../../src/policy/index.js';
import type { ToolRequest } from '../../src/shared/index.js';
import { log, status } from '../lib/progress.js';
import { ratio, round, since, summarize, type LatencySummary } from '../lib/stats.js';
import { goal, type BenchSizes, type GoalResult, type ResultRow, type ScenarioResult } from '../lib/types.js';

type Outcome = 'allow' | 'approve' | 'deny';
type Engine = { name: string; decide: (request: ToolRequest) => Outcome };

/** Tools per policy file: files are capped at 1 MiB, so large policies are split (several files load as one policy). */
const TOOLS_PER_FILE = 1000;

function toolgatePolicyFiles(n: number): { file: string; text: string }[] {
  const files: { file: string; text: string }[] = [];
  for (let from = 0; from < n; from += TOOLS_PER_FILE) {
    const to = Math.min(n, from + TOOLS_PER_FILE);
    const lines = ['version: 1'];
    if (from === 0) lines.push('approvals:', '  approvers: { groups: [approvers], expires_after: 24h }');
    lines.push('tools:');
    for (let i = from; i < to; i++) {
      lines.push(
        `  t${i}:`,
        '    risk: low',
        '    approval: none',
        '    allowed_roles: [agent_runtime]',
        '    environments: [production]',
        '    rules:',
        `      - { name: large, when: 'args.amount > 1000 && actor.type == "agent"', approval: approvers, risk: high }`,
      );
    }
    lines.push('manifest:');
    for (let i = from; i < to; i++) {
      lines.push(
        `  t${i}:`,
        '    run_as: svc-bench',
        '    adapter: { type: code, handler: bench }',
        '    args: { type: object, required: [amount, region], properties: { amount: { type: integer }, region: { type: string } } }',
      );
    }
    files.push({ file: `bench-${n}-${from / TOOLS_PER_FILE}.yaml`, text: lines.join('\n') });
  }
  return files;
}

function toolgateEngine(n: number): Engine {
  const policy = parsePolicy(toolgatePolicyFiles(n));
  return { name: 'toolgate decide() (CEL)', decide: (request) => decide(policy, request).outcome };
}

function cedarEngine(n: number): Engine {
  const staticPolicies: Record<string, string> = {};
  const base = 'context.environment == "production" && principal.roles.contains("agent_runtime")';
  const large = 'context.amount > 1000 && principal.kind == "agent"';
  for (let i = 0; i < n; i++) {
    const scope = `principal, action == Action::"call", resource == Tool::"t${i}"`;
    staticPolicies[`t${i}/allow`] = `permit(${scope}) when { ${base} && !(${large}) };`;
    staticPolicies[`t${i}/large`] = `permit(${scope}) when { ${base} && ${large} };`;
  }
  const id = `bench-${n}-${Date.now()}`;
  const parsed = cedar.preparsePolicySet(id, { staticPolicies });
  if (parsed.type !== 'success') throw new Error(`cedar could not parse the policies: ${JSON.stringify(parsed.errors).slice(0, 300)}`);
  return {
    name: 'Cedar (cedar-wasm, pre-parsed)',
    decide: (request) => {
      const answer = cedar.statefulIsAuthorized({
        principal: { type: 'Agent', id: request.actor.id },
        action: { type: 'Action', id: 'call' },
        resource: { type: 'Tool', id: request.tool },
        context: { environment: request.environment, amount: request.args.amount as number, region: request.args.region as string },
        preparsedPolicySetId: id,
        entities: [{ uid: { type: 'Agent', id: request.actor.id }, attrs: { roles: request.actor.roles, kind: request.actor.type }, parents: [] }],
      });
      if (answer.type !== 'success') throw new Error(`cedar failed: ${JSON.stringify(answer.errors)}`);
      if (answer.response.decision !== 'allow') return 'deny';
      return answer.response.diagnostics.reason.some((reason) => reason.endsWith('/large')) ? 'approve' : 'allow';
    },
  };
}

async function casbinEngine(n: number): Promise<Engine> {
  const model = newModelFromString(`
[request_definition]
r = role, kind, obj, env, amount
[policy_definition]
p = role, kind, obj, env, lo, hi, outcome
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.obj == p.obj && r.role == p.role && r.env == p.env && (p.kind == "*" || r.kind == p.kind) && r.amount >= p.lo && r.amount <= p.hi
`);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(`p, agent_runtime, *, t${i}, production, 0, 1000, allow`);
    lines.push(`p, agent_runtime, agent, t${i}, production, 1001, 9007199254740991, approve`);
    lines.push(`p, agent_runtime, human, t${i}, production, 1001, 9007199254740991, allow`);
  }
  const enforcer = await newEnforcer(model, new StringAdapter(lines.join('\n')));
  return {
    name: 'casbin',
    decide: (request) => {
      for (const role of request.actor.roles) {
        const [ok, rule] = enforcer.enforceExSync(role, request.actor.type, request.tool, request.environment, request.args.amount);
        if (ok) return rule[6] === 'approve' ? 'approve' : 'allow';
      }
      return 'deny';
    },
  };
}

/** The name of the floor engine, which the ratios are taken against. */
const FLOOR = 'same policy compiled to JS closures';

interface FloorTool {
  allowed_roles: string[];
  environments: string[];
  rules: { when: string; approval: string }[];
}

type Scope = { args: Record<string, unknown>; actor: ToolRequest['actor'] };

/**
 * The rule's CEL condition compiled to a closure, the classic closure-compilation way: each
 * `path op literal` clause becomes a function with its operator and operand fixed, and `&&` a
 * conjunction of them. The benchmark's rules use only that subset; anything else is refused rather
 * than compiled wrongly.
 */
function compileCondition(when: string): (scope: Scope) => boolean {
  const clauses = when.split('&&').map((clause) => {
    const match = /^\s*(args|actor)\.(\w+)\s*(==|>)\s*(\d+|"[^"]*")\s*$/.exec(clause);
    if (!match) throw new Error(`the floor engine cannot compile ${clause}`);
    const [, root, field, op, literal] = match as unknown as [string, 'args' | 'actor', string, '==' | '>', string];
    const value: unknown = literal.startsWith('"') ? literal.slice(1, -1) : Number(literal);
    const read = (scope: Scope): unknown => (scope[root] as Record<string, unknown>)[field];
    return op === '==' ? (scope: Scope) => read(scope) === value : (scope: Scope) => (read(scope) as number) > (value as number);
  });
  return (scope) => clauses.every((clause) => clause(scope));
}

function floorEngine(n: number): Engine {
  const ajv = new Ajv({ allErrors: false });
  const tools = new Map<string, (request: ToolRequest) => Outcome>();
  // A careful compiler emits one function per distinct schema and condition: tools that share them
  // share the code, and call sites stay monomorphic.
  const validators = new Map<string, ReturnType<typeof ajv.compile>>();
  const conditions = new Map<string, (scope: Scope) => boolean>();
  const once = <T>(cache: Map<string, T>, key: string, make: () => T): T => {
    let value = cache.get(key);
    if (value === undefined) cache.set(key, (value = make()));
    return value;
  };
  for (const { text } of toolgatePolicyFiles(n)) {
    const doc = parseYaml(text) as { tools: Record<string, FloorTool>; manifest: Record<string, { args: object }> };
    for (const [name, tool] of Object.entries(doc.tools)) {
      const schema = doc.manifest[name]!.args;
      const validArgs = once(validators, JSON.stringify(schema), () => ajv.compile(schema));
      const roles = new Set(tool.allowed_roles);
      const environments = new Set(tool.environments);
      const rules = tool.rules.map((rule) => ({
        when: once(conditions, rule.when, () => compileCondition(rule.when)),
        approval: rule.approval,
      }));
      tools.set(name, (request) => {
        if (!environments.has(request.environment) || !request.actor.roles.some((role) => roles.has(role)) || !validArgs(request.args)) return 'deny';
        const scope = { args: request.args, actor: request.actor };
        for (const rule of rules) if (rule.when(scope)) return rule.approval === 'none' ? 'allow' : 'approve';
        return 'allow';
      });
    }
  }
  return { name: FLOOR, decide: (request) => tools.get(request.tool)?.(request) ?? 'deny' };
}

/** Deterministic pseudo-random requests: mostly allowed, some needing approval, some denied. */
function requests(n: number, count: number): ToolRequest[] {
  let seed = 42;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  return Array.from({ length: count }, (_, i) => ({
    requestId: `p-${i}`,
    tenant: 'bench',
    environment: next() < 0.9 ? 'production' : 'staging',
    tool: `t${Math.floor(next() * n)}`,
    actor: { id: 'bench-agent', type: next() < 0.8 ? 'agent' : 'human', roles: next() < 0.95 ? ['agent_runtime'] : ['viewer'] },
    args: { amount: Math.floor(next() * 2000), region: 'eu' },
  }));
}

function measure(engine: Engine, sample: ToolRequest[], maxMs: number): { summary: LatencySummary; outcomes: Outcome[] } {
  // Warm up (JIT, caches) on the first tenth, for at most a second, then time each decision.
  const warmUntil = performance.now() + 1000;
  for (const request of sample.slice(0, Math.ceil(sample.length / 10))) {
    engine.decide(request);
    if (performance.now() > warmUntil) break;
  }
  const latencies: number[] = [];
  const outcomes: Outcome[] = [];
  const t0 = performance.now();
  for (const request of sample) {
    const start = performance.now();
    outcomes.push(engine.decide(request));
    latencies.push(performance.now() - start);
    if (performance.now() - t0 > maxMs) break;
  }
  return {
    summary: summarize(
      latencies,
      latencies.reduce((a, b) => a + b, 0),
    ),
    outcomes,
  };
}

export async function policyScenario(sizes: BenchSizes): Promise<ScenarioResult> {
  const started = performance.now();
  const rows: ResultRow[] = [];
  const goals: GoalResult[] = [];
  const notes: string[] = [];
  const toolgateP50: number[] = [];
  let toolgateP99AtLargest = Number.NaN;
  for (const n of sizes.policy.sizes) {
    status(`policy: building ${n} tools for each engine`);
    const builds: { engine: Engine; buildMs: number }[] = [];
    for (const build of [toolgateEngine, cedarEngine, casbinEngine, floorEngine]) {
      const t0 = performance.now();
      const engine = await build(n);
      builds.push({ engine, buildMs: since(t0) });
    }
    const sample = requests(n, sizes.policy.decisions);
    const results = builds.map(({ engine, buildMs }) => {
      status(`policy: ${n} tools, ${engine.name}`);
      return { engine, buildMs, ...measure(engine, sample, sizes.policy.maxSecondsPerEngine * 1000) };
    });
    const [tg, ...peers] = results;
    if (!tg) throw new Error('no toolgate result');
    const floor = peers.find((peer) => peer.engine.name === FLOOR);
    if (!floor) throw new Error('no floor result');
    for (const library of peers.filter((peer) => peer !== floor)) {
      notes.push(
        `${n} tools: toolgate p50 ÷ ${library.engine.name} p50 = 1/${ratio(library.summary.p50, tg.summary.p50)} (toolgate is that many times faster).`,
      );
    }
    for (const result of results) {
      const agree = result.outcomes.filter((outcome, i) => outcome === tg.outcomes[i]).length;
      const compared = Math.min(result.outcomes.length, tg.outcomes.length);
      rows.push({
        system: `${n.toLocaleString('en-US')} tools: ${result.engine.name}`,
        p50: result.summary.p50,
        p95: result.summary.p95,
        p99: result.summary.p99,
        throughput: round(1000 / result.summary.mean),
        throughputUnit: 'decisions/s (1 core)',
        ratio: ratio(result.summary.p50, floor.summary.p50),
        note: `built in ${Math.round(result.buildMs)} ms; agrees with toolgate on ${agree}/${compared}`,
        extra: { tools: n, rules: n, buildMs: result.buildMs, ...result.summary },
      });
      if (agree !== compared) notes.push(`${n} tools: ${result.engine.name} disagrees with toolgate on ${compared - agree} of ${compared} requests.`);
    }
    // Reported, not a goal: the price of interpreting CEL and explaining the decision.
    notes.push(`${n} tools: toolgate p50 ÷ compiled-closure floor p50 = ${ratio(tg.summary.p50, floor.summary.p50)}.`);
    toolgateP50.push(tg.summary.p50);
    toolgateP99AtLargest = tg.summary.p99;
    log(`  policy ${n} tools: toolgate p50 ${tg.summary.p50.toFixed(4)} ms, floor ${floor.summary.p50.toFixed(4)} ms`);
  }
  const largest = sizes.policy.sizes.at(-1) ?? 0;
  const smallest = sizes.policy.sizes[0] ?? 0;
  // Issue goal: p99 under 10 µs at 10,000 tools.
  goals.push(goal(`toolgate p99 at ${largest} (ms)`, toolgateP99AtLargest, '<', 0.01));
  goals.push(goal(`toolgate p50 at ${largest} / p50 at ${smallest}`, ratio(toolgateP50.at(-1) ?? Number.NaN, toolgateP50[0] ?? Number.NaN), '<=', 10));
  return {
    id: 4,
    name: 'Policy decision latency (in process)',
    baseline: 'the same policy compiled to JS closures, at each size',
    ratioOf: 'p50',
    rows,
    goals,
    notes: [
      `${sizes.policy.decisions} decisions per engine and size (at most ${sizes.policy.maxSecondsPerEngine} s), each timed alone; one CEL rule per tool.`,
      ...notes,
    ],
    durationMs: since(started),
  };
}
