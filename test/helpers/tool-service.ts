/**
 * A real HTTP tool service on loopback that counts side effects. It deduplicates by
 * `Idempotency-Key` as a well-behaved tool must, and can be told to fail right after acting,
 * which is the moment that tempts a gateway into a duplicate.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One side effect the service performed. */
export interface Effect {
  key: string;
  body: unknown;
  headers: IncomingMessage['headers'];
}

/** What the service does on the first attempt of each key. */
export type FirstAttempt = 'ok' | 'fail-after-act' | 'drop-after-act' | 'reject';

/** A running tool service. */
export interface ToolService {
  url: string;
  effects: Effect[];
  /** Every HTTP call, including deduplicated retries. */
  calls: number;
  firstAttempt: FirstAttempt;
  close(): Promise<void>;
}

/** Starts the service on a free loopback port. */
export async function startToolService(firstAttempt: FirstAttempt = 'ok'): Promise<ToolService> {
  const results = new Map<string, unknown>();
  const service: ToolService = { url: '', effects: [], calls: 0, firstAttempt, close: async () => {} };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      service.calls += 1;
      const key = String(req.headers['idempotency-key'] ?? '');
      if (!key) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'Idempotency-Key required' }));
        return;
      }
      const known = results.get(key);
      if (known !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(known));
        return;
      }
      if (service.firstAttempt === 'reject') {
        res.writeHead(422, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid ticket' }));
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      service.effects.push({ key, body, headers: req.headers });
      const result = { effect: service.effects.length, key };
      results.set(key, result);
      if (service.firstAttempt === 'fail-after-act') {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'acted, then failed' }));
      } else if (service.firstAttempt === 'drop-after-act') {
        req.socket.destroy();
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  service.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  service.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return service;
}

/** A loopback webhook receiver that records every JSON body posted to it. */
export async function startWebhookReceiver(): Promise<{ url: string; received: Record<string, unknown>[]; close(): Promise<void> }> {
  const received: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
