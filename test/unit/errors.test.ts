/**
 * toolgate's errors (src/errors.ts): one base class with a stable code and its cause, one table
 * from codes to HTTP statuses, and decisions taken on an error's class or code — never on its
 * message. The "decides by type" tests reword every message on purpose: they fail as soon as
 * someone matches message text again.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, type LoadedDataConverter, type Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import express from 'express';
import pino from 'pino';
import { ERROR_HTTP_STATUS, ToolgateError, httpStatusOf, type ErrorCode } from '../../src/errors.js';
import { HttpError, errorHandler, grpcStatusOf, temporalUnavailability } from '../../src/api/errors.js';
import { DecisionSender, isResourceExhausted, unavailable } from '../../src/api/decisions.js';
import { AgentApiError } from '../../src/api/agents.js';
import { AdmissionError } from '../../src/api/front-door.js';
import { LaneFullError } from '../../src/api/lanes.js';
import { InvalidPageTokenError } from '../../src/approvals/waiting.js';
import { buildAuditRecordOfWorkflow } from '../../src/audit/record.js';
import { AuditRecordError } from '../../src/audit/record-types.js';
import { ArchiveIntegrityError } from '../../src/audit/archive-segments.js';
import { temporalArchiveSource } from '../../src/audit/archive-source.js';
import { AuditChainError } from '../../src/audit/chain.js';
import { AuthConfigError, TokenError } from '../../src/auth/errors.js';
import { CodecKeyError, KeyNotInKeyring, PayloadDecryptionError, createKeyring, dataConverterFor, generateCodecKey } from '../../src/codec/index.js';
import { ConfigError } from '../../src/config.js';
import { DestinationBlockedError, InvalidOriginError } from '../../src/egress/destinations.js';
import { UnknownRedactionRuleError } from '../../src/egress/redact.js';
import { RegexTranslationError, SecretRulesetError } from '../../src/egress/secret-rules.js';
import { ResultTooLargeError } from '../../src/egress/size.js';
import { TenantMismatchError } from '../../src/egress/tenant.js';
import { McpServerUnavailableError } from '../../src/mcp/downstream.js';
import { ApproverDirectoryError } from '../../src/notify/directory.js';
import { NotificationDeliveryError } from '../../src/notify/notifier.js';
import { WebhookTargetError } from '../../src/notify/targets.js';
import { PolicyLoadError } from '../../src/policy/errors.js';
import { RateLimitStoreError } from '../../src/policy/limits.js';
import { ManifestSigningError, ManifestTrustError } from '../../src/policy/manifest-signatures.js';
import { recordedFromHistory } from '../../src/policy/replay.js';
import { UndoUnavailable } from '../../src/policy/undo.js';
import { ReplayUsageError } from '../../src/cli/policy-replay-settings.js';
import { TemporalCliNotFound } from '../../src/temporal/cli.js';
import { DevServerStartError } from '../../src/temporal/dev-server.js';
import { loadDataConverter } from '../../src/temporal/internals.js';
import { OutcomeUnknownError, ResultWithheldError, ToolNotReachedError, ToolRejectedError, ToolUnavailableError } from '../../src/tools/types.js';
import { EvidenceError } from '../../src/trust/evidence.js';
import { TrustKeyError, signingKeyFromPem } from '../../src/trust/keys.js';
import { DecisionSigner } from '../../src/trust/signers.js';
import { FailureTypes, type DecideInput } from '../../src/shared/index.js';
import { generateKeyPairSync } from 'node:crypto';

const ROOT = resolve(import.meta.dirname, '..', '..');
const silent = pino({ level: 'silent' });

/** A gRPC error as @grpc/grpc-js raises it (what the Temporal client wraps or passes through). */
function grpcError(code: number, details: string): Error {
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} });
}

/** One instance of every ToolgateError subclass, as the code that throws it builds it. */
function everyError(): ToolgateError[] {
  return [
    new HttpError('not_found', 'no request r1'),
    new AgentApiError('tool_not_granted', 'no', { fields: ['tool'] }),
    new AdmissionError('conflict', 'used', ['requestId']),
    new LaneFullError('full'),
    new InvalidPageTokenError('bad token'),
    new AuditRecordError('no request r1'),
    new ArchiveIntegrityError('bad segment'),
    new AuditChainError('broken', { seq: 3 }),
    new TokenError('expired', { reason: 'expired' }),
    new TokenError('no keys', { reason: 'key_unavailable' }),
    new AuthConfigError('TOOLGATE_X', 'missing'),
    new PayloadDecryptionError('tampered'),
    new KeyNotInKeyring('k9', 'no such key'),
    new CodecKeyError('TOOLGATE_CODEC_KEYS', 'bad'),
    new ConfigError('invalid configuration'),
    new DestinationBlockedError('blocked', { url: 'http://x', reason: 'scheme', hop: 0 }),
    new InvalidOriginError('not an origin'),
    new UnknownRedactionRuleError(['nope']),
    new RegexTranslationError('(?P<x>)', 'named group'),
    new SecretRulesetError([{ rule: 'r', error: 'e' }]),
    new ResultTooLargeError(10, 5),
    new TenantMismatchError('$.tenant', 'acme', 'globex'),
    new McpServerUnavailableError('files', 'down'),
    new ApproverDirectoryError([]),
    new NotificationDeliveryError([{ target: 'slack x', reason: '500' }]),
    new WebhookTargetError('slack', 'bad'),
    new PolicyLoadError([]),
    new RateLimitStoreError('down'),
    new ManifestSigningError('bad key'),
    new ManifestTrustError('bad trust'),
    new UndoUnavailable('no_undo', 'no undo'),
    new UndoUnavailable('evaluation_failed', 'failed', 'id'),
    new ReplayUsageError('--since'),
    new TemporalCliNotFound('no cli', []),
    new DevServerStartError('no start', []),
    new ToolRejectedError('rejected', { status: 400 }),
    new ToolUnavailableError('unavailable'),
    new ToolNotReachedError('not reached'),
    new ResultWithheldError('too large'),
    new OutcomeUnknownError('unknown'),
    new EvidenceError('bad evidence'),
    new TrustKeyError('bad key'),
  ];
}

describe('the HTTP mapping table', () => {
  test('every code is snake_case and maps to an error status; an unknown code is 500', () => {
    for (const [code, status] of Object.entries(ERROR_HTTP_STATUS)) {
      assert.match(code, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/, code);
      assert.ok(status >= 400 && status <= 599, `${code}: ${status}`);
      assert.equal(httpStatusOf(code), status);
    }
    assert.equal(httpStatusOf('no_such_code'), 500);
    // Not fooled by what every object has.
    assert.equal(httpStatusOf('toString'), 500);
    assert.equal(httpStatusOf('__proto__'), 500);
    assert.equal(httpStatusOf('constructor'), 500);
  });

  test('the API codes clients rely on keep their statuses', () => {
    const expected: Partial<Record<ErrorCode, number>> = {
      invalid_body: 400,
      unauthenticated: 401,
      invalid_token: 401,
      identity_mismatch: 403,
      tool_not_granted: 403,
      not_eligible: 403,
      not_found: 404,
      conflict: 409,
      digest_mismatch: 409,
      not_pending: 409,
      undo_failed: 422,
      temporal_unavailable: 503,
      worker_unavailable: 503,
      busy: 503,
      internal: 500,
    };
    for (const [code, status] of Object.entries(expected)) assert.equal(httpStatusOf(code), status, code);
  });

  test('every error class is a ToolgateError whose code is in the table, keeps its name and has no stray fields', () => {
    for (const err of everyError()) {
      assert.ok(err instanceof ToolgateError && err instanceof Error, err.name);
      assert.ok(Object.hasOwn(ERROR_HTTP_STATUS, err.code), `${err.name}: ${err.code}`);
      assert.notEqual(err.name, 'Error', `${err.constructor.name} has a name`);
      assert.equal('cause' in err, false, `${err.name} has no cause unless given one`);
    }
    assert.equal(new TokenError('x', { reason: 'key_unavailable' }).code, 'identity_provider_unavailable');
    assert.equal(new TokenError('x').code, 'invalid_token');
    assert.equal(new LaneFullError('x').code, 'busy');
    assert.equal(new KeyNotInKeyring('k9', 'x').code, 'key_not_in_keyring');
    assert.deepEqual(new InvalidPageTokenError('x').fields, ['pageToken']);
  });

  test('every `new HttpError(status, code, …)` in src/ states the status the table gives its code', async () => {
    const sites: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.name.endsWith('.ts')) {
          const text = await readFile(path, 'utf8');
          for (const match of text.matchAll(/new (?:HttpError|AgentApiError)\(\s*(\d{3}),\s*'([a-z_]+)'/g)) {
            sites.push(`${path.slice(ROOT.length + 1)} ${match[1]} ${match[2]}`);
            assert.equal(Number(match[1]), httpStatusOf(match[2] as string), `${path}: ${match[0]}`);
          }
        }
      }
    };
    await walk(join(ROOT, 'src'));
    // The scan itself must find the older form where it is still written (the approval and audit routes).
    assert.ok(sites.length > 0, 'no legacy sites found: the scan is broken, or the form is gone (then drop this test)');
  });

  test('HttpError: its status from the table, or the one stated by the older form', () => {
    const fresh = new HttpError('worker_unavailable', 'retry', { retryAfter: 5, fields: ['x'] });
    assert.equal(fresh.status, 503);
    assert.equal(fresh.retryAfter, 5);
    assert.deepEqual(fresh.fields, ['x']);
    const older = new HttpError(400, 'invalid_query', 'bad', ['limit'], 2);
    assert.equal(older.status, 400);
    assert.equal(older.code, 'invalid_query');
    assert.deepEqual(older.fields, ['limit']);
    assert.equal(older.retryAfter, 2);
    assert.equal('retryAfter' in new HttpError('not_found', 'x'), false);
    assert.equal(new AgentApiError('identity_mismatch', 'x').status, 403);
  });
});

describe('cause chaining', () => {
  test('the cause is kept (ES2022) through ToolgateError and its subclasses', () => {
    const root = grpcError(14, 'UNAVAILABLE: connect ECONNREFUSED');
    const wrapped = new ToolgateError('internal', 'outer', { cause: root });
    assert.equal(wrapped.cause, root);
    assert.equal(new HttpError('busy', 'x', { cause: wrapped }).cause, wrapped);
    assert.equal(new PayloadDecryptionError('x', { cause: root }).cause, root);
    assert.equal(new RateLimitStoreError('x', { cause: root }).cause, root);
    assert.equal(new AdmissionError('invalid_body', 'x', ['(root)'], { cause: root }).cause, root);
  });

  test('an audit record of a workflow that is not there: AuditRecordError (not_found) caused by the service answer', async () => {
    const notFound = grpcError(5, 'NOT_FOUND: workflow not found for ID: toolreq/acme/r1');
    const err = await buildAuditRecordOfWorkflow(
      clientFetching(() => Promise.reject(notFound)),
      'toolreq/acme/r1',
    ).then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AuditRecordError);
    assert.equal(err.code, 'not_found');
    assert.equal(err.cause, notFound);
  });
});

/** A client whose handles' fetchHistory does what `fetch` says (enough for the audit record and the archive source). */
function clientFetching(fetch: () => Promise<temporal.api.history.v1.IHistory>, loadedDataConverter?: LoadedDataConverter): Client {
  return {
    options: { namespace: 'default', loadedDataConverter: loadedDataConverter ?? loadDataConverter({}) },
    workflow: { getHandle: () => ({ fetchHistory: fetch }) },
  } as unknown as Client;
}

/** A data converter whose codec throws `err` on every decode. */
function convertingThrowing(err: Error): LoadedDataConverter {
  const loaded = loadDataConverter(dataConverterFor(createKeyring('k1', { k1: generateCodecKey() })));
  return { ...loaded, payloadCodecs: [{ encode: async (p: Payload[]) => p, decode: async () => Promise.reject(err) }] };
}

/** A history whose start event holds one (encoded-looking) payload. */
function oneEventHistory(): temporal.api.history.v1.IHistory {
  const payload = { metadata: { encoding: new TextEncoder().encode('binary/encrypted') }, data: new Uint8Array(40) };
  return {
    events: [{ eventId: 1, eventTime: { seconds: 1 }, workflowExecutionStartedEventAttributes: { input: { payloads: [payload] } } }],
  } as unknown as temporal.api.history.v1.IHistory;
}

describe('the former message-matching sites decide by type', () => {
  // Messages chosen to mislead: a matcher on text would take the wrong branch every time.
  const missingKey = new KeyNotInKeyring('k9', 'reworded: this sentence says nothing about keyrings');
  const tampered = new PayloadDecryptionError('payload was encrypted with key "k9", which is not in the keyring');

  test('policy replay: a key missing from the keyring stops the replay; any other undecryptable payload is an unreadable history', async () => {
    const events = oneEventHistory().events ?? [];
    await assert.rejects(recordedFromHistory(events, convertingThrowing(missingKey), { workflowId: 'toolreq/acme/r1' }), (e: unknown) => e === missingKey);
    const entry = await recordedFromHistory(events, convertingThrowing(tampered), { workflowId: 'toolreq/acme/r1' });
    assert.equal(entry.unreadable?.code, 'unreadable');
  });

  test('audit archive: a key missing from the keyring is retried (thrown); any other undecryptable payload is an archived gap', async () => {
    const candidate = { workflowId: 'toolreq/acme/r1', runId: 'run', closedAtMs: 1, execution: 'COMPLETED' };
    const withMissingKey = temporalArchiveSource(clientFetching(async () => oneEventHistory(), convertingThrowing(missingKey)));
    await assert.rejects(withMissingKey.build(candidate), (e: unknown) => e === missingKey);
    const withTampered = temporalArchiveSource(clientFetching(async () => oneEventHistory(), convertingThrowing(tampered)));
    const built = await withTampered.build(candidate);
    assert.ok('gap' in built && built.gap.code === 'unreadable');
  });

  test('audit record: only "not found" is AuditRecordError; Temporal out of reach passes through (the API answers 503, not 404)', async () => {
    const down = grpcError(14, 'reworded: no mention of availability');
    await assert.rejects(
      buildAuditRecordOfWorkflow(
        clientFetching(() => Promise.reject(down)),
        'toolreq/acme/r1',
      ),
      (e: unknown) => e === down,
    );
    const gone = new WorkflowNotFoundError('reworded', 'toolreq/acme/r1', undefined);
    await assert.rejects(
      buildAuditRecordOfWorkflow(
        clientFetching(() => Promise.reject(gone)),
        'toolreq/acme/r1',
      ),
      AuditRecordError,
    );
  });

  test('Temporal availability from gRPC status codes and the SDK classes, not from messages', () => {
    const unavailableService = new ServiceError('reworded', { cause: grpcError(14, 'x') });
    assert.equal(temporalUnavailability(unavailableService), 'temporal_unavailable');
    assert.equal(temporalUnavailability(grpcError(14, 'x')), 'temporal_unavailable');
    assert.equal(temporalUnavailability(new ServiceError('reworded', { cause: grpcError(4, 'x') })), 'worker_unavailable');
    // Connection.withDeadline ends a call with CANCELLED.
    assert.equal(temporalUnavailability(new ServiceError('reworded', { cause: grpcError(1, 'x') })), 'worker_unavailable');
    assert.equal(temporalUnavailability(new WorkflowUpdateRPCTimeoutOrCancelledError('reworded', { cause: grpcError(1, 'x') })), 'worker_unavailable');
    // Words that used to be matched, on errors that say nothing of the kind.
    const wordy = 'deadline exceeded, timed out, unavailable';
    assert.equal(temporalUnavailability(new ServiceError(wordy, { cause: grpcError(3, 'INVALID_ARGUMENT') })), undefined);
    assert.equal(temporalUnavailability(new ServiceError(wordy)), undefined);
    assert.equal(temporalUnavailability(new Error(wordy)), undefined);
    assert.equal(temporalUnavailability(Object.assign(new Error('x'), { code: 14 })), undefined, 'a code alone is not a gRPC error');
    assert.equal(grpcStatusOf(new ServiceError('x', { cause: grpcError(8, 'x') })), 8);
    assert.equal(grpcStatusOf(new ToolgateError('internal', 'x', { cause: grpcError(14, 'x') })), undefined, "another error's cause is its own business");

    const answer = unavailable(unavailableService);
    assert.ok(answer instanceof HttpError);
    assert.equal(answer.code, 'temporal_unavailable');
    assert.equal(answer.status, 503);
    assert.equal(answer.cause, unavailableService);
    const other = new Error('unavailable');
    assert.equal(unavailable(other), other);
  });

  test('RESOURCE_EXHAUSTED by its code only', () => {
    assert.equal(isResourceExhausted(new ServiceError('reworded', { cause: grpcError(8, 'x') })), true);
    assert.equal(isResourceExhausted(new ServiceError('RESOURCE_EXHAUSTED: limit on in-flight updates exceeded', { cause: grpcError(9, 'x') })), false);
    assert.equal(isResourceExhausted(new Error('RESOURCE_EXHAUSTED in-flight limit exceeded')), false);
  });

  describe('a decision on a closed request', () => {
    let signer: DecisionSigner;
    before(async () => {
      const { privateKey } = generateKeyPairSync('ed25519');
      signer = new DecisionSigner(await signingKeyFromPem(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 'test'));
    });
    const input: DecideInput = { decision: 'approve', digest: 'd', approver: { id: 'maria', tenant: 'acme', groups: ['g'] }, via: 'api' };
    const runThrowing = (err: Error) => ({ workflowId: 'toolreq/acme/r1', executeUpdate: () => Promise.reject(err) }) as unknown as WorkflowHandle;
    const send = (err: Error) => new DecisionSender(signer, silent).send('r1', runThrowing(err), 'run', input);

    test('WorkflowNotFoundError, whatever it says, is 409 not_pending', async () => {
      await assert.rejects(
        send(new WorkflowNotFoundError('reworded', 'toolreq/acme/r1', 'run')),
        (e: unknown) => e instanceof HttpError && e.code === 'not_pending' && e.status === 409,
      );
    });

    test("an accepted update the workflow's end failed is 409 not_pending", async () => {
      const failure = ApplicationFailure.create({ type: 'AcceptedUpdateCompletedWorkflow', message: 'reworded', nonRetryable: true });
      await assert.rejects(send(new WorkflowUpdateFailedError('reworded', failure)), (e: unknown) => e instanceof HttpError && e.code === 'not_pending');
    });

    test("the validator's refusal by its failure type, with the table's status", async () => {
      const failure = ApplicationFailure.create({ type: FailureTypes.SelfApproval, message: 'reworded', nonRetryable: true });
      await assert.rejects(
        send(new WorkflowUpdateFailedError('x', failure)),
        (e: unknown) => e instanceof HttpError && e.code === 'self_approval' && e.status === 403,
      );
    });

    test('"already completed" in any other error is not taken for a closed request', async () => {
      const other = new ServiceError('workflow execution already completed', { cause: grpcError(3, 'INVALID_ARGUMENT') });
      await assert.rejects(send(other), (e: unknown) => e === other);
    });
  });
});

describe('the error handler', () => {
  let url = '';
  let close: () => Promise<void> = async () => undefined;
  const throwing: Record<string, () => unknown> = {
    table: () => new HttpError('digest_mismatch', 'changed', { fields: ['digest'] }),
    older: () => new HttpError(401, 'invalid_token', 'expired'),
    retry: () => new HttpError('busy', 'later', { retryAfter: 1 }),
    domain4xx: () => new InvalidPageTokenError('pageToken must be a token from an earlier page'),
    domain5xx: () => new KeyNotInKeyring('k9', 'secret detail: keyring path /etc/keys'),
    domain503: () => new RateLimitStoreError('postgres://user@db did not answer'),
    temporalDown: () => new ServiceError('Failed to describe workflow', { cause: grpcError(14, 'connect ECONNREFUSED') }),
    noWorker: () => new ServiceError('Failed to query Workflow', { cause: grpcError(1, 'Call cancelled') }),
    plain: () => new Error('boom'),
  };
  before(async () => {
    const app = express();
    app.get('/:case', (req) => {
      throw (throwing[String(req.params.case)] as () => unknown)();
    });
    app.use(errorHandler(silent, 'test'));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => new Promise((resolve) => server.close(() => resolve()));
  });
  after(() => close());

  const get = async (name: string) => {
    const response = await fetch(`${url}/${name}`);
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      auth: response.headers.get('www-authenticate'),
      body: (await response.json()) as { error: Record<string, unknown> },
    };
  };

  test('HttpErrors: status, code, message and fields; Retry-After and WWW-Authenticate where due', async () => {
    assert.deepEqual(await get('table'), {
      status: 409,
      retryAfter: null,
      auth: null,
      body: { error: { code: 'digest_mismatch', message: 'changed', fields: ['digest'] } },
    });
    const older = await get('older');
    assert.equal(older.status, 401);
    assert.match(older.auth ?? '', /Bearer/);
    const retry = await get('retry');
    assert.equal(retry.status, 503);
    assert.equal(retry.retryAfter, '1');
  });

  test('other ToolgateErrors by their code: the message below 500, never above', async () => {
    assert.deepEqual((await get('domain4xx')).body, {
      error: { code: 'invalid_query', message: 'pageToken must be a token from an earlier page', fields: ['pageToken'] },
    });
    const hidden = await get('domain5xx');
    assert.equal(hidden.status, 500);
    assert.deepEqual(hidden.body, { error: { code: 'internal', message: 'internal error' } });
    const busy = await get('domain503');
    assert.equal(busy.status, 503);
    assert.equal(busy.body.error.code, 'rate_limit_store_unavailable');
    assert.doesNotMatch(String(busy.body.error.message), /postgres/);
  });

  test('Temporal out of reach: 503 temporal_unavailable; no worker in time: 503 worker_unavailable; anything else 500', async () => {
    const down = await get('temporalDown');
    assert.equal(down.status, 503);
    assert.equal(down.body.error.code, 'temporal_unavailable');
    assert.equal(down.retryAfter, '5');
    const noWorker = await get('noWorker');
    assert.equal(noWorker.status, 503);
    assert.equal(noWorker.body.error.code, 'worker_unavailable');
    assert.deepEqual(await get('plain'), { status: 500, retryAfter: null, auth: null, body: { error: { code: 'internal', message: 'internal error' } } });
  });
});
