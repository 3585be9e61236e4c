/**
 * Example tool implementations for the shipped support-triage policy, registered by `toolgate dev`
 * so the demo runs without outside systems. They are small but honest: the ticket desk
 * deduplicates by idempotency key durably (a SQLite file that every worker on the machine shares,
 * so a retry on another worker after a crash finds the first ticket), exactly as the manifest's
 * `idempotent: true` promises; the shell tool never runs anything — it reports what it would have run.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { ToolRegistry } from './types.js';

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
  };
}

/** The ticket desk: one ticket per idempotency key, kept in SQLite (WAL, so workers on one machine share it safely). */
function openTicketDesk(stateDir: string | undefined) {
  let file = ':memory:';
  if (stateDir) {
    mkdirSync(join(stateDir, 'example-tools'), { recursive: true });
    file = join(stateDir, 'example-tools', 'tickets.db');
  }
  const db = new DatabaseSync(file);
  db.exec(`PRAGMA journal_mode = WAL;
    PRAGMA busy_timeout = 5000;
    CREATE TABLE IF NOT EXISTS tickets (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      idempotency_key TEXT NOT NULL UNIQUE,
      title TEXT NOT NULL,
      priority TEXT NOT NULL,
      run_as TEXT NOT NULL
    )`);
  // The insert is the deduplication: a second call with the same key inserts nothing and reads the first ticket.
  const insert = db.prepare('INSERT INTO tickets (idempotency_key, title, priority, run_as) VALUES (?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING');
  const read = db.prepare('SELECT seq, title, priority, run_as FROM tickets WHERE idempotency_key = ?');
  return {
    open(key: string, ticket: Omit<Ticket, 'ticketId'>): Ticket {
      insert.run(key, ticket.title, ticket.priority, ticket.runAs);
      const row = read.get(key) as { seq: number; title: string; priority: string; run_as: string };
      return { ticketId: `TCK-${1000 + row.seq}`, title: row.title, priority: row.priority, runAs: row.run_as };
    },
  };
}
