/**
 * The support-triage demo: an agent, through the client SDK, reads the knowledge base
 * (auto-allowed), creates an urgent ticket (waits for a manager's approval) and tries a production
 * database write (refused). Run it against `npm start`.
 *
 *   npm run demo                      # waits for you to approve with the printed curl
 *   npm run demo -- --approve-as maria   # approves over HTTP itself (non-interactive runs)
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { issueApproverToken } from '../src/auth/tokens.js';
import { ToolGateway, ToolGatewayError, type RequestStatus } from '../src/client/index.js';
import { dataConverterFor, loadKeyring } from '../src/codec/index.js';
import { loadConfig } from '../src/config.js';

const options = new Command()
  .option('--approve-as <approver>', 'approve the ticket over HTTP as this manager instead of waiting for you')
  .option('--tenant <tenant>', 'tenant the agent works for', 'acme')
  .parse()
  .opts<{ approveAs?: string; tenant: string }>();

const config = loadConfig();
// The same payload-encryption keys as the gateway (`toolgate dev` keeps them under .toolgate/keys).
const gateway = new ToolGateway({
  address: config.temporalAddress,
  namespace: config.namespace,
  dataConverter: dataConverterFor(await loadKeyring({ devStateDir: config.stateDir })),
});
const agent = { id: 'support-triage-agent', type: 'agent' as const, roles: ['agent_runtime'] };
const say = (line = '') => process.stdout.write(`${line}\n`);
const base = { actor: agent, tenant: options.tenant, environment: 'production' };
const run = randomUUID().slice(0, 8);

async function waitForApproval(requestId: string): Promise<RequestStatus> {
  const handle = await gateway.get(requestId);
  for (;;) {
    const status = await handle.status();
    if (status.state !== 'evaluating') return status;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

try {
  say('1. read_kb — low risk, auto-allowed');
  const kb = await gateway.call({ ...base, requestId: `demo-${run}-kb`, tool: 'read_kb', args: { query: 'customer reports an outage' } });
  say(`   result: ${JSON.stringify(kb)}`);
  say();

  say('2. create_ticket — medium risk, needs a manager');
  const ticket = await gateway.start({
    ...base,
    requestId: `demo-${run}-ticket`,
    tool: 'create_ticket',
    args: { title: 'ACME: checkout outage', body: 'Customers cannot pay since 09:12 UTC.', priority: 'urgent', customer_id: 'cus_4821' },
    reason: 'customer reported an outage; KB says escalate',
  });
  const pending = await waitForApproval(ticket.requestId);
  if (pending.state !== 'pending_approval') throw new Error(`expected the ticket to wait for approval, it is ${pending.state}`);
  const url = `${config.publicUrl}/v1/approvals/${ticket.requestId}/decision`;
  const body = JSON.stringify({ decision: 'approve', digest: pending.digest, reason: 'confirmed with the customer' });
  say(`   waiting for a manager (expires ${pending.expiresAt}). Approve it with:`);
  say();
  say(`   TOKEN=$(npx toolgate token issue --sub maria --groups manager --tenant ${options.tenant})`);
  say(`   curl -sS -X POST ${url} \\`);
  say(`     -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\`);
  say(`     -d '${body}'`);
  say();
  if (options.approveAs) {
    const token = await issueApproverToken(
      { sub: options.approveAs, tenant: options.tenant, groups: ['manager'] },
      { privateKeyPem: await readFile(config.privateKeyFile, 'utf8'), issuer: config.tokenIssuer },
    );
    const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
    say(`   approved as ${options.approveAs}: HTTP ${response.status}`);
  }
  const created = await ticket.result();
  say(`   result: ${JSON.stringify(created)}`);
  say();

  say('3. prod_db_write — critical, no role may call it, and never in production');
  try {
    await gateway.call({ ...base, requestId: `demo-${run}-db`, tool: 'prod_db_write', args: { statement: "UPDATE accounts SET plan = 'free'" } });
    throw new Error('prod_db_write was allowed: the policy is broken');
  } catch (err) {
    if (!(err instanceof ToolGatewayError)) throw err;
    say(`   refused: ${JSON.stringify(err.toToolResult())}`);
  }
  say();
  say('Done: one call allowed, one approved by a person, one refused — all recorded in Temporal.');
} finally {
  await gateway.close();
}
