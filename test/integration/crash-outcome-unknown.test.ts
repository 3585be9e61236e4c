/**
 * A tool that cannot deduplicate (`idempotent: false`) acts and then hangs past the adapter's
 * timeout: the gateway cannot know whether it acted, so it must not call again. The request ends
 * `outcome_unknown`, the side effect happened exactly once, and ops find the request for
 * reconciliation with a visibility query on its status.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ToolOutcome } from '../../src/client/index.js';
import { searchAttributes } from '../../src/shared/index.js';
import { Figures, crashRequest, startCrashGateway, until } from '../helpers/processes.js';

test(
  'a non-idempotent tool that acts then times out: outcome_unknown, acted once, never retried, found by a visibility query',
  { timeout: 120_000 },
  async () => {
    const figures = new Figures('a non-idempotent tool acts, then hangs past its timeout');
    const gw = await startCrashGateway('crash-unknown');
    try {
      gw.tools.behave('fragile_write', 'hang-after-act');
      const started = Date.now();
      const handle = await gw.start(crashRequest('fragile-1', 'fragile_write', 'charge the card'));
      const outcome: ToolOutcome = await handle.outcome();
      figures.set('requests', 1);
      figures.set('request to outcome, ms (adapter timeout 1s)', Date.now() - started);

      assert.equal(outcome.status, 'outcome_unknown', JSON.stringify(outcome));
      if (outcome.status !== 'outcome_unknown') return;
      assert.equal(outcome.error.type, 'OutcomeUnknown');
      assert.match(outcome.error.message, /may have acted/);
      assert.equal(outcome.execution?.idempotencyKey, `toolgate:${handle.workflowId}`);

      // The retry policy would have tried again after 1 s, 2 s, 4 s...: nothing more may arrive.
      await sleep(4_000);
      assert.equal(gw.tools.callsOf('fragile_write'), 1, 'the tool was called once and never retried');
      assert.equal(gw.tools.effects.length, 1, 'the side effect happened exactly once');
      assert.equal(gw.tools.effects[0]?.requestId, 'fragile-1');

      // Surfaced for reconciliation: visibility is eventually consistent, so poll.
      const query = `${searchAttributes.status.name} = 'outcome_unknown'`;
      const searchStarted = Date.now();
      const found = await until(
        `a visibility query ${query} to list the request`,
        30_000,
        async () => {
          const ids: string[] = [];
          for await (const execution of gw.ops.workflow.list({ query })) ids.push(execution.workflowId);
          return ids.includes(handle.workflowId) ? ids : undefined;
        },
        250,
      );
      assert.deepEqual(found, [handle.workflowId]);
      figures.set('visible to the reconciliation query after, ms', Date.now() - searchStarted);
      figures.set('tool calls', gw.tools.callsOf('fragile_write'));
      figures.set('side effects', gw.tools.effects.length);
      figures.print();
    } finally {
      await gw.close();
    }
  },
);
