/**
 * What a failed Temporal client call means, read from the gRPC status the SDK keeps (on the raw
 * gRPC error some calls pass through, or as the `cause` of its `ServiceError` and
 * `WorkflowUpdateRPCTimeoutOrCancelledError`) — never from the error's message.
 */
import { ServiceError, WorkflowUpdateRPCTimeoutOrCancelledError, isGrpcServiceError } from '@temporalio/client';

/** The gRPC status codes (stable on the wire) toolgate decides on. */
export const GrpcStatus = { CANCELLED: 1, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, RESOURCE_EXHAUSTED: 8, UNAVAILABLE: 14 } as const;

/**
 * The gRPC status code behind a Temporal client error: the error's own (the raw gRPC error some
 * calls pass through, e.g. `fetchHistory`) or that of the gRPC error it wraps (`ServiceError`,
 * `WorkflowUpdateRPCTimeoutOrCancelledError` keep it as `cause`). Undefined for anything else.
 */
export function grpcStatusOf(err: unknown): number | undefined {
  let current: unknown = err;
  // A short walk: the SDK wraps at most once or twice; a cycle must not loop.
  for (let depth = 0; depth < 4 && current instanceof Error; depth += 1) {
    if (isGrpcServiceError(current)) return Number(current.code);
    if (!(current instanceof ServiceError || current instanceof WorkflowUpdateRPCTimeoutOrCancelledError)) return undefined;
    current = current.cause;
  }
  return undefined;
}

/** Which of Temporal's parts a failed call could not reach, from its gRPC status; undefined when it reached them. */
export function temporalUnavailability(err: unknown): 'temporal_unavailable' | 'worker_unavailable' | undefined {
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return 'worker_unavailable';
  const code = grpcStatusOf(err);
  // The server itself is out of reach (connection refused, dropped, no route).
  if (code === GrpcStatus.UNAVAILABLE) return 'temporal_unavailable';
  // The server took the call but nothing answered in time: a query or an update waits for a worker.
  if (code === GrpcStatus.DEADLINE_EXCEEDED || code === GrpcStatus.CANCELLED) return 'worker_unavailable';
  return undefined;
}

/** True for a Temporal call that found no one to answer: the server out of reach, or no worker in time. */
export function isTemporalUnavailable(err: unknown): boolean {
  return temporalUnavailability(err) !== undefined;
}
