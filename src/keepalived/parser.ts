/**
 * keepalived.conf block structure: logical lines (lexer.ts) -> a tree of keyword nodes.
 *
 * A line that is exactly `{` opens a block for the keyword on the line just before it (the lexer turns
 * `keyword args {` into two lines, as keepalived's read_line does); `}` closes the innermost block.
 * What a keyword means, and whether it may have a block, is load.ts's business: the tree is generic, so
 * an unknown keyword's block is kept together and can be skipped whole.
 *
 * Deviation from keepalived, on purpose: keepalived does not know the extent of an unknown keyword's
 * block ("Unexpected '{' - ignoring"), parses its body at the enclosing level and lets its `}` close the
 * enclosing block, mis-nesting everything after it (keepalived issues #297, #1995). tapvs keeps the
 * block together (and load.ts warns about it), so one typo does not derail the rest of the file.
 */
import { Diagnostics, type SourceRef } from './diagnostics.js';
import type { LogicalLine } from './lexer.js';

export interface ConfigNode {
  keyword: string;
  args: string[];
  /** The line as written (comments removed), for keywords that re-read it (scripts). */
  raw: string;
  at: SourceRef;
  /** The block's contents when the keyword is followed by `{ ... }`. */
  block?: ConfigNode[];
  /** Where the block's `{` was. */
  blockAt?: SourceRef;
}

/** Build the keyword tree; brace mismatches are reported as keepalived reports them. */
export function parseLines(lines: readonly LogicalLine[], diags: Diagnostics): ConfigNode[] {
  const root: ConfigNode[] = [];
  const stack: { nodes: ConfigNode[]; owner: ConfigNode | null }[] = [{ nodes: root, owner: null }];
  let last: ConfigNode | null = null; // the node of the line just before, if it can still take a block
  for (const line of lines) {
    const first = line.words[0];
    const top = stack[stack.length - 1];
    if (first === '{' && line.words.length === 1) {
      let owner = last;
      if (!owner) {
        // A `{` that follows no keyword line: keep its contents together as an anonymous block.
        owner = { keyword: '{', args: [], raw: '{', at: line.at };
        top.nodes.push(owner);
      }
      owner.block = [];
      owner.blockAt = line.at;
      stack.push({ nodes: owner.block, owner });
      last = null;
      continue;
    }
    if (first === '}' && line.words.length === 1) {
      if (stack.length === 1) diags.warn(line.at, "Extra '}' found");
      else stack.pop();
      last = null;
      continue;
    }
    const node: ConfigNode = { keyword: first, args: line.words.slice(1), raw: line.raw, at: line.at };
    top.nodes.push(node);
    last = node;
  }
  if (stack.length > 1) {
    const open = stack[stack.length - 1].owner!;
    diags.warn(open.blockAt ?? open.at, `There are ${stack.length - 1} missing '}'s or extra '{'s (block of '${open.keyword}' opened here is not closed)`);
  }
  return root;
}
