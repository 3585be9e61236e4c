/**
 * A policy set's sections as the loader holds them: each file validated against the document
 * schema, its named definitions merged across files (a name defined twice is an issue), zod issues
 * turned into located `PolicyIssue`s, and durations read from their text.
 */
import type { z } from 'zod';
import { msToNumber } from '../temporal/internals.js';
import type { PolicyFileDocument } from './document.js';
import type { PolicyIssue } from './errors.js';
import type { YamlSource } from './source.js';

/** One policy file that passed the document schema: its located source, raw value and parsed data. */
export interface ValidFile {
  source: YamlSource;
  raw: Record<string, Record<string, unknown> | undefined>;
  data: PolicyFileDocument;
}

/** One named definition of a section: the value, the file it came from and its raw form (for the digest). */
export interface Defined<T> {
  source: YamlSource;
  value: T;
  raw: unknown;
}

/** The sections whose entries are named definitions, merged across files. */
export type Section = 'tools' | 'approvals' | 'manifest' | 'mcp_servers' | 'limits' | 'break_glass';

/** Maps zod issues to located policy issues (unknown keys are reported at the key itself). */
export function zodIssues(source: YamlSource, error: z.ZodError): PolicyIssue[] {
  const out: PolicyIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path.filter((part): part is string | number => typeof part !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(source.issue([...path, key], `unknown key "${key}"`, { key: true }));
    } else if (issue.code === 'invalid_key') {
      const inner = issue.issues[0]?.message ?? issue.message;
      out.push(source.issue(path, `invalid name: ${inner}`, { key: true }));
    } else if (isMissing(source.value, path)) {
      out.push(source.issue(path, 'is required'));
    } else {
      out.push(source.issue(path, issue.message));
    }
  }
  return out;
}

function isMissing(value: unknown, path: readonly (string | number)[]): boolean {
  let node: unknown = value;
  for (const [index, part] of path.entries()) {
    if (node === null || typeof node !== 'object') return false;
    const has = Object.hasOwn(node, part);
    if (!has) return index === path.length - 1;
    node = (node as Record<string | number, unknown>)[part];
  }
  return false;
}

/** The definitions of one section across `files`, by name; a name defined in two files is an issue (the first one stays). */
export function merge<T>(
  files: ValidFile[],
  section: Section,
  pick: (file: ValidFile) => Record<string, T> | undefined,
  issues: PolicyIssue[],
): Map<string, Defined<T>> {
  const out = new Map<string, Defined<T>>();
  for (const file of files) {
    for (const [name, value] of Object.entries(pick(file) ?? {})) {
      const first = out.get(name);
      if (first) {
        const kind = {
          approvals: 'approval plan',
          tools: 'tool',
          mcp_servers: 'MCP server',
          manifest: 'manifest entry',
          limits: 'rate limit',
          break_glass: 'break-glass rule',
        }[section];
        issues.push(
          file.source.issue([section, name], `${kind} "${name}" is defined in both ${first.source.file} and ${file.source.file}; define it once`, {
            key: true,
          }),
        );
        continue;
      }
      out.set(name, { source: file.source, value, raw: file.raw[section]?.[name] });
    }
  }
  return out;
}

/** Milliseconds of a duration text (500ms, 30s, 2h); an issue at `path` and undefined when it is not a positive one. */
export function duration(source: YamlSource, path: (string | number)[], text: string, issues: PolicyIssue[]): number | undefined {
  let ms: number;
  try {
    ms = msToNumber(text as Parameters<typeof msToNumber>[0]);
  } catch {
    issues.push(source.issue(path, `"${text}" is not a duration; use a number with a unit such as 500ms, 30s, 30m, 2h or 1d`));
    return undefined;
  }
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    issues.push(source.issue(path, `"${text}" must be a positive whole number of milliseconds`));
    return undefined;
  }
  return ms;
}

/** The message of a thrown value. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
