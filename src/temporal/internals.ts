/**
 * The only door into the Temporal SDK's internals (`@temporalio/<package>/lib/...`). Those paths
 * are not the SDK's public API: they move or change between releases without a changelog entry,
 * so every use goes through this module, where an SDK upgrade has one file to check. ESLint
 * (`@typescript-eslint/no-restricted-imports` in eslint.config.js) forbids deep imports anywhere
 * else. Add an export here only with the reason no public API does the job.
 *
 * Never imported by workflow code: `internal-non-workflow` is, as its name says, not for the
 * workflow sandbox (the workflow bundle's files are linted against it, see eslint.config.js).
 */

/**
 * Duration strings (`'30d'`, `'90s'`, numbers as milliseconds) to milliseconds and to and from
 * protobuf `Duration`s, exactly as the SDK reads them in its own options: a duration in a policy
 * file (timeouts, expiries) or the dev server's retention must mean what the same string means to
 * Temporal. The package root exports only deprecated aliases of these (`deprecated-time`).
 */
export { msToNumber, msToTs, tsToMs } from '@temporalio/common/lib/time.js';

/**
 * Decoding payloads and failures read straight from a workflow history (`getHistory`,
 * `fetchHistory`) through a data converter, codecs included: the public client decodes only what
 * it returns itself (results, query answers), never the events of a history. The audit record and
 * the tests that inspect histories need them; `encodeToPayloads` and `loadDataConverter` let tests
 * forge events the way a worker would write them.
 */
export {
  decodeFromPayloadsAtIndex,
  decodeOptionalFailureToOptionalError,
  encodeToPayloads,
  loadDataConverter,
} from '@temporalio/common/lib/internal-non-workflow/index.js';

/**
 * A history exported as JSON (the Temporal CLI's and UI's format, as in test/histories/) to the
 * protobuf `History`: enum values there may be spelled as the UI exports them
 * (`WorkflowExecutionStarted`), which the generated protobuf decoding does not read. No public API
 * returns the `History` itself (`Worker.runReplayHistory` parses JSON only for its own use).
 */
export { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';

/**
 * Typed search attributes from the raw `indexedFields` of a visibility listing. "Waiting for me"
 * (src/approvals/waiting.ts) pages visibility through the raw `workflowService` to keep the
 * server's page token, where the client's own decoding (`client.workflow.list`) is not applied.
 */
export { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes.js';
