/**
 * The IPVS rate estimator (ip_vs_est.c): every 2 s, per service and destination, the counters' deltas
 * are scaled (×2^9 for conns/packets, ×2^4 for bytes: per second in fixed point) and folded into an
 * exponentially weighted average with weight 1/4; reported rates are rounded back.
 */
import type { RateSnapshot } from '../control/model.js';
import { STAT_FIELDS, type CounterTable } from './counters.js';

export const ESTIMATOR_PERIOD_MS = 2000;

/**
 * The kernel's `(s64)(rate - avg) >> 2`: an arithmetic shift, which rounds toward minus infinity, so
 * a decaying average reaches 0 (with `Math.trunc` a small remainder would stay forever). Exact for
 * |x| < 2^53; the values are integers (counter deltas scaled by 2^9 or 2^4).
 */
export function ewmaStep(rate: number, avg: number): number {
  return Math.floor((rate - avg) / 4);
}

/** ip_vs_read_estimator(): conns and packets are scaled by 2^10, bytes by 2^5; round half up. */
export function reportPerSecond(avg: number): number {
  return Math.floor((avg + 0x1ff) / 1024);
}

export function reportBytesPerSecond(avg: number): number {
  return Math.floor((avg + 0xf) / 32);
}

class EstimatorSet {
  last = new Float64Array(0);
  avg = new Float64Array(0);

  ensure(n: number): void {
    if (this.last.length >= n * STAT_FIELDS) return;
    const l = new Float64Array(n * STAT_FIELDS), a = new Float64Array(n * STAT_FIELDS);
    l.set(this.last);
    a.set(this.avg);
    this.last = l;
    this.avg = a;
  }

  run(counters: CounterTable): void {
    const v = counters.values;
    this.ensure(v.length / STAT_FIELDS);
    for (let i = 0; i < v.length; i++) {
      const field = i % STAT_FIELDS;
      const delta = v[i] - this.last[i];
      this.last[i] = v[i];
      // conns, inpkts, outpkts: << 9 ; inbytes, outbytes: << 4 (kernel fixed-point, 2 s period)
      const rate = field < 3 ? delta * 512 : delta * 16;
      this.avg[i] += ewmaStep(rate, this.avg[i]);
    }
  }

  rate(id: number): RateSnapshot {
    const o = id * STAT_FIELDS;
    if (this.avg.length < o + STAT_FIELDS) return { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
    const a = this.avg;
    return {
      cps: reportPerSecond(a[o]),
      inpps: reportPerSecond(a[o + 1]),
      outpps: reportPerSecond(a[o + 2]),
      inbps: reportBytesPerSecond(a[o + 3]),
      outbps: reportBytesPerSecond(a[o + 4]),
    };
  }

  reset(id: number, counters: CounterTable): void {
    const o = id * STAT_FIELDS;
    this.ensure(id + 1);
    for (let f = 0; f < STAT_FIELDS; f++) {
      this.avg[o + f] = 0;
      this.last[o + f] = counters.values[o + f] ?? 0;
    }
  }
}

export class RateEstimator {
  private readonly services = new EstimatorSet();
  private readonly dests = new EstimatorSet();

  constructor(
    private readonly serviceCounters: CounterTable,
    private readonly destCounters: CounterTable,
  ) {}

  /** One estimation period (call every ESTIMATOR_PERIOD_MS). */
  run(): void {
    this.services.run(this.serviceCounters);
    this.dests.run(this.destCounters);
  }

  serviceRate(id: number): RateSnapshot {
    return this.services.rate(id);
  }

  destRate(id: number): RateSnapshot {
    return this.dests.rate(id);
  }

  /** After counters were zeroed (-Z): rates and last values restart (kernel ip_vs_zero_estimator). */
  resetService(id: number): void {
    this.services.reset(id, this.serviceCounters);
  }

  resetDest(id: number): void {
    this.dests.reset(id, this.destCounters);
  }
}
