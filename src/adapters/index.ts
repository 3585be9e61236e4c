/** Framework adapters: put toolgate in front of an agent's tools in the framework it already uses. */
export {
  withToolgate,
  toolgateCheckTool,
  aiSdkToolHandlers,
  aiSdkProvenance,
  toolOutputTexts,
  declineToolgateCalls,
  type AiSdkAdapterOptions,
  type DeclinedCall,
} from './ai-sdk.js';
export {
  ToolgateAgents,
  openAiToolHandlers,
  type OpenAiAgentsAdapterOptions,
  type InterruptionResolution,
  type ToolgateRunResult,
  type EndUserInterruption,
} from './openai-agents.js';
export { gatewayFunction, gatewayRequestChecker, type GatewayFunction, type GatewayCallOptions } from './function.js';
export {
  requestIdForToolCall,
  flagVerbatim,
  mergeProvenance,
  relayEndUserAnswer,
  type AdapterOptions,
  type EndUserAnswer,
  type EndUserProposal,
  type PendingApprovalResult,
  type ProvenanceCall,
  type ProvenanceOption,
  type RelayOutcome,
} from './core.js';
