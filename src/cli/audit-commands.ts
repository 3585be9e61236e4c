/**
 * `toolgate audit show|export|verify|keygen`: the audit record of a request (derived from its
 * history), a signed hash-chain export of many, its verification, and the signing keys.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { type Command, InvalidArgumentError } from 'commander';
import { ChainWriter, generateAuditKeyPair } from '../audit/chain.js';
import { buildAuditRecordOfWorkflow, formatAuditRecord } from '../audit/record.js';
import { verifyChain } from '../audit/verify.js';
import { dataConverterFor, loadKeyring } from '../codec/index.js';
import { loadConfig, type Config } from '../config.js';
import { IDENTIFIER_PATTERN, WORKFLOW_TYPE, parseRequestWorkflowId, searchAttributes, workflowIdFor } from '../shared/index.js';

/** Where `audit keygen` writes the signing key pair by default, and where `audit export` looks for it. */
export function defaultAuditKeyFiles(stateDir: string): { privateKeyFile: string; publicKeyFile: string } {
  return { privateKeyFile: join(stateDir, 'keys', 'audit-signing.key.pem'), publicKeyFile: join(stateDir, 'keys', 'audit-signing.pub.pem') };
}

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

/** The visibility query of an export: toolgate requests started in [since, until), of one tenant if given. */
export function exportQuery(options: { since?: string; until?: string; tenant?: string }): string {
  const clauses = [`WorkflowType = '${WORKFLOW_TYPE}'`];
  if (options.since) clauses.push(`StartTime >= '${options.since}'`);
  if (options.until) clauses.push(`StartTime < '${options.until}'`);
  if (options.tenant) clauses.push(`${searchAttributes.tenant.name} = '${options.tenant}'`);
  return clauses.join(' AND ');
}

/**
 * The workflow id `audit show` reads: a full workflow id as given (its tenant must agree with
 * `--tenant` when both are given), or a request id with its tenant. Request ids are namespaced
 * per tenant, so a bare request id without a tenant names nothing — except an old `toolreq:<id>`
 * workflow id, from before tenant-scoped ids.
 */
export function showTarget(request: string, tenant: string | undefined): string {
  if (tenant !== undefined && !IDENTIFIER_PATTERN.test(tenant)) throw new InvalidArgumentError('--tenant must be a tenant id');
  const parsed = parseRequestWorkflowId(request);
  if (parsed?.tenant !== undefined) {
    if (!IDENTIFIER_PATTERN.test(parsed.tenant) || !IDENTIFIER_PATTERN.test(parsed.requestId)) throw new InvalidArgumentError('the workflow id must be toolreq/<tenant>/<requestId>');
    if (tenant !== undefined && parsed.tenant !== tenant) throw new InvalidArgumentError(`the workflow id ${request} is not of tenant ${tenant}`);
    return request;
  }
  if (!IDENTIFIER_PATTERN.test(request)) throw new InvalidArgumentError('requestId must be 1-128 characters of letters, digits and . _ : @ -');
  if (tenant !== undefined) return workflowIdFor(tenant, request);
  // `toolreq:<id>` without a tenant: a workflow id from before tenant-scoped ids.
  if (parsed) return request;
  throw new InvalidArgumentError('--tenant is required with a request id (or give the full workflow id toolreq/<tenant>/<requestId>)');
}

/** Adds the `audit` command group to the program. */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('Audit records: show one, export many in a signed hash chain, verify an export');

  audit
    .command('show')
    .description("Print a request's audit record, derived from its workflow history")
    .argument('<request>', 'the request id (with --tenant), or its full workflow id toolreq/<tenant>/<requestId>')
    .option('--tenant <tenant>', "the request's tenant (request ids are namespaced per tenant)")
    .option('--json', 'print the record as JSON')
    .action(async (request: string, options: { tenant?: string; json?: boolean }) => {
      const workflowId = showTarget(request, options.tenant);
      const { client, connection } = await connect(loadConfig());
      try {
        const record = await buildAuditRecordOfWorkflow(client, workflowId);
        process.stdout.write(options.json ? `${JSON.stringify(record, null, 2)}\n` : formatAuditRecord(record));
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
    .option('--key <file>', 'Ed25519 private key (PEM) that signs the checkpoints (default: <state dir>/keys/audit-signing.key.pem)')
    .option('--checkpoint-every <n>', 'records between signed checkpoints', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('--checkpoint-every must be a positive whole number');
      return n;
    }, 1000)
    .action(async (options: { since?: string; until?: string; tenant?: string; key?: string; checkpointEvery: number }) => {
      if (options.tenant !== undefined && !IDENTIFIER_PATTERN.test(options.tenant)) throw new InvalidArgumentError('--tenant must be a tenant id');
      const config = loadConfig();
      const keyFile = options.key ?? defaultAuditKeyFiles(config.stateDir).privateKeyFile;
      let privateKey: string;
      try {
        privateKey = await readFile(keyFile, 'utf8');
      } catch (err) {
        throw new Error(`cannot read the signing key ${keyFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); create one with: toolgate audit keygen, or pass --key`);
      }
      const { client, connection } = await connect(config);
      const started = Date.now();
      const writer = new ChainWriter({
        privateKey,
        checkpointEvery: options.checkpointEvery,
        onProgress: ({ records, bytes }) => process.stderr.write(`audit export: ${records} records, ${bytes} bytes, ${((Date.now() - started) / 1000).toFixed(1)} s\n`),
      });
      // Records are built one at a time as the chain writer pulls them: memory stays flat.
      let skipped = 0;
      async function* records(): AsyncGenerator<unknown> {
        for await (const execution of client.workflow.list({ query: exportQuery(options), pageSize: 500 })) {
          // The id as the server holds it (tenant-scoped, or an old `toolreq:<id>`), never rebuilt from a request id.
          if (!parseRequestWorkflowId(execution.workflowId)) continue;
          try {
            yield await buildAuditRecordOfWorkflow(client, execution.workflowId, execution.runId);
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
        process.stderr.write(`audit export: done, ${summary.records} records, ${summary.checkpoints} signed checkpoints, last hash ${summary.lastHash}${skipped > 0 ? `; ${skipped} skipped (named above)` : ''}\n`);
        if (skipped > 0) process.exitCode = 1;
      } finally {
        await connection.close();
      }
    });

  audit
    .command('verify')
    .description('Verify an export: chain, signed checkpoints, completeness; names the first bad record')
    .argument('<file>', 'the export (JSON Lines)')
    .requiredOption('--key <file>', 'Ed25519 public key (PEM) of the exporter')
    .action(async (file: string, options: { key: string }) => {
      const result = await verifyChain(createReadStream(file), await readFile(options.key, 'utf8'));
      if (result.ok) {
        process.stdout.write(`ok: ${result.records} records, ${result.checkpoints} signed checkpoints, key ${result.keyId ?? '?'}\n`);
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
}
