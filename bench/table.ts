/**
 * The side-by-side result table: one column per path (median [min-max]) and the ratios of the tapvs
 * median to each reference path's median.
 */
import { Samples } from './samples.js';

export type Cell = Samples | string | null;

export interface TableRow {
  metric: string;
  cells: Record<string, Cell>;
  digits: number;
  /** Print the tapvs/<reference> ratios. */
  ratio: boolean;
}

export function formatTable(paths: string[], subject: string, references: string[], rows: TableRow[]): string[] {
  const cell = (v: Cell | undefined, digits: number): string => (v === null || v === undefined ? '-' : typeof v === 'string' ? v : v.format(digits));
  const ratio = (r: TableRow, ref: string): string => {
    const a = r.cells[subject];
    const b = r.cells[ref];
    if (!r.ratio || !(a instanceof Samples) || !(b instanceof Samples) || !a.count || !b.count || !(b.median > 0)) return '-';
    return (a.median / b.median).toFixed(2);
  };
  const refs = references.filter((p) => paths.includes(p) && p !== subject);
  const showRatios = paths.includes(subject);
  const head = ['metric', ...paths, ...(showRatios ? refs.map((p) => `${subject}/${p}`) : [])];
  const cells = rows.map((r) => [r.metric, ...paths.map((p) => cell(r.cells[p], r.digits)), ...(showRatios ? refs.map((p) => ratio(r, p)) : [])]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]): string => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)];
}
