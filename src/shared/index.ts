/** The one shared module: schemas, message definitions, approval rules and the task queue. */
export * from './schemas.js';
export * from './messages.js';
export * from './approval.js';
export * from './kill-switch.js';
export * from './identity.js';
export * from './assertions.js';
