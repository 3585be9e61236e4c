/** Framework adapters: put toolgate in front of an agent's tools in the framework it already uses. */
export { withToolgate, toolgateCheckTool, aiSdkToolHandlers, type AiSdkAdapterOptions } from './ai-sdk.js';
export { ToolgateAgents, openAiToolHandlers, type OpenAiAgentsAdapterOptions, type InterruptionResolution, type ToolgateRunResult } from './openai-agents.js';
export { gatewayFunction, gatewayRequestChecker, type GatewayFunction, type GatewayCallOptions } from './function.js';
export { requestIdForToolCall, type AdapterOptions, type PendingApprovalResult } from './core.js';
