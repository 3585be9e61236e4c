/**
 * The static check of docker-compose.yml (there is no Docker daemon in CI): it must mirror the
 * topology test/cluster/cluster.ts runs and tests. The server version comes from one place,
 * TEMPORAL_SERVER_VERSION in scripts/cluster/build-temporal.ts (what the cluster builds and the dev
 * tests' CLI embeds); each toolgate service mounts exactly its role's key files (cluster.ts's
 * WORKER_SECRETS / API_SECRETS, file names from the functions `toolgate keys init` uses; the
 * archiver, which has no cluster role yet, the codec keys and the audit signer's key alone); the
 * namespace gets an explicit retention and every search attribute of src/shared/messages.ts with
 * its type; and every variable a toolgate service is given is one the source reads. When `docker`
 * is on PATH, `docker compose config -q` must accept the file as well.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { TEMPORAL_SERVER_VERSION } from '../../scripts/cluster/build-temporal.js';
import { defaultLinkKeyPaths } from '../../src/approvals/links.js';
import { defaultKeyPaths } from '../../src/auth/tokens.js';
import { defaultKeyringFile } from '../../src/codec/index.js';
import { SEARCH_ATTRIBUTE_TYPE_NAMES, searchAttributes } from '../../src/shared/index.js';
import { defaultTrustKeyPaths } from '../../src/trust/keys.js';
import { ARCHIVE_TASK_QUEUE } from '../../src/audit/archive-schedule.js';
import { defaultAuditKeyFiles } from '../../src/cli/audit-key-files.js';
import { loadConfig } from '../../src/config.js';
import { API_SECRETS, CLUSTER_NAMESPACE, CLUSTER_RETENTION, RATE_LIMIT_DB, WORKER_SECRETS } from '../cluster/cluster.js';
import { REPO_ROOT } from '../helpers/processes.js';

interface Service {
  image?: string;
  user?: string;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  secrets?: (string | { source: string; target?: string })[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  healthcheck?: { test?: string | string[] };
  depends_on?: Record<string, { condition?: string }> | string[];
  [key: string]: unknown;
}
interface ComposeFile {
  services: Record<string, Service>;
  secrets?: Record<string, { file?: string; environment?: string }>;
  [key: string]: unknown;
}

const COMPOSE_FILE = join(REPO_ROOT, 'docker-compose.yml');
const text = readFileSync(COMPOSE_FILE, 'utf8');
// `merge: true` resolves the `<<:` anchors the toolgate services share, as compose does.
const compose = parse(text, { merge: true }) as ComposeFile;
const services = compose.services;

/** The key files `toolgate keys init` writes, by their own code (names only; the directory is the operator's). */
const keyFile = (() => {
  const dir = '/state';
  const token = defaultKeyPaths(dir);
  const link = defaultLinkKeyPaths(dir);
  const trust = defaultTrustKeyPaths(dir);
  return {
    tokenPublic: basename(token.publicKeyFile),
    tokenPrivate: basename(token.privateKeyFile),
    linkPublic: basename(link.publicKeyFile),
    linkPrivate: basename(link.privateKeyFile),
    requestPublic: basename(trust.request.publicKeyFile),
    requestPrivate: basename(trust.request.privateKeyFile),
    decisionPublic: basename(trust.decision.publicKeyFile),
    decisionPrivate: basename(trust.decision.privateKeyFile),
    seal: basename(trust.sealFile),
    codec: basename(defaultKeyringFile(dir)),
    // src/inbox/config.ts's default name; cluster.ts writes it by hand (keys init does not).
    session: 'inbox-session.key',
    // `toolgate keys init` and `toolgate audit keygen` (src/cli/audit-commands.ts).
    auditPrivate: basename(defaultAuditKeyFiles(dir).privateKeyFile),
  };
})();

/** Which file each role's variable must name (cluster.ts gives each process exactly these). */
const WORKER_FILES: Record<(typeof WORKER_SECRETS)[number], string> = {
  TOOLGATE_TRUSTED_REQUEST_KEYS: keyFile.requestPublic,
  TOOLGATE_TRUSTED_DECISION_KEYS: keyFile.decisionPublic,
  TOOLGATE_WORKER_SEAL_KEY_FILE: keyFile.seal,
  TOOLGATE_LINK_PRIVATE_KEY_FILE: keyFile.linkPrivate,
  TOOLGATE_CODEC_KEYS_FILE: keyFile.codec,
};
/**
 * The archiver's (no cluster.ts role yet): it reads histories and signs the audit archive, so the
 * codec keys and the audit signer's private key, the only service that holds the latter.
 */
const ARCHIVER_FILES = {
  TOOLGATE_CODEC_KEYS_FILE: keyFile.codec,
  TOOLGATE_AUDIT_SIGNING_KEY_FILE: keyFile.auditPrivate,
};
const API_FILES: Record<(typeof API_SECRETS)[number], string> = {
  TOOLGATE_TOKEN_PUBLIC_KEY_FILE: keyFile.tokenPublic,
  TOOLGATE_REQUEST_SIGNING_KEY_FILE: keyFile.requestPrivate,
  TOOLGATE_DECISION_SIGNING_KEY_FILE: keyFile.decisionPrivate,
  TOOLGATE_LINK_PUBLIC_KEY_FILE: keyFile.linkPublic,
  TOOLGATE_SESSION_KEY_FILE: keyFile.session,
  TOOLGATE_CODEC_KEYS_FILE: keyFile.codec,
};

function service(name: string): Service {
  const found = services[name];
  assert.ok(found, `docker-compose.yml has no service ${name}`);
  return found;
}

function envOf(svc: Service): Record<string, string> {
  const env = svc.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const at = entry.indexOf('=');
        return at < 0 ? [entry, ''] : [entry.slice(0, at), entry.slice(at + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** The secret names a service mounts (compose mounts each at /run/secrets/<target or name>). */
function secretsOf(svc: Service): string[] {
  return (svc.secrets ?? []).map((s) => (typeof s === 'string' ? s : (s.target ?? s.source)));
}

function scriptOf(svc: Service): string {
  return [svc.entrypoint, svc.command]
    .flat()
    .filter((part): part is string => typeof part === 'string')
    .join('\n');
}

/** Every (TOOLGATE|TEMPORAL)_* name that appears as a whole token in src/. */
function variablesTheSourceNames(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        for (const match of readFileSync(path, 'utf8').matchAll(/\b(?:TOOLGATE|TEMPORAL)_[A-Z0-9_]*[A-Z0-9]\b/g)) names.add(match[0]);
      }
    }
  };
  walk(join(REPO_ROOT, 'src'));
  return names;
}

const TOOLGATE_SERVICES = ['worker', 'api', 'archiver'] as const;
const TEMPORAL_IMAGE = /^(?:docker\.io\/)?temporalio\/(server|admin-tools|auto-setup):(.+)$/;

describe('docker-compose.yml', () => {
  test('has the tested topology: postgres, a schema job, the server, a namespace job, the UI, worker, API and archiver', () => {
    for (const name of ['postgresql', 'temporal-schema', 'temporal', 'temporal-setup', 'temporal-ui', 'worker', 'api', 'archiver']) service(name);
    // Order of start: schema before the server, the namespace before anything of toolgate.
    const dependsOn = (name: string): Record<string, { condition?: string }> => {
      const deps = service(name).depends_on;
      assert.ok(deps && !Array.isArray(deps), `${name} must name its dependencies with conditions`);
      return deps;
    };
    assert.equal(dependsOn('temporal')['temporal-schema']?.condition, 'service_completed_successfully');
    assert.equal(dependsOn('temporal-setup').temporal?.condition, 'service_healthy');
    for (const name of TOOLGATE_SERVICES) assert.equal(dependsOn(name)['temporal-setup']?.condition, 'service_completed_successfully', name);
  });

  test(`runs no auto-setup image, and every Temporal server/admin-tools image is ${TEMPORAL_SERVER_VERSION} (scripts/cluster/build-temporal.ts)`, () => {
    const images = Object.entries(services).map(([name, svc]) => [name, svc.image ?? ''] as const);
    assert.deepEqual(
      images.filter(([, image]) => /auto-setup/.test(image)),
      [],
      'temporalio/auto-setup is deprecated: schema and namespace are one-shot jobs',
    );
    const temporal = images.flatMap(([name, image]) => {
      const match = TEMPORAL_IMAGE.exec(image);
      return match ? [{ name, kind: match[1], tag: match[2] }] : [];
    });
    assert.ok(
      temporal.some((i) => i.kind === 'server'),
      'a temporalio/server image',
    );
    assert.ok(
      temporal.some((i) => i.kind === 'admin-tools'),
      'a temporalio/admin-tools image',
    );
    for (const image of temporal) assert.equal(image.tag, TEMPORAL_SERVER_VERSION, `${image.name}: temporalio/${image.kind}:${image.tag}`);
    assert.equal(service('temporal').image, `temporalio/server:${TEMPORAL_SERVER_VERSION}`);
    for (const job of ['temporal-schema', 'temporal-setup']) assert.equal(service(job).image, `temporalio/admin-tools:${TEMPORAL_SERVER_VERSION}`, job);
  });

  test('applies the schema as the cluster does: both databases, setup-schema 0.0 then update-schema from versioned', () => {
    const script = scriptOf(service('temporal-schema'));
    assert.match(script, /temporal-sql-tool\b[^\n]*\bcreate-database\b/);
    assert.match(script, /temporal-sql-tool\b[^\n]*\bsetup-schema -v 0\.0\b/);
    assert.match(script, /temporal-sql-tool\b[^\n]*\bupdate-schema -d\b[^\n]*\/versioned/);
    for (const db of ['temporal:temporal', 'temporal_visibility:visibility']) assert.ok(script.includes(db), `database:schema pair ${db}`);
    assert.match(script, /\/etc\/temporal\/schema\/postgresql\/v12\b/);
    assert.equal(envOf(service('temporal-schema')).SQL_PLUGIN, 'postgres12');
  });

  test(`the workers share rate limits in the compose PostgreSQL, database ${RATE_LIMIT_DB}, which the schema job creates`, () => {
    const store = envOf(service('worker')).TOOLGATE_RATE_LIMIT_STORE ?? '';
    assert.match(
      store,
      /^postgres:\/\/temporal:\$\{TEMPORAL_POSTGRES_PASSWORD:-temporal\}@/,
      'the database user and the password variable the postgresql service is given',
    );
    assert.equal(envOf(service('postgresql')).POSTGRES_PASSWORD, '${TEMPORAL_POSTGRES_PASSWORD:-temporal}');
    // As compose interpolates it with the default password: a URL the worker's configuration accepts.
    const resolved = store.replace('${TEMPORAL_POSTGRES_PASSWORD:-temporal}', 'temporal');
    const url = new URL(resolved);
    assert.deepEqual(
      [url.username, url.hostname, url.port, url.pathname],
      [envOf(service('postgresql')).POSTGRES_USER, 'postgresql', '5432', `/${RATE_LIMIT_DB}`],
    );
    assert.equal(loadConfig({ TOOLGATE_RATE_LIMIT_STORE: resolved }).rateLimitStore, resolved);
    assert.match(scriptOf(service('temporal-schema')), new RegExp(`temporal-sql-tool --db ${RATE_LIMIT_DB} create-database`));
    assert.equal(envOf(service('api')).TOOLGATE_RATE_LIMIT_STORE, undefined, 'the API evaluates no limits and needs no database password');
  });

  test(`creates namespace ${CLUSTER_NAMESPACE} with an explicit retention (default ${CLUSTER_RETENTION}), updating it when it exists`, () => {
    const setup = service('temporal-setup');
    const env = envOf(setup);
    assert.equal(env.NAMESPACE, CLUSTER_NAMESPACE);
    assert.equal(env.RETENTION, `\${TOOLGATE_RETENTION:-${CLUSTER_RETENTION}}`);
    const script = scriptOf(setup);
    assert.match(script, /namespace create\b[^\n]*--retention "\$\$RETENTION"/);
    assert.match(script, /namespace update\b[^\n]*--retention "\$\$RETENTION"/);
    assert.match(script, /namespace describe\b/, 'existence is checked before create');
  });

  test('registers every search attribute of src/shared/messages.ts with its type, and no other', () => {
    const script = scriptOf(service('temporal-setup'));
    const expected = Object.values(searchAttributes).map((key) => {
      const type = SEARCH_ATTRIBUTE_TYPE_NAMES[key.type];
      assert.ok(type, `a server type name for ${key.type}`);
      return `${key.name}:${type}`;
    });
    assert.equal(expected.length, 11);
    const registered = [...script.matchAll(/\bToolgate[A-Za-z]+:[A-Za-z]+\b/g)].map((m) => m[0]);
    assert.deepEqual([...registered].sort(), [...expected].sort());
    assert.match(script, /search-attribute create\b[^\n]*--name "\$\$name" --type "\$\$type"/);
  });

  for (const [role, files, variables] of [
    ['worker', WORKER_FILES, WORKER_SECRETS],
    ['api', API_FILES, API_SECRETS],
  ] as const) {
    test(`${role}: mounts exactly its key files, one by one, and its variables point at them`, () => {
      // The same variables cluster.ts gives the role's processes.
      assert.deepEqual(Object.keys(files).sort(), [...variables].sort());
      const svc = service(role);
      const expectedFiles = Object.values(files);
      assert.deepEqual([...secretsOf(svc)].sort(), [...new Set(expectedFiles)].sort());
      const env = envOf(svc);
      for (const [variable, file] of Object.entries(files)) assert.equal(env[variable], `/run/secrets/${file}`, variable);
      // No other variable names a secret it does not mount.
      const mounted = new Set(secretsOf(svc));
      for (const [variable, value] of Object.entries(env)) {
        if (value.startsWith('/run/secrets/')) assert.ok(mounted.has(value.slice('/run/secrets/'.length)), `${variable}=${value} is not mounted`);
      }
      assert.deepEqual(svc.volumes ?? [], [], `${role} mounts no volume (keys come as secrets only)`);
    });
  }

  test("archiver: mounts exactly the codec keys and the audit signer's private key, and its archive volume", () => {
    const svc = service('archiver');
    assert.match(scriptOf(svc), /src\/cli\/main\.ts\narchiver$/);
    assert.deepEqual([...secretsOf(svc)].sort(), Object.values(ARCHIVER_FILES).sort());
    const env = envOf(svc);
    for (const [variable, file] of Object.entries(ARCHIVER_FILES)) assert.equal(env[variable], `/run/secrets/${file}`, variable);
    const mounted = new Set(secretsOf(svc));
    for (const [variable, value] of Object.entries(env)) {
      if (value.startsWith('/run/secrets/')) assert.ok(mounted.has(value.slice('/run/secrets/'.length)), `${variable}=${value} is not mounted`);
    }
    // One named volume, declared at the top level, holding the archive directory it is told to use.
    assert.deepEqual(svc.volumes, ['audit-archive:/app/.toolgate']);
    assert.ok(compose.volumes && typeof compose.volumes === 'object' && 'audit-archive' in compose.volumes, 'the audit-archive volume is declared');
    assert.ok(env.TOOLGATE_AUDIT_ARCHIVE_DIR?.startsWith('/app/.toolgate/'), `TOOLGATE_AUDIT_ARCHIVE_DIR=${env.TOOLGATE_AUDIT_ARCHIVE_DIR} lies in the volume`);
    assert.equal(env.TOOLGATE_AUDIT_ARCHIVE_INTERVAL, '${TOOLGATE_AUDIT_ARCHIVE_INTERVAL:-15m}');
    // Healthy when its own worker polls the archival task queue.
    assert.match([svc.healthcheck?.test ?? []].flat().join(' '), new RegExp(`src/cli/main\\.ts health --task-queue ${ARCHIVE_TASK_QUEUE} --max-age \\d+`));
    // Nothing else of the deployment: no signing key of the API, no seal, no link or token key.
    for (const file of [keyFile.requestPrivate, keyFile.decisionPrivate, keyFile.session, keyFile.tokenPrivate, keyFile.seal, keyFile.linkPrivate]) {
      assert.ok(!mounted.has(file), `archiver must not hold ${file}`);
    }
  });

  test('the worker holds no private key of the API, the token issuer or the audit signer, and vice versa', () => {
    const worker = new Set(secretsOf(service('worker')));
    const api = new Set(secretsOf(service('api')));
    for (const file of [keyFile.requestPrivate, keyFile.decisionPrivate, keyFile.session, keyFile.tokenPrivate, keyFile.auditPrivate]) {
      assert.ok(!worker.has(file), `worker must not hold ${file}`);
    }
    for (const file of [keyFile.seal, keyFile.linkPrivate, keyFile.tokenPrivate, keyFile.auditPrivate]) assert.ok(!api.has(file), `api must not hold ${file}`);
  });

  test("no service mounts the keys directory, the issuer key is not even declared, the audit key is the archiver's alone", () => {
    const declared = compose.secrets ?? {};
    for (const [name, secret] of Object.entries(declared)) {
      assert.ok(secret.file, `secret ${name} is a file`);
      // The secret's name is the file's name, so a mount's name says which key it is.
      assert.equal(basename(secret.file), name, `secret ${name} reads ${secret.file}`);
    }
    assert.ok(!(keyFile.tokenPrivate in declared), `${keyFile.tokenPrivate} is declared as a secret`);
    const auditHolders = Object.entries(services)
      .filter(([, svc]) => secretsOf(svc).includes(keyFile.auditPrivate))
      .map(([name]) => name);
    assert.deepEqual(auditHolders, ['archiver'], `${keyFile.auditPrivate} is held by`);
    for (const [name, svc] of Object.entries(services)) {
      for (const volume of svc.volumes ?? []) {
        const source = typeof volume === 'string' ? (volume.split(':')[0] ?? '') : (volume.source ?? '');
        assert.doesNotMatch(source, /\.toolgate|keys|secrets/, `${name} mounts ${source}`);
      }
      for (const secret of secretsOf(svc)) assert.ok(secret in declared, `${name} mounts undeclared secret ${secret}`);
      if (!(TOOLGATE_SERVICES as readonly string[]).includes(name)) assert.deepEqual(secretsOf(svc), [], `${name} holds no toolgate key`);
    }
  });

  test('toolgate services run as a configurable user that can read the private keys', () => {
    for (const name of TOOLGATE_SERVICES) assert.match(service(name).user ?? '', /^\$\{TOOLGATE_UID:-1000\}:\$\{TOOLGATE_GID:-1000\}$/, name);
  });

  test('the worker has the public URL the API and the UI codec endpoint use', () => {
    const worker = envOf(service('worker'));
    const api = envOf(service('api'));
    assert.ok(worker.TOOLGATE_PUBLIC_URL, 'worker TOOLGATE_PUBLIC_URL (decision links and review URLs)');
    assert.doesNotMatch(worker.TOOLGATE_PUBLIC_URL ?? '', /127\.0\.0\.1/);
    assert.equal(api.TOOLGATE_PUBLIC_URL, worker.TOOLGATE_PUBLIC_URL);
    assert.equal(envOf(service('temporal-ui')).TEMPORAL_CODEC_ENDPOINT, `${worker.TOOLGATE_PUBLIC_URL}/codec`);
  });

  test('the UI signs in with OIDC and passes the token to the codec endpoint', () => {
    const ui = envOf(service('temporal-ui'));
    assert.equal(ui.TEMPORAL_AUTH_PROVIDER_URL, '${TOOLGATE_OIDC_ISSUER:-}');
    assert.match(ui.TEMPORAL_AUTH_ENABLED ?? '', /true/);
    assert.equal(ui.TEMPORAL_CODEC_PASS_ACCESS_TOKEN, 'true');
    assert.match(service('temporal-ui').image ?? '', /^temporalio\/ui:\d+\.\d+\.\d+$/);
  });

  test('health checks: the API through /healthz, the worker by its own poller identity', () => {
    const api = [service('api').healthcheck?.test ?? []].flat().join(' ');
    assert.match(api, /\/healthz\b/);
    // `toolgate health` (tested against a real worker in test/integration/worker-health.test.ts)
    // looks for this host's poller on the task queue, seen recently.
    const worker = [service('worker').healthcheck?.test ?? []].flat().join(' ');
    assert.match(worker, /src\/cli\/main\.ts health --max-age \d+/);
    assert.ok(service('temporal').healthcheck?.test, 'the server has a health check');
  });

  test('the worker serves its metrics inside the network and publishes no port for them', () => {
    const worker = service('worker');
    const address = envOf(worker).TOOLGATE_METRICS_ADDRESS ?? '';
    assert.match(address, /^0\.0\.0\.0:\d+$/, 'TOOLGATE_METRICS_ADDRESS: reachable by Prometheus in the compose network');
    assert.equal(loadConfig({ TOOLGATE_METRICS_ADDRESS: address }).metricsAddress, address);
    // The metrics listener has no authentication: nothing of the worker is published on the host.
    assert.deepEqual(worker.ports ?? [], []);
  });

  test('every variable given to a toolgate service is one the source reads (no typos)', () => {
    const known = variablesTheSourceNames();
    assert.ok(known.has('TOOLGATE_PUBLIC_URL') && known.has('TEMPORAL_ADDRESS'), 'the scan of src/ finds variables');
    for (const name of TOOLGATE_SERVICES) {
      const unknown = Object.keys(envOf(service(name))).filter((variable) => !known.has(variable));
      assert.deepEqual(unknown, [], `${name}: variables no code in src/ reads`);
    }
  });

  test('uses only service keys compose knows (a misspelt key would be silently ignored by YAML)', () => {
    const allowed = new Set([
      'image',
      'build',
      'restart',
      'user',
      'depends_on',
      'command',
      'entrypoint',
      'environment',
      'secrets',
      'configs',
      'volumes',
      'ports',
      'healthcheck',
    ]);
    for (const [name, svc] of Object.entries(services)) {
      assert.deepEqual(
        Object.keys(svc).filter((key) => !allowed.has(key)),
        [],
        name,
      );
    }
    // `x-` keys are compose's extension fields (the anchors the toolgate services share).
    assert.deepEqual(
      Object.keys(compose).filter((key) => !['services', 'secrets', 'configs', 'volumes'].includes(key) && !key.startsWith('x-')),
      [],
    );
  });

  test('docker compose config -q accepts it (where docker compose is installed)', (t) => {
    const docker = spawnSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).stdout.trim();
    // The docker CLI may be there without its compose plugin (as on the project's CI machine).
    if (!docker || spawnSync(docker, ['compose', 'version'], { encoding: 'utf8' }).status !== 0) {
      // The checks above are then the whole static validation; docs/operations.md says what ran in its place.
      t.diagnostic(`${docker ? 'docker has no compose plugin' : 'docker is not on PATH'}: \`docker compose config -q\` not run`);
      return;
    }
    const r = spawnSync(docker, ['compose', '-f', COMPOSE_FILE, 'config', '-q'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, `docker compose config -q:\n${r.stdout}${r.stderr}`);
  });
});
