/**
 * `toolgate policy check`: load policy files and report, as printable lines, either every issue
 * (`file:line:col: path: message`) or one summary line per file.
 */
import { formatPolicyIssue, PolicyLoadError } from './errors.js';
import { loadPolicy } from './load.js';

/** Checks policy files together; `ok` is false when they do not load, and `lines` say why. */
export async function checkPolicyFiles(paths: string[]): Promise<{ ok: boolean; lines: string[] }> {
  try {
    const policy = await loadPolicy(paths);
    const lines = policy.summaries.map(
      (summary) =>
        `${summary.file}: ok (${count(summary.tools.length, 'tool')}, ${count(summary.approvals.length, 'approval plan')}, ${count(summary.manifest.length, 'manifest entry', 'manifest entries')})`,
    );
    lines.push(`policy digest ${policy.digest} (${count(policy.toolNames.length, 'tool')} in ${count(policy.files.length, 'file')})`);
    return { ok: true, lines };
  } catch (error) {
    if (error instanceof PolicyLoadError) return { ok: false, lines: error.issues.map(formatPolicyIssue) };
    return { ok: false, lines: [`policy check failed: ${error instanceof Error ? error.message : String(error)}`] };
  }
}

function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
