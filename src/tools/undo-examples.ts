/**
 * Example tools for the rollback and end-user confirmation demos of policies/ticket-maintenance.yaml,
 * working on the example ticket desk of `createExampleTools` (the same SQLite file under
 * `<stateDir>/example-tools/tickets.db`):
 *   reopen_tickets       the undo of close_stale_tickets: reopens the tickets a closure closed
 *   set_ticket_priority  changes one ticket's priority (the customer confirms it in the conversation)
 * Both record one result per idempotency key, as their manifests' `idempotent: true` promises.
 * Register them next to the other examples: `{ ...createExampleTools(options), ...createUndoExampleTools(options) }`.
 */
import { onceByKey, openExampleDatabase, type ExampleToolsOptions } from './examples.js';
import { ToolRejectedError, type ToolContext, type ToolRegistry } from './types.js';

/** What `reopen_tickets` answers: the tickets it reopened, and those it left (not found, or not closed). */
export interface ReopenResult {
  reopened: string[];
  notClosed: string[];
  notFound: string[];
  note?: string;
}

/**
 * Creates `reopen_tickets` and `set_ticket_priority`. Without a state directory the desk is this
 * process's own memory, which holds no tickets: every id is then reported not found.
 */
export function createUndoExampleTools(options: ExampleToolsOptions = {}): ToolRegistry {
  let desk: ReturnType<typeof openDesk> | undefined;
  // Opened on first use: the ticket table is created by the example desk, which the worker opens first.
  const open = () => (desk ??= openDesk(options.stateDir));
  return {
    async reopen_tickets(context: ToolContext) {
      const ids = Array.isArray(context.args.ticket_ids) ? context.args.ticket_ids.filter((id): id is string => typeof id === 'string') : [];
      const note = typeof context.args.note === 'string' ? context.args.note : undefined;
      return open().reopen(context.idempotencyKey, ids, note);
    },
    async set_ticket_priority(context: ToolContext) {
      return open().setPriority(context.idempotencyKey, String(context.args.ticket_id), String(context.args.priority));
    },
  };
}

/** The ticket's row number from its id (`TCK-1003` is row 3), or undefined for an id of another form. */
function rowOf(ticketId: string): number | undefined {
  const match = /^TCK-(\d{1,12})$/.exec(ticketId);
  const seq = match ? Number(match[1]) - 1000 : Number.NaN;
  return Number.isSafeInteger(seq) && seq > 0 ? seq : undefined;
}

function openDesk(stateDir: string | undefined) {
  const db = openExampleDatabase(stateDir);
  db.exec(`CREATE TABLE IF NOT EXISTS undo_example_results (idempotency_key TEXT PRIMARY KEY, result TEXT NOT NULL)`);
  const hasTickets = () => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tickets'").get() !== undefined;
  const once = onceByKey(db, 'undo_example_results');

  return {
    reopen(key: string, ticketIds: string[], note: string | undefined): ReopenResult {
      return once(key, () => {
        const result: ReopenResult = { reopened: [], notClosed: [], notFound: [], ...(note !== undefined ? { note } : {}) };
        const tickets = hasTickets();
        for (const ticketId of ticketIds) {
          const seq = rowOf(ticketId);
          const row =
            tickets && seq !== undefined
              ? (db.prepare('SELECT closed_at FROM tickets WHERE seq = ?').get(seq) as { closed_at: number | null } | undefined)
              : undefined;
          if (!row) result.notFound.push(ticketId);
          else if (row.closed_at === null) result.notClosed.push(ticketId);
          else {
            db.prepare('UPDATE tickets SET closed_at = NULL, closed_by = NULL WHERE seq = ?').run(seq as number);
            result.reopened.push(ticketId);
          }
        }
        return result;
      });
    },
    setPriority(key: string, ticketId: string, priority: string): { ticketId: string; priority: string; previous: string } {
      return once(key, () => {
        const seq = rowOf(ticketId);
        const row =
          hasTickets() && seq !== undefined
            ? (db.prepare('SELECT priority FROM tickets WHERE seq = ?').get(seq) as { priority: string } | undefined)
            : undefined;
        // Refused for good (never retried): the ticket does not exist, so nothing changed.
        if (!row) throw new ToolRejectedError(`ticket ${ticketId} does not exist`, { status: 404 });
        db.prepare('UPDATE tickets SET priority = ? WHERE seq = ?').run(priority, seq as number);
        return { ticketId, priority, previous: row.priority };
      });
    },
  };
}
