/**
 * keepalived.conf lexical rules and block structure (src/keepalived/lexer.ts, parser.ts), checked
 * against keepalived's lib/parser.c behaviour: comments, quoting, braces on one line or several,
 * includes with globs relative to the including file, errors and warnings with file:line.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Diagnostics } from '../../src/keepalived/diagnostics.js';
import { expandBraces, globFiles } from '../../src/keepalived/glob.js';
import { decomment, lexConfigFile, splitBrace, splitQuotedEscaped, splitWords } from '../../src/keepalived/lexer.js';
import { parseLines, type ConfigNode } from '../../src/keepalived/parser.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/keepalived');
const tmp = mkdtempSync(join(tmpdir(), 'tapvs-ka-lex-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function file(text: string, name = `t${n++}.conf`): string {
  const p = join(tmp, name);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
}

function lex(text: string): { words: string[][]; lines: number[]; diags: ReturnType<typeof lexConfigFile>['diagnostics'] } {
  const r = lexConfigFile(file(text));
  return { words: r.lines.map((l) => l.words), lines: r.lines.map((l) => l.at.line), diags: r.diagnostics };
}

function tree(text: string): { nodes: ConfigNode[]; diags: Diagnostics } {
  const r = lexConfigFile(file(text));
  const nodes = parseLines(r.lines, r.diagnostics);
  return { nodes, diags: r.diagnostics };
}

describe('comments', () => {
  it('# and ! start a comment anywhere outside double quotes', () => {
    expect(decomment('delay_loop 6   # six seconds').text).toBe('delay_loop 6');
    expect(decomment('lb_algo rr ! round robin').text).toBe('lb_algo rr');
    expect(decomment('   # whole line').text).toBe('');
    expect(decomment('! whole line').text).toBe('');
    expect(decomment('notify "/bin/echo #1 !2" # real comment').text).toBe('notify "/bin/echo #1 !2"');
    expect(decomment('path /a#b').text).toBe('path /a');
  });

  it('\\# and \\! outside quotes are a literal # and !', () => {
    expect(decomment('path /a\\#b\\!c # comment').text).toBe('path /a#b!c');
    expect(decomment('name "x\\#y"').text).toBe('name "x\\#y"');
  });

  it('reports an unterminated quote', () => {
    const r = lex('router_id "abc\n');
    expect(r.diags.list.map((d) => d.message)).toEqual(expect.arrayContaining([expect.stringContaining('Unterminated quote')]));
  });

  it('keeps line numbers of lines after comments and blank lines', () => {
    const r = lex('# c\n\n! c\nglobal_defs {\n  router_id X # id\n}\n');
    expect(r.words).toEqual([['global_defs'], ['{'], ['router_id', 'X'], ['}']]);
    expect(r.lines).toEqual([4, 4, 5, 6]);
  });
});

describe('words and quoting', () => {
  it('splits on blanks; a word starting with " runs to the next "', () => {
    expect(splitWords('notify_up "/bin/echo up now" root').words).toEqual(['notify_up', '/bin/echo up now', 'root']);
    expect(splitWords('a\tb   c').words).toEqual(['a', 'b', 'c']);
    // keepalived's alloc_strvec_r: a quote in the middle of a word ends the word
    expect(splitWords('ab"cd ef"').words).toEqual(['ab', 'cd ef']);
    expect(splitWords('x "unterminated').unmatchedQuote).toBe(true);
  });

  it('script keywords use the shell-like quoted/escaped rules', () => {
    expect(splitQuotedEscaped(`misc_path "/bin/check 'a b' c" user`)).toEqual(['misc_path', "/bin/check 'a b' c", 'user']);
    expect(splitQuotedEscaped(`/bin/check 'a b' c`)).toEqual(['/bin/check', 'a b', 'c']);
    expect(splitQuotedEscaped('abcd" efg h "x')).toEqual(['abcd efg h x']);
    expect(splitQuotedEscaped('a\\tb \\x41\\102 \\"q\\"')).toEqual(['a\tb', 'AB', '"q"']);
    expect(splitQuotedEscaped('"missing')).toBeNull();
  });
});

describe('blocks', () => {
  it('splits braces the way read_line does', () => {
    expect(splitBrace('virtual_server 1.2.3.4 80 {')).toEqual(['virtual_server 1.2.3.4 80', '{']);
    expect(splitBrace('{ weight 3 }')).toEqual(['{', 'weight 3 }']);
    expect(splitBrace('weight 3 }')).toEqual(['weight 3', '}']);
    expect(splitBrace('}')).toEqual(['}', null]);
    expect(splitBrace('name "a{b}"')).toEqual(['name "a{b}"', null]);
  });

  it('blocks on one line or several give the same tree', () => {
    const one = tree('real_server 198.18.2.1 80 { weight 3 TCP_CHECK { connect_port 81 } }\n');
    expect(one.nodes).toHaveLength(1);
    // On one line, each keyword line ends at the next brace: "weight 3 TCP_CHECK" is one line.
    expect(one.nodes[0].block!.map((x) => [x.keyword, ...x.args])).toEqual([['weight', '3', 'TCP_CHECK']]);
    const several = tree('real_server 198.18.2.1 80\n{\n  weight 3\n  TCP_CHECK { connect_port 81 }\n}\n');
    const rs = several.nodes[0];
    expect(rs.block!.map((x) => x.keyword)).toEqual(['weight', 'TCP_CHECK']);
    expect(rs.block![1].block!.map((x) => [x.keyword, ...x.args])).toEqual([['connect_port', '81']]);
    expect(rs.blockAt!.line).toBe(2);
    expect(several.diags.list).toEqual([]);
  });

  it('reports an extra } and a missing } with their lines', () => {
    const extra = tree('global_defs {\n}\n}\n');
    expect(extra.diags.list).toEqual([expect.objectContaining({ severity: 'warning', line: 3, message: "Extra '}' found" })]);
    const missing = tree('virtual_server 198.18.1.1 80 {\n  real_server 198.18.2.1 80 {\n');
    expect(missing.diags.list).toEqual([expect.objectContaining({ severity: 'warning', line: 2, message: expect.stringContaining("missing '}'") })]);
  });
});

describe('include', () => {
  it('expands globs relative to the including file, in sorted order, nested, with file:line kept', () => {
    const r = lexConfigFile(join(FIXTURES, 'include/main.conf'));
    const where = r.lines.map((l) => `${l.at.file.replace(FIXTURES + '/', '')}:${l.at.line} ${l.words.join(' ')}`);
    expect(where).toContain('include/conf.d/10-web.conf:1 virtual_server 198.18.1.100 80');
    expect(where).toContain('include/rs/a.conf:1 real_server 198.18.2.11 80');
    expect(where).toContain('include/rs/b.conf:2 weight 3');
    // 10-web.conf before 20-dns.conf, and the rs files inside the web block
    const order = where.map((w) => w.split(' ')[0]);
    expect(order.indexOf('include/conf.d/20-dns.conf:1')).toBeGreaterThan(order.indexOf('include/rs/b.conf:3'));
    expect(r.files.map((f) => f.replace(FIXTURES + '/', ''))).toEqual([
      'include/main.conf',
      'include/conf.d/10-web.conf',
      'include/rs/a.conf',
      'include/rs/b.conf',
      'include/conf.d/20-dns.conf',
    ]);
    // plain include of a pattern that matches nothing is not an error (a note)
    expect(r.diagnostics.list).toEqual([expect.objectContaining({ severity: 'note', line: 6, message: "No config files matched 'missing-*.conf'" })]);
  });

  it('refuses include cycles with the chain, and keeps going', () => {
    const r = lexConfigFile(join(FIXTURES, 'cycle/a.conf'));
    expect(r.diagnostics.errors).toEqual([
      expect.objectContaining({ line: 7, message: expect.stringMatching(/^include cycle: .*a\.conf -> .*b\.conf -> .*a\.conf/) }),
    ]);
    expect(r.lines.filter((l) => l.words[0] === 'virtual_server')).toHaveLength(1);
  });

  it('limits the include depth', () => {
    for (let i = 0; i < 5; i++) file(`include d${i + 1}.conf\n`, `deep/d${i}.conf`);
    file('router_id deepest\n', 'deep/d5.conf');
    const ok = lexConfigFile(join(tmp, 'deep/d0.conf'));
    expect(ok.lines.map((l) => l.words.join(' '))).toEqual(['router_id deepest']);
    const limited = lexConfigFile(join(tmp, 'deep/d0.conf'), { maxIncludeDepth: 3 });
    expect(limited.diagnostics.errors).toEqual([expect.objectContaining({ message: expect.stringContaining('include nesting deeper than 3 levels') })]);
    expect(limited.lines).toEqual([]);
  });

  it('the checking variants fail where plain include does not', () => {
    const r = lex('includem nothing-here.conf\nincludew none-*.conf\ninclude none-*.conf\nincluder none-*.conf\n');
    expect(r.diags.list.map((d) => [d.severity, d.line])).toEqual([
      ['error', 1],
      ['error', 2],
      ['note', 3],
      ['note', 4],
    ]);
  });

  it('skips directories and executable files', () => {
    const dir = join(tmp, 'incdir');
    mkdirSync(join(dir, 'sub.conf'), { recursive: true });
    writeFileSync(join(dir, 'x.conf'), 'router_id x\n');
    chmodSync(join(dir, 'x.conf'), 0o755);
    const r = lexConfigFile(file(`include incdir/*.conf\n`));
    expect(r.lines).toEqual([]);
    expect(r.diagnostics.list.map((d) => d.message)).toEqual([
      expect.stringContaining('is a directory'),
      expect.stringContaining('not a regular non-executable file'),
    ]);
  });

  it('a missing top-level file is an error', () => {
    const r = lexConfigFile(join(tmp, 'no-such.conf'));
    expect(r.diagnostics.errors).toEqual([expect.objectContaining({ message: expect.stringContaining('cannot read configuration file') })]);
  });
});

describe('glob', () => {
  it('expands csh braces, nested', () => {
    expect(expandBraces('a{b,c{d,e}}f')).toEqual(['abf', 'acdf', 'acef']);
    expect(expandBraces('x{1,2}y{3,4}')).toEqual(['x1y3', 'x1y4', 'x2y3', 'x2y4']);
    expect(expandBraces('no-braces')).toEqual(['no-braces']);
  });

  it('matches *, ? and classes, not dot files, sorted per alternative', () => {
    const dir = join(tmp, 'g');
    mkdirSync(dir, { recursive: true });
    for (const f of ['b.conf', 'a.conf', 'c1.cfg', '.hidden.conf', 'x9.conf']) writeFileSync(join(dir, f), '');
    const names = (p: string): string[] => globFiles(p, dir).paths.map((x) => x.slice(dir.length + 1));
    expect(names('*.conf')).toEqual(['a.conf', 'b.conf', 'x9.conf']);
    expect(names('?.conf')).toEqual(['a.conf', 'b.conf']);
    expect(names('[ab].conf')).toEqual(['a.conf', 'b.conf']);
    expect(names('[!ab]*.conf')).toEqual(['x9.conf']);
    expect(names('{b,a}.conf')).toEqual(['b.conf', 'a.conf']);
    expect(names('c?.cfg')).toEqual(['c1.cfg']);
    expect(globFiles('nothing*', dir)).toEqual({ paths: [], hadWildcards: true });
  });
});

describe('conditionals and parameters', () => {
  it('@id keeps a line only on the matching config id, @^id on the others', () => {
    const r = lexConfigFile(file('@lb1 router_id one\n@^lb1 router_id other\n@lb2 router_id two\n'), { configId: 'lb1' });
    expect(r.lines.map((l) => l.words.join(' '))).toEqual(['router_id one']);
  });

  it('$NAME=value definitions are substituted as $NAME and ${NAME}', () => {
    const r = lex('$VIP=198.18.1.100\n$PORT=80\nvirtual_server $VIP ${PORT} {\n}\n$UNDEF_X stays\n');
    expect(r.words[0]).toEqual(['virtual_server', '198.18.1.100', '80']);
    expect(r.words[3]).toEqual(['$UNDEF_X', 'stays']);
  });

  it('says so for line generators it does not support', () => {
    const r = lex('~SEQ(i, 1, 3) real_server 198.18.2.$i 80\n');
    expect(r.words).toEqual([]);
    expect(r.diags.warnings).toEqual([expect.objectContaining({ message: expect.stringContaining('~SEQ and ~LST') })]);
  });
});
