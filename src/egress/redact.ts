/**
 * Redaction of secrets and personal data in anything that leaves the gateway: tool results,
 * what approvers see, logs, memo and search attributes. Every rule is a precompiled regular
 * expression with bounded quantifiers (no catastrophic backtracking), optionally confirmed by a
 * validator (Luhn for cards, ISO 13616 mod-97 for IBANs via `ibantools`, phone numbers via
 * `libphonenumber-js`), so near-misses such as a 16-digit order id or a git SHA stay readable.
 */
import { isValidIBAN } from 'ibantools';
import { findNumbers, type CountryCode } from 'libphonenumber-js';

/** The two families of rules; a tool's `egress.redact` may name a family, `all`, or single rules. */
export type RedactionCategory = 'secrets' | 'pii';

/** One redaction rule: a name, a family, and how to find what it redacts. */
export interface RedactionRule {
  /** Appears in the replacement as `[REDACTED:<name>]`. */
  readonly name: string;
  readonly category: RedactionCategory;
  /** Human-readable description for docs and errors. */
  readonly description: string;
  /** Finds candidates; must be global. Group `keep` (if present) is a prefix left in clear, group `secret` the part replaced. */
  readonly pattern?: RegExp;
  /** Confirms a candidate (checksums, validity rules); absent means every match counts. */
  readonly validate?: (candidate: string) => boolean;
  /** For rules a regex cannot express: returns the [start, end) ranges to redact. */
  readonly find?: (text: string) => Array<[number, number]>;
}

/** Counts of replacements per rule name. */
export type RedactionHits = Record<string, number>;

/** Thrown when a tool's `egress.redact` names a rule or family that does not exist. */
export class UnknownRedactionRuleError extends Error {
  override readonly name = 'UnknownRedactionRuleError';
  /** The names that matched nothing. */
  readonly unknown: readonly string[];
  constructor(unknown: readonly string[]) {
    super(`egress.redact: unknown rule or category ${unknown.map((u) => `"${u}"`).join(', ')}; known: all, secrets, pii, ${REDACTION_RULES.map((r) => r.name).join(', ')}`);
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
const CARD_NETWORKS = /^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:2[2-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}|3[47]\d{13}|3(?:0[0-5]|[68]\d)\d{11,16}|6(?:011|5\d\d|4[4-9]\d)\d{12,15}|35(?:2[89]|[3-8]\d)\d{12,15}|62\d{14,17}|(?:5[06-9]|6\d)\d{10,17})$/;

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

function findPhones(text: string, defaultCountry: CountryCode): Array<[number, number]> {
  if (!/\d[\d ().+-]{5,30}\d/.test(text)) return [];
  const out: Array<[number, number]> = [];
  for (const found of findNumbers(text, { defaultCountry, v2: true })) {
    const raw = text.slice(found.startsAt, found.endsAt);
    // A bare run of digits is more often an id than a phone number: require international or grouped form.
    if (raw.startsWith('+') || raw.startsWith('(') || /\d[ .-]\(?\d/.test(raw)) out.push([found.startsAt, found.endsAt]);
  }
  return out;
}

// --- the rules ------------------------------------------------------------------------------

const B = String.raw`(?<![A-Za-z0-9_])`; // start boundary that also treats '_' and '-' neighbours sensibly
const E = String.raw`(?![A-Za-z0-9_])`;

function rx(source: string, flags = ''): RegExp {
  return new RegExp(source, `g${flags}`);
}

/** Every rule toolgate ships, in the order they are applied (specific before generic). */
export const REDACTION_RULES: readonly RedactionRule[] = [
  {
    name: 'private_key',
    category: 'secrets',
    description: 'PEM private keys (RSA, EC, DSA, OPENSSH, PGP, PKCS#8, encrypted), also when truncated',
    pattern: rx(
      String.raw`-----BEGIN (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,16384}?-----END (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,-]{0,16384})`,
    ),
  },
  {
    name: 'connection_string',
    category: 'secrets',
    description: 'passwords in URLs with credentials (postgres://user:password@host, amqp, redis, mongodb+srv, https)',
    pattern: rx(String.raw`(?<keep>${B}[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@"'<>]{0,128}:)(?<secret>[^\s/@"'<>]{1,256})(?=@[^\s@"'<>]{1,255})`),
    validate: (secret) => !/^\*+$/.test(secret) && !/^\$\{[^}]{1,64}\}$/.test(secret),
  },
  {
    name: 'aws_access_key_id',
    category: 'secrets',
    description: 'AWS access key ids (AKIA, ASIA, ABIA, ACCA)',
    pattern: rx(String.raw`${B}(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}${E}`),
  },
  {
    name: 'aws_secret_access_key',
    category: 'secrets',
    description: 'AWS secret access keys next to their name (aws_secret_access_key = ..., "SecretAccessKey": "...")',
    pattern: rx(String.raw`(?<keep>(?:aws_?secret_?access_?key|secret_?access_?key)["']?\s{0,4}[:=]\s{0,4}["']?)(?<secret>[A-Za-z0-9/+]{40})${E}`, 'i'),
  },
  {
    name: 'gcp_api_key',
    category: 'secrets',
    description: 'Google Cloud API keys (AIza...)',
    pattern: rx(String.raw`${B}AIza[0-9A-Za-z_-]{35}${E}`),
  },
  {
    name: 'gcp_oauth',
    category: 'secrets',
    description: 'Google OAuth client secrets (GOCSPX-...) and access tokens (ya29....)',
    pattern: rx(String.raw`${B}(?:GOCSPX-[0-9A-Za-z_-]{28}|ya29\.[0-9A-Za-z_-]{20,2048})${E}`),
  },
  {
    name: 'azure_storage_key',
    category: 'secrets',
    description: 'Azure storage account keys and SAS signatures in connection strings and URLs',
    pattern: rx(String.raw`(?<keep>(?:AccountKey|SharedAccessKey)=)(?<secret>[A-Za-z0-9+/]{43,88}={0,2})|(?<keep2>[?&]sig=)(?<secret2>[A-Za-z0-9%+/]{40,96})`),
  },
  {
    name: 'azure_client_secret',
    category: 'secrets',
    description: 'Microsoft Entra (Azure AD) client secrets (xxx8Q~...)',
    pattern: rx(String.raw`${B}[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])`),
  },
  {
    name: 'github_token',
    category: 'secrets',
    description: 'GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)',
    pattern: rx(String.raw`${B}(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{82})${E}`),
  },
  {
    name: 'gitlab_token',
    category: 'secrets',
    description: 'GitLab personal, project and CI tokens (glpat-, glptt-, gldt-)',
    pattern: rx(String.raw`${B}(?:glpat|glptt|gldt|glrt)-[A-Za-z0-9_-]{20,64}${E}`),
  },
  {
    name: 'slack_token',
    category: 'secrets',
    description: 'Slack tokens (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xapp-) and incoming webhook URLs',
    pattern: rx(String.raw`${B}(?:xox[abprs]-[0-9A-Za-z-]{10,250}|xapp-\d-[A-Z0-9]{8,32}-\d{6,16}-[a-f0-9]{32,80})${E}|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_/+-]{20,200}`),
  },
  {
    name: 'stripe_key',
    category: 'secrets',
    description: 'Stripe secret and restricted keys (sk_live_, rk_live_, sk_test_, whsec_)',
    pattern: rx(String.raw`${B}(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,247}|whsec_[0-9A-Za-z]{24,64})${E}`),
  },
  {
    name: 'openai_key',
    category: 'secrets',
    description: 'OpenAI API keys (sk-proj-, sk-svcacct-, sk-admin-, legacy sk-...T3BlbkFJ...)',
    pattern: rx(String.raw`${B}sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,250}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})(?![A-Za-z0-9_-])`),
  },
  {
    name: 'anthropic_key',
    category: 'secrets',
    description: 'Anthropic API keys (sk-ant-api03-..., sk-ant-admin01-...)',
    pattern: rx(String.raw`${B}sk-ant-(?:api|admin|oat)\d{2}-[A-Za-z0-9_-]{80,120}(?![A-Za-z0-9_-])`),
  },
  {
    name: 'npm_token',
    category: 'secrets',
    description: 'npm access tokens (npm_...)',
    pattern: rx(String.raw`${B}npm_[A-Za-z0-9]{36}${E}`),
  },
  {
    name: 'sendgrid_key',
    category: 'secrets',
    description: 'SendGrid API keys (SG.xxx.yyy)',
    pattern: rx(String.raw`${B}SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])`),
  },
  {
    name: 'jwt',
    category: 'secrets',
    description: 'JSON Web Tokens (three base64url parts, the first two JSON objects)',
    pattern: rx(String.raw`${B}eyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{4,16384}\.[A-Za-z0-9_-]{0,4096}(?![A-Za-z0-9_-])`),
  },
  {
    name: 'bearer_token',
    category: 'secrets',
    description: 'credentials after "Bearer" or "Basic" in Authorization values (at least 16 characters with a digit)',
    pattern: rx(String.raw`(?<keep>\b(?:Bearer|Basic|Token)\s{1,4})(?<secret>(?=[A-Za-z0-9._~+/-]{0,4095}\d)[A-Za-z0-9._~+/-]{16,4096}={0,2})(?![A-Za-z0-9._~+/=-])`, 'i'),
  },
  {
    name: 'secret_assignment',
    category: 'secrets',
    description: 'values assigned to password/secret/api_key/token names (password=..., "client_secret": "...", and object keys of those names)',
    pattern: rx(
      String.raw`(?<keep>(?<![A-Za-z0-9])(?:[A-Za-z0-9]{1,24}[_-]){0,3}(?:password|passwd|pwd|secret|client_secret|api_?key|apikey|access_?token|auth_?token|refresh_?token|private_?key)["']?\s{0,4}[:=]\s{0,4}["']?)(?<secret>(?!\[REDACTED:)(?!(?:true|false|null|none|undefined|required|optional|\*+|\$\{[^}]{1,64}\})(?:[\s"',;&]|$))[^\s"',;&]{4,256})`,
      'i',
    ),
  },
  {
    name: 'email',
    category: 'pii',
    description: 'e-mail addresses',
    pattern: rx(String.raw`(?<![A-Za-z0-9._%+/:-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])`),
  },
  {
    name: 'card_number',
    category: 'pii',
    description: 'payment card numbers of the major networks that pass the Luhn check (13-19 digits, plain or in 4-4-4-4 / 4-6-5 groups)',
    pattern: rx(String.raw`(?<![\w.-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{4,5})(?![\w-]|\.\d)`),
    validate: cardValid,
  },
  {
    name: 'iban',
    category: 'pii',
    description: 'IBANs with a valid country format and ISO 13616 mod-97 checksum',
    pattern: rx(String.raw`${B}[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?${E}`),
    validate: ibanValid,
  },
  {
    name: 'us_ssn',
    category: 'pii',
    description: 'US Social Security numbers (ddd-dd-dddd or after "SSN"), with the SSA validity rules',
    pattern: rx(String.raw`(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])|(?<=\bSSN[:#]?\s{0,3})\d{9}(?!\d)`),
    validate: ssnValid,
  },
  {
    name: 'uk_nino',
    category: 'pii',
    description: 'UK National Insurance numbers, excluding never-allocated prefixes',
    pattern: rx(String.raw`${B}[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]${E}`),
    validate: (c) => !NINO_BAD_PREFIXES.has(c.slice(0, 2)),
  },
  {
    name: 'phone',
    category: 'pii',
    description: 'phone numbers in international (+...) or grouped national form, validated by libphonenumber-js',
    find: (text) => findPhones(text, 'US'),
  },
];

const RULES_BY_NAME = new Map(REDACTION_RULES.map((r) => [r.name, r]));

/** Object keys whose string values are secrets whatever they look like. */
const SECRET_KEY = /^(?:password|passwd|pwd|secret|client_?secret|api_?key|apikey|x-api-key|access_?token|auth_?token|refresh_?token|token|private_?key|secret_?access_?key|authorization|cookie|set-cookie)$/i;

/**
 * Resolves a tool's `egress.redact` list (rule names and/or `secrets`, `pii`) to rules; absent
 * or empty means every rule. Throws `UnknownRedactionRuleError` for names that match nothing.
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
    if (rule) chosen.add(rule);
    else unknown.push(name);
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

/** Redacts one string with the given rules, counting replacements into `hits`. */
export function redactText(text: string, rules: readonly RedactionRule[] = REDACTION_RULES, hits: RedactionHits = {}): string {
  let out = text;
  for (const rule of rules) {
    if (rule.find) {
      const ranges = rule.find(out);
      for (let i = ranges.length - 1; i >= 0; i--) {
        const [start, end] = ranges[i]!;
        out = out.slice(0, start) + tag(rule.name) + out.slice(end);
        count(hits, rule.name);
      }
      continue;
    }
    const pattern = rule.pattern!;
    pattern.lastIndex = 0;
    out = out.replace(pattern, (match: string, ...args: unknown[]) => {
      const groups = args.at(-1) as Record<string, string | undefined> | undefined;
      const keep = groups?.keep ?? groups?.keep2;
      const secret = groups?.secret ?? groups?.secret2;
      const candidate = secret ?? match;
      if (rule.validate && !rule.validate(candidate)) return match;
      count(hits, rule.name);
      return keep !== undefined && secret !== undefined ? `${keep}${tag(rule.name)}` : tag(rule.name);
    });
  }
  return out;
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
