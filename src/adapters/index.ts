/** Framework adapters: put toolgate in front of an agent's tools in the framework it already uses. */
export { withToolgate, toolgateCheckTool, aiSdkToolHandlers, aiSdkProvenance, toolOutputTexts, type AiSdkAdapterOptions } from './ai-sdk.js';
export { ToolgateAgents, openAiToolHandlers, type OpenAiAgentsAdapterOptions, type InterruptionResolution, type ToolgateRunResult } from './openai-agents.js';
export { gatewayFunction, gatewayRequestChecker, type GatewayFunction, type GatewayCallOptions } from './function.js';
export {
  requestIdForToolCall,
  flagVerbatim,
  mergeProvenance,
  type AdapterOptions,
  type PendingApprovalResult,
  type ProvenanceCall,
  type ProvenanceOption,
} from './core.js';
