/**
 * Example tool implementations for the shipped support-triage policy, registered by `toolgate dev`
 * so the demo runs without outside systems. They are small but honest: the ticket desk
 * deduplicates by idempotency key exactly as a real ticketing API should, and the shell tool
 * never runs anything — it reports what it would have run.
 */
import type { ToolRegistry } from './types.js';

const ARTICLES = [
  { id: 'KB-101', title: 'Resetting a customer password', tags: ['password', 'login', 'account'] },
  { id: 'KB-204', title: 'Checking the status of an outage', tags: ['outage', 'status', 'incident'] },
  { id: 'KB-317', title: 'Escalating an urgent ticket', tags: ['ticket', 'urgent', 'escalation'] },
];

/** Creates the example tools; each call to this creates a fresh in-memory ticket desk. */
export function createExampleTools(): ToolRegistry {
  const tickets = new Map<string, { ticketId: string; title: string; priority: string; runAs: string }>();
  return {
    async read_kb({ args }) {
      const words = (typeof args.query === 'string' ? args.query : '').toLowerCase().split(/\W+/).filter(Boolean);
      const hits = ARTICLES.filter((article) => article.tags.some((tag) => words.includes(tag)));
      return { articles: hits.map(({ id, title }) => ({ id, title })) };
    },
    async create_ticket({ args, idempotencyKey, runAs }) {
      const existing = tickets.get(idempotencyKey);
      if (existing) return existing;
      const ticket = {
        ticketId: `TCK-${1000 + tickets.size + 1}`,
        title: String(args.title),
        priority: String(args.priority),
        runAs,
      };
      tickets.set(idempotencyKey, ticket);
      return ticket;
    },
    async execute_shell_command({ args }) {
      return { dryRun: true, wouldRun: String(args.command) };
    },
  };
}
