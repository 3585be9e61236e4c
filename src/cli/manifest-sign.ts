/**
 * Signing manifest entries in policy files (`toolgate manifest sign`): one role's signature added
 * to (or replacing its earlier one in) each entry, written into the files as a text edit of the
 * entry's `signatures:` lines only, so every other byte of the file — comments, alignment, quoting —
 * stays as the author wrote it and a signing commit's diff shows nothing but signatures. Each edit
 * is checked (every digest unchanged, exactly the intended signatures) before a file is written.
 */
import type { KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { parsePolicy, type LoadedPolicy, type PolicySource } from '../policy/index.js';
import { readPolicySources } from '../policy/load.js';
import { ManifestSigningError, signManifestEntry, type ManifestSignature } from '../policy/manifest-signatures.js';
import { readYaml } from '../policy/source.js';
import { IDENTIFIER_PATTERN } from '../shared/index.js';

/** What `manifest sign` did to one entry. */
export interface ManifestSignResult {
  tool: string;
  file: string;
  /** `signed`: a new signature of this role; `replaced`: this role's earlier signature replaced; `unchanged`: the same signature was there. */
  status: 'signed' | 'replaced' | 'unchanged';
  role: string;
  key: string;
  digest: string;
}

/** Options of {@link signManifestFiles}. */
export interface ManifestSignOptions {
  role: string;
  privateKey: KeyObject;
  /** Only these tools; default: every manifest entry of the files. */
  tools?: readonly string[];
}

/**
 * Signs the manifest entries of the policy files at `paths` as `role` and writes the files whose
 * signatures changed. The files must load as a policy (a signature vouches for an entry that
 * validates); the digest signed is the one the loader computes. Each file is checked after the
 * edit — every entry's digest unchanged, the signatures exactly those intended — before it is written.
 */
export async function signManifestFiles(paths: readonly string[], options: ManifestSignOptions): Promise<ManifestSignResult[]> {
  if (!IDENTIFIER_PATTERN.test(options.role))
    throw new ManifestSigningError(`--role must be a role name (letters, digits and . _ : @ -), not "${options.role}"`);
  const sources = await readPolicySources(paths);
  const policy = parsePolicy(sources);
  const wanted = options.tools ? [...new Set(options.tools)] : policy.toolNames;
  const unknown = wanted.filter((tool) => !policy.manifest(tool));
  if (unknown.length > 0)
    throw new ManifestSigningError(`no manifest entry named ${unknown.join(', ')} in ${policy.files.join(', ')} (entries: ${policy.toolNames.join(', ')})`);

  const results: ManifestSignResult[] = [];
  const rewritten: PolicySource[] = [];
  const intended = new Map<string, ManifestSignature[]>();
  for (const source of sources) {
    const entries = manifestOf(source);
    const changes: { tool: string; signatures: ManifestSignature[] }[] = [];
    for (const tool of wanted) {
      const raw = entries[tool];
      if (raw === undefined) continue;
      const digest = policy.manifest(tool)?.digest ?? '';
      const signature = signManifestEntry(tool, digest, options.role, options.privateKey);
      const existing = signaturesOf(raw);
      const index = existing.findIndex((s) => s.role === options.role);
      const same = index >= 0 && existing[index]?.key === signature.key && existing[index]?.sig === signature.sig;
      const next = index >= 0 ? existing.map((s, i) => (i === index ? signature : s)) : [...existing, signature];
      results.push({
        tool,
        file: source.file,
        status: same ? 'unchanged' : index >= 0 ? 'replaced' : 'signed',
        role: options.role,
        key: signature.key,
        digest,
      });
      intended.set(tool, next);
      if (!same) changes.push({ tool, signatures: next });
    }
    if (changes.length > 0) rewritten.push({ file: source.file, text: writeSignatures(source, changes, sources, policy) });
  }
  for (const file of rewritten) await writeFile(file.file, file.text);
  return results;
}

/** The `manifest:` section of a file as plain values. */
function manifestOf(source: PolicySource): Record<string, unknown> {
  const value = readYaml(source.file, source.text).source?.value as { manifest?: Record<string, unknown> } | undefined;
  return value?.manifest && typeof value.manifest === 'object' ? value.manifest : {};
}

function signaturesOf(raw: unknown): ManifestSignature[] {
  const list = (raw as { signatures?: unknown } | null)?.signatures;
  return Array.isArray(list) ? (list as ManifestSignature[]).map((s) => ({ role: s.role, key: s.key, sig: s.sig })) : [];
}

/**
 * The text of `source` with the given entries' signatures set: a text edit of the `signatures:`
 * lines when it reproduces exactly the intended values, else the YAML document re-serialised
 * (comments kept, layout normalised). Either result is checked before it is returned.
 */
function writeSignatures(
  source: PolicySource,
  changes: { tool: string; signatures: ManifestSignature[] }[],
  all: PolicySource[],
  before: LoadedPolicy,
): string {
  const check = (text: string): string | undefined => {
    const candidate = { file: source.file, text };
    let after: LoadedPolicy;
    try {
      after = parsePolicy(all.map((s) => (s.file === source.file ? candidate : s)));
    } catch (err) {
      return (err as Error).message;
    }
    for (const tool of before.toolNames) {
      if (after.manifest(tool)?.digest !== before.manifest(tool)?.digest) return `the digest of ${tool} would change`;
    }
    const entries = manifestOf(candidate);
    for (const { tool, signatures } of changes) {
      if (JSON.stringify(signaturesOf(entries[tool])) !== JSON.stringify(signatures)) return `the signatures of ${tool} would not be written as intended`;
    }
    return undefined;
  };
  const edited = textEdit(source.text, changes);
  if (edited !== undefined && check(edited) === undefined) return edited;
  const reserialised = documentEdit(source.text, changes);
  const problem = check(reserialised);
  if (problem) throw new ManifestSigningError(`cannot write the signatures into ${source.file} without changing it (${problem}); nothing was written`);
  return reserialised;
}

/** A scalar as YAML text: plain when it cannot be read as anything but this string, else JSON-quoted. */
function scalar(text: string): string {
  return /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(text) && !/^(true|false|null|yes|no|on|off|y|n)$/i.test(text) ? text : JSON.stringify(text);
}

function flowItem(signature: ManifestSignature): string {
  return `{ role: ${scalar(signature.role)}, key: ${scalar(signature.key)}, sig: ${scalar(signature.sig)} }`;
}

/** Column of `offset` in `text` (0-based). */
function columnOf(text: string, offset: number): number {
  return offset - (text.lastIndexOf('\n', offset - 1) + 1);
}

/** The text with only the `signatures:` of the changed entries edited, or undefined when the entry's layout is not one this handles. */
function textEdit(text: string, changes: { tool: string; signatures: ManifestSignature[] }[]): string | undefined {
  const doc = parseDocument(text);
  const manifest = doc.get('manifest', true);
  if (!isMap(manifest)) return undefined;
  const edits: { start: number; end: number; insert: string }[] = [];
  for (const { tool, signatures } of changes) {
    const entry = manifest.items.find((pair) => isScalar(pair.key) && pair.key.value === tool)?.value;
    if (!isMap(entry) || !entry.range) return undefined;
    const items = signatures.map(flowItem);
    const existing = entry.items.find((pair) => isScalar(pair.key) && pair.key.value === 'signatures');
    if (existing) {
      const node = existing.value as Node | null;
      if (!node?.range) return undefined;
      const start = node.range[0];
      // A block collection's range runs to the start of the next line: stop at the last item's text.
      let end = isSeq(node) && !node.flow ? ((node.items.at(-1) as Node | undefined)?.range?.[1] ?? node.range[1]) : node.range[1];
      while (end > start && /\s/.test(text[end - 1] ?? '')) end--;
      const block = isSeq(node) && !node.flow;
      const indent = ' '.repeat(columnOf(text, start));
      edits.push({ start, end, insert: block ? `- ${items.join(`\n${indent}- `)}` : `[${items.join(', ')}]` });
    } else if (entry.flow) {
      const close = text.lastIndexOf('}', entry.range[1] - 1);
      if (close < entry.range[0]) return undefined;
      let at = close;
      while (at > 0 && text[at - 1] === ' ') at--;
      edits.push({ start: at, end: at, insert: `, signatures: [${items.join(', ')}]` });
    } else {
      const firstKey = entry.items[0]?.key as Node | undefined;
      if (!firstKey?.range) return undefined;
      const indent = ' '.repeat(columnOf(text, firstKey.range[0]));
      const block = `${indent}signatures:\n${indent}  - ${items.join(`\n${indent}  - `)}`;
      // After the entry's last line (and any comment on it), before whatever follows.
      const end = entry.range[1];
      if (end > 0 && text[end - 1] === '\n') edits.push({ start: end, end, insert: `${block}\n` });
      else {
        const newline = text.indexOf('\n', end);
        const at = newline < 0 ? text.length : newline;
        edits.push({ start: at, end: at, insert: `\n${block}` });
      }
    }
  }
  let out = text;
  for (const edit of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, edit.start) + edit.insert + out.slice(edit.end);
  return out;
}

/** The document with the signatures set through the YAML Document API (comments kept; other layout may be normalised). */
function documentEdit(text: string, changes: { tool: string; signatures: ManifestSignature[] }[]): string {
  const doc: Document = parseDocument(text);
  for (const { tool, signatures } of changes) {
    const node = doc.createNode(signatures);
    for (const item of node.items) if (isMap(item)) item.flow = true;
    doc.setIn(['manifest', tool, 'signatures'], node);
  }
  return doc.toString({ lineWidth: 0 });
}
