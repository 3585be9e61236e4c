/**
 * Fuzzing the request edge, the front door: 10,000 generated and mutated agent request bodies go
 * through what `POST /v1/tool-requests` does with a body once the agent's token is verified — the
 * body schema, the identity check, and `FrontDoor.admit` (against a stand-in for Temporal that
 * records what would be started). Whatever arrives (wrong types, missing and extra fields, huge
 * strings, deep nesting, cycles, unicode, `__proto__`/`constructor` keys, numbers as strings, NaN
 * and Infinity, truncated or bit-flipped JSON text, an identity other than the token's), the front
 * door either admits a valid request built from the token's identity and signed for its workflow,
 * or refuses with issues that each name the field at fault (400) or with the identity fields the
 * body changed (403), starting nothing; it never crashes and never pollutes a prototype.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Client } from '@temporalio/client';
import fc from 'fast-check';
import { exportPKCS8, generateKeyPair } from 'jose';
import { AgentRequestBodySchema, identityMismatches } from '../../src/api/agents.js';
import { AdmissionError, FrontDoor } from '../../src/api/front-door.js';
import type { AgentIdentity } from '../../src/auth/agent-tokens.js';
import { ToolRequestSchema, formatIssues, verifyRequestAssertion, workflowIdFor, type ToolRequest, type ToolRequestStart } from '../../src/shared/index.js';
import { signingKeyFromPem } from '../../src/trust/keys.js';
import { RequestSigner } from '../../src/trust/signers.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20240607);

const identifier = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,20}$/);
/** Ids as a verified token carries them: canonical (lower case). */
const canonical = fc.stringMatching(/^[a-z0-9][a-z0-9._:@-]{0,20}$/);
const jsonArgs = fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 });

/** The agent a verified token identifies. */
const agentIdentity: fc.Arbitrary<AgentIdentity> = fc.record(
  {
    id: canonical,
    type: fc.constant('agent' as const),
    tenant: identifier,
    roles: fc.uniqueArray(identifier, { maxLength: 3 }),
    environment: identifier,
    onBehalfOf: fc.array(
      fc.record({ id: canonical, type: fc.constantFrom('agent' as const, 'human' as const, 'service' as const) }, { noNullPrototype: true }),
      { minLength: 1, maxLength: 3 },
    ),
  },
  { requiredKeys: ['id', 'type', 'tenant', 'roles', 'environment'], noNullPrototype: true },
);

/** A valid body of this agent, as it would send it: the tool and its choices, and sometimes a restatement of who it is (ids spelled in upper case, roles in another order). */
const validBody = (agent: AgentIdentity) =>
  fc.record(
    {
      requestId: identifier,
      tool: identifier,
      args: jsonArgs,
      reason: fc.string({ maxLength: 50 }),
      // A valid trace id is what an HTTP header can carry: 1-20 visible ASCII characters here.
      traceId: fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((code) => String.fromCharCode(code)), minLength: 1, maxLength: 20 }),
      wait: fc.integer({ min: 0, max: 60 }),
      actor: fc.boolean().map((upper) => ({ id: upper ? agent.id.toUpperCase() : agent.id, type: 'agent', roles: [...agent.roles].reverse() })),
      tenant: fc.constant(agent.tenant),
      environment: fc.constant(agent.environment),
      onBehalfOf: fc.constant((agent.onBehalfOf ?? []).map((principal) => ({ ...principal, id: principal.id.toUpperCase() }))),
    },
    { requiredKeys: ['tool'] },
  );

/** The field paths a 400 issue may name: the body's fields, or `(root)`. */
const FIELD_PATH =
  /^(\(root\)|requestId|tenant|environment|tool|args|reason|traceId|wait|actor(\.(id|type|roles(\.\d+)?))?|onBehalfOf(\.\d+(\.(id|type))?)?): \S/;
/** The fields a 403 identity_mismatch may name. */
const IDENTITY_FIELDS = ['actor.id', 'actor.type', 'actor.roles', 'tenant', 'environment', 'onBehalfOf'];

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

function deepNest(depth: number, asArray: boolean): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = asArray ? [value] : { n: value };
  return value;
}

/** Values that are wrong in interesting ways. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, undefined, true, false, 0, -1, 1e308, Number.NaN, Number.POSITIVE_INFINITY, -0, '', 'NaN', 'Infinity', '1e999', '0x1F', [], {}),
  fc.integer().map(String),
  fc.double().map(String),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('\u0000', '\uFEFFagent', 'a\u202Eb', 'ａｇｅｎｔ', '\uD800', 'x'.repeat(129), 'agent\n', ' agent'),
  fc.integer({ min: 1, max: 400_000 }).map((n) => 'A'.repeat(n)),
  fc.tuple(fc.integer({ min: 50, max: 30_000 }), fc.boolean()).map(([depth, asArray]) => deepNest(depth, asArray)),
  fc.constant(null).map(() => {
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = cycle;
    return cycle;
  }),
  fc.constant(null).map(() => {
    // Shared references: 2^40 leaves if expanded, a handful of objects in memory.
    let shared: unknown = 'leaf';
    for (let i = 0; i < 40; i++) shared = { l: shared, r: shared };
    return shared;
  }),
  fc.bigInt().map((n) => ({ n })),
  fc.jsonValue({ maxDepth: 3 }),
);

type Path = (string | number)[];

/** Every path to a value inside `value` (objects and arrays, bounded). */
function pathsOf(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (out.length > 200 || value === null || typeof value !== 'object') return out;
  for (const [key, item] of Object.entries(value)) pathsOf(item, [...prefix, Array.isArray(value) ? Number(key) : key], out);
  return out;
}

function parentAt(root: Record<string, unknown>, path: Path): Record<string | number, unknown> | undefined {
  let node: unknown = root;
  for (const segment of path.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node !== null && typeof node === 'object' ? (node as Record<string | number, unknown>) : undefined;
}

type Mutation = { kind: string; apply: (request: Record<string, unknown>, pick: number) => unknown };

const clone = (value: unknown) => structuredClone(value) as Record<string, unknown>;

/** Structural mutations of a valid request: each returns the mutated value (an object, or JSON text). */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  oddValue.map((odd) => ({
    kind: 'replace-value',
    apply: (request: Record<string, unknown>, pick: number) => {
      const copy = clone(request);
      const paths = pathsOf(copy);
      const path = paths[pick % paths.length] as Path;
      if (path.length === 0) return odd;
      const parent = parentAt(copy, path);
      if (parent) parent[path[path.length - 1] as string] = odd;
      return copy;
    },
  })),
  fc.constant<Mutation>({
    kind: 'delete-field',
    apply: (request, pick) => {
      const copy = clone(request);
      const paths = pathsOf(copy).filter((path) => path.length > 0);
      const path = paths[pick % Math.max(paths.length, 1)];
      if (path) delete parentAt(copy, path)?.[path[path.length - 1] as string];
      return copy;
    },
  }),
  fc.tuple(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 10 })), oddValue).map(([key, odd]) => ({
    kind: 'extra-field',
    apply: (request: Record<string, unknown>, pick: number) => {
      const copy = clone(request);
      const targets = pathsOf(copy).filter((path) => {
        const value = path.length === 0 ? copy : parentAt(copy, [...path, 'x'])?.[path[path.length - 1] as string];
        return value !== null && typeof value === 'object' && !Array.isArray(value);
      });
      const path = targets[pick % targets.length] as Path;
      const target = (path.length === 0 ? copy : parentAt(copy, [...path, 'x'])) as Record<string, unknown>;
      Object.defineProperty(target, key, { value: odd, enumerable: true, configurable: true, writable: true });
      return copy;
    },
  })),
  fc.constantFrom(...PROTO_KEYS).map((key) => ({
    // JSON.parse makes `__proto__` an own key, as a body parser would.
    kind: 'proto-key-json',
    apply: (request: Record<string, unknown>, pick: number) => {
      const text = JSON.stringify(request);
      const spots = [...text.matchAll(/[{]/g)].map((match) => match.index);
      const at = (spots[pick % spots.length] ?? 0) + 1;
      return `${text.slice(0, at)}"${key}":{"polluted":true,"isAdmin":true},${text.slice(at)}`;
    },
  })),
  fc.constant<Mutation>({
    kind: 'numbers-as-strings',
    apply: (request) =>
      JSON.stringify(request)
        .replace(/"(agent|human|service)"/g, '1')
        .replace(/:(\d+)/g, ':"$1"'),
  }),
  fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e999', 'undefined', '01', '.5', '0x10', "'x'").map((token) => ({
    kind: 'json-odd-number',
    apply: (request: Record<string, unknown>, pick: number) => {
      const text = JSON.stringify(request);
      const spots = [...text.matchAll(/:/g)].map((match) => match.index);
      const at = (spots[pick % spots.length] ?? 0) + 1;
      const end = text.slice(at).search(/[,}\]]/);
      return `${text.slice(0, at)}${token}${text.slice(end < 0 ? text.length : at + end)}`;
    },
  })),
  fc.constant<Mutation>({
    kind: 'truncate-json',
    apply: (request, pick) => {
      const text = JSON.stringify(request);
      return text.slice(0, pick % Math.max(text.length, 1));
    },
  }),
  fc.array(fc.nat(), { minLength: 1, maxLength: 8 }).map((flips) => ({
    kind: 'bit-flip-json',
    apply: (request: Record<string, unknown>) => {
      const bytes = Buffer.from(JSON.stringify(request), 'utf8');
      for (const flip of flips) {
        const index = flip % bytes.length;
        bytes[index] = (bytes[index] as number) ^ (1 << (flip % 8));
      }
      return bytes.toString('utf8');
    },
  })),
);

/** What the front door did with one body. */
type Verdict =
  | { kind: 'admitted'; request: ToolRequest; start: ToolRequestStart; workflowId: string }
  | { kind: 'invalid'; issues: string[]; fields: string[] }
  | { kind: 'mismatch'; fields: string[] };

/**
 * The front door with a stand-in for Temporal: `admit` runs the agent API's checks in the order
 * `POST /v1/tool-requests` applies them (body schema, identity, admission) and reports what would
 * be started.
 */
async function frontDoorOnBench() {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const key = await signingKeyFromPem(await exportPKCS8(privateKey), 'fuzz key');
  const starts: { workflowId: string; start: ToolRequestStart }[] = [];
  const temporal = {
    workflow: {
      start: async (_type: string, options: { workflowId: string; args: [ToolRequestStart]; memo: Record<string, unknown> }) => {
        starts.push({ workflowId: options.workflowId, start: options.args[0] });
        const attributes = new Map<string, unknown>();
        return {
          describe: async () => ({
            memo: options.memo,
            status: { name: 'RUNNING' },
            typedSearchAttributes: { get: (key: { name: string }) => attributes.get(key.name) },
          }),
        };
      },
    },
  } as unknown as Client;
  const door = new FrontDoor(temporal, new RequestSigner(key), 'fuzz');
  const anchors = { requestKeys: [key.trusted], decisionKeys: [] };
  const admit = async (agent: AgentIdentity, body: unknown): Promise<Verdict> => {
    const parsed = AgentRequestBodySchema.safeParse(body ?? {});
    if (!parsed.success) {
      const issues = formatIssues(parsed.error);
      return { kind: 'invalid', issues, fields: issues.map((issue) => issue.split(':')[0] ?? '') };
    }
    const { actor, tenant, environment, onBehalfOf, ...fields } = parsed.data;
    delete fields.wait; // how long the API holds the answer, not part of the request
    const mismatched = identityMismatches(agent, { actor, tenant, environment, onBehalfOf });
    if (mismatched.length > 0) return { kind: 'mismatch', fields: mismatched };
    const before = starts.length;
    try {
      const admitted = await door.admit(agent, fields);
      assert.equal(starts.length, before + 1, 'one workflow start per admitted request');
      const { start, workflowId } = starts[before] as (typeof starts)[number];
      assert.equal(workflowId, admitted.workflowId);
      return { kind: 'admitted', request: admitted.request, start, workflowId };
    } catch (error) {
      if (!(error instanceof AdmissionError) || error.code !== 'invalid_body') {
        // Anything but a refusal escapes the router as a 500.
        throw new Error(`the front door crashed on a body (the agent API would answer 500): ${(error as Error).message}`, { cause: error });
      }
      return { kind: 'invalid', issues: error.message.split('; '), fields: error.fields };
    }
  };
  return { admit, anchors, started: () => starts.length };
}

test("10,000 generated and mutated agent bodies: admitted as the token's agent, or refused naming each field, never a crash or pollution", async () => {
  const door = await frontDoorOnBench();
  const counts = { cases: 0, admitted: 0, refused: 0, mismatched: 0, unparseable: 0, issueLines: 0 };
  const byKind = new Map<string, number>();
  const check = async (agent: AgentIdentity, input: unknown): Promise<Verdict['kind'] | 'unparseable'> => {
    counts.cases++;
    let value = input;
    if (typeof input === 'string') {
      try {
        value = JSON.parse(input);
      } catch {
        counts.unparseable++; // never reaches the front door: the HTTP edge refuses it (fuzz-http.test.ts)
        return 'unparseable';
      }
    }
    const startedBefore = door.started();
    const verdict = await door.admit(agent, value);
    if (verdict.kind === 'admitted') {
      counts.admitted++;
      const { request, start, workflowId } = verdict;
      assert.equal(ToolRequestSchema.safeParse(request).success, true, 'an admitted request is a valid ToolRequest');
      // Who and where come from the token, whatever the body said.
      assert.deepEqual(request.actor, { id: agent.id, type: 'agent', roles: agent.roles });
      assert.equal(request.tenant, agent.tenant);
      assert.equal(request.environment, agent.environment);
      assert.deepEqual(request.onBehalfOf, agent.onBehalfOf);
      assert.equal(workflowId, workflowIdFor(agent.tenant, request.requestId));
      // The workflow receives exactly this request, with an admission it verifies.
      assert.deepEqual(start.request, request);
      verifyRequestAssertion(start.admission, start.request, door.anchors, { workflowId, startedAtMs: Date.now() });
      assert.equal(Object.getPrototypeOf(request), Object.prototype);
      assert.equal(Object.getPrototypeOf(request.args), Object.prototype, 'args keep a plain prototype');
      assert.equal(Object.getPrototypeOf(request.actor), Object.prototype);
      assert.ok(JSON.stringify(request.args).length <= 256 * 1024);
    } else {
      assert.equal(door.started(), startedBefore, 'a refused body starts nothing');
      if (verdict.kind === 'mismatch') {
        counts.mismatched++;
        assert.ok(
          verdict.fields.length > 0 && verdict.fields.every((field) => IDENTITY_FIELDS.includes(field)),
          `identity fields: ${verdict.fields.join(', ')}`,
        );
      } else {
        counts.refused++;
        assert.ok(verdict.issues.length > 0, 'a refusal lists at least one issue');
        assert.ok(verdict.fields.length > 0 && verdict.fields.every((field) => field.length > 0), 'a refusal names its fields');
        for (const line of verdict.issues) {
          counts.issueLines++;
          assert.match(line, FIELD_PATH, `issue names a field: ${line.slice(0, 200)}`);
        }
      }
    }
    const probe = {} as Record<string, unknown>;
    assert.equal(probe.polluted, undefined, 'Object.prototype was polluted');
    assert.equal(probe.isAdmin, undefined, 'Object.prototype was polluted');
    return verdict.kind;
  };

  await fc.assert(
    fc.asyncProperty(
      agentIdentity.chain((agent) => validBody(agent).map((body) => [agent, body] as const)),
      async ([agent, body]) => {
        assert.equal(await check(agent, body), 'admitted', "a valid body restating the token's identity is admitted");
      },
    ),
    { numRuns: 2_000, seed: SEED },
  );
  await fc.assert(
    fc.asyncProperty(
      agentIdentity.chain((agent) => validBody(agent).map((body) => [agent, body] as const)),
      mutation,
      fc.nat(),
      async ([agent, body], { kind, apply }, pick) => {
        byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
        await check(agent, apply(body, pick));
      },
    ),
    { numRuns: 8_000, seed: SEED + 1 },
  );
  console.log(
    `fuzz-requests: ${counts.cases} cases (seed ${SEED}): ${counts.admitted} admitted, ${counts.refused} refused with ${counts.issueLines} issue lines each naming a field, ` +
      `${counts.mismatched} refused for naming another identity, ${counts.unparseable} not JSON (refused before the front door); ` +
      `mutations: ${[...byKind].map(([kind, n]) => `${kind}=${n}`).join(', ')}`,
  );
  assert.equal(counts.cases, 10_000);
  assert.ok(counts.mismatched > 0, 'some mutations change the identity the body claims');
  assert.ok(counts.refused + counts.mismatched + counts.unparseable > 6_000, 'most mutations are refused');
});
