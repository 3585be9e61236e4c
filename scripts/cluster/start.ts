// Starts toolgate's production topology on loopback (`npm run cluster`): PostgreSQL from the
// system's packages, the Temporal server built from its Go module at the pinned version (its own
// SQL tool applies the schema), namespace `default` with an explicit retention and toolgate's
// search attributes, two `toolgate worker` and two `toolgate api` processes, each given only the
// keys its role needs. Everything lives in one temporary directory and is stopped and removed on
// Ctrl-C / SIGTERM (and if this process dies: a watchdog cleans up). See test/cluster/cluster.ts.
//
//   node --import tsx scripts/cluster/start.ts [--policy <files or dirs>] [--check] [--server-log-level info]
//
// --check starts the cluster, asks both APIs who an agent token is, prints the timings and stops:
// a smoke test of the whole start-up.
import { resolve } from 'node:path';
import { CLUSTER_NAMESPACE, CLUSTER_RETENTION, REPO_ROOT, clusterUser, startCluster } from '../../test/cluster/cluster.js';

interface Flags {
  policy: string;
  check: boolean;
  serverLogLevel: 'debug' | 'info' | 'warn' | 'error';
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { policy: process.env.TOOLGATE_POLICY ?? 'policies', check: false, serverLogLevel: 'warn' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--check') flags.check = true;
    else if (arg === '--policy') flags.policy = argv[++i] ?? flags.policy;
    else if (arg === '--server-log-level') flags.serverLogLevel = (argv[++i] ?? 'warn') as Flags['serverLogLevel'];
    else throw new Error(`unknown argument ${arg}; usage: start.ts [--policy <paths>] [--check] [--server-log-level <level>]`);
  }
  // Workers run from the repository root; a relative policy path is the caller's.
  flags.policy = flags.policy
    .split(',')
    .map((path) => resolve(path.trim()))
    .join(',');
  return flags;
}

const progress = (line: string): void => void process.stderr.write(`toolgate cluster: ${line}\n`);

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  progress(`starting as ${clusterUser()} from ${REPO_ROOT}`);
  const cluster = await startCluster({ policy: flags.policy, log: progress, serverLogLevel: flags.serverLogLevel });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= cluster.close());
  try {
    const lines = [
      '',
      `toolgate cluster is up (${cluster.timings['cluster start, total']} ms):`,
      `  PostgreSQL:       127.0.0.1:${cluster.postgres.port} (socket in ${cluster.postgres.socketDir}), databases temporal + temporal_visibility`,
      `  Temporal server:  ${cluster.temporal.address} (v${cluster.temporal.version}, namespace ${CLUSTER_NAMESPACE}, retention ${CLUSTER_RETENTION})`,
      ...cluster.workers.map((w) => `  ${w.name}:         pid ${w.pid}`),
      ...cluster.apis.map((a) => `  ${a.name}:            ${a.url} (pid ${a.pid})`),
      `  keys:             ${cluster.secretsDir}/keys (toolgate keys init)`,
      `  policy:           ${flags.policy}`,
      '',
      'An agent token (the issuer key is in the secrets directory):',
      `  export TOOLGATE_URL=${cluster.apis[0]?.url} TOOLGATE_AGENT_TOKEN=$(TOOLGATE_STATE_DIR=${cluster.secretsDir} npx toolgate token issue --agent --sub my-agent --tenant acme --environment production --roles agent_runtime)`,
      '',
      'Timings (ms):',
      ...Object.entries(cluster.timings).map(([name, ms]) => `  ${name}: ${ms}`),
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (flags.check) {
      const token = await cluster.agentToken({ sub: 'cluster-check', tenant: 'acme', environment: 'production', roles: ['agent_runtime'] });
      for (const api of cluster.apis) {
        const response = await fetch(`${api.url}/v1/agent`, { headers: { authorization: `Bearer ${token}` } });
        const body = (await response.json()) as { id?: string };
        if (response.status !== 200 || body.id !== 'cluster-check')
          throw new Error(`${api.name} answered ${response.status} ${JSON.stringify(body)} to GET /v1/agent`);
        progress(`${api.name} knows the agent token: ${JSON.stringify(body)}`);
      }
      const created = cluster.createdKeyFiles();
      if (created.length > 0) throw new Error(`processes created key files of their own: ${created.join(', ')}`);
      progress('check passed; stopping');
      return;
    }
    progress('Ctrl-C stops everything');
    await new Promise<void>((resolveWait) => {
      process.once('SIGINT', () => resolveWait());
      process.once('SIGTERM', () => resolveWait());
    });
    progress('stopping ...');
  } finally {
    const started = Date.now();
    await close();
    progress(`stopped in ${Date.now() - started} ms`);
  }
}

main().catch((err: unknown) => {
  progress(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
