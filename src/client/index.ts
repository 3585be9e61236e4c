/** The client SDK: submit tool requests to toolgate and read their outcomes. */
export { ToolGateway, ToolRequestHandle, type ToolGatewayOptions } from './gateway.js';
export * from './errors.js';
export type { ToolOutcome, ToolRequest, ToolRequestInput, RequestStatus } from '../shared/index.js';
