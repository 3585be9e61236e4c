/**
 * `shell(line)` for policy conditions: a command line parsed by a real shell parser (tree-sitter's
 * bash grammar, run as WebAssembly through web-tree-sitter) instead of regexes.
 *
 * The result says whether the line is *simple* — plain commands joined by `;`, `&&`, `||`, `|` or
 * newlines, whose every word is a literal — and gives the argv of each command with quotes removed
 * and backslash escapes resolved, so a rule checks what would really run (`'c''a't` is `cat`).
 * Anything the shell would still expand or rewire before running (substitutions, variables,
 * arithmetic, globs, braces, `~`, redirections, here-docs, here-strings, subshells, groups, control
 * flow, functions, assignments before a command, `export`/`declare`, `&`, `|&`, `!`, comments,
 * ANSI-C or locale strings) makes the line not simple, with a reason. A line that is not simple must
 * never be auto-allowed; its `commands` are still listed, best effort (every command found anywhere,
 * a non-literal word kept as its source text), for deny rules to look at.
 *
 * The WASM parser is initialised once, by the top-level `await` below, so nothing that imports the
 * policy engine can evaluate a condition before it is ready. If initialisation fails, `shell()`
 * throws, and a rule that fails to evaluate denies.
 */
import { createRequire } from 'node:module';
import { posix } from 'node:path';
import { Language, Parser, type Node } from 'web-tree-sitter';

/** One command of a line: its name and arguments as the shell would pass them. */
export interface ShellCommand {
  name: string;
  args: string[];
}

/** What `shell(line)` returns to a CEL condition. */
export interface ShellLine {
  /** True only when the whole line is plain literal commands joined by `;`, `&&`, `||`, `|` or newlines. */
  simple: boolean;
  /** Every command found, in source order; exact argv when `simple`, best effort otherwise. */
  commands: ShellCommand[];
  /**
   * Every word of the line wherever it stands (command names, arguments, redirection targets,
   * here-strings, loop lists, assignment values), quotes and escapes resolved as far as the literal
   * parts go (`~/."ssh"/id_rsa` is `~/.ssh/id_rsa`). For rules about what a line names.
   */
  words: string[];
  /** Why the line is not simple (empty when it is). */
  reasons: string[];
}

/** Lines longer than this are not parsed (the shipped tool schema caps commands at 2000 characters). */
export const MAX_SHELL_LINE = 65_536;
/** Nesting deeper than this is not walked: such a line is not simple. */
const MAX_DEPTH = 200;

let parser: Parser | undefined;
let initError: Error | undefined;
let initializing: Promise<void> | undefined;

/**
 * Loads the WASM runtime and the bash grammar. Idempotent; the module already awaits it when it is
 * first imported, so callers never need to. Never rejects: a failure is kept and `shell()` reports it.
 */
export function initShellParser(): Promise<void> {
  initializing ??= (async () => {
    try {
      await Parser.init();
      const wasm = createRequire(import.meta.url).resolve('tree-sitter-bash/tree-sitter-bash.wasm');
      const created = new Parser();
      created.setLanguage(await Language.load(wasm));
      parser = created;
    } catch (error) {
      initError = error instanceof Error ? error : new Error(String(error));
    }
  })();
  return initializing;
}

// Top-level await: importing this module (and so condition.ts, load.ts, the policy engine) completes
// only once the parser is ready, so synchronous rule evaluation can rely on it everywhere.
await initShellParser();

/** Parses one command line (synchronously; the result is frozen). Throws if the parser could not be initialised. */
export function parseShellLine(line: string): ShellLine {
  if (typeof line !== 'string') throw new TypeError('shell() takes a string');
  return deepFreeze(analyse(line));
}

/**
 * Lexical normalisation of a path-like argument, for rules that match file names: `//` collapsed,
 * `.` segments and a trailing `/` dropped, `a/..` folded (`/etc/./x/..//shadow/` is `/etc/shadow`).
 * Leading `..` of a relative path stay. Works on whole arguments too (`if=/etc//shadow`).
 */
export function normalizePath(path: string): string {
  if (path === '') return path;
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
}

function analyse(line: string): ShellLine {
  if (!parser) throw new Error(`the shell parser is not available: ${initError?.message ?? 'not initialised'}`);
  if (line.length > MAX_SHELL_LINE) return { simple: false, commands: [], words: [], reasons: [`the line is longer than ${MAX_SHELL_LINE} characters`] };
  const walk = new Walk(line);
  // Bytes outside printable ASCII are where shells, terminals and this parser may disagree (NUL,
  // CR, no-break spaces, look-alike letters): such a line is never simple.
  if (/[^\x20-\x7e\t\n]/.test(line)) walk.reasons.add('control or non-ASCII characters');
  const tree = parser.parse(line);
  if (!tree) throw new Error('the shell parser returned no tree');
  try {
    const root = tree.rootNode;
    if (root.hasError) walk.reasons.add('the parser could not fully parse the line');
    walk.gap(0, root.startIndex);
    walk.statement(root, 0);
    walk.gap(root.endIndex, line.length);
    if (walk.commands.length === 0) walk.reasons.add('no command');
    return { simple: walk.reasons.size === 0, commands: walk.commands, words: walk.words, reasons: [...walk.reasons] };
  } finally {
    tree.delete();
  }
}

/** Statement containers allowed in a simple line, with the operators allowed between their parts. */
const CONTAINERS: Record<string, ReadonlySet<string>> = {
  program: new Set([';']),
  list: new Set(['&&', '||']),
  pipeline: new Set(['|']),
};

/** One pass over a tree: the commands found and the reasons the line is not simple. */
class Walk {
  readonly commands: ShellCommand[] = [];
  readonly words: string[] = [];
  readonly reasons = new Set<string>();

  constructor(private readonly line: string) {}

  /**
   * Text between two nodes must be blanks or line continuations. The grammar skips some text as
   * "extras" where bash does not (`\ ls` is the word " ls" to bash, but `ls` to the parser).
   */
  gap(from: number, to: number): void {
    if (!/^(?:[ \t\n]|\\\n)*$/.test(this.line.slice(from, to))) this.reasons.add('text the parser skipped');
  }

  /** Checks the gaps around and between a node's children. */
  gaps(node: Node): void {
    let at = node.startIndex;
    for (const child of node.children) {
      this.gap(at, child.startIndex);
      at = child.endIndex;
    }
    this.gap(at, node.endIndex);
  }

  /** A statement: a container of statements, a command, or anything else (not simple). */
  statement(node: Node, depth: number): void {
    if (depth > MAX_DEPTH) {
      this.reasons.add('nested too deeply');
      return;
    }
    const operators = CONTAINERS[node.type];
    if (operators) {
      this.gaps(node);
      for (const child of node.children) {
        if (child.isNamed) this.statement(child, depth + 1);
        else if (!operators.has(child.type)) this.reasons.add(operatorReason(child.type));
      }
    } else if (node.type === 'command') {
      this.command(node, depth);
    } else if (node.type === 'redirected_statement') {
      // `cmd > file`, `cmd <<EOF`: the redirections make the line not simple; the body is still read.
      for (const child of node.children) {
        if (child.type.endsWith('_redirect')) {
          this.reasons.add(describeNode(child.type));
          this.nested(child, depth + 1);
        } else if (child.isNamed) {
          this.statement(child, depth + 1);
        } else {
          this.reasons.add(operatorReason(child.type));
        }
      }
    } else if (node.type === 'declaration_command' || node.type === 'unset_command') {
      // export/declare/local/readonly/typeset/unset: bash parses their words as assignments, and
      // without names they list variables (`export -p`).
      this.reasons.add(node.type === 'unset_command' ? 'unset' : 'a declaration (export, declare, local…)');
      const [keyword, ...rest] = node.children;
      this.commands.push({ name: keyword?.text ?? '', args: rest.map((word) => this.word(word, depth)) });
    } else {
      this.reasons.add(describeNode(node.type));
      this.nested(node, depth);
    }
  }

  /**
   * Finds the commands inside anything (a substitution, a loop, a redirect target) for deny rules,
   * and the words standing there unless `inWord` (inside a word, its parts are not words).
   */
  nested(node: Node, depth: number, inWord = false): void {
    for (const child of node.children) {
      if (depth > MAX_DEPTH) {
        this.reasons.add('nested too deeply');
        return;
      }
      if (child.type === 'command' || child.type === 'declaration_command' || child.type === 'unset_command' || child.type in CONTAINERS) {
        this.statement(child, depth + 1);
      } else if (WORDS.has(child.type) && !inWord) {
        this.word(child, depth + 1);
      } else {
        this.nested(child, depth + 1, inWord);
      }
    }
  }

  command(node: Node, depth: number): void {
    let name: string | undefined;
    const args: string[] = [];
    const at = this.commands.length;
    this.gaps(node);
    for (const child of node.children) {
      if (child.type === 'command_name') {
        const word = child.namedChildren[0];
        if (child.namedChildCount !== 1 || !word) this.reasons.add('an unusual command name');
        name = word ? this.word(word, depth) : child.text;
      } else if (name === undefined) {
        // Before the name: `X=1 cmd` changes the command's environment (PATH, LD_PRELOAD…).
        this.reasons.add(describeNode(child.type));
        this.nested(child, depth + 1);
      } else if (!child.isNamed) {
        this.reasons.add(operatorReason(child.type));
      } else if (child.type.endsWith('_redirect')) {
        this.reasons.add(describeNode(child.type));
        this.nested(child, depth + 1);
      } else {
        args.push(this.word(child, depth));
      }
    }
    // The command before the ones nested in its words (`rm $(ls)`: rm, then ls).
    this.commands.splice(at, 0, { name: name ?? '', args });
  }

  /**
   * A word's value: literal (quotes removed, escapes resolved) or, if the shell would expand it,
   * its literal parts resolved and the rest as written. Recorded in `words`.
   */
  word(node: Node, depth: number): string {
    const literal = literalValue(node, this.reasons);
    const value = literal ?? bestEffort(node);
    this.words.push(value);
    if (literal === undefined) this.nested(node, depth + 1, true);
    return value;
  }
}

/** Node types that are one shell word. */
const WORDS = new Set([
  'word',
  'number',
  'string',
  'raw_string',
  'concatenation',
  'ansi_c_string',
  'translated_string',
  'simple_expansion',
  'expansion',
  'command_substitution',
  'process_substitution',
  'arithmetic_expansion',
]);

/** A non-literal word as far as it resolves: quotes and backslashes of its literal parts removed, expansions as written. */
function bestEffort(node: Node): string {
  switch (node.type) {
    case 'word':
    case 'number':
      return node.text.replace(/\\\n/g, '').replace(/\\([\s\S])/g, '$1');
    case 'raw_string':
      return node.text.slice(1, -1);
    case 'string':
      return node.children
        .filter((child) => child.type !== '"')
        .map((child) => (child.type === 'string_content' ? child.text.replace(/\\\n/g, '').replace(/\\([$`"\\])/g, '$1') : child.text))
        .join('');
    case 'concatenation':
      return node.children.map(bestEffort).join('');
    default:
      return node.text;
  }
}

/** Characters that make an unquoted word something other than itself: globs, braces, `~`, `$`, backquote… */
const UNQUOTED_SPECIAL = /[*?[\]{}~$`!()<>|&;'"\s]/;

function literalValue(node: Node, reasons: Set<string>): string | undefined {
  switch (node.type) {
    case 'word':
    case 'number': {
      const text = node.text;
      const special = UNQUOTED_SPECIAL.exec(text.replace(/\\[\s\S]/g, ''));
      if (special) {
        reasons.add(
          /[*?[\]]/.test(special[0])
            ? 'a glob'
            : /[{}]/.test(special[0])
              ? 'brace expansion'
              : special[0] === '~'
                ? 'tilde expansion'
                : 'a special character in a word',
        );
        return undefined;
      }
      // Unquoted: a backslash makes the next character literal; backslash-newline joins lines.
      return text.replace(/\\\n/g, '').replace(/\\([\s\S])/g, '$1');
    }
    case 'raw_string': {
      const text = node.text;
      if (text.length < 2 || !text.startsWith("'") || !text.endsWith("'")) {
        reasons.add('an unusual quoted string');
        return undefined;
      }
      return text.slice(1, -1);
    }
    case 'string': {
      // "…": only quote marks and plain content; `$`, backquotes and expansions are not literal.
      const children = node.children;
      const first = children[0];
      const last = children[children.length - 1];
      if (children.length < 2 || first?.type !== '"' || last?.type !== '"' || first === last) {
        reasons.add('an unusual quoted string');
        return undefined;
      }
      let value = '';
      let at = first.endIndex;
      for (const child of children.slice(1, -1)) {
        if (child.type !== 'string_content' || child.startIndex !== at || /[$`]/.test(child.text)) {
          reasons.add(child.type === 'string_content' || !child.isNamed ? 'an expansion inside double quotes' : describeNode(child.type));
          return undefined;
        }
        value += child.text;
        at = child.endIndex;
      }
      if (at !== last.startIndex) {
        reasons.add('an expansion inside double quotes');
        return undefined;
      }
      // Inside double quotes a backslash escapes only $ ` " \ and newline.
      return value.replace(/\\\n/g, '').replace(/\\([$`"\\])/g, '$1');
    }
    case 'concatenation': {
      let value = '';
      let at = node.startIndex;
      for (const child of node.children) {
        if (child.startIndex !== at || !child.isNamed) {
          reasons.add(child.isNamed ? 'an unusual word' : operatorReason(child.type));
          return undefined;
        }
        const part = literalValue(child, reasons);
        if (part === undefined) return undefined;
        value += part;
        at = child.endIndex;
      }
      if (at !== node.endIndex) {
        reasons.add('an unusual word');
        return undefined;
      }
      return value;
    }
    default:
      reasons.add(describeNode(node.type));
      return undefined;
  }
}

const NODE_REASONS: Record<string, string> = {
  command_substitution: 'command substitution',
  process_substitution: 'process substitution',
  simple_expansion: 'variable expansion',
  expansion: 'parameter expansion',
  arithmetic_expansion: 'arithmetic expansion',
  ansi_c_string: "an ANSI-C string ($'…')",
  translated_string: 'a locale string ($"…")',
  brace_expression: 'brace expansion',
  extglob_pattern: 'a glob',
  file_redirect: 'a redirection',
  heredoc_redirect: 'a here-document',
  herestring_redirect: 'a here-string',
  redirected_statement: 'a redirection',
  subshell: 'a subshell',
  compound_statement: 'a command group',
  function_definition: 'a function definition',
  variable_assignment: 'a variable assignment',
  variable_assignments: 'a variable assignment',
  negated_command: 'a negated command (!)',
  test_command: 'a test ([ ] or [[ ]])',
  comment: 'a comment',
  ERROR: 'the parser could not fully parse the line',
};

function describeNode(type: string): string {
  if (NODE_REASONS[type]) return NODE_REASONS[type];
  if (/_(statement|loop)$|^(if|for|while|case|c_style_for|until|select)/.test(type)) return 'control flow';
  return `shell syntax the policy does not resolve (${type})`;
}

function operatorReason(type: string): string {
  if (type === '&') return 'a background command (&)';
  if (type === '|&') return 'a pipe of standard error (|&)';
  if (type === '$') return 'a $ the shell would expand';
  return `the operator ${JSON.stringify(type)}`;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}
