/**
 * The dry-run preview activities: run a tool's declared preview for a request sent to approval
 * (or record why there is none), and seal the evaluation with the preview in its proposal.
 */
import { Context } from '@temporalio/activity';
import { proposalDigest } from '../src/approvals/digest.js';
import { countRedactions } from '../src/metrics.js';
import { PREVIEW_BOUNDS, type Evaluation, type Proposal, type ProposalPreview, type ToolRequest } from '../src/shared/index.js';
import { EvidenceError, verifyAdmission } from '../src/trust/evidence.js';
import { runPreview } from '../src/tools/preview.js';
import { evidenceContext, unverified, type ActivityDeps, type SealedEvaluation, type TrustedContext } from './deps.js';

/**
 * Input of the preview activities: the request as it is now, the evidence that it was admitted
 * (and edited), and policy's sealed evaluation, which asked for approval and carries no preview yet.
 */
export interface PreviewToolInput {
  request: ToolRequest;
  admission: string;
  /** The accepted edit whose arguments `request` carries. */
  edit?: string;
  /** The request as admitted, when an edit changed its arguments since. */
  admitted?: ToolRequest;
  evaluation: SealedEvaluation;
}

/** The activities of the preview group, bound to `deps`. */
export function previewActivities(deps: ActivityDeps) {
  /**
   * The evaluation a preview may be added to, once checked: the request was admitted (and edited)
   * as it says, the evaluation carries this worker deployment's seal for this run, policy asked
   * for approval, and the tool declared a preview that has not run yet. Anything else refuses:
   * a preview is called only on the way to people who must approve, never for a tool without.
   */
  const previewable = async (input: PreviewToolInput, trusted: TrustedContext): Promise<Evaluation & { proposal: Proposal; digest: string }> => {
    const { request } = input;
    try {
      await verifyAdmission(
        { admission: input.admission, admitted: input.admitted ?? request, request, ...(input.edit === undefined ? {} : { edit: input.edit }) },
        trusted,
      );
    } catch (err) {
      if (err instanceof EvidenceError) throw unverified(`the request was not admitted by the front door: ${err.message}`);
      throw err;
    }
    const { seal, ...evaluation } = input.evaluation;
    if (!deps.trust.sealer.verify({ workflowId: trusted.workflowId, runId: trusted.runId, request, evaluation }, seal)) {
      throw unverified("the evaluation does not carry this worker deployment's seal for this run");
    }
    const { proposal, digest } = evaluation;
    if (evaluation.decision.outcome !== 'approve' || !proposal || !digest || evaluation.previewTimeoutMs === undefined || proposal.preview !== undefined) {
      throw unverified('a preview runs once per approval round, only for a tool that declares one and a request policy sent to approval');
    }
    return { ...evaluation, proposal, digest };
  };

  /** The evaluation with `preview` in its proposal, digested again and sealed: what approvers then sign. */
  const sealPreview = (
    evaluation: Evaluation & { proposal: Proposal },
    preview: ProposalPreview,
    request: ToolRequest,
    trusted: TrustedContext,
  ): SealedEvaluation => {
    const proposal: Proposal = { ...evaluation.proposal, preview };
    const next: Evaluation = { ...evaluation, proposal, digest: proposalDigest(proposal) };
    return { ...next, seal: deps.trust.sealer.seal({ workflowId: trusted.workflowId, runId: trusted.runId, request, evaluation: next }) };
  };

  return {
    /**
     * Runs the tool's dry-run preview (manifest `preview:`) for a request policy sent to approval,
     * under the tool's identity with `preview: true` (code) or `Toolgate-Preview: 1` (http), and
     * returns the evaluation with the preview's answer in its proposal, digested again and sealed:
     * approvals then bind to what approvers were shown. Scheduled with one attempt and never
     * retried; the answer leaves through the egress filter (see src/tools/preview.ts). A failure
     * or timeout is the preview's content (`failed`, `timed_out`), not the activity's: the
     * approval goes on. Only evidence that does not verify fails the activity.
     */
    async previewTool(input: PreviewToolInput): Promise<SealedEvaluation> {
      const trusted = evidenceContext(deps);
      const evaluation = await previewable(input, trusted);
      const { request } = input;
      const at = new Date().toISOString();
      const manifest = deps.policy.current().policy?.manifest(request.tool);
      const killSwitch = await deps.killSwitches?.covering(request.tenant, request.tool);
      let preview: ProposalPreview;
      if (!manifest?.preview) {
        preview = { status: 'failed', message: `the tool manifest in force declares no preview for ${request.tool}`, at };
      } else if (manifest.digest !== evaluation.decision.toolDigest) {
        // Preview exactly the tool that was evaluated; the execution would refuse the changed one anyway.
        preview = { status: 'failed', message: `the manifest of ${request.tool} changed since the request was evaluated; the preview was not run`, at };
      } else if (killSwitch) {
        preview = {
          status: 'failed',
          message: `a kill switch is on for ${killSwitch.tool ?? 'every tool'} of tenant ${killSwitch.tenant}; the preview was not run`,
          at,
        };
      } else {
        preview = await runPreview({
          manifest,
          preview: manifest.preview,
          context: {
            args: request.args,
            // Not the execution's key: a tool that deduplicates must never answer the real call with the preview.
            idempotencyKey: `toolgate-preview:${trusted.workflowId}:${evaluation.digest}`,
            runAs: evaluation.decision.runAs ?? 'unknown',
            requestId: request.requestId,
            tenant: request.tenant,
            tool: request.tool,
            ...(request.traceId === undefined ? {} : { traceId: request.traceId }),
          },
          tools: deps.tools,
          signal: Context.current().cancellationSignal,
        });
      }
      deps.logger.info({ requestId: request.requestId, tool: request.tool, tenant: request.tenant, preview: preview.status }, 'dry-run preview');
      if (preview.status === 'ok') countRedactions(request.tool, preview.redactions ?? {});
      return sealPreview(evaluation, preview, request, trusted);
    },

    /**
     * When the preview activity itself gave no answer (no worker ran it in time, or its worker
     * died): the evaluation with that failure as its preview, sealed, so the approval goes on with
     * approvers told so. A local activity of the workflow; the message is this worker's own.
     */
    async recordPreviewFailure(input: PreviewToolInput & { reason: 'timed_out' | 'failed' }): Promise<SealedEvaluation> {
      if (!Context.current().info.isLocal) throw unverified('a preview failure is recorded only as a local activity of a toolgate workflow');
      const trusted = evidenceContext(deps);
      const evaluation = await previewable(input, trusted);
      const message =
        input.reason === 'timed_out'
          ? `no worker ran the preview within its time (${evaluation.previewTimeoutMs ?? '?'} ms and ${PREVIEW_BOUNDS.pickUpMs} ms to start it); decide without it`
          : 'the preview could not be run (its activity failed before answering); decide without it';
      return sealPreview(evaluation, { status: input.reason, message, at: new Date().toISOString() }, input.request, trusted);
    },
  };
}
