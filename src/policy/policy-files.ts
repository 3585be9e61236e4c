/**
 * Finding and reading policy files on disk: directories expanded into their YAML files, each file
 * read as strict UTF-8 within the size limit, every failure a located `PolicyIssue`.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { PolicyIssue } from './errors.js';
import { errorText } from './sections.js';
import { MAX_POLICY_FILE_BYTES } from './source.js';

/** One policy file's text and the name used in issues. */
export interface PolicySource {
  file: string;
  text: string;
}

/** True for policy YAML file names (not test files). */
export function isPolicyFile(name: string): boolean {
  return /\.ya?ml$/.test(name) && !/\.test\.ya?ml$/.test(name);
}

/** Expands files and directories into a file list; directories contribute sorted matching entries. */
export async function expandPaths(paths: string[], matches: (name: string) => boolean): Promise<{ files: string[]; issues: PolicyIssue[] }> {
  const files: string[] = [];
  const issues: PolicyIssue[] = [];
  for (const path of paths) {
    try {
      const info = await stat(path);
      if (info.isDirectory()) {
        const names = (await readdir(path)).filter(matches).sort();
        files.push(...names.map((name) => join(path, name)));
      } else {
        files.push(path);
      }
    } catch (error) {
      issues.push({ file: path, path: '(file)', message: `cannot read: ${errorText(error)}` });
    }
  }
  return { files, issues };
}

/** Reads one file as UTF-8 after checking its size; returns the source or a located issue. */
export async function readSource(file: string): Promise<PolicySource | { issue: PolicyIssue }> {
  try {
    const info = await stat(file);
    if (info.size > MAX_POLICY_FILE_BYTES) {
      return {
        issue: {
          file,
          line: 1,
          column: 1,
          path: '(file)',
          message: `file is ${info.size} bytes; policy files may be at most ${MAX_POLICY_FILE_BYTES} bytes (1 MiB)`,
        },
      };
    }
    const bytes = await readFile(file);
    try {
      return { file, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
    } catch {
      // Decoding would silently turn the bad bytes into U+FFFD: refuse, and say where they are.
      const lossy = bytes.toString('utf8');
      const before = lossy.slice(0, Math.max(lossy.indexOf('\uFFFD'), 0));
      const line = before.split('\n').length;
      return {
        issue: { file, line, column: before.length - before.lastIndexOf('\n'), path: '(file)', message: 'the file is not valid UTF-8 here; save it as UTF-8' },
      };
    }
  } catch (error) {
    return { issue: { file, path: '(file)', message: `cannot read: ${errorText(error)}` } };
  }
}
