/**
 * Fuzzing the request edge: 10,000 generated and mutated tool requests go through
 * `ToolGateway.validate`. Whatever arrives (wrong types, missing and extra fields, huge strings,
 * deep nesting, cycles, unicode, `__proto__`/`constructor` keys, numbers as strings, NaN and
 * Infinity, truncated or bit-flipped JSON text), the gateway either returns a valid request or
 * throws `InvalidToolRequest` whose every line names the field at fault; it never crashes and
 * never pollutes a prototype.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvalidToolRequest, ToolGateway } from '../../src/client/index.js';
import { ToolRequestSchema } from '../../src/shared/index.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20240607);

const identifier = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,20}$/);
const jsonArgs = fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 });

/** A valid request, as an agent would send it. */
const validRequest = fc.record(
  {
    requestId: identifier,
    actor: fc.record({ id: identifier, type: fc.constantFrom('agent', 'human', 'service'), roles: fc.array(identifier, { maxLength: 3 }) }),
    tenant: identifier,
    environment: identifier,
    tool: identifier,
    args: jsonArgs,
    onBehalfOf: fc.array(fc.record({ id: identifier, type: fc.constantFrom('agent', 'human', 'service') }), { maxLength: 3 }),
    reason: fc.string({ maxLength: 50 }),
    traceId: fc.string({ maxLength: 20 }),
  },
  { requiredKeys: ['actor', 'tenant', 'environment', 'tool'] },
);

/** The field paths an issue may name: the request model's fields, or `(root)`. */
const FIELD_PATH =
  /^(\(root\)|requestId|tenant|environment|tool|args|reason|traceId|actor(\.(id|type|roles(\.\d+)?))?|onBehalfOf(\.\d+(\.(id|type))?)?): \S/;

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
    apply: (request) => JSON.stringify(request).replace(/"(agent|human|service)"/g, '1').replace(/:(\d+)/g, ':"$1"'),
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

test('10,000 generated and mutated requests: a valid request or InvalidToolRequest naming each field, never a crash or pollution', () => {
  const counts = { cases: 0, accepted: 0, refused: 0, unparseable: 0, issueLines: 0 };
  const byKind = new Map<string, number>();
  const check = (input: unknown) => {
    counts.cases++;
    let value = input;
    if (typeof input === 'string') {
      try {
        value = JSON.parse(input);
      } catch {
        counts.unparseable++; // never reaches the gateway: the HTTP edge refuses it (fuzz-http.test.ts)
        return;
      }
    }
    try {
      const request = ToolGateway.validate(value);
      counts.accepted++;
      assert.equal(ToolRequestSchema.safeParse(request).success, true, 'an accepted request is a valid ToolRequest');
      assert.equal(Object.getPrototypeOf(request), Object.prototype);
      assert.equal(Object.getPrototypeOf(request.args), Object.prototype, 'args keep a plain prototype');
      assert.equal(Object.getPrototypeOf(request.actor), Object.prototype);
      assert.ok(JSON.stringify(request.args).length <= 256 * 1024);
    } catch (error) {
      if (!(error instanceof InvalidToolRequest)) throw error;
      counts.refused++;
      assert.ok(error.issues.length > 0, 'a refusal lists at least one issue');
      for (const line of error.issues) {
        counts.issueLines++;
        assert.match(line, FIELD_PATH, `issue names a field: ${line.slice(0, 200)}`);
      }
    }
    const probe = {} as Record<string, unknown>;
    assert.equal(probe.polluted, undefined, 'Object.prototype was polluted');
    assert.equal(probe.isAdmin, undefined, 'Object.prototype was polluted');
  };

  fc.assert(
    fc.property(validRequest, (request) => check(request)),
    { numRuns: 2_000, seed: SEED },
  );
  fc.assert(
    fc.property(validRequest, mutation, fc.nat(), (request, { kind, apply }, pick) => {
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
      check(apply(request, pick));
    }),
    { numRuns: 8_000, seed: SEED + 1 },
  );
  console.log(
    `fuzz-requests: ${counts.cases} cases (seed ${SEED}): ${counts.accepted} accepted, ${counts.refused} refused with ${counts.issueLines} issue lines each naming a field, ` +
      `${counts.unparseable} not JSON (refused before validate); mutations: ${[...byKind].map(([kind, n]) => `${kind}=${n}`).join(', ')}`,
  );
  assert.equal(counts.cases, 10_000);
  assert.ok(counts.refused + counts.unparseable > 6_000, 'most mutations are refused');
});
