/** The client SDK: submit tool requests to toolgate and read their outcomes. */
export { ToolGateway, ToolRequestHandle, type AgentIdentityView, type ConfirmInput, type ToolCallInput, type ToolGatewayOptions } from './gateway.js';
export * from './errors.js';
export type { AgentRequestView, ToolOutcome, ToolRequest, RequestStatus } from '../shared/index.js';
