/**
 * When the API cannot reach the Temporal server, every route that reads a workflow says so —
 * 503 `temporal_unavailable` with Retry-After — and never answers 404 for a request that exists.
 * A real dev server is started, a request is submitted through the front door and read back
 * (200; an unknown id is 404), then the server is stopped and the same reads are made again.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import pino from 'pino';
import { createAgentIdentityRouter, createAgentRouter } from '../../src/api/agents.js';
import { createApiApp } from '../../src/api/app.js';
import { FrontDoor } from '../../src/api/front-door.js';
import { AgentTokenVerifier, issueAgentToken } from '../../src/auth/agent-tokens.js';
import { ApproverTokenVerifier, issueApproverToken } from '../../src/auth/tokens.js';
import { DecisionSigner, RequestSigner } from '../../src/trust/signers.js';
import { freshSigningKey, startTemporal, testDataConverter } from '../helpers/gateway-env.js';

const TASK_QUEUE = 'temporal-unavailable';

describe('Temporal out of reach: 503, never 404', () => {
  let env: TestWorkflowEnvironment | undefined;
  let connection: Connection | undefined;
  let server: Server | undefined;
  let url = '';
  let agentToken = '';
  let opsToken = '';
  let requestId = '';

  before(async () => {
    env = await startTemporal();
    // The API's own connection, kept open across the server's stop (as a running API's would be).
    connection = await Connection.connect({ address: env.address });
    const client = new Client({ connection, dataConverter: testDataConverter });
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const privateKeyPem = await exportPKCS8(privateKey);
    const publicKeyPem = await exportSPKI(publicKey);
    const agentVerifier = await AgentTokenVerifier.fromPublicKeyPem(publicKeyPem);
    const logger = pino({ level: 'silent' });
    const frontDoor = new FrontDoor(client, new RequestSigner(await freshSigningKey()), TASK_QUEUE);
    const app = createApiApp({
      client,
      verifier: await ApproverTokenVerifier.fromPublicKeyPem(publicKeyPem),
      decisions: new DecisionSigner(await freshSigningKey()),
      frontDoor,
      logger,
      mount: (api) => {
        api.use('/v1/tool-requests', createAgentRouter({ frontDoor, verifier: agentVerifier, logger }));
        api.use('/v1/agent', createAgentIdentityRouter({ verifier: agentVerifier, logger }));
      },
    });
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    agentToken = await issueAgentToken({ sub: 'support-bot', tenant: 'acme', environment: 'prod', roles: ['support'] }, { privateKeyPem });
    // Group `ops` reads audit records; approvers' routes take any approver of the tenant.
    opsToken = await issueApproverToken({ sub: 'olga', tenant: 'acme', groups: ['ops', 'support-leads'] }, { privateKeyPem });
  });

  after(async () => {
    server?.closeAllConnections();
    if (server) await new Promise<void>((resolve) => server?.close(() => resolve()));
    await connection?.close();
    await env?.teardown().catch(() => undefined);
  });

  const get = async (path: string, token: string) => {
    const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as { error?: { code?: string } } };
  };

  test('with the server up: the request reads back, an unknown id is 404', async () => {
    const submitted = await fetch(`${url}/v1/tool-requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 'refund', args: { amount: 5 } }),
    });
    assert.equal(submitted.status, 202);
    requestId = ((await submitted.json()) as { requestId: string }).requestId;

    assert.equal((await get(`/v1/tool-requests/${requestId}`, agentToken)).status, 200);
    assert.equal((await get(`/v1/audit/${requestId}`, opsToken)).status, 200);
    // No worker runs here, so the approval view (a query) is not read while the server is up; its scope check is.
    for (const path of ['/v1/tool-requests/no-such-request', '/v1/audit/no-such-request', '/v1/approvals/no-such-request']) {
      const answer = await get(path, path.startsWith('/v1/tool-requests') ? agentToken : opsToken);
      assert.equal(answer.status, 404, `${path}: ${JSON.stringify(answer.body)}`);
    }
  });

  test('with the server stopped: 503 temporal_unavailable with Retry-After on every workflow read, never 404', async () => {
    assert.ok(requestId, 'the first test submitted a request');
    await env?.teardown();
    env = undefined;
    const reads: [string, string][] = [
      [`/v1/approvals/${requestId}`, opsToken],
      [`/v1/tool-requests/${requestId}`, agentToken],
      [`/v1/audit/${requestId}`, opsToken],
      // Ids that do not exist cannot be told apart from existing ones while the server is away: not 404 either.
      ['/v1/approvals/no-such-request', opsToken],
      ['/v1/tool-requests/no-such-request', agentToken],
      ['/v1/audit/no-such-request', opsToken],
    ];
    // At once: the client retries an unreachable server for a while (about 20 s) before it gives up.
    const answers = await Promise.all(reads.map(([path, token]) => get(path, token)));
    answers.forEach((answer, i) => {
      const path = reads[i]?.[0];
      assert.equal(answer.status, 503, `${path}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error?.code, 'temporal_unavailable', path);
      assert.equal(answer.retryAfter, '5', path);
    });
    // The token's identity needs no workflow: still answered.
    assert.equal((await get('/v1/agent', agentToken)).status, 200);
  });
});
