/**
 * Decisions to runs the API already knows: the cache is bounded (oldest first), and a decision sent
 * to a remembered run that is gone (closed, or replaced by a reset) falls back to asking the server
 * and is sent once more to the run the server names; any other answer is the answer, never a retry.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { HttpError } from '../../src/api/errors.js';
import { KnownRuns } from '../../src/api/known-runs.js';
import { requestAccess } from '../../src/api/request-access.js';
import type { DecisionSender } from '../../src/api/decisions.js';
import { searchAttributes, workflowIdFor, type DecideInput, type RequestStatus } from '../../src/shared/index.js';

describe('known runs', () => {
  test('remembers, refreshes and forgets; the oldest entry goes first beyond the capacity', () => {
    const runs = new KnownRuns(2);
    runs.remember('a', 'run-a');
    runs.remember('b', 'run-b');
    runs.remember('a', 'run-a2'); // refreshed: now the newest
    runs.remember('c', 'run-c'); // evicts b, the oldest
    assert.deepEqual([runs.runOf('a'), runs.runOf('b'), runs.runOf('c'), runs.size], ['run-a2', undefined, 'run-c', 2]);
    runs.forget('a');
    assert.equal(runs.runOf('a'), undefined);
    assert.throws(() => new KnownRuns(0), /positive whole number/);
  });
});

describe('request access: decisions to known runs', () => {
  const approver = { id: 'maria', tenant: 'acme', groups: ['manager'] };
  const input: DecideInput = { decision: 'approve', digest: 'd'.repeat(64), approver };
  const workflowId = workflowIdFor('acme', 'r-1');

  /** A client whose describe() names `current` as the run (and counts calls), and a sender that answers per run. */
  function harness(current: string, answers: Record<string, () => RequestStatus>) {
    const calls = { describe: 0, sent: [] as string[] };
    const client = {
      workflow: {
        getHandle: (id: string) => ({
          workflowId: id,
          describe: async () => {
            calls.describe += 1;
            return { runId: current, typedSearchAttributes: { get: (key: unknown) => (key === searchAttributes.tenant ? 'acme' : undefined) } };
          },
        }),
      },
    } as unknown as Client;
    const sender = {
      send: async (_requestId: string, _run: unknown, runId: string) => {
        calls.sent.push(runId);
        const answer = answers[runId];
        if (!answer) throw new Error(`no answer for ${runId}`);
        return answer();
      },
    } as unknown as DecisionSender;
    return { client, sender, calls };
  }
  const ok = (): RequestStatus => ({ state: 'approved' }) as unknown as RequestStatus;
  const gone = (): never => {
    throw new HttpError('not_pending', 'the request is no longer waiting for approval', { cause: new WorkflowNotFoundError('closed', workflowId, undefined) });
  };

  test('a remembered run is decided without a describe', async () => {
    const runs = new KnownRuns();
    runs.remember(workflowId, 'run-1');
    const { client, sender, calls } = harness('run-1', { 'run-1': ok });
    await requestAccess(client, sender, () => undefined, runs).decide('r-1', input);
    assert.deepEqual(calls, { describe: 0, sent: ['run-1'] });
  });

  test('a remembered run that is gone: forgotten, the server asked, the decision sent once to the current run', async () => {
    const runs = new KnownRuns();
    runs.remember(workflowId, 'run-old');
    const { client, sender, calls } = harness('run-new', { 'run-old': gone, 'run-new': ok });
    await requestAccess(client, sender, () => undefined, runs).decide('r-1', input);
    assert.deepEqual(calls, { describe: 1, sent: ['run-old', 'run-new'] });
    assert.equal(runs.runOf(workflowId), 'run-new');
  });

  test("the workflow's own refusal is the answer: never sent twice", async () => {
    const runs = new KnownRuns();
    runs.remember(workflowId, 'run-1');
    const refused = (): never => {
      throw new HttpError('not_pending', 'the request is not waiting for approval');
    };
    const { client, sender, calls } = harness('run-1', { 'run-1': refused });
    await assert.rejects(requestAccess(client, sender, () => undefined, runs).decide('r-1', input), /not waiting/);
    assert.deepEqual(calls, { describe: 0, sent: ['run-1'] });
  });

  test('an unknown run: described first (tenant checked), then remembered', async () => {
    const runs = new KnownRuns();
    const { client, sender, calls } = harness('run-9', { 'run-9': ok });
    await requestAccess(client, sender, () => undefined, runs).decide('r-1', input);
    assert.deepEqual(calls, { describe: 1, sent: ['run-9'] });
    assert.equal(runs.runOf(workflowId), 'run-9');
  });
});
