/**
 * The support-triage demo: an agent, through the client SDK, reads the knowledge base
 * (auto-allowed), creates an urgent ticket (waits for a manager's approval), tries a production
 * database write (refused) and asks to close stale tickets, whose approver first reads the tool's
 * dry-run preview ("would close 2 tickets: …"). Run it against `npm start`.
 *
 * The agent holds an agent token and nothing else — no Temporal connection, no codec key: it
 * mints the token from the local key under TOOLGATE_STATE_DIR (.toolgate), as
 * `toolgate token issue --agent --environment production` does, and talks to the API's front door.
 *
 *   npm run demo                      # waits for you to approve with the printed commands
 *   npm run demo -- --approve-as maria   # approves over HTTP itself (non-interactive runs)
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { issueAgentToken } from '../src/auth/agent-tokens.js';
import { ensureLocalKeyPair, issueApproverToken } from '../src/auth/tokens.js';
import { GatewayRequestError, ToolGateway, ToolGatewayError, type AgentRequestView } from '../src/client/index.js';
import { loadConfig } from '../src/config.js';

const options = new Command()
  .option('--approve-as <approver>', 'approve the ticket over HTTP as this manager instead of waiting for you')
  .option('--tenant <tenant>', 'tenant the agent works for', 'acme')
  .parse()
  .opts<{ approveAs?: string; tenant: string }>();

const config = loadConfig();
const say = (line = '') => process.stdout.write(`${line}\n`);
const run = randomUUID().slice(0, 8);

// The agent's credential, minted the way `toolgate token issue --agent` mints it. Who the agent is
// (actor, roles, tenant, environment) lives in the token; the requests below only name tools.
await ensureLocalKeyPair({ privateKeyFile: config.privateKeyFile, publicKeyFile: config.publicKeyFile });
const localPrivateKey = await readFile(config.privateKeyFile, 'utf8');
const agentToken = await issueAgentToken(
  { sub: 'support-triage-agent', tenant: options.tenant, roles: ['agent_runtime'], environment: 'production' },
  { privateKeyPem: localPrivateKey, issuer: config.tokenIssuer },
);
const gateway = new ToolGateway({ url: config.publicUrl, token: agentToken });

try {
  await gateway.identity();
} catch (err) {
  if (!(err instanceof GatewayRequestError)) throw err;
  // Unreachable, or an API started before the local key existed (it then serves no agent routes).
  process.stderr.write(
    `demo: the toolgate API at ${config.publicUrl} did not accept the agent token (${err.status} ${err.code}: ${err.message}). Is \`npm start\` running with the same TOOLGATE_STATE_DIR?\n`,
  );
  process.exit(1);
}

/** Polls the agent's view of a request until policy has spoken (approval pending, or an outcome). */
async function waitForPolicy(requestId: string): Promise<AgentRequestView> {
  const handle = await gateway.get(requestId);
  for (;;) {
    const status = await handle.status();
    if (status.state !== 'evaluating') return status;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

say('1. read_kb — low risk, auto-allowed');
const kb = await gateway.call({ requestId: `demo-${run}-kb`, tool: 'read_kb', args: { query: 'customer reports an outage' } });
say(`   result: ${JSON.stringify(kb)}`);
say();

say('2. create_ticket — medium risk, needs a manager');
const ticket = await gateway.start({
  requestId: `demo-${run}-ticket`,
  tool: 'create_ticket',
  args: { title: 'ACME: checkout outage', body: 'Customers cannot pay since 09:12 UTC.', priority: 'urgent', customer_id: 'cus_4821' },
  reason: 'customer reported an outage; KB says escalate',
});
const pending = await waitForPolicy(ticket.requestId);
if (pending.state !== 'pending_approval') throw new Error(`expected the ticket to wait for approval, it is ${pending.state}`);
// The approver reviews the request (GET) and approves the digest of what they reviewed: an agent
// never sees that digest, so the commands fetch it with the approver's token.
const reviewUrl = `${config.publicUrl}/v1/approvals/${ticket.requestId}`;
const url = `${reviewUrl}/decision`;
const decision = { decision: 'approve', reason: 'confirmed with the customer' };
say(`   waiting for a manager (expires ${pending.expiresAt}). Approve it with the commands below`);
say(`   (GET ${reviewUrl} shows what you approve; its digest binds your approval to exactly that):`);
say();
say(`   TOKEN=$(npx toolgate token issue --sub maria --groups manager --tenant ${options.tenant})`);
say(`   DIGEST=$(curl -sS ${reviewUrl} -H "Authorization: Bearer $TOKEN" | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).digest')`);
say(`   curl -sS -X POST ${url} \\`);
say(`     -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\`);
say(`     -d '{"decision":"${decision.decision}","digest":"'"$DIGEST"'","reason":"${decision.reason}"}'`);
say();
/** Headers of a manager's requests to the approval API, with a token minted from the local key. */
async function managerHeaders(sub: string): Promise<Record<string, string>> {
  const token = await issueApproverToken({ sub, tenant: options.tenant, groups: ['manager'] }, { privateKeyPem: localPrivateKey, issuer: config.tokenIssuer });
  return { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
}

if (options.approveAs) {
  const headers = await managerHeaders(options.approveAs);
  const review = await fetch(reviewUrl, { headers });
  const { digest } = (await review.json()) as { digest?: string };
  if (!review.ok || !digest) throw new Error(`reviewing the ticket as ${options.approveAs} failed: HTTP ${review.status}`);
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ ...decision, digest }) });
  say(`   approved as ${options.approveAs}: HTTP ${response.status}`);
}
const created = await ticket.result();
say(`   result: ${JSON.stringify(created)}`);
say();

say('3. prod_db_write — critical, no role may call it, and never in production');
try {
  await gateway.call({ requestId: `demo-${run}-db`, tool: 'prod_db_write', args: { statement: "UPDATE accounts SET plan = 'free'" } });
  throw new Error('prod_db_write was allowed: the policy is broken');
} catch (err) {
  if (!(err instanceof ToolGatewayError)) throw err;
  say(`   refused: ${JSON.stringify(err.toToolResult())}`);
}
say();

say('4. close_stale_tickets — high risk, needs a manager, who first reads a dry-run preview');
const sweep = await gateway.start({
  requestId: `demo-${run}-sweep`,
  tool: 'close_stale_tickets',
  args: { older_than_days: 30, priority: 'low' },
  reason: 'queue hygiene: low-priority tickets nobody touched for a month',
});
const sweepPending = await waitForPolicy(sweep.requestId);
if (sweepPending.state !== 'pending_approval') throw new Error(`expected the sweep to wait for approval, it is ${sweepPending.state}`);
// Before anyone was asked, toolgate called the tool in preview mode; the approver reads its answer
// (GET /v1/approvals/<id>, the inbox page, the notification), and the digest they approve covers it.
const sweepReview = `${config.publicUrl}/v1/approvals/${sweep.requestId}`;
const reviewer = await managerHeaders(options.approveAs ?? 'maria');
const shown = (await (await fetch(sweepReview, { headers: reviewer })).json()) as { digest?: string; preview?: { status: string; text: string } };
say(
  `   what the approver reads, marked "preview (dry run)"${shown.preview?.status === 'ok' ? '' : ` (${shown.preview?.status ?? 'missing'})`} — nothing was closed yet:`,
);
for (const line of (shown.preview?.text ?? '(no preview)').split('\n')) say(`     ${line}`);
if (options.approveAs && shown.digest) {
  const response = await fetch(`${sweepReview}/decision`, {
    method: 'POST',
    headers: reviewer,
    body: JSON.stringify({ decision: 'approve', digest: shown.digest, reason: 'checked the list' }),
  });
  say(`   approved as ${options.approveAs}: HTTP ${response.status}`);
  say(`   result: ${JSON.stringify(await sweep.result())}`);
} else {
  say(`   left waiting for a manager: the preview is on ${config.publicUrl}/inbox/requests/${sweep.requestId}`);
}
say();
say('Done: one call allowed, one approved by a person, one refused, one previewed for its approver — all recorded in Temporal.');
