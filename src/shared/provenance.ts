/**
 * A request's provenance: the agent runtime's account of untrusted content behind its arguments and
 * of how the prompt was assembled. Pure (no I/O).
 */
import { z } from 'zod';
import { parseArgPath } from './arg-paths.js';

/**
 * Kinds of content nobody vouches for, as an agent runtime labels where an argument's value came
 * from: retrieved documents (RAG), web pages, earlier tools' outputs, files users uploaded, e-mail.
 */
export const PROVENANCE_KINDS = ['retrieved_document', 'web_page', 'tool_output', 'user_upload', 'email', 'other'] as const;
export type ProvenanceKind = (typeof PROVENANCE_KINDS)[number];

/** Bounds of a request's provenance (it travels in the signed request and in every history). */
export const PROVENANCE_LIMITS = Object.freeze({ paths: 64, pathChars: 256, sources: 100, sourceChars: 256, modelChars: 256 });
const provenanceText = (what: string, max: number) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, { error: `${what} must not be empty` })
    .max(max, { error: `${what} must be at most ${max} characters` })
    .refine((text) => text.isWellFormed(), { error: `${what} must be well-formed Unicode text (no lone surrogates)` });

/**
 * What the agent runtime says about the content behind a request: which arguments came from
 * untrusted content (`untrusted`: argument path → kinds), and how the prompt was assembled
 * (`prompt`: model, SHA-256 of the system prompt, ids of the retrieved sources).
 *
 * A claim from outside the trust boundary: the front door signs it with the request, so nobody
 * can change it after admission, but it is only as honest as the runtime that made it. Policy
 * may use it to be stricter (an argument flagged untrusted needs approval), never to grant more:
 * an argument without a flag is not thereby trusted.
 */
export const ProvenanceSchema = z.strictObject(
  {
    untrusted: z
      .record(
        z.string(),
        z
          .array(
            z.enum(PROVENANCE_KINDS, {
              error: (issue) =>
                `${JSON.stringify(String(issue.input).slice(0, 40))} is not a kind of untrusted content; allowed: ${PROVENANCE_KINDS.join(', ')}`,
            }),
            { error: `each argument path must map to a list of kinds (${PROVENANCE_KINDS.join(', ')})` },
          )
          .min(1, { error: `list at least one kind (${PROVENANCE_KINDS.join(', ')})` })
          .refine((kinds) => new Set(kinds).size === kinds.length, { error: 'lists a kind twice' }),
        { error: 'provenance.untrusted must be an object of argument paths (args.to) to lists of kinds' },
      )
      .superRefine((untrusted, ctx) => {
        const paths = Object.keys(untrusted);
        if (paths.length > PROVENANCE_LIMITS.paths)
          ctx.addIssue({ code: 'custom', message: `provenance.untrusted may flag at most ${PROVENANCE_LIMITS.paths} argument paths` });
        for (const path of paths.slice(0, PROVENANCE_LIMITS.paths + 1)) {
          if (path.length > PROVENANCE_LIMITS.pathChars) {
            ctx.addIssue({ code: 'custom', path: [path.slice(0, 64)], message: `an argument path must be at most ${PROVENANCE_LIMITS.pathChars} characters` });
            continue;
          }
          const parsed = parseArgPath(path);
          if ('error' in parsed) ctx.addIssue({ code: 'custom', path: [path], message: `not an argument path: ${parsed.error}` });
        }
      })
      .optional(),
    prompt: z
      .strictObject(
        {
          model: provenanceText('provenance.prompt.model', PROVENANCE_LIMITS.modelChars).optional(),
          systemPromptDigest: z
            .string({ error: 'provenance.prompt.systemPromptDigest must be a string' })
            .regex(/^[a-f0-9]{64}$/, { error: 'provenance.prompt.systemPromptDigest must be the SHA-256 of the system prompt as 64 lowercase hex characters' })
            .optional(),
          sources: z
            .array(provenanceText('provenance.prompt.sources[]', PROVENANCE_LIMITS.sourceChars), {
              error: 'provenance.prompt.sources must be a list of source ids',
            })
            .max(PROVENANCE_LIMITS.sources, { error: `provenance.prompt.sources may list at most ${PROVENANCE_LIMITS.sources} ids` })
            .optional(),
        },
        { error: 'provenance.prompt must be an object with model, systemPromptDigest and sources' },
      )
      .optional(),
  },
  { error: 'provenance must be an object with untrusted and prompt' },
);
export type Provenance = z.infer<typeof ProvenanceSchema>;
