/**
 * The project's documentation pages and the small part of Markdown the documentation checks need:
 * which lines are prose and which are inside fenced code blocks (with the fence's info string).
 * Shared by test/unit/docs-links.test.ts (links live in prose) and test/unit/docs-commands.test.ts
 * (commands live in fenced shell blocks), so both read the same pages the same way.
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root. */
export const DOCS_ROOT = resolve(import.meta.dirname, '..', '..');

/** The Markdown pages the documentation checks read, relative to the repository root. */
export function docPages(root: string = DOCS_ROOT): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`);
  return ['README.md', 'CONTRIBUTING.md', 'bench/README.md', ...docs.sort()];
}

/** A fenced code block: its fences' 1-based lines, info string and content. */
export interface FencedBlock {
  /** The line of the opening fence (1-based). */
  readonly line: number;
  /** The line of the closing fence (1-based); the page's last line when the block is never closed. */
  readonly endLine: number;
  /** Everything after the opening fence's backticks or tildes, trimmed (`sh runnable`, `yaml`, ``). */
  readonly info: string;
  /** The lines between the fences, the opening fence's indentation removed, joined with `\n`. */
  readonly body: string;
}

/** One line of a page outside every fenced block. */
export interface ProseLine {
  readonly line: number;
  readonly text: string;
}

/**
 * Splits a page into prose lines and fenced blocks, as CommonMark does for fences indented up to
 * three spaces: a fence closes on a line of the same character, at least as long, and nothing
 * else; a block still open at the end of the page runs to the end.
 */
export function scanMarkdown(markdown: string): { prose: ProseLine[]; blocks: FencedBlock[] } {
  const prose: ProseLine[] = [];
  const blocks: FencedBlock[] = [];
  let open: { line: number; info: string; fence: string; indent: number; body: string[] } | null = null;
  const lines = markdown.split('\n');
  for (const [i, text] of lines.entries()) {
    const fence = /^( {0,3})(`{3,}|~{3,})(.*)$/.exec(text);
    if (open === null) {
      // A backtick fence's info string cannot contain backticks (that line is inline code instead).
      if (fence && !(fence[2]![0] === '`' && fence[3]!.includes('`'))) {
        open = { line: i + 1, info: fence[3]!.trim(), fence: fence[2]!, indent: fence[1]!.length, body: [] };
      } else {
        prose.push({ line: i + 1, text });
      }
      continue;
    }
    if (fence && fence[2]![0] === open.fence[0] && fence[2]!.length >= open.fence.length && fence[3]!.trim() === '') {
      blocks.push({ line: open.line, endLine: i + 1, info: open.info, body: open.body.join('\n') });
      open = null;
      continue;
    }
    const indent = /^ */.exec(text)![0].length;
    open.body.push(text.slice(Math.min(indent, open.indent)));
  }
  if (open !== null) blocks.push({ line: open.line, endLine: lines.length, info: open.info, body: open.body.join('\n') });
  return { prose, blocks };
}

/** The page's lines outside fenced code blocks (``` or ~~~), with their 1-based line numbers. */
export function proseLines(markdown: string): ProseLine[] {
  return scanMarkdown(markdown).prose;
}

/** The page's fenced code blocks, in order. */
export function fencedBlocks(markdown: string): FencedBlock[] {
  return scanMarkdown(markdown).blocks;
}
