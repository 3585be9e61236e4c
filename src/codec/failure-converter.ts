/**
 * The failure converter of every toolgate client and worker: failure messages and stack traces
 * are moved into an encoded payload, so the payload codec encrypts them like any other data.
 * Loaded by path (`failureConverterPath`) because the workflow bundle needs it too; it imports
 * nothing but `@temporalio/common`.
 */
import { DefaultFailureConverter } from '@temporalio/common';

/** `encodeCommonAttributes`: message and stack travel encrypted, not as clear failure fields. */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
