/**
 * Example tool implementations for the shipped support-triage policy, registered by `toolgate dev`
 * so the demo runs without outside systems. They are small but honest: the ticket desk
 * deduplicates by idempotency key durably (a SQLite file that every worker on the machine shares,
 * so a retry on another worker after a crash finds the first ticket), exactly as the manifest's
 * `idempotent: true` promises; the shell tool never runs anything — it reports what it would have run.
 * `close_stale_tickets` shows a dry-run preview: called with `context.preview` it only counts what
 * it would close (the answer approvers see), called for real it closes, once per idempotency key.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { ToolContext, ToolRegistry } from './types.js';

const ARTICLES = [
  { id: 'KB-101', title: 'Resetting a customer password', tags: ['password', 'login', 'account'] },
  { id: 'KB-204', title: 'Checking the status of an outage', tags: ['outage', 'status', 'incident'] },
  { id: 'KB-317', title: 'Escalating an urgent ticket', tags: ['ticket', 'urgent', 'escalation'] },
];

/** Options of {@link createExampleTools}. */
export interface ExampleToolsOptions {
  /**
   * Where the ticket desk keeps its tickets (`<stateDir>/example-tools/tickets.db`). Without it
   * the desk lives in memory: one process only, gone at exit — fine for a unit test, not for a
   * tool that claims idempotency across workers.
   */
  stateDir?: string;
}

/** One ticket of the example desk. */
interface Ticket {
  ticketId: string;
  title: string;
  priority: string;
  runAs: string;
}

/** Creates the example tools. */
export function createExampleTools(options: ExampleToolsOptions = {}): ToolRegistry {
  const desk = openTicketDesk(options.stateDir);
  return {
    async read_kb({ args }) {
      const words = (typeof args.query === 'string' ? args.query : '').toLowerCase().split(/\W+/).filter(Boolean);
      const hits = ARTICLES.filter((article) => article.tags.some((tag) => words.includes(tag)));
      return { articles: hits.map(({ id, title }) => ({ id, title })) };
    },
    async create_ticket({ args, idempotencyKey, runAs }) {
      return desk.open(idempotencyKey, { title: String(args.title), priority: String(args.priority), runAs });
    },
    async execute_shell_command({ args }) {
      return { dryRun: true, wouldRun: String(args.command) };
    },
    async close_stale_tickets(context: ToolContext) {
      const olderThanDays = Number(context.args.older_than_days);
      const priority = typeof context.args.priority === 'string' ? context.args.priority : undefined;
      // The preview says what the call would do and does none of it.
      if (context.preview) return describeStale(desk.stale(olderThanDays, priority), olderThanDays, priority);
      return desk.closeStale(context.idempotencyKey, olderThanDays, priority, context.runAs);
    },
  };
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** What `close_stale_tickets` would close, in the words approvers read: a count, then one line per ticket. */
function describeStale(tickets: StaleTicket[], olderThanDays: number, priority: string | undefined): string {
  const scope = `open${priority ? `, ${priority} priority` : ''}, waiting more than ${olderThanDays} day${olderThanDays === 1 ? '' : 's'}`;
  if (tickets.length === 0) return `would close no tickets (none ${scope})`;
  const shown = tickets.slice(0, 20).map((t) => `  ${t.ticketId}  ${t.priority.padEnd(6)}  ${String(t.ageDays).padStart(3)} days  ${t.title}`);
  const more = tickets.length > shown.length ? [`  … and ${tickets.length - shown.length} more`] : [];
  return [`would close ${tickets.length} ticket${tickets.length === 1 ? '' : 's'} (${scope}):`, ...shown, ...more].join('\n');
}

/** An open ticket `close_stale_tickets` would close. */
interface StaleTicket {
  ticketId: string;
  title: string;
  priority: string;
  ageDays: number;
}

/**
 * The tickets every desk starts with, opened weeks ago, so `close_stale_tickets` has something to
 * find in the demo. Inserted once per desk under fixed keys.
 */
const SEED_TICKETS = [
  { key: 'seed:printer', title: 'Printer on floor 3 shows offline', priority: 'low', ageDays: 61 },
  { key: 'seed:password-mail', title: 'Password reset e-mail not arriving', priority: 'normal', ageDays: 45 },
  { key: 'seed:pricing-typo', title: 'Typo on the pricing page', priority: 'low', ageDays: 40 },
];

/**
 * The example tools' SQLite file under `<stateDir>/example-tools/` (this process's memory without a
 * state directory), in WAL mode with a busy timeout, so workers on one machine share it safely.
 */
export function openExampleDatabase(stateDir: string | undefined): DatabaseSync {
  let file = ':memory:';
  if (stateDir) {
    mkdirSync(join(stateDir, 'example-tools'), { recursive: true });
    file = join(stateDir, 'example-tools', 'tickets.db');
  }
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  return db;
}

/**
 * Runs an example tool's action at most once per idempotency key: under SQLite's write lock, its
 * JSON answer is kept in `table` (`idempotency_key`, `result`), and a retry with the same key gets
 * the first answer without acting again.
 */
export function onceByKey(db: DatabaseSync, table: string): <T>(key: string, act: () => T) => T {
  const readResult = db.prepare(`SELECT result FROM ${table} WHERE idempotency_key = ?`);
  const recordResult = db.prepare(`INSERT INTO ${table} (idempotency_key, result) VALUES (?, ?)`);
  return <T>(key: string, act: () => T): T => {
    db.exec('BEGIN IMMEDIATE');
    try {
      const known = readResult.get(key) as { result: string } | undefined;
      if (known) {
        db.exec('COMMIT');
        return JSON.parse(known.result) as T;
      }
      const result = act();
      recordResult.run(key, JSON.stringify(result));
      db.exec('COMMIT');
      return result;
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  };
}

/** The ticket desk: one ticket per idempotency key, kept in SQLite. */
function openTicketDesk(stateDir: string | undefined) {
  const db = openExampleDatabase(stateDir);
  db.exec(`CREATE TABLE IF NOT EXISTS tickets (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      idempotency_key TEXT NOT NULL UNIQUE,
      title TEXT NOT NULL,
      priority TEXT NOT NULL,
      run_as TEXT NOT NULL,
      opened_at INTEGER NOT NULL DEFAULT 0,
      closed_at INTEGER,
      closed_by TEXT
    );
    CREATE TABLE IF NOT EXISTS closures (
      idempotency_key TEXT PRIMARY KEY,
      result TEXT NOT NULL
    )`);
  // Desks created before tickets had an age or could be closed get the columns (their tickets count as opened now).
  const addColumn = (name: string, definition: string, then = '') => {
    // Checked under the write lock: another worker opening the same desk may be adding it too.
    db.exec('BEGIN IMMEDIATE');
    try {
      const columns = (db.prepare('PRAGMA table_info(tickets)').all() as { name: string }[]).map((column) => column.name);
      if (!columns.includes(name)) db.exec(`ALTER TABLE tickets ADD COLUMN ${name} ${definition}; ${then}`);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  };
  addColumn('opened_at', 'INTEGER NOT NULL DEFAULT 0', `UPDATE tickets SET opened_at = ${Date.now()};`);
  addColumn('closed_at', 'INTEGER');
  addColumn('closed_by', 'TEXT');
  const seed = db.prepare(
    'INSERT INTO tickets (idempotency_key, title, priority, run_as, opened_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING',
  );
  for (const ticket of SEED_TICKETS) seed.run(ticket.key, ticket.title, ticket.priority, 'seed', Date.now() - ticket.ageDays * DAY_MS);
  // The insert is the deduplication: a second call with the same key inserts nothing and reads the first ticket.
  const insert = db.prepare(
    'INSERT INTO tickets (idempotency_key, title, priority, run_as, opened_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING',
  );
  const read = db.prepare('SELECT seq, title, priority, run_as FROM tickets WHERE idempotency_key = ?');
  const staleRows = db.prepare(
    'SELECT seq, title, priority, opened_at FROM tickets WHERE closed_at IS NULL AND opened_at < ? AND (? IS NULL OR priority = ?) ORDER BY seq LIMIT 500',
  );
  const closeRow = db.prepare('UPDATE tickets SET closed_at = ?, closed_by = ? WHERE seq = ? AND closed_at IS NULL');
  const closeOnce = onceByKey(db, 'closures');
  const stale = (olderThanDays: number, priority: string | undefined): StaleTicket[] => {
    const now = Date.now();
    const rows = staleRows.all(now - olderThanDays * DAY_MS, priority ?? null, priority ?? null) as {
      seq: number;
      title: string;
      priority: string;
      opened_at: number;
    }[];
    return rows.map((row) => ({
      ticketId: `TCK-${1000 + row.seq}`,
      title: row.title,
      priority: row.priority,
      ageDays: Math.floor((now - row.opened_at) / DAY_MS),
    }));
  };
  return {
    open(key: string, ticket: Omit<Ticket, 'ticketId'>): Ticket {
      insert.run(key, ticket.title, ticket.priority, ticket.runAs, Date.now());
      const row = read.get(key) as { seq: number; title: string; priority: string; run_as: string };
      return { ticketId: `TCK-${1000 + row.seq}`, title: row.title, priority: row.priority, runAs: row.run_as };
    },
    stale,
    /** Closes the stale tickets once per key: a retry with the same key returns the first closure. */
    closeStale(key: string, olderThanDays: number, priority: string | undefined, runAs: string): { closed: string[]; closedBy: string } {
      return closeOnce(key, () => {
        const now = Date.now();
        const tickets = stale(olderThanDays, priority);
        for (const ticket of tickets) closeRow.run(now, runAs, Number(ticket.ticketId.slice('TCK-'.length)) - 1000);
        return { closed: tickets.map((ticket) => ticket.ticketId), closedBy: runAs };
      });
    },
  };
}
