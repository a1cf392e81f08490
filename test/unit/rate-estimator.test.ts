/**
 * The IPVS rate estimator (ip_vs_est.c) against known sequences and against a BigInt transcription of
 * the kernel's code (u64 counters, s64 arithmetic shift for the average, the read-out rounding).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CounterTable, STAT_CONNS, STAT_FIELDS, STAT_INBYTES, STAT_INPKTS, STAT_OUTBYTES, STAT_OUTPKTS } from '../../src/stats/counters.js';
import { ESTIMATOR_PERIOD_MS, RateEstimator, ewmaStep, reportBytesPerSecond, reportPerSecond } from '../../src/stats/rate-estimator.js';

/** The kernel's estimation_timer() and ip_vs_read_estimator() for one counter set, in BigInt. */
class KernelEstimator {
  last = [0n, 0n, 0n, 0n, 0n];
  avg = [0n, 0n, 0n, 0n, 0n];
  tick(counters: bigint[]): void {
    for (let f = 0; f < 5; f++) {
      const rate = (counters[f] - this.last[f]) << (f < 3 ? 9n : 4n);
      this.last[f] = counters[f];
      this.avg[f] += (rate - this.avg[f]) >> 2n; // BigInt >> is an arithmetic shift, as on s64
    }
  }
  read(): number[] {
    return this.avg.map((a, f) => Number(f < 3 ? (a + 0x1ffn) >> 10n : (a + 0xfn) >> 5n));
  }
}

function setup(): { counters: CounterTable; est: RateEstimator; add: (f: number, n: number) => void; rate: () => number[] } {
  const counters = new CounterTable();
  const dests = new CounterTable();
  counters.ensure(0);
  const est = new RateEstimator(counters, dests);
  return {
    counters,
    est,
    add: (f, n) => {
      counters.values[f] += n;
    },
    rate: () => {
      const r = est.serviceRate(0);
      return [r.cps, r.inpps, r.outpps, r.inbps, r.outbps];
    },
  };
}

describe('IPVS rate estimator', () => {
  it('runs every 2 s', () => {
    expect(ESTIMATOR_PERIOD_MS).toBe(2000);
  });

  it('shifts arithmetically: (rate - avg) >> 2 floors negative differences', () => {
    expect(ewmaStep(512000, 0)).toBe(128000);
    expect(ewmaStep(0, 1)).toBe(-1); // kernel: -1 >> 2 == -1 (Math.trunc would give 0)
    expect(ewmaStep(0, 3)).toBe(-1);
    expect(ewmaStep(0, 4)).toBe(-1);
    expect(ewmaStep(0, 5)).toBe(-2);
    expect(ewmaStep(7, 0)).toBe(1);
  });

  it('rounds the read-out as (avg + 0x1FF) >> 10 and (avg + 0xF) >> 5', () => {
    expect(reportPerSecond(0)).toBe(0);
    expect(reportPerSecond(512)).toBe(0); // 1023 >> 10
    expect(reportPerSecond(513)).toBe(1); // 1024 >> 10
    expect(reportPerSecond(128000)).toBe(125);
    expect(reportBytesPerSecond(16)).toBe(0); // 31 >> 5
    expect(reportBytesPerSecond(17)).toBe(1); // 32 >> 5
  });

  it('converges on a steady 1000 connections per 2 s period as the kernel does (125, 219, 289, 342 ... 500 cps)', () => {
    const s = setup();
    const cps: number[] = [];
    for (let i = 0; i < 40; i++) {
      s.add(STAT_CONNS, 1000);
      s.est.run();
      cps.push(s.rate()[0]);
    }
    // avg: 128000, 224000, 296000, 350000 (x2^10 per second)
    expect(cps.slice(0, 4)).toEqual([125, 219, 289, 342]);
    expect(cps[39]).toBe(500);
  });

  it('decays to exactly 0 after traffic stops (a truncating average would stick)', () => {
    const s = setup();
    // InBytes: one period of 5 bytes (rate 80, avg 20 -> 1 B/s), then 1 byte per period (rate 16):
    // avg 19, 18, 17, 16 -> 1, 1, 1, 0 B/s. With Math.trunc the average stays at 19 (1 B/s) forever.
    s.add(STAT_INBYTES, 5);
    s.est.run();
    expect(s.rate()[3]).toBe(1);
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      s.add(STAT_INBYTES, 1);
      s.est.run();
      seen.push(s.rate()[3]);
    }
    expect(seen).toEqual([1, 1, 1, 0, 0]);
    // Packets: a burst, then silence, reaches 0 pps.
    s.add(STAT_INPKTS, 100);
    s.est.run();
    expect(s.rate()[1]).toBe(12); // avg 12800 -> (12800 + 511) >> 10 = 12
    for (let i = 0; i < 60; i++) s.est.run();
    expect(s.rate()).toEqual([0, 0, 0, 0, 0]);
  });

  it('matches the kernel transcription on random counter sequences, all five fields', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(5000), fc.nat(200_000), fc.nat(200_000), fc.nat(300_000_000), fc.nat(300_000_000)), { minLength: 1, maxLength: 60 }),
        (deltas) => {
          const s = setup();
          const k = new KernelEstimator();
          const totals = [0n, 0n, 0n, 0n, 0n];
          for (const d of deltas) {
            for (let f = 0; f < 5; f++) {
              s.add(f, d[f]);
              totals[f] += BigInt(d[f]);
            }
            s.est.run();
            k.tick(totals);
            expect(s.rate()).toEqual(k.read());
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('-Z (zero) restarts rates and makes the current counters the new base', () => {
    const s = setup();
    s.add(STAT_CONNS, 1000);
    s.add(STAT_OUTPKTS, 1000);
    s.add(STAT_OUTBYTES, 64000);
    s.est.run();
    expect(s.rate()[0]).toBe(125);
    s.counters.zero(0);
    s.est.resetService(0);
    expect(s.rate()).toEqual([0, 0, 0, 0, 0]);
    // The next period sees only what came after the zeroing.
    s.add(STAT_CONNS, 8);
    s.est.run();
    expect(s.rate()[0]).toBe(1); // avg (8 << 9) >> 2 = 1024 -> (1024 + 511) >> 10
    expect(s.counters.values.length % STAT_FIELDS).toBe(0);
  });

  it('destinations have their own estimators', () => {
    const svc = new CounterTable();
    const dst = new CounterTable();
    dst.ensure(3);
    const est = new RateEstimator(svc, dst);
    dst.values[3 * STAT_FIELDS + STAT_INPKTS] += 2000;
    est.run();
    expect(est.destRate(3).inpps).toBe(250);
    expect(est.destRate(2).inpps).toBe(0);
    expect(est.serviceRate(0).inpps).toBe(0);
  });
});
