/**
 * The glob(3) subset keepalived's `include` uses (glob with GLOB_BRACE): `*`, `?`, `[...]` (with `!`/`^`
 * negation and ranges), backslash escapes and csh brace alternatives `{a,b}` (nested). Node 20 has no
 * fs.glob, so this is a small implementation of those rules:
 *  - wildcards never match `/`, and never match a leading `.` of a name unless the pattern has it;
 *  - brace alternatives are expanded first, left to right; each alternative's matches are sorted
 *    (glob's default) and appended in alternative order (GLOB_BRACE uses GLOB_APPEND per alternative);
 *  - a pattern without wildcards "matches" only if the path exists.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface GlobResult {
  /** Matching paths (absolute when `baseDir` resolution made them so). */
  paths: string[];
  /** True if the pattern contained wildcard or brace characters. */
  hadWildcards: boolean;
}

/** Expand csh-style braces: `a{b,c{d,e}}f` -> [abf, acdf, acef]. Unbalanced braces are kept literally. */
export function expandBraces(pattern: string): string[] {
  let depth = 0;
  let open = -1;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '{') {
      if (depth === 0) open = i;
      depth++;
    } else if (c === '}' && depth > 0) {
      depth--;
      if (depth === 0) {
        const inner = pattern.slice(open + 1, i);
        const alternatives = splitTopLevel(inner);
        const prefix = pattern.slice(0, open);
        const suffixes = expandBraces(pattern.slice(i + 1));
        const out: string[] = [];
        for (const alt of alternatives) for (const a of expandBraces(alt)) for (const s of suffixes) out.push(prefix + a + s);
        return out;
      }
    }
  }
  return [pattern];
}

function splitTopLevel(inner: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(inner.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(inner.slice(start));
  return parts;
}

function hasMagic(segment: string): boolean {
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

function unescape(segment: string): string {
  return segment.replace(/\\(.)/g, '$1');
}

/** Translate one path segment of a glob pattern into an anchored regular expression. */
export function segmentRegExp(segment: string): RegExp {
  let re = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c === '\\' && i + 1 < segment.length) {
      re += escapeRe(segment[++i]);
    } else if (c === '*') {
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const close = findClass(segment, i);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, close);
      let negate = false;
      if (body[0] === '!' || body[0] === '^') {
        negate = true;
        body = body.slice(1);
      }
      re += `[${negate ? '^' : ''}${body.replace(/\\/g, '\\\\').replace(/\]/g, '\\]').replace(/^\^/, '\\^')}]`;
      i = close;
    } else {
      re += escapeRe(c);
    }
  }
  return new RegExp(`^${re}$`);
}

function findClass(segment: string, open: number): number {
  let i = open + 1;
  if (segment[i] === '!' || segment[i] === '^') i++;
  if (segment[i] === ']') i++; // a leading ']' is literal
  for (; i < segment.length; i++) if (segment[i] === ']') return i;
  return -1;
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? '\\' + c : c;
}

function matchOne(pattern: string, baseDir: string): string[] {
  const absolute = path.isAbsolute(pattern);
  const segments = pattern.split('/').filter((s, i) => s !== '' || i === 0);
  let candidates = [absolute ? '/' : baseDir];
  for (let s = absolute ? 1 : 0; s < segments.length; s++) {
    const seg = segments[s];
    if (seg === '') continue;
    const next: string[] = [];
    if (!hasMagic(seg)) {
      const name = unescape(seg);
      for (const dir of candidates) next.push(path.join(dir, name));
    } else {
      const re = segmentRegExp(seg);
      const dotOk = seg.startsWith('.') || seg.startsWith('\\.');
      for (const dir of candidates) {
        let names: string[];
        try {
          names = fs.readdirSync(dir);
        } catch {
          continue;
        }
        for (const n of names.sort()) if ((dotOk || !n.startsWith('.')) && re.test(n)) next.push(path.join(dir, n));
      }
    }
    candidates = next;
    if (candidates.length === 0) return [];
  }
  return candidates.filter((p) => fs.existsSync(p)).sort();
}

/** Expand `pattern` relative to `baseDir` (keepalived chdir()s into the including file's directory). */
export function globFiles(pattern: string, baseDir: string): GlobResult {
  const alternatives = expandBraces(pattern);
  const hadWildcards = alternatives.length > 1 || alternatives.some((a) => hasMagic(a));
  const paths: string[] = [];
  for (const alt of alternatives) for (const p of matchOne(alt, baseDir)) paths.push(p);
  return { paths, hadWildcards };
}
