/**
 * `toolgate audit show`: the audit record of one request, from its history while Temporal still
 * has it, else from the audit archive (authenticated there before it is printed).
 */
import type { KeyObject } from 'node:crypto';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { InvalidArgumentError } from 'commander';
import { findInArchive } from '../audit/archive-find.js';
import { buildAuditRecordOfWorkflow } from '../audit/record.js';
import { formatAuditRecord } from '../audit/record-format.js';
import { AuditRecordError } from '../audit/record-types.js';
import { IDENTIFIER_PATTERN, parseRequestWorkflowId, workflowIdFor } from '../shared/index.js';

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
    if (!IDENTIFIER_PATTERN.test(parsed.tenant) || !IDENTIFIER_PATTERN.test(parsed.requestId))
      throw new InvalidArgumentError('the workflow id must be toolreq/<tenant>/<requestId>');
    if (tenant !== undefined && parsed.tenant !== tenant) throw new InvalidArgumentError(`the workflow id ${request} is not of tenant ${tenant}`);
    return request;
  }
  if (!IDENTIFIER_PATTERN.test(request)) throw new InvalidArgumentError('requestId must be 1-128 characters of letters, digits and . _ : @ -');
  if (tenant !== undefined) return workflowIdFor(tenant, request);
  // `toolreq:<id>` without a tenant: a workflow id from before tenant-scoped ids.
  if (parsed) return request;
  throw new InvalidArgumentError('--tenant is required with a request id (or give the full workflow id toolreq/<tenant>/<requestId>)');
}

/** Where `showRequest` prints (stdout and stderr by default). */
export interface ShowOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Options of {@link showRequest}. */
export interface ShowOptions {
  json: boolean;
  /** The archive to look in when the history is gone. */
  archiveDir: string;
  /** The public keys the archive's segments are verified with (loaded only when the archive is read). */
  publicKeys: () => Promise<KeyObject[]>;
}

/** Whether Temporal says the workflow does not exist (deleted by retention, or never was). */
async function workflowIsGone(client: Client, workflowId: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(workflowId).describe();
    return false;
  } catch (err) {
    return err instanceof WorkflowNotFoundError;
  }
}

/**
 * `audit show`: the record from the request's history; when Temporal no longer has the workflow,
 * the record from the audit archive, said to come from there (segment and seq). The entry is the
 * one the segment's chain verifier authenticated; then the archive is verified from that segment
 * to its head — the segment's own chain and every later segment's chain, link and window — rather
 * than the whole archive: only the later segments vouch for the segment's bytes (a validly signed
 * replacement shows only in the next segment's link), the earlier ones say nothing about it, and
 * the search newest-first has read those later segments anyway. The head's hash goes to stderr to
 * compare with the archiver's logs (nothing inside the archive vouches for the head's bytes).
 * Returns the exit code: 1 when the archived copy or its links to the head do not verify, or the
 * archive holds only a gap for it.
 */
export async function showRequest(
  client: Client,
  workflowId: string,
  options: ShowOptions,
  output: ShowOutput = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
): Promise<number> {
  try {
    const record = await buildAuditRecordOfWorkflow(client, workflowId);
    output.out(options.json ? `${JSON.stringify(record, null, 2)}\n` : formatAuditRecord(record));
    return 0;
  } catch (err) {
    // Only a workflow Temporal no longer has is looked up in the archive; any other failure stands.
    if (!(err instanceof AuditRecordError) || !(await workflowIsGone(client, workflowId))) throw err;
  }
  const hit = await findInArchive(options.archiveDir, workflowId, await options.publicKeys());
  if (!hit)
    throw new AuditRecordError(`no request ${workflowId}: Temporal no longer has its history, and the audit archive ${options.archiveDir} does not hold it`);
  const v = hit.verification;
  const links = hit.links;
  // The segment's own chain fault is already named; the links add what lies after it.
  const linkFaults = links.faults.filter((f) => v.ok || f.segment !== hit.segment);
  const verified = v.ok && links.ok;
  const provenance =
    `from the audit archive ${options.archiveDir}: ${hit.segment}, record seq ${hit.seq}, closed ${hit.entry.closedAt}; the workflow history is gone; ` +
    (v.ok
      ? `segment chain verified (${v.records} records, key ${v.keyId ?? '?'})`
      : `SEGMENT DOES NOT VERIFY (line ${v.firstBad?.line}: ${v.firstBad?.reason}): this copy may have been altered`) +
    (linkFaults.length > 0
      ? `; THE ARCHIVE FROM ${hit.segment} TO ITS HEAD DOES NOT VERIFY (${linkFaults.length} fault(s), first ${linkFaults[0]?.segment}: ${linkFaults[0]?.reason}): this copy may have been altered or replaced`
      : '');
  const head = links.head
    ? verified
      ? `archive verified from ${hit.segment} to its head ${links.head.name} (${links.segments} segment(s)); head sha256 ${links.head.sha256}: compare with the last head the archiver logged\n`
      : `${linkFaults.map((f) => `  ${f.segment}: ${f.reason}`).join('\n')}${linkFaults.length > 0 ? '\n' : ''}head: ${links.head.name} sha256 ${links.head.sha256}\n`
    : '';
  if (!hit.entry.record) {
    output.err(`${provenance}\nno record: the request was archived as a gap (${hit.entry.gap?.code}: ${hit.entry.gap?.message})\n${head}`);
    return 1;
  }
  if (options.json) {
    output.err(`${provenance}\n${head}`);
    output.out(`${JSON.stringify(hit.entry.record, null, 2)}\n`);
  } else {
    output.out(`${provenance}\n\n${formatAuditRecord(hit.entry.record)}`);
    output.err(head);
  }
  return verified ? 0 : 1;
}
