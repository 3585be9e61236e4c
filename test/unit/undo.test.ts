/**
 * Rollback on the policy side: a manifest entry's `undo:` validated at load (errors name
 * `manifest.<tool>.undo...`), part of the entry's digest, `deriveUndoArgs` results and failures,
 * and `decide()` on `rollback` requests (refusals, and the undo tool's own decision otherwise).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { decide, loadPolicy, parsePolicy, PolicyLoadError, type LoadedPolicy, type PolicyIssue } from '../../src/policy/index.js';
import type { UndoDocument } from '../../src/policy/document.js';
import { deriveUndoArgs, UndoUnavailable } from '../../src/policy/undo.js';
import type { PolicyDecision, RequestLink, ToolRequest } from '../../src/shared/index.js';
import { createExampleTools } from '../../src/tools/examples.js';
import type { ToolContext } from '../../src/tools/types.js';
import { createUndoExampleTools } from '../../src/tools/undo-examples.js';
import { argsOf, policy } from '../helpers/policy-builder.js';

const UNDO = `    undo:
      tool: reopen_tickets
      args:
        ticket_ids: result.closed
        note: '"rolled back " + request_id'
        queue: args.queue
`;

/**
 * Tickets: closing is undone by reopening; reopening is a person's call (roles) and needs a lead.
 * Written as YAML with the `undo:` block as text (`undo`), for the tests of how that block is read
 * and refused (including values of the wrong type); the other tests use {@link ticketsPolicy}.
 */
function tickets(undo = UNDO): string {
  return `version: 1
tools:
  close_tickets:
    risk: high
    approval: none
    allowed_roles: [agent_runtime]
  reopen_tickets:
    risk: medium
    approval: lead
    allowed_roles: [manager]
  archive_tickets:
    risk: low
    approval: none
    allowed_roles: [agent_runtime]
approvals:
  lead:
    groups: [support_lead]
    expires_after: 1h
manifest:
  close_tickets:
    run_as: svc-tickets
    adapter: { type: code }
    args:
      type: object
      properties:
        queue: { type: string }
        older_than_days: { type: integer }
      required: [queue]
${undo}  reopen_tickets:
    run_as: svc-tickets
    adapter: { type: code }
    args:
      type: object
      properties:
        ticket_ids: { type: array, items: { type: string } }
        note: { type: string }
        queue: { type: string }
      required: [ticket_ids]
  archive_tickets:
    run_as: svc-tickets
    adapter: { type: code }
    args: { type: object, properties: { queue: { type: string } } }
`;
}

/** The undo of close_tickets in {@link tickets}, as the typed document. */
const REOPEN: UndoDocument = {
  tool: 'reopen_tickets',
  args: { ticket_ids: 'result.closed', note: '"rolled back " + request_id', queue: 'args.queue' },
};

/** The same tickets as {@link tickets}, built, with `undo` as close_tickets' undo (null: none): for tests whose subject is not how `undo:` is written. */
function ticketsPolicy(undo: UndoDocument | null = REOPEN): string {
  return policy()
    .tool('close_tickets', { risk: 'high' })
    .tool('reopen_tickets', { risk: 'medium', approval: 'lead', roles: ['manager'] })
    .tool('archive_tickets')
    .plan('lead', { groups: ['support_lead'] })
    .codeTool('close_tickets', {
      runAs: 'svc-tickets',
      args: argsOf({ queue: 'string', older_than_days: 'integer' }, { required: ['queue'] }),
      undo: undo ?? undefined,
    })
    .codeTool('reopen_tickets', {
      runAs: 'svc-tickets',
      args: argsOf({ ticket_ids: { type: 'array', items: { type: 'string' } }, note: 'string', queue: 'string' }, { required: ['ticket_ids'] }),
    })
    .codeTool('archive_tickets', { runAs: 'svc-tickets', args: argsOf({ queue: 'string' }) })
    .yaml();
}

/** {@link ticketsPolicy} with close_tickets undone by reopen_tickets with these arguments (CEL expressions). */
const reopenWith = (args: Record<string, string>): string => ticketsPolicy({ tool: 'reopen_tickets', args });

function load(text: string): LoadedPolicy {
  return parsePolicy([{ file: 'tickets.yaml', text }]);
}

function issueAt(text: string, path: string): PolicyIssue {
  try {
    parsePolicy([{ file: 'tickets.yaml', text }]);
  } catch (error) {
    assert.ok(error instanceof PolicyLoadError, `expected PolicyLoadError, got ${String(error)}`);
    const issue = error.issues.find((candidate) => candidate.path === path);
    assert.ok(issue, `no issue at ${path}; issues: ${JSON.stringify(error.issues, null, 2)}`);
    return issue;
  }
  assert.fail('the policy loaded, but it should have failed');
}

/** The undo block with its args replaced by `args` (YAML lines indented 8). */
function undoWith(args: string, tool = 'reopen_tickets'): string {
  return `    undo:\n      tool: ${tool}\n      args:\n${args}`;
}

function unavailable(fn: () => unknown, code: UndoUnavailable['code'], pattern: RegExp, argument?: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof UndoUnavailable, `expected UndoUnavailable, got ${String(error)}`);
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'UndoUnavailable');
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    assert.equal(error.argument, argument);
    return true;
  });
}

describe('manifest undo: validation at load', () => {
  test('a valid undo is exposed on the manifest entry as written', () => {
    const policy = load(tickets());
    assert.deepEqual(policy.manifest('close_tickets')?.undo, {
      tool: 'reopen_tickets',
      args: { ticket_ids: 'result.closed', note: '"rolled back " + request_id', queue: 'args.queue' },
    });
    assert.equal(policy.manifest('reopen_tickets')?.undo, undefined);
    assert.equal('undo' in (policy.manifest('archive_tickets') ?? {}), false);
  });

  test('undo.tool must be a tool of the policy with a manifest entry', () => {
    const issue = issueAt(tickets(undoWith('        queue: args.queue\n', 'delete_everything')), 'manifest.close_tickets.undo.tool');
    assert.match(issue.message, /tool "delete_everything" is not defined in the policy/);
  });

  test('undo.tool may not be the entry itself', () => {
    assert.match(
      issueAt(tickets(undoWith('        queue: args.queue\n', 'close_tickets')), 'manifest.close_tickets.undo.tool').message,
      /a tool cannot be its own undo/,
    );
  });

  test('each expression compiles at load, and the issue names the argument', () => {
    const syntax = issueAt(tickets(undoWith('        ticket_ids: result.closed\n        note: args.queue +\n')), 'manifest.close_tickets.undo.args.note');
    assert.match(syntax.message, /invalid CEL expression/);
    const unknownVariable = issueAt(tickets(undoWith('        ticket_ids: actor.id\n')), 'manifest.close_tickets.undo.args.ticket_ids');
    assert.match(unknownVariable.message, /invalid CEL expression: .*actor/);
    const typeError = issueAt(tickets(undoWith('        ticket_ids: request_id + 1\n')), 'manifest.close_tickets.undo.args.ticket_ids');
    assert.match(typeError.message, /invalid CEL expression/);
  });

  test('an expression whose type has no JSON form is refused', () => {
    const bytes = issueAt(tickets(undoWith('        ticket_ids: result.closed\n        note: b"abc"\n')), 'manifest.close_tickets.undo.args.note');
    assert.match(bytes.message, /evaluates to bytes: bytes are not JSON/);
    const time = issueAt(
      tickets(undoWith('        ticket_ids: result.closed\n        note: timestamp("2024-01-01T00:00:00Z")\n')),
      'manifest.close_tickets.undo.args.note',
    );
    assert.match(time.message, /timestamp is not JSON/);
  });

  test('arguments the undo tool does not take, and missing required ones, are refused', () => {
    const unknown = issueAt(tickets(undoWith('        ticket_ids: result.closed\n        reason: request_id\n')), 'manifest.close_tickets.undo.args.reason');
    assert.match(unknown.message, /tool reopen_tickets takes no argument "reason"/);
    const missing = issueAt(tickets(undoWith('        note: request_id\n')), 'manifest.close_tickets.undo.args');
    assert.match(missing.message, /must derive the arguments tool reopen_tickets requires: ticket_ids/);
  });

  test('the undo mapping is strict', () => {
    assert.equal(issueAt(tickets(`${UNDO}      when: always\n`), 'manifest.close_tickets.undo.when').message, 'unknown key "when"');
    assert.match(issueAt(tickets('    undo:\n      tool: reopen_tickets\n'), 'manifest.close_tickets.undo.args').message, /is required/);
    assert.match(issueAt(tickets(undoWith('        ticket_ids: 42\n')), 'manifest.close_tickets.undo.args.ticket_ids').message, /must be a CEL expression/);
    assert.match(issueAt(tickets('    undo: reopen_tickets\n'), 'manifest.close_tickets.undo').message, /must be an undo mapping/);
  });

  test('the undo entry is part of the manifest digest (and so of the policy digest)', () => {
    const withUndo = load(ticketsPolicy());
    const changed = load(ticketsPolicy({ ...REOPEN, args: { ...REOPEN.args, note: '"undone: " + request_id' } }));
    const without = load(ticketsPolicy(null));
    const digests = [withUndo, changed, without].map((policy) => policy.manifest('close_tickets')?.digest);
    assert.equal(new Set(digests).size, 3, JSON.stringify(digests));
    assert.equal(new Set([withUndo, changed, without].map((policy) => policy.digest)).size, 3);
    // The undo tool's own entry is untouched by it.
    assert.equal(withUndo.manifest('reopen_tickets')?.digest, without.manifest('reopen_tickets')?.digest);
  });
});

describe('deriveUndoArgs', () => {
  const policy = load(ticketsPolicy());

  test('evaluates each expression over args, result and request_id, as plain JSON', () => {
    const derived = deriveUndoArgs(policy, 'close_tickets', {
      args: { queue: 'billing', older_than_days: 30 },
      result: { closed: ['TCK-1001', 'TCK-1002'], closedBy: 'svc-tickets' },
      requestId: 'req-9',
    });
    assert.deepEqual(derived, { tool: 'reopen_tickets', args: { ticket_ids: ['TCK-1001', 'TCK-1002'], note: 'rolled back req-9', queue: 'billing' } });
  });

  test('CEL ints become numbers and maps objects', () => {
    const numbers = load(
      reopenWith({
        ticket_ids: 'result.closed',
        queue: 'string(args.older_than_days + 1)',
        note: '{"days": args.older_than_days, "next": [args.older_than_days * 2, 7], "ratio": 0.5}',
      }),
    );
    const derived = deriveUndoArgs(numbers, 'close_tickets', { args: { queue: 'q', older_than_days: 30 }, result: { closed: [] }, requestId: 'r' });
    assert.deepEqual(derived.args, { ticket_ids: [], queue: '31', note: { days: 30, next: [60, 7], ratio: 0.5 } });
    const note = derived.args['note'] as Record<string, unknown>;
    assert.equal(typeof note['days'], 'number');
    assert.equal(Object.getPrototypeOf(note), Object.prototype);
  });

  test('result is null when the original returned nothing', () => {
    const guarded = load(reopenWith({ ticket_ids: 'result == null ? ["none"] : result.closed' }));
    assert.deepEqual(deriveUndoArgs(guarded, 'close_tickets', { args: { queue: 'q' }, result: undefined, requestId: 'r' }).args, { ticket_ids: ['none'] });
    assert.deepEqual(deriveUndoArgs(guarded, 'close_tickets', { args: { queue: 'q' }, result: null, requestId: 'r' }).args, { ticket_ids: ['none'] });
  });

  test('no_undo: the tool declares no undo, or the policy does not know it', () => {
    unavailable(
      () => deriveUndoArgs(policy, 'archive_tickets', { args: {}, result: null, requestId: 'r' }),
      'no_undo',
      /the manifest of tool archive_tickets declares no undo tool/,
    );
    unavailable(() => deriveUndoArgs(policy, 'launch_rocket', { args: {}, result: null, requestId: 'r' }), 'no_undo', /tool launch_rocket is not defined/);
  });

  test('evaluation_failed names the argument whose expression failed', () => {
    unavailable(
      () => deriveUndoArgs(policy, 'close_tickets', { args: { queue: 'q' }, result: null, requestId: 'r' }),
      'evaluation_failed',
      /^undo argument ticket_ids of close_tickets \("result\.closed"\) cannot be derived: /,
      'ticket_ids',
    );
    unavailable(
      () => deriveUndoArgs(policy, 'close_tickets', { args: {}, result: { closed: [] }, requestId: 'r' }),
      'evaluation_failed',
      /undo argument queue of close_tickets \("args\.queue"\) cannot be derived: No such key: queue/,
      'queue',
    );
  });

  test('evaluation_failed for values JSON cannot hold exactly', () => {
    const big = load(
      reopenWith({
        ticket_ids: '[string(args.older_than_days)]',
        note: 'string(args.older_than_days * 1000000)',
        queue: 'dyn(args.older_than_days * 1000000)',
      }),
    );
    unavailable(
      () => deriveUndoArgs(big, 'close_tickets', { args: { queue: 'q', older_than_days: 2 ** 40 }, result: null, requestId: 'r' }),
      'evaluation_failed',
      /undo argument queue .* beyond what a JSON number holds exactly/,
      'queue',
    );
    const infinite = load(reopenWith({ ticket_ids: '["x"]', queue: 'dyn(1.0 / 0.0)' }));
    unavailable(
      () => deriveUndoArgs(infinite, 'close_tickets', { args: { queue: 'q' }, result: null, requestId: 'r' }),
      'evaluation_failed',
      /undo argument queue .* the number Infinity has no JSON form/,
      'queue',
    );
    const uint = load(reopenWith({ ticket_ids: '["x"]', queue: '[1u]' }));
    unavailable(
      () => deriveUndoArgs(uint, 'close_tickets', { args: { queue: 'q' }, result: null, requestId: 'r' }),
      'evaluation_failed',
      /undo argument queue .* has no JSON form/,
      'queue',
    );
  });
});

describe('decide(): rollback requests', () => {
  const policy = load(ticketsPolicy());
  const link: RequestLink = {
    kind: 'rollback',
    requestId: 'req-closed',
    tool: 'close_tickets',
    by: { id: 'maria', groups: ['manager'] },
    reason: 'closed by mistake',
  };
  const rollback = (overrides: Partial<ToolRequest> = {}): ToolRequest => ({
    requestId: 'req-rollback',
    actor: { id: 'maria', type: 'human', roles: ['manager'] },
    tenant: 'acme',
    environment: 'production',
    tool: 'reopen_tickets',
    args: { ticket_ids: ['TCK-1001'], note: 'rolled back req-closed' },
    link,
    ...overrides,
  });
  const refused = (decision: PolicyDecision, pattern: RegExp) => {
    assert.equal(decision.outcome, 'deny', JSON.stringify(decision));
    assert.equal(decision.code, 'rollback_refused');
    assert.equal(decision.rule, 'check:rollback_refused');
    assert.match(decision.reasons.join(' '), pattern);
  };

  test('the undo tool named by the original manifest passes through to its own policy', () => {
    const decision = decide(policy, rollback());
    const { link: _unused, ...plain } = rollback();
    assert.equal(_unused, link);
    assert.deepEqual(decision, decide(policy, plain));
    assert.equal(decision.outcome, 'approve');
    assert.equal(decision.rule, 'tool:reopen_tickets');
    assert.equal(decision.approval?.name, 'lead');
  });

  test("the undo tool's own policy still denies (roles, arguments)", () => {
    const role = decide(policy, rollback({ actor: { id: 'bot', type: 'agent', roles: ['agent_runtime'] } }));
    assert.equal(role.outcome, 'deny');
    assert.equal(role.code, 'role_not_allowed');
    const args = decide(policy, rollback({ args: {} }));
    assert.equal(args.code, 'invalid_arguments');
  });

  test('refused when the original tool declares no undo', () => {
    const decision = decide(policy, rollback({ link: { ...link, tool: 'archive_tickets' } }));
    refused(decision, /the manifest of archive_tickets declares no undo tool/);
    assert.equal(decision.toolDigest, policy.manifest('reopen_tickets')?.digest);
    assert.equal(decision.risk, 'medium');
    refused(decide(policy, rollback({ link: { ...link, tool: 'unknown_tool' } })), /the manifest of unknown_tool declares no undo tool/);
  });

  test('refused when the request is not the undo tool the original names', () => {
    refused(
      decide(policy, rollback({ tool: 'archive_tickets', args: {}, actor: { id: 'bot', type: 'agent', roles: ['agent_runtime'] } })),
      /close_tickets is undone by reopen_tickets, not by archive_tickets/,
    );
    const unknownTool = decide(policy, rollback({ tool: 'launch_rocket' }));
    refused(unknownTool, /not by launch_rocket/);
    assert.equal(unknownTool.risk, 'critical');
    assert.equal(unknownTool.policyDigest, policy.digest);
  });
});

describe('the shipped ticket-maintenance rollback', () => {
  const context = (tool: string, requestId: string, args: Record<string, unknown>): ToolContext => ({
    args,
    idempotencyKey: `toolgate:toolreq/acme/${requestId}`,
    runAs: 'svc-ticketing',
    requestId,
    tenant: 'acme',
    tool,
    attempt: 1,
    signal: new AbortController().signal,
    deadline: new Date(Date.now() + 60_000),
  });

  test('a real closure is rolled back by reopen_tickets with the derived arguments', async () => {
    const policy = await loadPolicy([resolve(import.meta.dirname, '../../policies')]);
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-undo-'));
    try {
      const tools = { ...createExampleTools({ stateDir: dir }), ...createUndoExampleTools({ stateDir: dir }) };
      const closeArgs = { older_than_days: 30 };
      const closed = (await tools.close_stale_tickets!(context('close_stale_tickets', 'req-close', closeArgs))) as { closed: string[] };
      assert.ok(closed.closed.length >= 3, JSON.stringify(closed));
      const undo = deriveUndoArgs(policy, 'close_stale_tickets', { args: closeArgs, result: closed, requestId: 'req-close' });
      assert.deepEqual(undo, { tool: 'reopen_tickets', args: { ticket_ids: closed.closed, note: 'rollback of req-close' } });
      const rollback: ToolRequest = {
        requestId: 'req-rollback',
        actor: { id: 'maria', type: 'human', roles: ['manager'] },
        tenant: 'acme',
        environment: 'production',
        tool: undo.tool,
        args: undo.args,
        link: { kind: 'rollback', requestId: 'req-close', tool: 'close_stale_tickets', by: { id: 'maria', groups: ['manager'] }, reason: 'too early' },
      };
      const decision = decide(policy, rollback);
      assert.equal(decision.outcome, 'approve', JSON.stringify(decision));
      assert.equal(decision.approval?.name, 'queue_owner');

      const reopened = await tools.reopen_tickets!(context('reopen_tickets', 'req-rollback', undo.args));
      assert.deepEqual(reopened, { reopened: closed.closed, notClosed: [], notFound: [], note: 'rollback of req-close' });
      // A retry with the same key returns the first answer; the tickets are open again, so a new closure finds them.
      assert.deepEqual(await tools.reopen_tickets!(context('reopen_tickets', 'req-rollback', undo.args)), reopened);
      const again = (await tools.close_stale_tickets!(context('close_stale_tickets', 'req-close-2', closeArgs))) as { closed: string[] };
      assert.deepEqual(again.closed, closed.closed);
      const unknown = await tools.reopen_tickets!(context('reopen_tickets', 'req-rollback-2', { ticket_ids: ['TCK-999999', ...closed.closed.slice(0, 1)] }));
      assert.deepEqual(unknown, { reopened: closed.closed.slice(0, 1), notClosed: [], notFound: ['TCK-999999'] });

      const priority = await tools.set_ticket_priority!(context('set_ticket_priority', 'req-prio', { ticket_id: closed.closed[0], priority: 'urgent' }));
      assert.deepEqual(priority, { ticketId: closed.closed[0], priority: 'urgent', previous: 'low' });
      await assert.rejects(tools.set_ticket_priority!(context('set_ticket_priority', 'req-prio-2', { ticket_id: 'TCK-999999', priority: 'low' })), {
        name: 'ToolRejectedError',
        message: 'ticket TCK-999999 does not exist',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
