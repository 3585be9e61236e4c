/**
 * Experiment (scenario 5's cause): the bare baseline workflows plus one side-effect import of
 * toolgate's shared module, as `workflows/tool-request.ts` has. The reusable V8 context evaluates a
 * bundle's modules once per workflow, so whatever the shared index pulls in (zod and every schema)
 * is built again for each cached workflow. Compare its memory per pending workflow with the bare one.
 */
import '../../src/shared/index.js';

export * from '../baseline-workflows.js';
