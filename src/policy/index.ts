/** The policy engine: load and validate policy files, decide tool requests, run policy tests. */
export { PolicyLoadError, formatPolicyIssue, type PolicyIssue } from './errors.js';
export type {
  LoadedPolicy,
  ToolManifestEntry,
  CompiledTool,
  CompiledRule,
  PolicyFileSummary,
  McpAdapter,
  McpServerConnection,
  BreakGlassRule,
} from './model.js';
export { parsePolicy, loadPolicy, type PolicyLoadOptions } from './load.js';
export type { PolicySource } from './policy-files.js';
export {
  manifestDigest,
  manifestKeyId,
  manifestTrustOf,
  loadManifestTrust,
  manifestTrustFromConfig,
  signManifestEntry,
  verifyManifestSignatures,
  describeSigners,
  ManifestTrustError,
  ManifestSigningError,
  type ManifestTrust,
  type ManifestSignature,
  type TrustedManifestKey,
} from './manifest-signatures.js';
export { decide } from './decide.js';
export { runPolicyTests, type PolicyTestResult } from './policy-tests.js';
export { checkPolicyFiles } from './check.js';
export { MAX_POLICY_FILE_BYTES, MAX_ALIASES } from './source.js';
export {
  RateLimits,
  RateLimitStoreError,
  RATE_LIMIT_TABLE,
  MEMORY_STORE_MAX_KEYS,
  libraryWindow,
  parseRate,
  type RateLimitStore,
  type RateLimitRule,
  type RateLimited,
  type PostgresRateLimitOptions,
} from './limits.js';
export { deriveUndoArgs, UndoUnavailable, type UndoInput, type UndoUnavailableCode } from './undo.js';
export { OVERRIDABLE_DENIAL_CODES, BREAK_GLASS_BOUNDS, isOverridable } from './break-glass.js';
