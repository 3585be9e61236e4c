/**
 * Hardened YAML reading for policy files: size limit, alias limit, unique keys, no custom tags,
 * and a way back from a field path (or a byte offset) to the line and column it came from.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import type { PolicyIssue } from './errors.js';

/** Largest policy file accepted, in bytes. */
export const MAX_POLICY_FILE_BYTES = 1024 * 1024;

/** Most alias references a policy file may contain (policies rarely need any). */
export const MAX_ALIASES = 100;

/** One parsed YAML file: its plain value and the means to locate fields in it. */
export interface YamlSource {
  file: string;
  value: unknown;
  /** Location of the node at `path`, or of its nearest existing parent; `key` prefers the map key. */
  locate(path: readonly PropertyKey[], options?: { key?: boolean }): { line: number; column: number };
  /** A ready issue at `path` with `message`. */
  issue(path: readonly PropertyKey[], message: string, options?: { key?: boolean }): PolicyIssue;
}

/** Deepest nesting of flow collections (`[...]`, `{...}`) a policy file may use; policies need a handful. */
export const MAX_FLOW_DEPTH = 64;

/**
 * The offset where flow nesting first goes deeper than `limit`, or -1. A linear scan that skips
 * comments and quoted scalars: the YAML parser's time grows steeply with nesting (a 1 MiB file
 * of `[` takes seconds), so pathological nesting is refused before it is parsed.
 */
function flowTooDeep(text: string, limit: number): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const previous = text[i - 1] ?? '\n';
    if (c === '#' && /\s/.test(previous)) {
      const end = text.indexOf('\n', i);
      if (end < 0) break;
      i = end;
    } else if ((c === '"' || c === "'") && /[\s:,[{]/.test(previous)) {
      for (i++; i < text.length; i++) {
        if (c === '"' && text[i] === '\\') i++;
        else if (text[i] === c && c === "'" && text[i + 1] === "'") i++;
        else if (text[i] === c) break;
      }
    } else if (c === '[' || c === '{') {
      if (++depth > limit) return i;
    } else if ((c === ']' || c === '}') && depth > 0) {
      depth--;
    }
  }
  return -1;
}

/** Renders a field path as `a.b[0].c`, or `(root)` when empty; a very long key is shortened. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? shorten(String(segment)) : `.${shorten(String(segment))}`;
  }
  return out === '' ? '(root)' : out;
}

/** `text`, or its first 40 characters and its length when it is longer than 64: issues stay readable. */
function shorten(text: string): string {
  return text.length <= 64 ? text : `${text.slice(0, 40)}…(${text.length} characters)`;
}

/** Parses one YAML file defensively; returns the source or the issues that prevent reading it. */
export function readYaml(file: string, text: string): { source?: YamlSource; issues: PolicyIssue[] } {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_POLICY_FILE_BYTES) {
    return {
      issues: [
        { file, line: 1, column: 1, path: '(file)', message: `file is ${bytes} bytes; policy files may be at most ${MAX_POLICY_FILE_BYTES} bytes (1 MiB)` },
      ],
    };
  }
  const tooDeep = flowTooDeep(text, MAX_FLOW_DEPTH);
  if (tooDeep >= 0) {
    const before = text.slice(0, tooDeep);
    const line = before.split('\n').length;
    return {
      issues: [
        {
          file,
          line,
          column: tooDeep - before.lastIndexOf('\n'),
          path: '(file)',
          message: `[ ] and { } nest more than ${MAX_FLOW_DEPTH} levels deep here; policy files may nest at most ${MAX_FLOW_DEPTH}`,
        },
      ],
    };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: false, // checked below in linear time; yaml's own check is quadratic per map
    schema: 'core',
    customTags: [],
    merge: false,
    strict: true,
    stringKeys: true,
  });
  const position = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const issues: PolicyIssue[] = [];
  for (const problem of [...doc.errors, ...doc.warnings]) {
    const path = pathAtOffset(doc, problem.pos[0]);
    issues.push({ file, ...position(problem.pos[0]), path: formatPath(path), message: problem.message.split('\n')[0] ?? problem.message });
  }
  const aliases: Node[] = [];
  visit(doc, {
    Alias: (_key, node) => void aliases.push(node),
    Scalar: (_key, node) => {
      // .nan, .inf and 1e999 are numbers YAML allows and JSON (and the policy digest) cannot hold.
      if (typeof node.value !== 'number' || Number.isFinite(node.value)) return;
      const offset = node.range?.[0] ?? 0;
      issues.push({
        file,
        ...position(offset),
        path: formatPath(pathAtOffset(doc, offset)),
        message: `${shorten(String(node.source ?? node.value))} is not a finite number; use a finite number or quote it as a string`,
      });
    },
    Map: (_key, map) => {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (!seen.has(key)) {
          seen.add(key);
          continue;
        }
        const offset = (pair.key as Node | null)?.range?.[0] ?? map.range?.[0] ?? 0;
        issues.push({
          file,
          ...position(offset),
          path: formatPath(pathAtOffset(doc, offset)),
          message: `duplicate key "${String(key)}"; YAML keys must be unique`,
        });
      }
    },
  });
  if (aliases.length > MAX_ALIASES) {
    const first = aliases[0]?.range?.[0] ?? 0;
    issues.push({
      file,
      ...position(first),
      path: formatPath(pathAtOffset(doc, first)),
      message: `too many aliases (${aliases.length}); at most ${MAX_ALIASES} are allowed`,
    });
  }
  if (issues.length > 0) return { issues };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (error) {
    const first = aliases[0]?.range?.[0] ?? 0;
    const reason = error instanceof Error ? error.message : String(error);
    return { issues: [{ file, ...position(first), path: formatPath(pathAtOffset(doc, first)), message: `cannot expand aliases: ${reason}` }] };
  }
  const locate = (path: readonly PropertyKey[], options?: { key?: boolean }) => position(offsetOf(doc, path, options?.key ?? false));
  const source: YamlSource = {
    file,
    value,
    locate,
    issue: (path, message, options) => ({ file, ...locate(path, options), path: formatPath(path), message }),
  };
  return { source, issues };
}

function offsetOf(doc: Document, path: readonly PropertyKey[], preferKey: boolean): number {
  let node: unknown = doc.contents;
  let offset = doc.contents?.range?.[0] ?? 0;
  for (const [index, segment] of path.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (!pair) break;
      const keyNode = pair.key as Node;
      if (preferKey && index === path.length - 1) return keyNode.range?.[0] ?? offset;
      node = pair.value;
      offset = (pair.value as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment] as Node | undefined;
      if (!item) break;
      node = item;
      offset = item.range?.[0] ?? offset;
    } else {
      break; // scalars and aliases: the nearest existing node is the answer
    }
  }
  return offset;
}

/** The field path of the innermost key or value containing `offset`. */
function pathAtOffset(doc: Document, offset: number): PropertyKey[] {
  const path: PropertyKey[] = [];
  let node: unknown = doc.contents;
  for (;;) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && contains(item.key, offset, item.value));
      if (!pair || !isScalar(pair.key)) return path;
      path.push(String(pair.key.value));
      if (within(pair.key, offset)) return path;
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => within(item, offset));
      if (index < 0) return path;
      path.push(index);
      node = node.items[index];
    } else {
      return path;
    }
  }
}

function within(node: unknown, offset: number): boolean {
  const range = (node as Node | null)?.range;
  return range !== undefined && range !== null && range[0] <= offset && offset < Math.max(range[2], range[0] + 1);
}

function contains(key: unknown, offset: number, value: unknown): boolean {
  const start = (key as Node | null)?.range?.[0];
  const end = (value as Node | null)?.range?.[2] ?? (key as Node | null)?.range?.[2];
  return start !== undefined && end !== undefined && start <= offset && offset < Math.max(end, start + 1);
}
