/**
 * `toolgate audit show|export|verify|keygen|archive`: the audit record of a request (derived from
 * its history, or from the audit archive once the history is gone), a signed hash-chain export of
 * many, the verification of an export or of the archive, the signing keys, and one archival run.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { type Command, InvalidArgumentError } from 'commander';
import { ARCHIVE_LAG_MS, archiveClosedRequests } from '../audit/archive.js';
import { temporalArchiveSource } from '../audit/archive-source.js';
import { verifyArchive, verifyChainFile, type ArchiveVerification } from '../audit/archive-verify.js';
import { ChainWriter, generateAuditKeyPair } from '../audit/chain.js';
import { buildAuditRecordOfWorkflow } from '../audit/record.js';
import { dataConverterFor, loadKeyring } from '../codec/index.js';
import { loadConfig, type Config } from '../config.js';
import { IDENTIFIER_PATTERN, WORKFLOW_TYPE, parseRequestWorkflowId, searchAttributes } from '../shared/index.js';
import { auditSigningKeyFile, auditVerifyKeys, defaultAuditKeyFiles, readAuditSigningKey } from './audit-key-files.js';
import { showRequest, showTarget } from './audit-show.js';

async function connect(config: Config): Promise<{ client: Client; connection: Connection }> {
  const dataConverter = dataConverterFor(await loadKeyring({ stateDir: config.stateDir }));
  const connection = await Connection.connect({ address: config.temporalAddress });
  return { client: new Client({ connection, namespace: config.namespace, dataConverter }), connection };
}

function isoTime(flag: string) {
  return (value: string): string => {
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) throw new InvalidArgumentError(`${flag} must be an ISO 8601 date or time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z`);
    return new Date(ms).toISOString();
  };
}

/** An option's number parser: a value `valid` refuses is an error saying `message`. */
function numberArgument(valid: (n: number) => boolean, message: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!valid(n)) throw new InvalidArgumentError(message);
    return n;
  };
}

/** The visibility query of an export: toolgate requests started in [since, until), of one tenant if given. */
export function exportQuery(options: { since?: string; until?: string; tenant?: string }): string {
  const clauses = [`WorkflowType = '${WORKFLOW_TYPE}'`];
  if (options.since) clauses.push(`StartTime >= '${options.since}'`);
  if (options.until) clauses.push(`StartTime < '${options.until}'`);
  if (options.tenant) clauses.push(`${searchAttributes.tenant.name} = '${options.tenant}'`);
  return clauses.join(' AND ');
}

/** Adds the `audit` command group to the program. */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('Audit records: show one, export many in a signed hash chain, verify an export');

  audit
    .command('show')
    .description("Print a request's audit record, derived from its workflow history, or found in the audit archive once the history is gone")
    .argument('<request>', 'the request id (with --tenant), or its full workflow id toolreq/<tenant>/<requestId>')
    .option('--tenant <tenant>', "the request's tenant (request ids are namespaced per tenant)")
    .option('--json', 'print the record as JSON')
    .option('--archive <dir>', 'the audit archive to look in when the history is gone (default: TOOLGATE_AUDIT_ARCHIVE_DIR, or <state dir>/audit-archive)')
    .option(
      '--key <file>',
      "public key (PEM) the archive's segments are verified with; repeat for rotated keys (default: <state dir>/keys/audit-signing.pub.pem)",
      collect,
      [],
    )
    .action(async (request: string, options: { tenant?: string; json?: boolean; archive?: string; key: string[] }) => {
      const workflowId = showTarget(request, options.tenant);
      const config = loadConfig();
      const { client, connection } = await connect(config);
      try {
        process.exitCode = await showRequest(client, workflowId, {
          json: options.json ?? false,
          archiveDir: options.archive ?? config.auditArchiveDir,
          publicKeys: () => auditVerifyKeys(config, options.key),
        });
      } finally {
        await connection.close();
      }
    });

  audit
    .command('export')
    .description('Write the audit records of the matching requests to stdout as JSON Lines in a hash chain with signed checkpoints')
    .option('--since <time>', 'requests started at or after this time (ISO 8601)', isoTime('--since'))
    .option('--until <time>', 'requests started before this time (ISO 8601)', isoTime('--until'))
    .option('--tenant <tenant>', 'only this tenant')
    .option(
      '--key <file>',
      'Ed25519 private key (PEM) that signs the checkpoints (default: TOOLGATE_AUDIT_SIGNING_KEY_FILE, or <state dir>/keys/audit-signing.key.pem)',
    )
    .option(
      '--checkpoint-every <n>',
      'records between signed checkpoints',
      numberArgument((n) => Number.isInteger(n) && n >= 1, '--checkpoint-every must be a positive whole number'),
      1000,
    )
    .action(async (options: { since?: string; until?: string; tenant?: string; key?: string; checkpointEvery: number }) => {
      if (options.tenant !== undefined && !IDENTIFIER_PATTERN.test(options.tenant)) throw new InvalidArgumentError('--tenant must be a tenant id');
      const config = loadConfig();
      const keyFile = options.key ?? auditSigningKeyFile(config);
      const privateKey = await readAuditSigningKey(keyFile, 'pass --key');
      const { client, connection } = await connect(config);
      const started = Date.now();
      const writer = new ChainWriter({
        privateKey,
        checkpointEvery: options.checkpointEvery,
        onProgress: ({ records, bytes }) =>
          process.stderr.write(`audit export: ${records} records, ${bytes} bytes, ${((Date.now() - started) / 1000).toFixed(1)} s\n`),
      });
      // Records are built one at a time as the chain writer pulls them: memory stays flat.
      let skipped = 0;
      async function* records(): AsyncGenerator<unknown> {
        for await (const execution of client.workflow.list({ query: exportQuery(options), pageSize: 500 })) {
          // The id as the server holds it (tenant-scoped, or an old `toolreq:<id>`), never rebuilt from a request id.
          if (!parseRequestWorkflowId(execution.workflowId)) continue;
          try {
            // No visibility query per record for its back-links: every linked request is exported too, with its `link`.
            yield await buildAuditRecordOfWorkflow(client, execution.workflowId, execution.runId, { linked: false });
          } catch (err) {
            // One history that cannot be read as a request (planted, or holding another tenant's payloads)
            // must not stop the export of every other record: it is named, counted and skipped.
            skipped += 1;
            process.stderr.write(`audit export: skipped ${execution.workflowId} (run ${execution.runId}): ${(err as Error).message}\n`);
          }
        }
      }
      try {
        const summary = await writer.write(records(), process.stdout);
        process.stderr.write(
          `audit export: done, ${summary.records} records, ${summary.checkpoints} signed checkpoints, last hash ${summary.lastHash}${skipped > 0 ? `; ${skipped} skipped (named above)` : ''}\n`,
        );
        if (skipped > 0) process.exitCode = 1;
      } finally {
        await connection.close();
      }
    });

  audit
    .command('verify')
    .description(
      'Verify an export (a file: chain, signed checkpoints, completeness; names the first bad record) or the audit archive (a directory: every segment, their links and windows)',
    )
    .argument('<path>', 'the export (JSON Lines), or the archive directory')
    .option('--key <file>', 'Ed25519 public key (PEM) of the signer; repeat for rotated keys (default: <state dir>/keys/audit-signing.pub.pem)', collect, [])
    .action(async (path: string, options: { key: string[] }) => {
      const keys = await auditVerifyKeys(loadConfig(), options.key);
      if ((await stat(path)).isDirectory()) {
        const archive = await verifyArchive(path, keys);
        process.stdout.write(formatArchiveVerification(path, archive));
        if (!archive.ok) process.exitCode = 1;
        return;
      }
      const result = await verifyChainFile(path, keys);
      if (result.ok) {
        const segment = result.header?.segment;
        process.stdout.write(
          `ok: ${result.records} records, ${result.checkpoints} signed checkpoints, key ${result.keyId ?? '?'}` +
            `${segment ? ` (segment ${segment.index} of an archive, [${segment.from}, ${segment.to}): verify its directory to check the links to its neighbours)` : ''}\n`,
        );
        return;
      }
      const bad = result.firstBad!;
      process.stdout.write(
        `FAILED at line ${bad.line} (record seq ${bad.seq}): ${bad.reason}${bad.lastVerifiedSeq !== undefined ? `; records up to seq ${bad.lastVerifiedSeq} are covered by a valid signed checkpoint` : ''}\n`,
      );
      process.exitCode = 1;
    });

  audit
    .command('keygen')
    .description('Create the Ed25519 key pair that signs exports (private key mode 0600)')
    .option('--out <dir>', 'directory for audit-signing.key.pem and audit-signing.pub.pem (default: <state dir>/keys)')
    .action(async (options: { out?: string }) => {
      const files = options.out
        ? { privateKeyFile: join(options.out, 'audit-signing.key.pem'), publicKeyFile: join(options.out, 'audit-signing.pub.pem') }
        : defaultAuditKeyFiles(loadConfig().stateDir);
      const pair = generateAuditKeyPair();
      await mkdir(join(files.privateKeyFile, '..'), { recursive: true, mode: 0o700 });
      // `wx`: never overwrite a key that signed earlier exports.
      await writeFile(files.privateKeyFile, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
      await writeFile(files.publicKeyFile, pair.publicKeyPem, { mode: 0o644, flag: 'wx' });
      process.stdout.write(`key ${pair.keyId}\n  private: ${files.privateKeyFile}\n  public:  ${files.publicKeyFile}\n`);
    });

  audit
    .command('archive')
    .description('Archive now what closed since the archive ends (what the archival schedule runs every interval; idempotent, safe beside it)')
    .option('--once', 'run one archival window and exit (required: the continuous archival is `toolgate archiver`)')
    .option('--archive <dir>', 'the archive directory (default: TOOLGATE_AUDIT_ARCHIVE_DIR, or <state dir>/audit-archive)')
    .option('--key <file>', 'the audit-signing private key (default: TOOLGATE_AUDIT_SIGNING_KEY_FILE, or <state dir>/keys/audit-signing.key.pem)')
    .option(
      '--lag <seconds>',
      'stop this far behind now (visibility delay)',
      numberArgument((n) => Number.isFinite(n) && n >= 0, '--lag must be a number of seconds, 0 or more'),
      ARCHIVE_LAG_MS / 1000,
    )
    .action(async (options: { once?: boolean; archive?: string; key?: string; lag: number }) => {
      if (!options.once) throw new InvalidArgumentError('pass --once to archive one window now; `toolgate archiver` archives continuously');
      const config = loadConfig();
      const privateKey = await readAuditSigningKey(options.key ?? auditSigningKeyFile(config));
      const dir = options.archive ?? config.auditArchiveDir;
      const { client, connection } = await connect(config);
      try {
        const summary = await archiveClosedRequests({
          dir,
          source: temporalArchiveSource(client),
          privateKey,
          lagMs: Math.round(options.lag * 1000),
          logger: {
            info: () => {},
            warn: (obj, message) => process.stderr.write(`audit archive: ${message} ${JSON.stringify(obj)}\n`),
            error: (obj, message) => process.stderr.write(`audit archive: ${message} ${JSON.stringify(obj)}\n`),
          },
        });
        process.stdout.write(
          summary.segments.length === 0
            ? `nothing new: the archive ${dir} ends at ${summary.window.to}\n`
            : `archived [${summary.window.from}, ${summary.window.to}): ${summary.records} requests in ${summary.segments.join(', ')} (${summary.seconds.toFixed(1)} s)` +
                `; head ${summary.head?.name} sha256 ${summary.head?.sha256}\n`,
        );
        if (summary.gaps > 0) {
          process.stderr.write(
            `audit archive: ${summary.gaps} request(s) archived WITHOUT a record (history gone or unreadable): ${summary.gapIds.map((g) => `${g.workflowId} (${g.code})`).join(', ')}\n`,
          );
          process.exitCode = 1;
        }
      } finally {
        await connection.close();
      }
    });
}

/** Collects a repeatable option's values. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** What `audit verify <dir>` prints. */
export function formatArchiveVerification(dir: string, a: ArchiveVerification): string {
  const lines: string[] = [];
  if (a.ok) {
    lines.push(
      a.segments === 0
        ? `ok: ${dir} holds no segment yet`
        : `ok: archive of ${a.segments} segment${a.segments === 1 ? '' : 's'}, ${a.records} requests (${a.gaps} archived without a record), ${a.checkpoints} signed checkpoints, key ${a.keyIds.join(', ')}`,
    );
  } else {
    lines.push(`FAILED: ${a.faults.length} fault(s) in ${dir}`);
    for (const f of a.faults)
      lines.push(
        `  ${f.segment}: ${f.reason}${f.line !== undefined ? ` (line ${f.line}${f.seq !== undefined && f.seq >= 0 ? `, record seq ${f.seq}` : ''})` : ''}`,
      );
  }
  if (a.window) lines.push(`covers close times [${a.window.from}, ${a.window.to})`);
  // Nothing inside the directory shows that its newest segments were deleted: compare the head with the archiver's logs.
  if (a.head) lines.push(`head: ${a.head.name} sha256 ${a.head.sha256} (compare with the last head the archiver logged)`);
  if (a.gaps > 0)
    lines.push(
      `WARNING: ${a.gaps} request(s) were archived without their record (history gone or unreadable); see the archiver's "audit archive gap" log lines`,
    );
  if (a.temporaryFiles.length > 0)
    lines.push(`note: ${a.temporaryFiles.length} unfinished segment file(s) of an interrupted run, not part of the archive: ${a.temporaryFiles.join(', ')}`);
  if (a.otherFiles.length > 0) lines.push(`note: ignored other files: ${a.otherFiles.join(', ')}`);
  return `${lines.join('\n')}\n`;
}
