/** Repeated measurements of one figure: median and min-max spread, as perf.md reports them. */

export class Samples {
  readonly values: number[] = [];

  add(v: number): void {
    if (Number.isFinite(v)) this.values.push(v);
  }

  get count(): number {
    return this.values.length;
  }

  get median(): number {
    if (this.values.length === 0) return NaN;
    const s = [...this.values].sort((a, b) => a - b);
    const mid = s.length >> 1;
    return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  }

  get min(): number {
    return this.values.length ? Math.min(...this.values) : NaN;
  }

  get max(): number {
    return this.values.length ? Math.max(...this.values) : NaN;
  }

  /** "median [min-max]" with `digits` decimals, or "n/a" without samples. */
  format(digits: number): string {
    if (this.values.length === 0) return 'n/a';
    const f = (v: number): string => v.toFixed(digits);
    return this.values.length === 1 ? f(this.median) : `${f(this.median)} [${f(this.min)}-${f(this.max)}]`;
  }
}
