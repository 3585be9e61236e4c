/**
 * The workers' seal on a policy evaluation. Only the policy activity, running as a local activity
 * of a real toolgate workflow, seals what it decided; the execution activity acts only on a sealed
 * evaluation. Whoever can write into Temporal (a rogue worker completing workflow tasks, a forged
 * local-activity marker) cannot produce a seal without the workers' secret, so cannot make a
 * worker act on a decision that policy never made.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalSha256 } from '../shared/assertions.js';
import type { Evaluation } from '../shared/policy-decisions.js';
import type { ToolRequest } from '../shared/requests.js';

/** What a seal binds: the workflow and its run, the exact request evaluated, and the evaluation. */
export interface SealedFacts {
  workflowId: string;
  /** The run that evaluated: evidence copied into another run of the same id proves nothing. */
  runId: string;
  request: ToolRequest;
  evaluation: Evaluation;
}

/** Seals and checks evaluations with the workers' shared secret (HMAC-SHA256 over canonical JSON). */
export class EvaluationSealer {
  constructor(private readonly secret: Buffer) {
    if (secret.length < 32) throw new Error('the evaluation seal secret must be at least 32 bytes');
  }

  /** The seal of `facts` (base64url). */
  seal(facts: SealedFacts): string {
    return createHmac('sha256', this.secret).update(this.message(facts)).digest('base64url');
  }

  /** Whether `seal` is the seal of `facts`, compared in constant time. */
  verify(facts: SealedFacts, seal: unknown): boolean {
    if (typeof seal !== 'string') return false;
    const expected = Buffer.from(this.seal(facts), 'base64url');
    const given = Buffer.from(seal, 'base64url');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private message(facts: SealedFacts): string {
    return `toolgate-evaluation-seal-v2\n${facts.workflowId}\n${facts.runId}\n${canonicalSha256(facts.request)}\n${canonicalSha256(facts.evaluation)}`;
  }
}
