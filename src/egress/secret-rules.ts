/**
 * The secret-detection ruleset: gitleaks' default configuration (MIT, vendored as data in
 * `rules/gitleaks.toml`, provenance in `rules/SOURCE.json`, refreshed by
 * `scripts/update-secret-rules.mjs`), translated from Go RE2 syntax to JavaScript regular
 * expressions and evaluated with gitleaks' semantics: keyword prefilter, secret group, Shannon
 * entropy minimum, per-rule and global allowlists (content checks only: there are no file paths
 * or commits at the gateway, so path and commit checks never allow anything).
 *
 * Deliberate differences from gitleaks, because a gateway's input is attacker-influenced:
 * - the `gitleaks:allow` comment is not honoured (anyone could append it to smuggle a secret out);
 * - base64/percent-decoding passes are not run (a value's encoded form is redacted by the
 *   generic and entropy rules when it appears in key/value context).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'smol-toml';
import { ToolgateError } from '../errors.js';

/** A regex in the toml that has no JavaScript equivalent (the rule cannot be used). */
export class RegexTranslationError extends ToolgateError {
  override readonly name = 'RegexTranslationError';
  constructor(
    readonly source: string,
    readonly problem: string,
  ) {
    super('regex_untranslatable', `${problem} in ${JSON.stringify(source)}`);
  }
}

/** Raised at load time when any rule of the ruleset cannot be translated: all of them are named. */
export class SecretRulesetError extends ToolgateError {
  override readonly name = 'SecretRulesetError';
  constructor(readonly failures: readonly { rule: string; error: string }[]) {
    super(
      'secret_ruleset_invalid',
      `secret ruleset: ${failures.length} rule(s) cannot be translated to JavaScript: ${failures.map((f) => `${f.rule}: ${f.error}`).join('; ')}`,
    );
  }
}

/** The JavaScript form of an RE2 regex. */
export interface TranslatedRegex {
  source: string;
  /** `i` when the whole regex is case-insensitive (a leading `(?i)`), else empty. */
  flags: string;
}

/** POSIX bracket classes RE2 accepts inside `[...]`, as JavaScript class contents. */
const POSIX_CLASSES: Record<string, string> = {
  alnum: 'a-zA-Z0-9',
  alpha: 'a-zA-Z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '\\w',
  xdigit: '0-9A-Fa-f',
};

/** Flags RE2 and V8's regexp modifiers share (`(?i)`, `(?-i:...)`, `(?s:...)`, `(?m)`). */
const MODIFIABLE = /^[ism]*(?:-[ism]+)?$/;

/**
 * Translates a Go RE2 regex to JavaScript. Handles a leading `(?i)` (→ flag `i`), inline flag
 * groups `(?i:...)`/`(?-i:...)`/`(?s:...)` (V8 regexp modifiers), flags set mid-group `(?i)` (→ a
 * modifier group to the end of the enclosing group, as RE2 scopes them), `\z`, `\A`, `\Q...\E`,
 * POSIX classes (`[[:alnum:]]`), a leading `]` in a class, `(?P<name>`, and `.` (RE2's excludes
 * only `\n`). Throws `RegexTranslationError` for anything else it does not know.
 */
export function translateGoRegex(re2: string): TranslatedRegex {
  let s = re2;
  let flags = '';
  if (s.startsWith('(?i)')) {
    flags = 'i';
    s = s.slice(4);
  }
  let out = '';
  // One frame per open group: the modifier groups opened by mid-group flags (closed with it, and
  // around each `|`, since RE2 keeps such flags for the later alternatives), and whether `.` matches newlines there.
  const frames: { mods: string[]; dotAll: boolean }[] = [{ mods: [], dotAll: false }];
  const top = () => frames[frames.length - 1]!;
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '\\') {
      const n = s[i + 1];
      if (n === undefined) throw new RegexTranslationError(re2, 'trailing backslash');
      if (n === 'z') out += '(?![\\s\\S])';
      else if (n === 'A') out += '(?<![\\s\\S])';
      else if (n === 'Q') {
        const end = s.indexOf('\\E', i + 2);
        const literal = s.slice(i + 2, end === -1 ? s.length : end);
        out += literal.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
        i = end === -1 ? s.length : end + 2;
        continue;
      } else if (n === 'x' && s[i + 2] === '{') throw new RegexTranslationError(re2, '\\x{...} escape');
      else if ('pPCKGXRkZ'.includes(n)) throw new RegexTranslationError(re2, `\\${n} escape`);
      else out += `\\${n}`;
      i += 2;
      continue;
    }
    if (c === '[') {
      const [cls, next] = translateClass(re2, s, i);
      out += cls;
      i = next;
      continue;
    }
    if (c === '(') {
      if (s.startsWith('(?P<', i)) {
        out += '(?<';
        frames.push({ mods: [], dotAll: top().dotAll });
        i += 4;
        continue;
      }
      if (s[i + 1] === '?') {
        const inline = /^\(\?([a-zA-Z-]*)\)/.exec(s.slice(i, i + 12));
        if (inline) {
          if (!MODIFIABLE.test(inline[1]!)) throw new RegexTranslationError(re2, `flags (?${inline[1]})`);
          // RE2 scopes mid-group flags to the end of the enclosing group; a modifier group closed with it does the same.
          out += `(?${inline[1]}:`;
          const frame = top();
          frame.mods.push(inline[1]!);
          frame.dotAll = dotAllAfter(frame.dotAll, inline[1]!);
          i += inline[0].length;
          continue;
        }
        const group = /^\(\?([a-zA-Z-]*):/.exec(s.slice(i, i + 12));
        if (group) {
          if (group[1] !== '' && !MODIFIABLE.test(group[1]!)) throw new RegexTranslationError(re2, `flags (?${group[1]}:`);
          out += group[0];
          frames.push({ mods: [], dotAll: dotAllAfter(top().dotAll, group[1]!) });
          i += group[0].length;
          continue;
        }
        throw new RegexTranslationError(re2, `group syntax ${s.slice(i, i + 4)}`);
      }
      out += '(';
      frames.push({ mods: [], dotAll: top().dotAll });
      i += 1;
      continue;
    }
    if (c === ')') {
      const frame = frames.pop();
      if (!frame || frames.length === 0) throw new RegexTranslationError(re2, 'unbalanced )');
      out += ')'.repeat(frame.mods.length) + ')';
      i += 1;
      continue;
    }
    if (c === '|') {
      const mods = top().mods;
      out += `${')'.repeat(mods.length)}|${mods.map((f) => `(?${f}:`).join('')}`;
      i += 1;
      continue;
    }
    if (c === '.') {
      out += top().dotAll ? '[\\s\\S]' : '[^\\n]';
      i += 1;
      continue;
    }
    out += c;
    i += 1;
  }
  if (frames.length !== 1) throw new RegexTranslationError(re2, 'unbalanced (');
  out += ')'.repeat(frames[0]!.mods.length);
  return { source: out, flags };
}

function dotAllAfter(current: boolean, flags: string): boolean {
  const [on = '', off = ''] = flags.split('-');
  if (off.includes('s')) return false;
  if (on.includes('s')) return true;
  return current;
}

/** Translates one RE2 bracket class starting at `s[start] === '['`; returns it and the index after it. */
function translateClass(re2: string, s: string, start: number): [string, number] {
  let i = start + 1;
  let out = '[';
  if (s[i] === '^') {
    out += '^';
    i += 1;
  }
  let first = true;
  for (;;) {
    const c = s[i];
    if (c === undefined) throw new RegexTranslationError(re2, 'unterminated [');
    if (c === ']' && !first) return [`${out}]`, i + 1];
    first = false;
    if (c === '[' && s[i + 1] === ':') {
      const end = s.indexOf(':]', i + 2);
      const name = end === -1 ? '' : s.slice(i + 2, end);
      const posix = POSIX_CLASSES[name];
      if (!posix) throw new RegexTranslationError(re2, `POSIX class [:${name}:]`);
      out += posix;
      i = end + 2;
      continue;
    }
    if (c === '\\') {
      const n = s[i + 1];
      if (n === undefined) throw new RegexTranslationError(re2, 'trailing backslash');
      if (n === 'x' && s[i + 2] === '{') throw new RegexTranslationError(re2, '\\x{...} escape in a class');
      if ('pPQEzA'.includes(n)) throw new RegexTranslationError(re2, `\\${n} in a class`);
      out += `\\${n}`;
      i += 2;
      continue;
    }
    // RE2 reads `]` first in a class, and `[` anywhere in it, as literals; JavaScript needs them escaped.
    out += c === ']' || c === '[' ? `\\${c}` : c;
    i += 1;
  }
}

/** Compiles an RE2 regex for JavaScript (`extraFlags` e.g. `gd`). */
export function compileGoRegex(re2: string, extraFlags = ''): RegExp {
  const { source, flags } = translateGoRegex(re2);
  return new RegExp(source, flags + extraFlags);
}

/** One allowlist of a rule (or the global one), content checks only. */
export interface SecretAllowlist {
  readonly condition: 'OR' | 'AND';
  /** What the regexes test: the secret (default), the whole match, or the line of the match. */
  readonly regexTarget: 'secret' | 'match' | 'line';
  readonly regexes: readonly RegExp[];
  /** Lower-case words; a secret containing one is allowed. */
  readonly stopwords: readonly string[];
  /** Path or commit conditions, which never hold at the gateway (no file, no commit). */
  readonly hasPathOrCommit: boolean;
}

/** One rule of the ruleset, ready to run. */
export interface SecretRule {
  /** gitleaks' rule id, e.g. `aws-access-token`: the redaction tag. */
  readonly id: string;
  readonly description: string;
  /** Global, with indices (`gd`). */
  readonly regex: RegExp;
  /** Lower-case; the regex runs only when one occurs in the lower-cased text (empty = always). */
  readonly keywords: readonly string[];
  /** The capture group holding the secret; 0 = the first non-empty group, else the match. */
  readonly secretGroup: number;
  /** Minimum Shannon entropy of the secret (exclusive), 0 = none. */
  readonly entropy: number;
  readonly allowlists: readonly SecretAllowlist[];
  /**
   * How much of a text the regex looks at. `whole`: all of it. `around-keywords`: windows around
   * each keyword occurrence, for the keyword/assignment rules (`[\w.-]{0,50}?keyword...`), whose
   * nested lazy prefixes cost hundreds of steps per character over a whole text. `from-keyword`:
   * one anchored attempt per keyword occurrence over `after` characters, for rules like the curl
   * ones whose `.*` to the end of the line makes a whole-text scan quadratic on a long line.
   */
  readonly scan:
    | { kind: 'whole' }
    | { kind: 'around-keywords'; before: number; after: number; unprefixed: RegExp }
    | { kind: 'from-keyword'; after: number; sticky: RegExp };
}

/** Window around a keyword for `[\w.-]{0,50}?keyword...` rules: the longest prefix such a regex allows is 2 × 50 + the keyword, the rest of a match follows within a few hundred characters. */
const AROUND_KEYWORD = { before: 200, after: 1024 } as const;
/** Characters after the keyword one attempt of a `from-keyword` rule (curl commands) looks at. */
const FROM_KEYWORD_AFTER = 2048;

const LAZY_PREFIX = '[\\w.-]{0,50}?';

/** Picks a rule's scan strategy from the shape of its regex (not its id), so updated rules get one too. */
function scanFor(re2: string, keywords: readonly string[], regex: RegExp): SecretRule['scan'] {
  const body = re2.replace(/^\(\?i\)/, '');
  if (keywords.length > 0 && /^\[\\w\.-\]\{0,50\}\?/.test(body) && regex.source.startsWith(LAZY_PREFIX)) {
    // The leading lazy `[\w.-]{0,50}?` only moves the match start left over identifier characters:
    // it changes neither which keyword occurrence matches nor the secret. It costs up to 50
    // attempts per character, so the regex runs without it and the start is put back (`acceptMatch`).
    return { kind: 'around-keywords', ...AROUND_KEYWORD, unprefixed: new RegExp(regex.source.slice(LAZY_PREFIX.length), regex.flags) };
  }
  const anchored = /^\\b([a-z0-9_-]+)\\b/.exec(body);
  if (anchored && keywords.length === 1 && keywords[0] === anchored[1]!.toLowerCase() && /\.\*/.test(body)) {
    return { kind: 'from-keyword', after: FROM_KEYWORD_AFTER, sticky: new RegExp(regex.source, `${regex.flags.replace('g', '')}y`) };
  }
  return { kind: 'whole' };
}

/** The loaded ruleset. */
export interface SecretRuleset {
  readonly rules: readonly SecretRule[];
  readonly globalAllowlists: readonly SecretAllowlist[];
  /** Rules present in the file but never applicable at the gateway (path-only rules such as `pkcs12-file`). */
  readonly skipped: readonly string[];
}

interface TomlAllowlist {
  condition?: string;
  regexTarget?: string;
  regexes?: string[];
  stopwords?: string[];
  paths?: string[];
  commits?: string[];
}

interface TomlRule {
  id: string;
  description?: string;
  regex?: string;
  path?: string;
  keywords?: string[];
  secretGroup?: number;
  entropy?: number;
  allowlists?: TomlAllowlist[];
}

function compileAllowlist(a: TomlAllowlist, where: string, failures: { rule: string; error: string }[]): SecretAllowlist {
  const regexes: RegExp[] = [];
  for (const r of a.regexes ?? []) {
    try {
      regexes.push(compileGoRegex(r));
    } catch (err) {
      failures.push({ rule: where, error: (err as Error).message });
    }
  }
  const target = a.regexTarget ?? 'secret';
  if (target !== 'secret' && target !== 'match' && target !== 'line') failures.push({ rule: where, error: `unknown regexTarget ${target}` });
  return {
    condition: (a.condition ?? 'OR').toUpperCase() === 'AND' ? 'AND' : 'OR',
    regexTarget: target as SecretAllowlist['regexTarget'],
    regexes,
    stopwords: (a.stopwords ?? []).map((w) => w.toLowerCase()),
    hasPathOrCommit: (a.paths?.length ?? 0) > 0 || (a.commits?.length ?? 0) > 0,
  };
}

/** How most gitleaks rules say "the token ends here": a quote, a blank, `;`, an escaped newline or the end. */
const TOKEN_END = String.raw`(?:[\x60'"\s;]|\\[nr]|$)`;
/**
 * The same, widened to the punctuation that ends a token in the JSON, URLs, CSV and HTML a
 * gateway passes on (`,` `&` `)` `}` `]` `<` `>` `|`): source files rarely put those right after a
 * key, tool results often do (`?key=AIza...&page=2`, `["sk_live_..."]`).
 */
const TOKEN_END_WIDE = String.raw`(?:[\x60'"\s;,&)}\]<>|]|\\[nr]|$)`;

/** Widens every token end of a gitleaks regex (see `TOKEN_END_WIDE`). */
export function widenTokenEnd(re2: string): string {
  return re2.split(TOKEN_END).join(TOKEN_END_WIDE);
}

/**
 * Parses and compiles a gitleaks config. Throws `SecretRulesetError` naming every rule whose
 * regex (or allowlist regex) cannot be translated: a ruleset update must not silently lose rules.
 */
export function parseSecretRuleset(tomlText: string): SecretRuleset {
  const doc = parse(tomlText) as { rules?: TomlRule[]; allowlist?: TomlAllowlist; allowlists?: TomlAllowlist[] };
  const failures: { rule: string; error: string }[] = [];
  const globalAllowlists = [...(doc.allowlist ? [doc.allowlist] : []), ...(doc.allowlists ?? [])].map((a) =>
    compileAllowlist(a, '(global allowlist)', failures),
  );
  const rules: SecretRule[] = [];
  const skipped: string[] = [];
  for (const r of doc.rules ?? []) {
    // A path-only rule flags files by name; the gateway has no files. A rule with a path and a
    // regex (Kubernetes secrets in YAML, NuGet and Terraform passwords) is applied to any text:
    // those documents reach the gateway as tool results, with no file name to go by.
    if (!r.regex) {
      skipped.push(r.id);
      continue;
    }
    let regex: RegExp;
    try {
      regex = compileGoRegex(widenTokenEnd(r.regex), 'gd');
    } catch (err) {
      failures.push({ rule: r.id, error: (err as Error).message });
      continue;
    }
    const keywords = (r.keywords ?? []).map((k) => k.toLowerCase());
    // Keyword lookups use an ASCII-only lower-casing (see asciiLower).
    for (const k of keywords) if (!/^[\x20-\x7e]+$/.test(k)) failures.push({ rule: r.id, error: `keyword ${JSON.stringify(k)} is not printable ASCII` });
    rules.push({
      id: r.id,
      description: r.description ?? r.id,
      regex,
      keywords,
      scan: scanFor(r.regex, keywords, regex),
      secretGroup: r.secretGroup ?? 0,
      entropy: r.entropy ?? 0,
      allowlists: (r.allowlists ?? []).map((a) => compileAllowlist(a, r.id, failures)),
    });
  }
  if (failures.length > 0) throw new SecretRulesetError(failures);
  return { rules, globalAllowlists, skipped };
}

/** Shannon entropy in bits per character, as gitleaks computes it. */
export function shannonEntropy(value: string): number {
  if (value.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const ch of value) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let entropy = 0;
  for (const n of counts.values()) {
    const p = n / value.length;
    entropy -= p * Math.log2(p);
  }
  return entropy;
}

function allowed(allowlists: readonly SecretAllowlist[], secret: string, match: string, line: string): boolean {
  const lowerSecret = secret.toLowerCase();
  for (const a of allowlists) {
    const target = a.regexTarget === 'match' ? match : a.regexTarget === 'line' ? line : secret;
    const regexAllowed = target !== '' && a.regexes.some((r) => r.test(target));
    const stopword = secret !== '' && a.stopwords.some((w) => lowerSecret.includes(w));
    if (a.condition === 'AND') {
      // Every check present must hold; a path or commit check never does here.
      if (a.hasPathOrCommit) continue;
      const checks = [...(a.regexes.length > 0 ? [regexAllowed] : []), ...(a.stopwords.length > 0 ? [stopword] : [])];
      if (checks.length > 0 && checks.every(Boolean)) return true;
    } else if (regexAllowed || stopword) {
      return true;
    }
  }
  return false;
}

/** A secret found by a rule: the [start, end) range of the secret in the text. */
export type SecretRange = [number, number];

/**
 * Lower-cases ASCII letters only, so that every index of the result is the same character's
 * index in `text` (`toLowerCase` turns some characters, such as `İ`, into two, which would shift
 * keyword windows off their matches). Keywords are ASCII (checked at load).
 */
export function asciiLower(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]+/g, (run) => run.toLowerCase()) : text;
}

/** Whether a rule's keyword prefilter lets it run on a text (`lower` = `asciiLower(text)`). */
export function keywordsPresent(rule: SecretRule, lower: string): boolean {
  return rule.keywords.length === 0 || rule.keywords.some((k) => lower.includes(k));
}

/**
 * Checks one regex match (absolute indices in `text`) the way gitleaks does and returns the
 * secret's range, or undefined when entropy or an allowlist lets it pass.
 */
function acceptMatch(
  rule: SecretRule,
  text: string,
  m: RegExpExecArray,
  offset: number,
  globalAllowlists: readonly SecretAllowlist[],
  prefixFloor?: number,
): SecretRange | undefined {
  // gitleaks trims newlines off the match.
  let matchStart = offset + m.index;
  if (prefixFloor !== undefined) {
    // Put back what the dropped lazy `[\w.-]{0,50}?` would have matched: the leftmost start wins.
    const limit = Math.max(prefixFloor, matchStart - 50);
    while (matchStart > limit && /[\w.-]/.test(text[matchStart - 1]!)) matchStart -= 1;
  }
  let matchEnd = matchStart + m[0].length;
  while (matchStart < matchEnd && text[matchStart] === '\n') matchStart += 1;
  while (matchEnd > matchStart && text[matchEnd - 1] === '\n') matchEnd -= 1;
  let start = matchStart;
  let end = matchEnd;
  if (m.length >= 2) {
    let group = -1;
    if (rule.secretGroup > 0) group = rule.secretGroup;
    else {
      for (let g = 1; g < m.length; g++) {
        if (m[g]) {
          group = g;
          break;
        }
      }
    }
    const at = group > 0 ? m.indices?.[group] : undefined;
    if (at && at[1] > at[0]) [start, end] = [offset + at[0], offset + at[1]];
  }
  const secret = text.slice(start, end);
  if (rule.entropy > 0 && shannonEntropy(secret) <= rule.entropy) return undefined;
  const match = text.slice(matchStart, matchEnd);
  const lineStart = text.lastIndexOf('\n', matchStart - 1) + 1;
  const lineEndAt = text.indexOf('\n', matchEnd);
  const line = text.slice(lineStart, lineEndAt === -1 ? text.length : lineEndAt);
  if (allowed(globalAllowlists, secret, match, line) || allowed(rule.allowlists, secret, match, line)) return undefined;
  return [start, end];
}

/**
 * A secret that ends where a window was cut may go on past it (`$` matched at the cut): the
 * range is extended to the next delimiter of the whole text, erring towards redaction.
 */
function extendPastCut(text: string, range: SecretRange, cut: number): SecretRange {
  if (cut >= text.length || range[1] < cut - 2) return range;
  let end = range[1];
  while (end < text.length && !/[\s"'`;,<>]/.test(text[end]!)) end += 1;
  return [range[0], end];
}

/** Every [start, end) occurrence window of a rule's keywords in `lower`, widened by `before`/`after` and merged. */
function keywordWindows(rule: SecretRule, lower: string, before: number, after: number): Array<[number, number]> {
  const hits: number[] = [];
  for (const k of rule.keywords) for (let at = lower.indexOf(k); at !== -1; at = lower.indexOf(k, at + 1)) hits.push(at);
  hits.sort((x, y) => x - y);
  const windows: Array<[number, number]> = [];
  for (const at of hits) {
    const from = Math.max(0, at - before);
    const to = Math.min(lower.length, at + after);
    const last = windows[windows.length - 1];
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else windows.push([from, to]);
  }
  return windows;
}

/**
 * Runs one rule's regex over `text` and returns the ranges of the secrets it finds, after
 * entropy and allowlist checks. The keyword prefilter is the caller's (`keywordsPresent`): the
 * redactor checks each keyword once per text for all rules. `lower` is `asciiLower(text)`
 * (computed once per text), for the rules that only look around their keywords (see `SecretRule.scan`).
 */
export function findSecrets(rule: SecretRule, text: string, globalAllowlists: readonly SecretAllowlist[], lower = asciiLower(text)): SecretRange[] {
  const out: SecretRange[] = [];
  const scan = rule.scan;
  if (scan.kind === 'from-keyword') {
    // Each match starts at a keyword: one anchored attempt per occurrence, over a bounded window.
    const sticky = scan.sticky;
    let covered = 0;
    for (const k of rule.keywords) {
      for (let at = lower.indexOf(k); at !== -1; at = lower.indexOf(k, at + 1)) {
        if (at < covered) continue;
        const from = Math.max(0, at - 1);
        const to = Math.min(text.length, at + scan.after);
        const slice = text.slice(from, to);
        sticky.lastIndex = at - from;
        const m = sticky.exec(slice);
        if (!m) continue;
        const range = acceptMatch(rule, text, m, from, globalAllowlists);
        if (range) out.push(extendPastCut(text, range, to));
        covered = from + m.index + m[0].length;
      }
    }
    return out;
  }
  const windows: Array<[number, number]> =
    scan.kind === 'around-keywords' && text.length > scan.before + scan.after ? keywordWindows(rule, lower, scan.before, scan.after) : [[0, text.length]];
  const regex = scan.kind === 'around-keywords' ? scan.unprefixed : rule.regex;
  for (const [from, to] of windows) {
    const slice = from === 0 && to === text.length ? text : text.slice(from, to);
    regex.lastIndex = 0;
    let previousEnd = from;
    for (let m = regex.exec(slice); m !== null; m = regex.exec(slice)) {
      if (m[0].length === 0) {
        regex.lastIndex += 1;
        continue;
      }
      const range = acceptMatch(rule, text, m, from, globalAllowlists, scan.kind === 'around-keywords' ? previousEnd : undefined);
      previousEnd = from + m.index + m[0].length;
      if (range) out.push(extendPastCut(text, range, to));
    }
  }
  return out;
}

/** Where the vendored ruleset and its provenance live (next to this module, or in src/ when running from a build). */
function rulesFile(name: string): URL {
  return new URL(`./rules/${name}`, import.meta.url);
}

/** Provenance of the vendored ruleset (`rules/SOURCE.json`). */
export interface SecretRulesSource {
  module: string;
  version: string;
  sha256: string;
  updated: string;
}

function readRulesFile(name: string): string {
  try {
    return readFileSync(rulesFile(name), 'utf8');
  } catch {
    // A `tsc` build puts this module in dist/src/egress/ without the data files: read them from the sources.
    return readFileSync(new URL(`../../../src/egress/rules/${name}`, import.meta.url), 'utf8');
  }
}

/** The vendored ruleset's provenance. */
export const SECRET_RULES_SOURCE: SecretRulesSource = JSON.parse(readRulesFile('SOURCE.json')) as SecretRulesSource;

/** The vendored gitleaks ruleset, compiled once at module load (throws `SecretRulesetError` if any rule cannot be used). */
export const GITLEAKS: SecretRuleset = parseSecretRuleset(readRulesFile('gitleaks.toml'));
