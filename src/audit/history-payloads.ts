/**
 * Reading a request's workflow history: when each event happened, its payloads decoded with the
 * gateway's data converter in the request's own serialization context, and the start input in
 * either shape (`{ request, admission }`, or before the trust boundary the request itself). Used
 * by the audit record, the policy replay and the linked-request views.
 */
import type { LoadedDataConverter, Payload, SerializationContext } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import type { ToolRequest } from '../shared/index.js';
import { decodeFromPayloadsAtIndex } from '../temporal/internals.js';

/** One event of a workflow history. */
export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** A plain object (not null, not an array): what a value read from a history must be before its fields are looked at. */
export const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** When `event` happened, in ms since the epoch, or undefined when the history does not say. */
export function msOf(event: HistoryEvent): number | undefined {
  const t = event.eventTime;
  if (!t) return undefined;
  return Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

/** When `event` happened, ISO 8601 (empty when the history does not say). */
export function timeOf(event: HistoryEvent): string {
  const ms = msOf(event);
  return ms === undefined ? '' : new Date(ms).toISOString();
}

/** The converter with the request's workflow as the codecs' serialization context, whatever the caller passes. */
export function withWorkflowContext(converter: LoadedDataConverter, workflowId: string): LoadedDataConverter {
  const context: SerializationContext = { type: 'workflow', namespace: 'default', workflowId };
  return {
    ...converter,
    payloadCodecs: converter.payloadCodecs.map((codec) => ({
      encode: (payloads: Payload[]) => codec.encode(payloads, context),
      decode: (payloads: Payload[]) => codec.decode(payloads, context),
    })),
  };
}

async function first<T>(converter: LoadedDataConverter, payloads: Payload[] | null | undefined): Promise<T | undefined> {
  if (!payloads || payloads.length === 0) return undefined;
  return decodeFromPayloadsAtIndex<T>(converter, 0, payloads);
}
/** The first of `payloads` decoded with `converter` (give it {@link withWorkflowContext}'s), or undefined when there is none. */
export { first as decodeFirstPayload };

/** A tool request, or undefined when the value does not even have a request's shape (a raw Temporal client can start anything). */
function asRequest(value: unknown): ToolRequest | undefined {
  if (!isObject(value)) return undefined;
  const actor = value.actor;
  if (!isObject(actor) || typeof actor.id !== 'string' || !Array.isArray(actor.roles)) return undefined;
  const strings = [value.requestId, value.tenant, value.environment, value.tool];
  if (!strings.every((s) => typeof s === 'string') || !isObject(value.args)) return undefined;
  return value as unknown as ToolRequest;
}

/** A request's start input in either shape: `{ request, admission }`, or (before the trust boundary) the request itself. */
export function startInputOf(input: unknown): { request: ToolRequest | undefined; admission?: { token: unknown } } {
  if (isObject(input) && ('admission' in input || 'request' in input)) return { request: asRequest(input.request), admission: { token: input.admission } };
  return { request: asRequest(input) };
}
