/**
 * Redaction of secrets and personal data in anything that leaves the gateway: tool results, tool
 * errors, what approvers see, notifications, logs and the audit record.
 *
 * Secrets are found by a maintained ruleset: gitleaks' default rules (see `secret-rules.ts`,
 * vendored as data and refreshed with `npm run update:secret-rules`), including its entropy-gated
 * `generic-api-key` rule for keys in key/value context. A short list of toolgate rules fills what
 * a source-code scanner leaves out by design but a gateway must not let through (each says why):
 * truncated private keys, passwords in URLs, Authorization headers, documented example keys.
 * Personal data is found by regular expressions confirmed by validators (Luhn for cards, ISO
 * 13616 mod-97 for IBANs via `ibantools`, phone numbers via `libphonenumber-js`, SSA rules for
 * SSNs), so near-misses such as a 16-digit order id or a git SHA stay readable.
 *
 * Redaction works on the whole text at once: every rule finds its ranges in the original text,
 * overlapping ranges are merged, and each merged range is replaced by `[REDACTED:<rule>]`, named
 * after the most specific rule that found part of it. Callers must redact before they truncate.
 */
import { isValidIBAN } from 'ibantools';
import { findNumbers, type CountryCode } from 'libphonenumber-js';
import { GITLEAKS, SECRET_RULES_SOURCE, asciiLower, findSecrets, type SecretRule } from './secret-rules.js';
import { ToolgateError } from '../errors.js';

export { SECRET_RULES_SOURCE };

/** The two families of rules; a tool's `egress.redact` may name a family, `all`, or single rules. */
export type RedactionCategory = 'secrets' | 'pii';

/** One redaction rule: a name, a family, and how to find what it redacts. */
export interface RedactionRule {
  /** Appears in the replacement as `[REDACTED:<name>]` (a gitleaks rule id for gitleaks' rules). */
  readonly name: string;
  readonly category: RedactionCategory;
  /** Human-readable description for docs and errors. */
  readonly description: string;
  /** Where the rule comes from: the vendored gitleaks ruleset or toolgate itself. */
  readonly source: 'gitleaks' | 'toolgate';
  /** Lower-case words one of which must occur in the text for the rule to run (a cheap prefilter); absent = always runs. */
  readonly keywords?: readonly string[];
  /** Finds candidates; must be global. Group `secret` (or `secret2`), if present, is the part replaced; the rest of the match stays. */
  readonly pattern?: RegExp;
  /** Confirms a candidate (checksums, validity rules); absent means every match counts. */
  readonly validate?: (candidate: string) => boolean;
  /** For rules a regex cannot express: returns the [start, end) ranges to redact (`lower`: the text with ASCII letters lower-cased, same indices). */
  readonly find?: (text: string, lower: string) => Array<[number, number]>;
}

/** Counts of replacements per rule name. */
export type RedactionHits = Record<string, number>;

/** Thrown when a tool's `egress.redact` names a rule or family that does not exist. */
export class UnknownRedactionRuleError extends ToolgateError {
  override readonly name = 'UnknownRedactionRuleError';
  /** The names that matched nothing. */
  readonly unknown: readonly string[];
  constructor(unknown: readonly string[]) {
    super(
      'unknown_redaction_rule',
      `egress.redact: unknown rule or category ${unknown.map((u) => `"${u}"`).join(', ')}; known: all, secrets, pii, the ${REDACTION_RULES.filter((r) => r.source === 'gitleaks').length} gitleaks rule ids (e.g. aws-access-token, github-pat), ${[...REDACTION_RULES.filter((r) => r.source === 'toolgate').map((r) => r.name), ...Object.keys(REDACTION_RULE_ALIASES)].filter((n, i, all) => all.indexOf(n) === i).join(', ')}`,
    );
    this.unknown = unknown;
  }
}

// --- validators -----------------------------------------------------------------------------

/** Luhn (mod 10) check over a string of digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** Issuer prefixes of the card networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro) with their lengths. */
const CARD_NETWORKS =
  /^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:2[2-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}|3[47]\d{13}|3(?:0[0-5]|[68]\d)\d{11,16}|6(?:011|5\d\d|4[4-9]\d)\d{12,15}|35(?:2[89]|[3-8]\d)\d{12,15}|62\d{14,17}|(?:5[06-9]|6\d)\d{10,17})$/;

function cardValid(candidate: string): boolean {
  const separators = candidate.replace(/\d/g, '');
  if (separators.length > 0 && !/^(?: +|-+)$/.test(separators)) return false; // one kind of separator only
  const digits = candidate.replace(/[ -]/g, '');
  return digits.length >= 13 && digits.length <= 19 && CARD_NETWORKS.test(digits) && luhnValid(digits);
}

function ibanValid(candidate: string): boolean {
  return isValidIBAN(candidate.replace(/ /g, ''));
}

/** Numbers the SSA never issues, or published as examples (Woolworth's wallet card, the 1964 ad). */
const SSN_NEVER_ISSUED = new Set(['078051120', '219099999', '123456789']);

/** US SSN validity: area not 000, 666 or 9xx; group not 00; serial not 0000; not a known example number. */
export function ssnValid(candidate: string): boolean {
  const digits = candidate.replace(/\D/g, '').slice(-9);
  if (digits.length !== 9) return false;
  const area = digits.slice(0, 3);
  if (area === '000' || area === '666' || area.startsWith('9')) return false;
  if (digits.slice(3, 5) === '00' || digits.slice(5) === '0000') return false;
  return !SSN_NEVER_ISSUED.has(digits);
}

/** UK National Insurance number prefixes that are never allocated. */
const NINO_BAD_PREFIXES = new Set(['BG', 'GB', 'NK', 'KN', 'TN', 'NT', 'ZZ']);

/** Runs of digits and separators longer than this are searched with a bound on failed candidates (see `findPhones`). */
const PHONE_LONG_RUN = 256;
/** Failed candidates libphonenumber-js may try in one long run before giving up on the rest of it. */
const PHONE_MAX_TRIES = 256;

/**
 * Phone numbers, found by libphonenumber-js in each run of digits and separators (with a little
 * text before it, which the finder uses as context). Its cost is about 6 s per MiB on runs of
 * digits such as `1 1 1 ...`, so a run longer than PHONE_LONG_RUN characters (no formatted phone
 * number is) is searched with at most PHONE_MAX_TRIES failed candidates. Residual risk: a number
 * placed deliberately after hundreds of digit groups in the same run is not found.
 */
function findPhones(text: string, defaultCountry: CountryCode): Array<[number, number]> {
  if (!/\d[\d ().+-]{5,30}\d/.test(text)) return [];
  const out: Array<[number, number]> = [];
  const runs = /[+(]?\d[\d\s().+-]*\d\)?/g;
  for (let m = runs.exec(text); m !== null; m = runs.exec(text)) {
    if (m[0].length < 7) continue;
    const from = Math.max(0, m.index - 16);
    const end = m.index + m[0].length;
    const options = end - m.index > PHONE_LONG_RUN ? { defaultCountry, v2: true as const, maxTries: PHONE_MAX_TRIES } : { defaultCountry, v2: true as const };
    const segment = text.slice(from, end);
    for (const found of findNumbers(segment, options)) {
      const raw = segment.slice(found.startsAt, found.endsAt);
      // A bare run of digits is more often an id than a phone number: require international or grouped form.
      if (raw.startsWith('+') || raw.startsWith('(') || /\d[ .-]\(?\d/.test(raw)) out.push([from + found.startsAt, from + found.endsAt]);
    }
  }
  return out;
}

// --- the rules ------------------------------------------------------------------------------

const B = String.raw`(?<![A-Za-z0-9_])`; // start boundary that also treats '_' and '-' neighbours sensibly
const E = String.raw`(?![A-Za-z0-9_])`;

function rx(source: string, flags = ''): RegExp {
  return new RegExp(source, `gd${flags}`);
}

/** gitleaks' catch-all rules: they run after the specific ones, so a range both find is named after the specific rule. */
const GENERIC_GITLEAKS = new Set(['generic-api-key', 'curl-auth-header', 'curl-auth-user']);

function gitleaksRule(rule: SecretRule): RedactionRule {
  return {
    name: rule.id,
    category: 'secrets',
    description: rule.description,
    source: 'gitleaks',
    keywords: rule.keywords,
    find: (text, lower) => findSecrets(rule, text, GITLEAKS.globalAllowlists, lower),
  };
}

/**
 * toolgate's own secret rules, each for something gitleaks does not cover at a gateway. They run
 * after gitleaks' specific rules. Names are those policies and tests already use.
 */
const TOOLGATE_SECRET_RULES: readonly RedactionRule[] = [
  {
    name: 'private_key',
    category: 'secrets',
    source: 'toolgate',
    description: 'PEM private keys, also when truncated (gitleaks needs the END line, a cut-off result has none)',
    keywords: ['private key'],
    pattern: rx(
      String.raw`-----BEGIN (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,16384}?-----END (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,\\-]{0,16384})`,
    ),
  },
  {
    name: 'aws_access_key_id',
    category: 'secrets',
    source: 'toolgate',
    description: 'AWS access key ids (AKIA, ASIA, ABIA, ACCA), also the documented example keys and low-entropy ones gitleaks lets pass',
    keywords: ['akia', 'asia', 'abia', 'acca'],
    pattern: rx(String.raw`${B}(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}${E}`),
  },
  {
    name: 'aws_secret_access_key',
    category: 'secrets',
    source: 'toolgate',
    description: 'AWS secret access keys next to their name, whatever their entropy (gitleaks has no AWS secret key rule)',
    keywords: ['secret'],
    pattern: rx(String.raw`(?:aws_?secret_?access_?key|secret_?access_?key)["']?\s{0,4}[:=]\s{0,4}["']?(?<secret>[A-Za-z0-9/+]{40})${E}`, 'i'),
  },
  {
    name: 'gcp_oauth',
    category: 'secrets',
    source: 'toolgate',
    description: 'Google OAuth client secrets (GOCSPX-...) and access tokens (ya29....), which gitleaks has no rule for',
    keywords: ['gocspx-', 'ya29.'],
    pattern: rx(String.raw`${B}(?:GOCSPX-[0-9A-Za-z_-]{28}|ya29\.[0-9A-Za-z_-]{20,2048})${E}`),
  },
  {
    name: 'azure_storage_key',
    category: 'secrets',
    source: 'toolgate',
    description: 'Azure storage account keys and SAS signatures in connection strings and URLs (no gitleaks rule)',
    keywords: ['accountkey=', 'sharedaccesskey=', 'sig='],
    pattern: rx(String.raw`(?:AccountKey|SharedAccessKey)=(?<secret>[A-Za-z0-9+/]{43,88}={0,2})|[?&]sig=(?<secret2>[A-Za-z0-9%+/]{40,96})`),
  },
  {
    name: 'docker_hub_token',
    category: 'secrets',
    source: 'toolgate',
    description: 'Docker Hub personal and organization access tokens (dckr_pat_, dckr_oat_; no gitleaks rule)',
    keywords: ['dckr_'],
    pattern: rx(String.raw`${B}dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,64}(?![A-Za-z0-9_-])`),
  },
  {
    name: 'openai_key',
    category: 'secrets',
    source: 'toolgate',
    description: 'OpenAI project, service-account and admin keys (sk-proj-, sk-svcacct-, sk-admin-) without the T3BlbkFJ marker gitleaks requires',
    keywords: ['sk-proj-', 'sk-svcacct-', 'sk-admin-'],
    pattern: rx(String.raw`${B}sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,250}(?![A-Za-z0-9_-])`),
  },
  {
    name: 'jwt',
    category: 'secrets',
    source: 'toolgate',
    description: 'JSON Web Tokens followed by any delimiter (gitleaks wants a quote, blank or line end after one, so a token in a URL query escaped it)',
    keywords: ['eyj'],
    pattern: rx(String.raw`${B}eyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{4,16384}\.[A-Za-z0-9_-]{0,4096}(?![A-Za-z0-9_-])`),
  },
  {
    name: 'connection_string',
    category: 'secrets',
    source: 'toolgate',
    description: 'passwords in URLs with credentials (postgres://user:password@host, amqp, redis, mongodb+srv, https); gitleaks has none for URLs in general',
    keywords: ['://'],
    pattern: rx(String.raw`${B}[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@"'<>]{0,128}:(?<secret>[^\s/@"'<>]{1,256})(?=@[^\s@"'<>]{1,255})`),
    validate: (secret) => !/^\*+$/.test(secret) && !/^\$\{[^}]{1,64}\}$/.test(secret),
  },
];

/** toolgate rules for secrets in key/value context whatever they look like; run after gitleaks' generic rule. */
const TOOLGATE_CONTEXT_RULES: readonly RedactionRule[] = [
  {
    name: 'bearer_token',
    category: 'secrets',
    source: 'toolgate',
    description:
      'credentials after "Bearer", "Basic" or "Token" in Authorization values (at least 16 characters with a digit); gitleaks only looks inside curl commands',
    keywords: ['bearer', 'basic', 'token'],
    pattern: rx(
      String.raw`\b(?:Bearer|Basic|Token)\s{1,4}(?<secret>(?=[A-Za-z0-9._~+/-]{0,4095}\d)[A-Za-z0-9._~+/-]{16,4096}={0,2})(?![A-Za-z0-9._~+/=-])`,
      'i',
    ),
  },
  {
    name: 'secret_assignment',
    category: 'secrets',
    source: 'toolgate',
    description:
      'values assigned to password/secret/api_key/token names (password=..., "client_secret": "..."), also low-entropy ones gitleaks lets pass; not placeholders (<...>, YOUR_...)',
    keywords: ['pass', 'pwd', 'secret', 'key', 'token'],
    pattern: rx(
      String.raw`(?<![A-Za-z0-9])(?:[A-Za-z0-9]{1,24}[_-]){0,3}(?:password|passwd|pwd|secret|secret_?key|client_secret|api_?key|apikey|token|access_?token|auth_?token|refresh_?token|private_?key)["']?\s{0,4}[:=]\s{0,4}["']?(?<secret>(?!\[REDACTED:)(?!<|(?:your|my)[_-])(?!(?:true|false|null|none|undefined|required|optional|\*+|\$\{[^}]{1,64}\})(?:[\s"',;&]|$))[^\s"',;&]{4,256})`,
      'i',
    ),
  },
];

const PII_RULES: readonly RedactionRule[] = [
  {
    name: 'email',
    category: 'pii',
    source: 'toolgate',
    description: 'e-mail addresses (not SSH remotes such as git@host:path)',
    keywords: ['@'],
    pattern: rx(
      String.raw`(?<![A-Za-z0-9._%+/:-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-]|:[\w~/])`,
    ),
  },
  {
    name: 'card_number',
    category: 'pii',
    source: 'toolgate',
    description: 'payment card numbers of the major networks that pass the Luhn check (13-19 digits, plain or in 4-4-4-4 / 4-6-5 groups)',
    pattern: rx(String.raw`(?<![\w.-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{4,5})(?![\w-]|\.\d)`),
    validate: cardValid,
  },
  {
    name: 'iban',
    category: 'pii',
    source: 'toolgate',
    description: 'IBANs with a valid country format and ISO 13616 mod-97 checksum',
    pattern: rx(String.raw`${B}[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?${E}`),
    validate: ibanValid,
  },
  {
    name: 'us_ssn',
    category: 'pii',
    source: 'toolgate',
    description: 'US Social Security numbers (ddd-dd-dddd or after "SSN"), with the SSA validity rules',
    pattern: rx(String.raw`(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])|(?<=\bSSN[:#]?\s{0,3})\d{9}(?!\d)`),
    validate: ssnValid,
  },
  {
    name: 'uk_nino',
    category: 'pii',
    source: 'toolgate',
    description: 'UK National Insurance numbers, excluding never-allocated prefixes',
    pattern: rx(String.raw`${B}[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]${E}`),
    validate: (c) => !NINO_BAD_PREFIXES.has(c.slice(0, 2)),
  },
  {
    name: 'phone',
    category: 'pii',
    source: 'toolgate',
    description: 'phone numbers in international (+...) or grouped national form, validated by libphonenumber-js',
    find: (text) => findPhones(text, 'US'),
  },
];

/**
 * Every rule toolgate ships, in priority order: gitleaks' specific rules, toolgate's gap rules,
 * gitleaks' generic rules, toolgate's key/value rules, then personal data. When ranges found by
 * several rules overlap, the merged range is named after the first of them in this order.
 */
export const REDACTION_RULES: readonly RedactionRule[] = [
  ...GITLEAKS.rules.filter((r) => !GENERIC_GITLEAKS.has(r.id)).map(gitleaksRule),
  ...TOOLGATE_SECRET_RULES,
  ...GITLEAKS.rules.filter((r) => GENERIC_GITLEAKS.has(r.id)).map(gitleaksRule),
  ...TOOLGATE_CONTEXT_RULES,
  ...PII_RULES,
];

const RULES_BY_NAME = new Map(REDACTION_RULES.map((r) => [r.name, r]));

/**
 * Names of the hand-written rules that gitleaks' rules replaced, kept so that policies naming them
 * in `egress.redact` keep working: each selects the gitleaks rules of that provider (and the
 * toolgate rule of the same name, where one remains).
 */
export const REDACTION_RULE_ALIASES: Readonly<Record<string, RegExp>> = {
  private_key: /^private-key$/,
  aws_access_key_id: /^aws-access-token$/,
  gcp_api_key: /^gcp-api-key$/,
  azure_client_secret: /^azure-ad-client-secret$/,
  github_token: /^github-/,
  gitlab_token: /^gitlab-/,
  slack_token: /^slack-/,
  stripe_key: /^stripe-/,
  openai_key: /^openai-api-key$/,
  anthropic_key: /^anthropic-/,
  npm_token: /^npm-access-token$/,
  sendgrid_key: /^sendgrid-api-token$/,
  jwt: /^jwt(?:-base64)?$/,
  secret_assignment: /^generic-api-key$/,
  bearer_token: /^curl-auth-header$/,
  connection_string: /^curl-auth-user$/,
};

/** Object keys whose string values are secrets whatever they look like. */
const SECRET_KEY =
  /^(?:password|passwd|passphrase|pwd|secret|client_?secret|secret_?key|api_?key|apikey|x-api-key|api_?token|access_?token|auth_?token|refresh_?token|session_?token|private_?token|token|private_?key|secret_?access_?key|authorization|proxy-authorization|cookie|set-cookie)$/i;

/**
 * Resolves a tool's `egress.redact` list (rule names, legacy aliases and/or `secrets`, `pii`,
 * `all`) to rules; absent or empty means every rule. Throws `UnknownRedactionRuleError` for names
 * that match nothing.
 */
export function resolveRules(selection?: readonly string[]): readonly RedactionRule[] {
  if (!selection || selection.length === 0) return REDACTION_RULES;
  const chosen = new Set<RedactionRule>();
  const unknown: string[] = [];
  for (const name of selection) {
    if (name === 'secrets' || name === 'pii' || name === 'all') {
      for (const r of REDACTION_RULES) if (name === 'all' || r.category === name) chosen.add(r);
      continue;
    }
    const rule = RULES_BY_NAME.get(name);
    const alias = REDACTION_RULE_ALIASES[name];
    if (rule) chosen.add(rule);
    if (alias) for (const r of REDACTION_RULES) if (r.source === 'gitleaks' && alias.test(r.name)) chosen.add(r);
    if (!rule && !alias) unknown.push(name);
  }
  if (unknown.length > 0) throw new UnknownRedactionRuleError(unknown);
  return REDACTION_RULES.filter((r) => chosen.has(r));
}

function tag(rule: string): string {
  return `[REDACTED:${rule}]`;
}

function count(hits: RedactionHits, rule: string): void {
  hits[rule] = (hits[rule] ?? 0) + 1;
}

/** The [start, end) ranges a rule redacts in `text`. */
function rangesOf(rule: RedactionRule, text: string, lower: string): Array<[number, number]> {
  if (rule.find) return rule.find(text, lower);
  const pattern = rule.pattern!;
  const out: Array<[number, number]> = [];
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    if (m[0].length === 0) {
      pattern.lastIndex += 1;
      continue;
    }
    const at = m.indices?.groups?.secret ?? m.indices?.groups?.secret2 ?? [m.index, m.index + m[0].length];
    const candidate = text.slice(at[0], at[1]);
    if (rule.validate && !rule.validate(candidate)) continue;
    out.push([at[0], at[1]]);
  }
  return out;
}

/**
 * Redacts one string with the given rules (in priority order), counting replacements into `hits`.
 * All rules look at the original text; overlapping finds are merged into one replacement.
 */
export function redactText(text: string, rules: readonly RedactionRule[] = REDACTION_RULES, hits: RedactionHits = {}): string {
  if (text.length === 0) return text;
  const lower = asciiLower(text);
  // Many rules share keywords (`key`, `token`, ...): look each up once per text.
  const seen = new Map<string, boolean>();
  const has = (keyword: string): boolean => {
    let hit = seen.get(keyword);
    if (hit === undefined) seen.set(keyword, (hit = lower.includes(keyword)));
    return hit;
  };
  const found: Array<{ start: number; end: number; order: number }> = [];
  for (let order = 0; order < rules.length; order++) {
    const rule = rules[order]!;
    if (rule.keywords && rule.keywords.length > 0 && !rule.keywords.some(has)) continue;
    for (const [start, end] of rangesOf(rule, text, lower)) if (end > start) found.push({ start, end, order });
  }
  if (found.length === 0) return text;
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let at = 0;
  for (let i = 0; i < found.length;) {
    const first = found[i]!;
    let end = first.end;
    let order = first.order;
    for (i += 1; i < found.length && found[i]!.start < end; i += 1) {
      end = Math.max(end, found[i]!.end);
      order = Math.min(order, found[i]!.order);
    }
    const name = rules[order]!.name;
    out += text.slice(at, first.start) + tag(name);
    count(hits, name);
    at = end;
  }
  return out + text.slice(at);
}

/** The result of redacting a value: a redacted copy and what was replaced. */
export interface Redacted<T = unknown> {
  value: T;
  hits: RedactionHits;
}

/** Options for `redactValue`. */
export interface RedactOptions {
  /** Rules to apply (from `resolveRules`). @default every rule */
  rules?: readonly RedactionRule[];
  /** Redact string values under keys named like secrets (`password`, `api_key`, `token`, ...) whole. @default true */
  secretKeys?: boolean;
  /** Deepest nesting walked; deeper values are replaced by `[REDACTED:depth]`. @default 64 */
  maxDepth?: number;
}

/**
 * Deep-walks any JSON-like value and returns a redacted copy: strings are redacted, object keys
 * too, values under secret-named keys are replaced whole, and `Error`s become plain
 * `{ name, message, stack, cause }` objects with their text redacted. The input is not changed.
 */
export function redactValue<T>(value: T, options: RedactOptions = {}): Redacted<T> {
  const rules = options.rules ?? REDACTION_RULES;
  const secretKeys = options.secretKeys ?? true;
  const maxDepth = options.maxDepth ?? 64;
  const hits: RedactionHits = {};
  const seen = new WeakSet<object>();
  const keyRuleActive = rules.some((r) => r.name === 'secret_assignment');

  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return redactText(v, rules, hits);
    if (v === null || typeof v !== 'object') return typeof v === 'bigint' ? redactText(v.toString(), rules, hits) : v;
    if (depth >= maxDepth) {
      count(hits, 'depth');
      return tag('depth');
    }
    if (seen.has(v)) return tag('cycle');
    seen.add(v);
    try {
      if (v instanceof Error) {
        const out: Record<string, unknown> = { name: v.name, message: walk(v.message, depth + 1) };
        if (v.stack) out.stack = walk(v.stack, depth + 1);
        for (const [k, inner] of Object.entries(v)) if (!(k in out)) out[k] = walk(inner, depth + 1);
        if (v.cause !== undefined) out.cause = walk(v.cause, depth + 1);
        return out;
      }
      if (Array.isArray(v)) return v.map((item) => walk(item, depth + 1));
      if (v instanceof Date) return v.toISOString();
      if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v;
      const out: Record<string, unknown> = {};
      for (const [k, inner] of Object.entries(v as Record<string, unknown>)) {
        const key = redactText(k, rules, hits);
        if (secretKeys && keyRuleActive && typeof inner === 'string' && inner.length > 0 && SECRET_KEY.test(k)) {
          count(hits, 'secret_assignment');
          out[key] = tag('secret_assignment');
        } else {
          out[key] = walk(inner, depth + 1);
        }
      }
      return out;
    } finally {
      seen.delete(v);
    }
  };
  return { value: walk(value, 0) as T, hits };
}

/** A redactor bound to one tool's `egress.redact` selection, for reuse on every value it returns. */
export interface Redactor {
  readonly rules: readonly RedactionRule[];
  value<T>(value: T): Redacted<T>;
  text(text: string): string;
}

/** Builds a redactor for a tool's rule selection (names and/or categories; absent = all). */
export function createRedactor(selection?: readonly string[], options: Omit<RedactOptions, 'rules'> = {}): Redactor {
  const rules = resolveRules(selection);
  return {
    rules,
    value: (value) => redactValue(value, { ...options, rules }),
    text: (text) => redactText(text, rules),
  };
}
