/**
 * `toolgate request override|rollback <requestId> --reason ...`: a person asks the approval API
 * for a break-glass override of a denied request, or for the rollback of a completed one, with
 * their approver token. The API starts the new, linked request; this prints where to follow it.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { IDENTIFIER_PATTERN, type LinkKind } from '../shared/index.js';

/** What the approval API answered: the started request (202), or its error. */
export type LinkedRequestAnswer =
  | { ok: true; requestId: string; state: string; statusUrl: string; link: Record<string, unknown> }
  | { ok: false; status: number; code: string; message: string; requestId?: string };

/** Asks the approval API at `url` for the `kind` of `requestId` (`POST /v1/approvals/:id/override|rollback`). */
export async function requestLinked(
  kind: LinkKind,
  requestId: string,
  options: { reason: string; url: string; token: string; fetch?: typeof globalThis.fetch },
): Promise<LinkedRequestAnswer> {
  const base = options.url.replace(/\/+$/, '');
  let response: Response;
  try {
    response = await (options.fetch ?? globalThis.fetch)(`${base}/v1/approvals/${encodeURIComponent(requestId)}/${kind}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: options.reason }),
    });
  } catch (err) {
    return { ok: false, status: 0, code: 'unreachable', message: `the toolgate API at ${base} could not be reached: ${(err as Error).message}` };
  }
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  const asText = (value: unknown) => (typeof value === 'string' ? value : '');
  if (response.status === 202) {
    return {
      ok: true,
      requestId: asText(body.requestId),
      state: asText(body.state),
      statusUrl: asText(body.statusUrl),
      link: (body.link as Record<string, unknown> | undefined) ?? {},
    };
  }
  const error = (body.error ?? {}) as { code?: unknown; message?: unknown; requestId?: unknown };
  return {
    ok: false,
    status: response.status,
    code: typeof error.code === 'string' ? error.code : 'http_error',
    message: typeof error.message === 'string' ? error.message : `the API answered ${response.status}`,
    ...(typeof error.requestId === 'string' ? { requestId: error.requestId } : {}),
  };
}

/** One line for a person: what was started and where to follow it, or why not. */
export function describeLinkedAnswer(kind: LinkKind, original: string, answer: LinkedRequestAnswer, url: string): string {
  if (answer.ok) {
    const what = kind === 'override' ? `override of ${original}` : `rollback of ${original}`;
    return `${what} requested: ${answer.requestId} (${answer.state}); follow it at ${url.replace(/\/+$/, '')}${answer.statusUrl}`;
  }
  return `${kind} refused (${answer.status} ${answer.code}): ${answer.message}`;
}

const requestIdArgument = (value: string): string => {
  if (!IDENTIFIER_PATTERN.test(value)) throw new InvalidArgumentError('a request id is 1-128 characters of letters, digits and . _ : @ -');
  return value;
};

/** Adds `request override` and `request rollback` to the program. */
export function registerRequestCommands(program: Command): void {
  const request = program.command('request').description('Linked requests a person asks for: break-glass overrides and rollbacks');
  const describe: Record<LinkKind, string> = {
    override: 'Ask for a break-glass override of a denied request (a second person of the break-glass groups must approve it)',
    rollback: 'Ask for the rollback of a completed request with the undo tool its manifest names (someone else approves it)',
  };
  for (const kind of ['override', 'rollback'] as const) {
    request
      .command(kind)
      .description(describe[kind])
      .argument('<requestId>', 'the original request', requestIdArgument)
      .requiredOption('--reason <text>', 'why (1-2000 characters; kept with the new request)')
      .option('--url <url>', 'the toolgate API', process.env.TOOLGATE_URL ?? 'http://127.0.0.1:8787')
      .option('--token <token>', 'your approver token (`toolgate token issue`); default: TOOLGATE_APPROVER_TOKEN')
      .option('--json', 'print the API answer as JSON')
      .action(async (requestId: string, options: { reason: string; url: string; token?: string; json?: boolean }) => {
        const token = options.token ?? process.env.TOOLGATE_APPROVER_TOKEN;
        if (!token) throw new InvalidArgumentError('an approver token is required: --token <token> or TOOLGATE_APPROVER_TOKEN');
        const answer = await requestLinked(kind, requestId, { reason: options.reason, url: options.url, token });
        process.stdout.write(`${options.json ? JSON.stringify(answer) : describeLinkedAnswer(kind, requestId, answer, options.url)}\n`);
        if (!answer.ok) process.exitCode = 1;
      });
  }
}
