/**
 * The documentation's links hold: in README.md, CONTRIBUTING.md, bench/README.md and docs/*.md,
 * every relative link (and image) points at a file that exists, and every `#anchor`, on the same
 * page or another one, names a heading of the page it points at, slugged as GitHub does. The README
 * stays the short front page (under 12 KiB); the details live in the linked pages.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { DOCS_ROOT as ROOT, docPages, proseLines } from '../helpers/markdown.js';

const README_MAX_BYTES = 12 * 1024;

/**
 * GitHub's heading anchor: the heading's text (links reduced to their text, code spans to their
 * content), lower-cased, with every character that is not a letter, mark, number, connector
 * (`_`), space or hyphen removed, then each space turned into a hyphen.
 */
function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor of a page: one per ATX heading, repeats numbered `-1`, `-2`, … as GitHub does. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(text)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.add(count === 0 ? base : `${base}-${count}`);
  }
  return out;
}

/** Every inline link or image target of a page outside code (fences and code spans). */
function links(markdown: string): { line: number; target: string }[] {
  const out: { line: number; target: string }[] = [];
  for (const { line, text } of proseLines(markdown)) {
    const prose = text.replace(/(`+)[\s\S]*?\1/g, (span) => ' '.repeat(span.length));
    for (const match of prose.matchAll(/!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      out.push({ line, target: match[1]! });
    }
  }
  return out;
}

/** The problems of one page's links, each naming the page, line and target. */
function brokenLinks(page: string, read: (path: string) => string | undefined): string[] {
  const markdown = read(page);
  if (markdown === undefined) return [`${page}: missing`];
  const problems: string[] = [];
  for (const { line, target } of links(markdown)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto: — not checked here
    const hash = target.indexOf('#');
    const path = hash < 0 ? target : target.slice(0, hash);
    const anchor = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
    const file = path === '' ? page : relative(ROOT, resolve(ROOT, dirname(page), decodeURIComponent(path)));
    const where = `${page}:${line}: ${target}`;
    if (file.startsWith('..')) {
      problems.push(`${where}: points outside the repository`);
      continue;
    }
    const text = read(file);
    if (text === undefined && !existsSync(join(ROOT, file))) {
      problems.push(`${where}: ${file} does not exist`);
      continue;
    }
    if (anchor === null) continue;
    if (!file.endsWith('.md') || text === undefined) {
      problems.push(`${where}: an anchor into ${file}, which is not a Markdown page`);
      continue;
    }
    if (!anchors(text).has(anchor)) problems.push(`${where}: no heading of ${file} has the anchor #${anchor}`);
  }
  return problems;
}

/** Reads a repository file as text; undefined when it is absent or a directory. */
function readRepoFile(path: string): string | undefined {
  const full = join(ROOT, path);
  if (!existsSync(full) || !statSync(full).isFile()) return undefined;
  return readFileSync(full, 'utf8');
}

describe('documentation links', () => {
  test('every relative link and anchor resolves', () => {
    const checked = docPages();
    assert.ok(checked.length >= 4, `pages found: ${checked.join(', ')}`);
    const problems = checked.flatMap((page) => brokenLinks(page, readRepoFile));
    assert.deepEqual(problems, []);
  });

  test('the README links every page of docs/, bench/README.md and CONTRIBUTING.md', () => {
    const readme = readRepoFile('README.md') ?? '';
    const targets = new Set(links(readme).map(({ target }) => target.split('#')[0]));
    const missing = docPages().filter((page) => page !== 'README.md' && !targets.has(page));
    assert.deepEqual(missing, []);
  });

  test('the README is under 12 KiB', () => {
    const bytes = statSync(join(ROOT, 'README.md')).size;
    assert.ok(bytes < README_MAX_BYTES, `README.md is ${bytes} bytes (limit ${README_MAX_BYTES})`);
  });

  test('the checker finds broken links and anchors (on made-up pages)', () => {
    const made: Record<string, string> = {
      'docs/a.md': [
        '# Page A',
        '## HTTP API for agents: `/v1/tool-requests`',
        '## Ops: the Temporal UI',
        '## Same',
        '## Same',
        '```sh',
        '# not a heading',
        '[not a link](nowhere.md)',
        '```',
        'Fine: [x](#http-api-for-agents-v1tool-requests), [y](#ops-the-temporal-ui), [z](#same-1), [w](b.md#b-section).',
        'Inline code is not a link: `[x](missing.md)`.',
        'Broken: [m](missing.md), [n](#not-a-heading), [o](b.md#nope), [p](#same-2).',
      ].join('\n'),
      'docs/b.md': '# B\n\n## B section\n',
    };
    const read = (path: string): string | undefined => made[path];
    assert.deepEqual(brokenLinks('docs/a.md', read), [
      'docs/a.md:12: missing.md: docs/missing.md does not exist',
      'docs/a.md:12: #not-a-heading: no heading of docs/a.md has the anchor #not-a-heading',
      'docs/a.md:12: b.md#nope: no heading of docs/b.md has the anchor #nope',
      'docs/a.md:12: #same-2: no heading of docs/a.md has the anchor #same-2',
    ]);
  });
});
