/** The one shared module: the wire contract (requests, decisions, status), message definitions, approval rules and the task queue. */
export { IDENTIFIER_PATTERN, MAX_ARGS_BYTES, MAX_ARGS_DEPTH, formatIssues } from './fields.js';
export * from './arg-paths.js';
export * from './provenance.js';
export * from './requests.js';
export * from './policy-decisions.js';
export * from './approver-decisions.js';
export * from './request-status.js';
export * from './messages.js';
export * from './approval.js';
export * from './kill-switch.js';
export * from './identity.js';
export * from './assertions.js';
