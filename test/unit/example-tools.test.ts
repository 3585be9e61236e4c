/**
 * The shipped example ticket desk claims `idempotent: true`, so it must deduplicate durably and
 * across processes: two desks on one state directory (two workers) return the first ticket for a
 * repeated key, and a desk opened after a restart still knows it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createExampleTools } from '../../src/tools/examples.js';
import type { ToolContext } from '../../src/tools/types.js';

const context = (idempotencyKey: string, title: string): ToolContext => ({
  args: { title, priority: 'normal' },
  idempotencyKey,
  runAs: 'svc-ticketing',
  requestId: idempotencyKey,
  tenant: 'acme',
  tool: 'create_ticket',
  attempt: 1,
  signal: new AbortController().signal,
  deadline: new Date(Date.now() + 60_000),
});

test('the example ticket desk keeps one ticket per key across workers and restarts', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'toolgate-desk-'));
  try {
    const workerA = createExampleTools({ stateDir: dir });
    const workerB = createExampleTools({ stateDir: dir });
    const first = await workerA.create_ticket!(context('toolgate:toolreq/acme/r-1', 'printer on fire'));
    const retried = await workerB.create_ticket!(context('toolgate:toolreq/acme/r-1', 'printer on fire'));
    assert.deepEqual(retried, first, 'a retry on another worker gets the first ticket back');
    const other = (await workerB.create_ticket!(context('toolgate:toolreq/acme/r-2', 'second'))) as { ticketId: string };
    assert.notEqual(other.ticketId, (first as { ticketId: string }).ticketId, 'a new key is a new ticket');

    const restarted = createExampleTools({ stateDir: dir });
    assert.deepEqual(await restarted.create_ticket!(context('toolgate:toolreq/acme/r-1', 'printer on fire')), first);

    // Without a state directory the desk is one process's memory: another desk does not know the key.
    const lonely = createExampleTools();
    const elsewhere = createExampleTools();
    const a = (await lonely.create_ticket!(context('k', 'x'))) as { ticketId: string };
    const b = (await elsewhere.create_ticket!(context('k', 'x'))) as { ticketId: string };
    assert.equal(a.ticketId, b.ticketId, 'both number from the start');
    assert.deepEqual(await lonely.create_ticket!(context('k', 'x')), a);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
