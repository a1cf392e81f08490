/**
 * keepalived.conf lexical rules (keepalived lib/parser.c: read_line, decomment, alloc_strvec_r,
 * check_include), producing logical lines that each keep the file:line they came from:
 *
 *  - `#` and `!` start a comment anywhere outside double quotes; `\#` and `\!` are a literal # and !.
 *  - Leading/trailing blanks are dropped; empty lines are skipped.
 *  - The first `{` or `}` outside double quotes splits a line: a brace at the start of a line is a line
 *    of its own and the rest is processed as a further line ("line residue"), otherwise the text before
 *    it is one line and the brace starts the next. So blocks work on one line (`url { path / }`) or on
 *    several, with `{` at the end of the keyword line or on a line of its own.
 *  - Words are separated by blanks; a word that starts with `"` runs to the next `"` (the quotes are
 *    removed, blanks inside kept). No other quoting or escaping applies to ordinary words; the script
 *    keywords re-read the raw line with keepalived's shell-like rules (see `splitQuotedEscaped`).
 *  - There is no line continuation (keepalived has none except in multi-line `$NAME=` definitions,
 *    which tapvs does not support: it says so).
 *  - `include FILE` (and `includer/includem/includew/includeb/includea`): FILE may hold glob wildcards
 *    and `{a,b}` alternatives, relative to the directory of the including file. Plain `include` never
 *    fails for a pattern that matches nothing; the checking variants do. Nesting is limited
 *    (`maxIncludeDepth`) and a file that includes itself, directly or not, is refused.
 *  - `@ID line` / `@^ID line` keep the line only on (or not on) the host whose config id is ID, and
 *    single-line `$NAME=VALUE` parameters with `$NAME` / `${NAME}` substitution are supported.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Diagnostics, type SourceRef } from './diagnostics.js';
import { globFiles } from './glob.js';

export interface LogicalLine {
  /** The words of the line, quotes removed. Never empty. */
  words: string[];
  /** The line after comment removal and brace splitting, as written (for script keywords). */
  raw: string;
  at: SourceRef;
}

export interface LexOptions {
  /** Maximum include nesting (the top file is depth 0). Default 16. */
  maxIncludeDepth?: number;
  /** Config id for `@ID` lines (keepalived's -i): default the first label of the host name. */
  configId?: string;
  /** File reader (tests); default fs.readFileSync(…, 'utf8'). */
  readFile?: (file: string) => string;
}

export interface LexResult {
  lines: LogicalLine[];
  /** Every file read, in reading order (real paths). */
  files: string[];
  diagnostics: Diagnostics;
}

export const DEFAULT_MAX_INCLUDE_DEPTH = 16;

/**
 * decomment(): strip a comment (outside double quotes), un-escape `\#`/`\!` outside quotes and trim
 * blanks; a trailing backslash is kept as the last character (keepalived does the same).
 */
export function decomment(line: string): { text: string; unterminatedQuote: boolean } {
  const s = line.replace(/^[ \t]+/, '');
  let out = '';
  let quote = false;
  let cont = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"') {
      quote = !quote;
      out += c;
      continue;
    }
    if (c === '\\') {
      if (i + 1 < s.length) {
        const n = s[i + 1];
        out += !quote && (n === '#' || n === '!') ? n : c + n;
        i++;
        continue;
      }
      cont = true;
      break;
    }
    if (!quote && (c === '#' || c === '!')) break;
    out += c;
  }
  out = out.replace(/[ \t]+$/, '');
  if (cont) out += '\\';
  return { text: out, unterminatedQuote: quote };
}

/** alloc_strvec_r(): blank-separated words; a word starting with `"` runs to the next `"`. */
export function splitWords(text: string): { words: string[]; unmatchedQuote: boolean } {
  const words: string[] = [];
  let i = 0;
  const blank = (c: string): boolean => c === ' ' || c === '\t' || c === '\f' || c === '\n' || c === '\r' || c === '\v';
  while (i < text.length) {
    while (i < text.length && blank(text[i])) i++;
    if (i >= text.length) break;
    if (text[i] === '"') {
      const close = text.indexOf('"', i + 1);
      if (close < 0) return { words, unmatchedQuote: true };
      words.push(text.slice(i + 1, close));
      i = close + 1;
    } else {
      let j = i;
      while (j < text.length && !blank(text[j]) && text[j] !== '"') j++;
      words.push(text.slice(i, j));
      i = j;
    }
  }
  return { words, unmatchedQuote: false };
}

/**
 * alloc_strvec_quoted_escaped(): the rules script keywords (notify_up, misc_path, quorum_up, ...) use.
 * Words are blank-separated; `"..."` and `'...'` group (the quotes are removed, even in the middle of a
 * word: `abcd" efg h "x` is one word), and backslash escapes `\a \b \E \f \n \r \t \v \\ \" \' \nnn
 * \xXX \cC` apply inside and outside quotes. Returns null on a missing closing quote.
 */
export function splitQuotedEscaped(src: string): string[] | null {
  const out: string[] = [];
  const blank = (c: string): boolean => c === ' ' || c === '\t' || c === '\f' || c === '\n' || c === '\r' || c === '\v';
  let i = 0;
  while (i < src.length) {
    while (i < src.length && blank(src[i])) i++;
    if (i >= src.length) break;
    let word = '';
    let quote = '';
    for (; i < src.length; i++) {
      const c = src[i];
      if (c === '\\') {
        i++;
        if (i >= src.length) return null;
        const e = src[i];
        if (e === 'x' && /[0-9a-fA-F]/.test(src[i + 1] ?? '')) {
          let v = 0;
          while (/[0-9a-fA-F]/.test(src[i + 1] ?? '')) v = ((v << 4) | parseInt(src[++i], 16)) & 0xff;
          word += String.fromCharCode(v);
        } else if (e === 'c' && i + 1 < src.length) {
          word += String.fromCharCode(src.charCodeAt(++i) & 0x1f);
        } else if (e >= '0' && e <= '7') {
          let v = e.charCodeAt(0) - 48;
          for (let k = 0; k < 2 && src[i + 1] >= '0' && src[i + 1] <= '7'; k++) v = v * 8 + (src.charCodeAt(++i) - 48);
          word += String.fromCharCode(v & 0xff);
        } else {
          const map: Record<string, string> = { a: '\x07', b: '\b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
          word += map[e] ?? e;
        }
        continue;
      }
      if (quote) {
        if (c === quote) quote = '';
        else word += c;
        continue;
      }
      if (c === '"' || c === "'") {
        quote = c;
        continue;
      }
      if (blank(c)) break;
      word += c;
    }
    if (quote) return null;
    out.push(word);
  }
  return out;
}

/** Split off the first `{` / `}` outside double quotes: [line, residue | null]. */
export function splitBrace(text: string): [string, string | null] {
  if (text[0] === '{' || text[0] === '}') {
    const rest = text.slice(1).replace(/^[ \t]+/, '').replace(/[ \t]+$/, '');
    return [text[0], rest === '' ? null : rest];
  }
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const close = text.indexOf('"', i + 1);
      if (close < 0) break;
      i = close + 1;
      continue;
    }
    if (c === '{' || c === '}') {
      const rest = text.slice(i).replace(/[ \t]+$/, '');
      return [text.slice(0, i).replace(/[ \t]+$/, ''), rest];
    }
    i++;
  }
  return [text, null];
}

const INCLUDE_RE = /^include([rmwba]?)[ \t]+(.*)$/;

interface FileFrame {
  real: string;
  file: string;
}

class Lexer {
  readonly lines: LogicalLine[] = [];
  readonly files: string[] = [];
  readonly diags = new Diagnostics();
  private readonly defs = new Map<string, string>();
  private readonly stack: FileFrame[] = [];
  private readonly maxDepth: number;
  private readonly configId: string;
  private readonly read: (file: string) => string;
  private warnedSeq = false;
  private warnedMultiline = false;

  constructor(opts: LexOptions) {
    this.maxDepth = opts.maxIncludeDepth ?? DEFAULT_MAX_INCLUDE_DEPTH;
    this.configId = opts.configId ?? os.hostname().split('.')[0];
    this.read = opts.readFile ?? ((f) => fs.readFileSync(f, 'utf8'));
  }

  /** Read one file (already resolved); `from` is the include line, absent for the top file. */
  readFile(file: string, from?: SourceRef): void {
    let real: string;
    try {
      real = fs.realpathSync(file);
    } catch {
      real = path.resolve(file);
    }
    const at = from ?? { file, line: 0 };
    const cycle = this.stack.findIndex((f) => f.real === real);
    if (cycle >= 0) {
      const chain = [...this.stack.slice(cycle).map((f) => f.file), file].join(' -> ');
      this.diags.error(at, `include cycle: ${chain} - not included again`);
      return;
    }
    if (this.stack.length > this.maxDepth) {
      this.diags.error(at, `include nesting deeper than ${this.maxDepth} levels - '${file}' not included`);
      return;
    }
    let text: string;
    try {
      text = this.read(file);
    } catch (e) {
      this.diags.error(at, `cannot read configuration file '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return;
    }
    this.files.push(real);
    this.stack.push({ real, file });
    const physical = text.split('\n');
    for (let n = 0; n < physical.length; n++) {
      const line = physical[n].replace(/\r+$/, '');
      if (line.trim() === '') continue;
      this.processPhysical(line, { file, line: n + 1 });
    }
    this.stack.pop();
  }

  private processPhysical(line: string, at: SourceRef): void {
    const d = decomment(line);
    if (d.unterminatedQuote) this.diags.warn(at, `Unterminated quote '${d.text}'`);
    if (d.text === '') return;
    let text: string | null = this.preprocess(d.text, at);
    while (text !== null && text !== '') {
      if (this.include(text, at)) return;
      const [head, residue] = splitBrace(text);
      if (head !== '') this.emit(head, at);
      text = residue;
    }
  }

  /** @ID conditionals, $NAME= definitions, ~SEQ/~LST and $NAME substitution; null drops the line. */
  private preprocess(input: string, at: SourceRef): string | null {
    let text = input;
    for (let pass = 0; pass < 16; pass++) {
      if (text[0] === '@') {
        const neg = text[1] === '^';
        const m = /^@\^?(\S+)[ \t]+(.*)$/.exec(text);
        if (!m) return null;
        if ((m[1] === this.configId) === neg) return null;
        text = m[2];
      }
      const def = /^\$([A-Za-z_][A-Za-z0-9_]*)=[ \t]*(.*)$/.exec(text);
      if (def) {
        let value = def[2];
        if (value.endsWith('\\')) {
          if (!this.warnedMultiline) this.diags.warn(at, `multi-line parameter definitions ($${def[1]}= \\) are not supported by tapvs - using the first line only`);
          this.warnedMultiline = true;
          value = value.slice(0, -1).replace(/[ \t]+$/, '');
        }
        this.defs.set(def[1], value);
        return null;
      }
      if (text.startsWith('~SEQ') || text.startsWith('~LST')) {
        if (!this.warnedSeq) this.diags.warn(at, `~SEQ and ~LST line generators are not supported by tapvs - line ignored`);
        this.warnedSeq = true;
        return null;
      }
      if (!text.includes('$')) return text;
      const replaced = this.substitute(text, at);
      if (replaced === text) return text;
      text = decomment(replaced).text;
      if (text === '') return null;
    }
    return text;
  }

  private substitute(text: string, at: SourceRef): string {
    return text.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)(?=[ \t,)]|$))/g, (whole, braced?: string, bare?: string) => {
      const name = (braced ?? bare)!;
      const builtin: Record<string, string> = {
        _PWD: path.dirname(path.resolve(at.file)),
        _INSTANCE: this.configId,
        _HASH: '#',
        _BANG: '!',
      };
      const v = this.defs.get(name) ?? builtin[name];
      return v ?? whole; // undefined parameters are left untouched, as keepalived does
    });
  }

  private include(text: string, at: SourceRef): boolean {
    const m = INCLUDE_RE.exec(text);
    if (!m) return false;
    const variant = m[1];
    const pattern = m[2].replace(/[ \t]+$/, '');
    const cur = this.stack[this.stack.length - 1];
    const baseDir = path.dirname(path.resolve(cur.file));
    const { paths, hadWildcards } = globFiles(pattern, baseDir);
    const strict = variant !== ''; // includer/m/w/b/a check what plain include silently accepts
    if (paths.length === 0) {
      const msg = hadWildcards ? `No config files matched '${pattern}'` : `Config files missing '${pattern}'`;
      // includem/includew/includea: a missing plain file is an error; includew/includea: so is a
      // wildcard that matches nothing (keepalived INCLUDE_M / INCLUDE_W).
      const fatal = hadWildcards ? variant === 'w' || variant === 'a' : variant === 'm' || variant === 'w' || variant === 'a' || variant === 'b';
      if (fatal) this.diags.error(at, msg);
      else this.diags.note(at, msg);
      return true;
    }
    for (const p of paths) {
      let st: fs.Stats | undefined;
      try {
        st = fs.statSync(p);
      } catch {
        st = undefined;
      }
      if (!st || !st.isFile() || (st.mode & 0o111) !== 0) {
        const msg = st?.isDirectory() ? `Configuration file '${p}' is a directory - skipping` : `Configuration file '${p}' is not a regular non-executable file - skipping`;
        if (strict) this.diags.error(at, msg);
        else this.diags.note(at, msg);
        continue;
      }
      this.readFile(p, at);
    }
    return true;
  }

  private emit(text: string, at: SourceRef): void {
    const { words, unmatchedQuote } = splitWords(text);
    if (unmatchedQuote) this.diags.warn(at, `Unmatched quote: '${text}'`);
    if (words.length === 0) return;
    this.lines.push({ words, raw: text, at });
  }
}

/** Read a configuration file and everything it includes. */
export function lexConfigFile(file: string, opts: LexOptions = {}): LexResult {
  const lx = new Lexer(opts);
  lx.readFile(file);
  return { lines: lx.lines, files: lx.files, diagnostics: lx.diags };
}
