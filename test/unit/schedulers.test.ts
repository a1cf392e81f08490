/**
 * rr, wrr, lc, wlc against sequences worked out by hand from the kernel sources
 * (net/netfilter/ipvs/ip_vs_{rr,wrr,lc,wlc}.c). Destinations are named by letter; the kernel links a
 * new destination at the head of the list, so adding A, B, C gives the list [C, B, A].
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DEST_F_AVAILABLE, DEST_F_OVERLOAD, DestinationTable } from '../../src/dataplane/destination-table.js';
import { DestinationChange, type PacketTuple, type Scheduler } from '../../src/schedulers/scheduler.js';
import { createScheduler, registerScheduler, schedulerNames } from '../../src/schedulers/registry.js';
import { RrScheduler } from '../../src/schedulers/rr.js';
import { WrrScheduler } from '../../src/schedulers/wrr.js';
import { LcScheduler } from '../../src/schedulers/lc.js';
import { WlcScheduler } from '../../src/schedulers/wlc.js';

const PKT: PacketTuple = { saddr: 0x0a000001, daddr: 0x0a0000fe, sport: 40000, dport: 80 };

/** A service as the control plane drives it: kernel list order and the scheduler hooks. */
class Service {
  readonly table = new DestinationTable(4);
  readonly dests: number[] = [];
  private readonly ids = new Map<string, number>();
  private readonly names = new Map<number, string>();

  constructor(readonly scheduler: Scheduler) {}

  /** ip_vs_bind_scheduler (init_service); `changed` = -1. */
  bind(): this {
    this.scheduler.update(this.dests, this.table, DestinationChange.Added, -1);
    return this;
  }

  /** Create the destination without telling the scheduler (for "present at bind time"). */
  private create(name: string, weight: number): number {
    const id = this.table.allocate();
    this.table.weight[id] = weight;
    this.table.flags[id] = DEST_F_AVAILABLE;
    this.ids.set(name, id);
    this.names.set(id, name);
    this.dests.unshift(id); // list_add_rcu: at the head
    return id;
  }

  /** Destinations that exist before the scheduler is bound, added in this order. */
  preload(weights: Record<string, number>): this {
    for (const [name, weight] of Object.entries(weights)) this.create(name, weight);
    return this;
  }

  add(name: string, weight = 1): this {
    const id = this.create(name, weight);
    this.scheduler.update(this.dests, this.table, DestinationChange.Added, id);
    return this;
  }

  edit(name: string, weight: number): this {
    const id = this.id(name);
    this.table.weight[id] = weight;
    this.scheduler.update(this.dests, this.table, DestinationChange.Edited, id);
    return this;
  }

  delete(name: string): this {
    const id = this.id(name);
    this.scheduler.update(this.dests, this.table, DestinationChange.Deleted, id); // list before removal
    this.dests.splice(this.dests.indexOf(id), 1);
    this.table.flags[id] &= ~DEST_F_AVAILABLE;
    return this;
  }

  overload(name: string, on = true): this {
    const id = this.id(name);
    if (on) this.table.flags[id] |= DEST_F_OVERLOAD;
    else this.table.flags[id] &= ~DEST_F_OVERLOAD;
    return this;
  }

  conns(name: string, active: number, inactive: number): this {
    const id = this.id(name);
    this.table.activeConns[id] = active;
    this.table.inactConns[id] = inactive;
    return this;
  }

  id(name: string): number {
    const id = this.ids.get(name);
    if (id === undefined) throw new Error(`no destination ${name}`);
    return id;
  }

  nameOf(id: number): string {
    return this.names.get(id) ?? '?';
  }

  listOrder(): string {
    return this.dests.map((id) => this.nameOf(id)).join('');
  }

  pick(): string {
    const id = this.scheduler.schedule(this.dests, this.table, PKT);
    return id === -1 ? '-' : this.nameOf(id);
  }

  /** `n` picks as a string of names, '-' for "no destination". */
  picks(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += this.pick();
    return s;
  }
}

describe('registry', () => {
  it('knows rr, wrr, lc, wlc and builds fresh instances', () => {
    expect(schedulerNames()).toEqual(expect.arrayContaining(['rr', 'wrr', 'lc', 'wlc']));
    const a = createScheduler('wrr');
    const b = createScheduler('wrr');
    expect(a?.name).toBe('wrr');
    expect(a).not.toBe(b);
    expect(createScheduler('rr')).toBeInstanceOf(RrScheduler);
    expect(createScheduler('lc')).toBeInstanceOf(LcScheduler);
    expect(createScheduler('wlc')).toBeInstanceOf(WlcScheduler);
    expect(createScheduler('nosuch')).toBeUndefined();
  });

  it('accepts new registrations', () => {
    registerScheduler('test-only', () => new LcScheduler());
    expect(schedulerNames()).toContain('test-only');
    expect(createScheduler('test-only')?.name).toBe('lc');
  });
});

describe('rr', () => {
  const rr = (): Service => new Service(new RrScheduler()).bind();

  it('walks the kernel list order, starting at the head', () => {
    const s = rr().add('A').add('B');
    expect(s.listOrder()).toBe('BA');
    expect(s.picks(6)).toBe('BABABA');
  });

  it('a destination added later is reached after the walk wraps', () => {
    const s = rr().add('A').add('B');
    expect(s.picks(4)).toBe('BABA'); // cursor on A (the tail)
    s.add('C'); // [C, B, A]; the cursor stays on A
    expect(s.picks(6)).toBe('CBACBA');
    const t = rr().add('A').add('B');
    expect(t.picks(1)).toBe('B'); // cursor on B
    t.add('C'); // C is linked before B: visited only after A and the wrap
    expect(t.picks(6)).toBe('ACBACB');
  });

  it('deleting the cursor moves it to the predecessor', () => {
    const s = rr().add('A').add('B').add('C'); // [C, B, A]
    expect(s.picks(2)).toBe('CB'); // cursor on B
    s.delete('B'); // cursor -> C
    expect(s.picks(4)).toBe('ACAC');
  });

  it('deleting the first entry while it is the cursor goes back to the head', () => {
    const s = rr().add('A').add('B').add('C');
    expect(s.picks(1)).toBe('C');
    s.delete('C'); // cursor -> head
    expect(s.picks(4)).toBe('BABA');
  });

  it('deleting another destination leaves the cursor alone', () => {
    const s = rr().add('A').add('B').add('C');
    expect(s.picks(2)).toBe('CB');
    s.delete('C');
    expect(s.picks(3)).toBe('ABA');
  });

  it('skips weight 0 and OVERLOAD, and fails when nothing is left', () => {
    const s = rr().add('A').add('B', 0).add('C');
    expect(s.picks(4)).toBe('CACA');
    s.overload('A');
    expect(s.picks(3)).toBe('CCC');
    s.overload('C');
    expect(s.picks(2)).toBe('--');
    s.overload('A', false);
    expect(s.pick()).toBe('A');
    expect(rr().pick()).toBe('-');
  });

  it('checks the last chosen destination last (single eligible destination)', () => {
    const s = rr().add('A').add('B', 0);
    expect(s.picks(3)).toBe('AAA');
  });

  it('property: every run of n picks visits each eligible destination once, in list order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ weight: fc.integer({ min: 0, max: 3 }), overloaded: fc.boolean() }), { maxLength: 6 }),
        fc.nat(10),
        (ds, warmup) => {
          const s = rr();
          ds.forEach((d, i) => {
            s.add(`d${i}`, d.weight);
            if (d.overloaded) s.overload(`d${i}`);
          });
          const eligible = s.dests
            .filter((id) => s.table.weight[id] > 0 && !s.table.isOverloaded(id))
            .map((id) => s.nameOf(id));
          if (eligible.length === 0) {
            expect(s.pick()).toBe('-');
            return;
          }
          for (let i = 0; i < warmup; i++) s.pick();
          const offset = warmup % eligible.length;
          for (let i = 0; i < 2 * eligible.length; i++)
            expect(s.pick()).toBe(eligible[(offset + i) % eligible.length]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rebinding resets the cursor to the head', () => {
    const s = rr().add('A').add('B').add('C');
    expect(s.picks(2)).toBe('CB');
    s.bind();
    expect(s.picks(3)).toBe('CBA');
  });
});

describe('wrr', () => {
  const wrr = (): Service => new Service(new WrrScheduler()).bind();
  const state = (s: Service) => (s.scheduler as WrrScheduler).state;
  const CYCLE_432 = 'ABACBACBA'; // A=4, B=3, C=2 in list [C, B, A]: passes cw=4 A | 3 BA | 2 CBA | 1 CBA

  it('4,3,2 added one by one after the service exists: cw stays 1, a cw=1 pass comes first', () => {
    const s = wrr();
    expect(state(s)).toEqual({ cw: 0, mw: 0, di: 1 });
    s.add('A', 4);
    expect(state(s)).toEqual({ cw: 1, mw: 1, di: 4 }); // cw was 0 -> mw = 4 - 3
    s.add('B', 3).add('C', 2);
    expect(state(s)).toEqual({ cw: 1, mw: 4, di: 1 });
    expect(s.listOrder()).toBe('CBA');
    expect(s.picks(3 + 2 * 9)).toBe('CBA' + CYCLE_432 + CYCLE_432);
  });

  it('4,3,2 present when the scheduler is bound: starts with cw = mw', () => {
    const s = new Service(new WrrScheduler()).preload({ A: 4, B: 3, C: 2 }).bind();
    expect(state(s)).toEqual({ cw: 4, mw: 4, di: 1 });
    expect(s.picks(3 * 9)).toBe(CYCLE_432.repeat(3));
  });

  it('gcd > 1: weights 4 and 2 give di = 2, mw = 3 and a 2:1 cycle', () => {
    const s = wrr().add('A', 4).add('B', 2);
    // add B: cw 1 -> (1 / 2) * 2 + 1 = 1
    expect(state(s)).toEqual({ cw: 1, mw: 3, di: 2 });
    expect(s.picks(2 + 3 * 3)).toBe('BA' + 'ABA'.repeat(3));
    const t = new Service(new WrrScheduler()).preload({ A: 4, B: 2 }).bind();
    expect(state(t)).toEqual({ cw: 3, mw: 3, di: 2 });
    expect(t.picks(9)).toBe('ABAABAABA');
  });

  it('edit keeps cw (di = 1) and restarts the scan at the head', () => {
    const s = new Service(new WrrScheduler()).preload({ A: 4, B: 3, C: 2 }).bind();
    expect(s.picks(2)).toBe('AB'); // cw = 3
    s.edit('C', 6);
    expect(state(s)).toEqual({ cw: 3, mw: 6, di: 1 });
    // passes cw=3,2,1 over [C(6), B(3), A(4)], then full cycles of 13
    expect(s.picks(9 + 13)).toBe('CBACBACBA' + 'CCCACBACBACBA');
  });

  it('edit with di > 1 rounds cw to a pass start: (cw / di) * di + 1', () => {
    const s = new Service(new WrrScheduler()).preload({ A: 4, B: 3, C: 2 }).bind();
    expect(s.picks(4)).toBe('ABAC'); // cw = 2
    s.edit('B', 2); // 4,2,2: di = 2, mw = 3, cw = (2/2)*2+1 = 3
    expect(state(s)).toEqual({ cw: 3, mw: 3, di: 2 });
    expect(s.picks(8)).toBe('ACBAACBA');
  });

  it('edit that lowers the maximum below cw resets cw to mw', () => {
    const s = new Service(new WrrScheduler()).preload({ A: 4, B: 3, C: 2 }).bind();
    s.edit('A', 1); // 1,3,2: mw = 3 < cw = 4
    expect(state(s)).toEqual({ cw: 3, mw: 3, di: 1 });
    expect(s.picks(12)).toBe('BCBCBA'.repeat(2));
  });

  it('delete recomputes without the removed destination', () => {
    const s = new Service(new WrrScheduler()).preload({ A: 4, B: 3, C: 2 }).bind();
    s.delete('A');
    expect(state(s)).toEqual({ cw: 3, mw: 3, di: 1 });
    expect(s.picks(10)).toBe('BCBCB'.repeat(2));
    s.delete('B');
    // only C (2) is left: di = 2, mw = 2 - (2 - 1) = 1; cw 1 -> (1 / 2) * 2 + 1 = 1
    expect(state(s)).toEqual({ cw: 1, mw: 1, di: 2 });
    expect(s.picks(3)).toBe('CCC');
  });

  it('weight 0 is never chosen; all weights 0 means no destination', () => {
    const s = new Service(new WrrScheduler()).preload({ A: 0, B: 2, C: 1 }).bind();
    expect(s.picks(6)).toBe('BCBBCB');
    s.edit('B', 0).edit('C', 0);
    expect(state(s).mw).toBe(0);
    expect(s.picks(2)).toBe('--');
    s.edit('C', 5);
    expect(state(s)).toEqual({ cw: 1, mw: 1, di: 5 }); // cw was 0 -> mw = 5 - (5 - 1)
    expect(s.picks(2)).toBe('CC');
  });

  it('overloaded destinations are skipped', () => {
    const s = new Service(new WrrScheduler()).preload({ A: 4, B: 3, C: 2 }).bind();
    s.overload('A');
    expect(s.picks(10)).toBe('BCBCB'.repeat(2));
  });

  it('all overloaded: fails after the w >= 1 pass, cursor back at the head, cw = mw', () => {
    const s = new Service(new WrrScheduler()).preload({ A: 4, B: 3, C: 2 }).bind();
    expect(s.picks(2)).toBe('AB'); // cursor B, cw 3
    s.overload('A').overload('B').overload('C');
    expect(s.pick()).toBe('-');
    expect(state(s).cw).toBe(4);
    s.overload('A', false).overload('B', false).overload('C', false);
    expect(s.picks(9)).toBe(CYCLE_432);
  });

  it('all overloaded mid-list with cw = 1: stops at the old cursor (the "stop" pass)', () => {
    const s = new Service(new WrrScheduler()).preload({ A: 4, B: 3, C: 2 }).bind();
    expect(s.picks(8)).toBe('ABACBACB'); // cursor B, cw 1
    s.overload('A').overload('B').overload('C');
    expect(s.pick()).toBe('-');
    expect(state(s).cw).toBe(1); // restarted at 4 and counted down to the last pass
    s.overload('A', false).overload('B', false).overload('C', false);
    // cl stayed on B: the cw = 1 pass goes on with A, then a new cycle
    expect(s.picks(10)).toBe('A' + CYCLE_432);
  });

  it('property: after any adds/edits/deletes, every window of sum(w/di) picks holds each dest w/di times', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ weight: fc.integer({ min: 0, max: 12 }), picksAfter: fc.nat(7) }), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.array(fc.record({ dest: fc.nat(5), weight: fc.integer({ min: 0, max: 12 }), picksAfter: fc.nat(7) }), {
          maxLength: 3,
        }),
        fc.array(fc.nat(5), { maxLength: 2 }),
        (adds, edits, deletes) => {
          const s = wrr();
          adds.forEach((a, i) => {
            s.add(`d${i}`, a.weight);
            s.picks(a.picksAfter);
          });
          for (const e of edits) {
            s.edit(`d${e.dest % adds.length}`, e.weight);
            s.picks(e.picksAfter);
          }
          for (const d of deletes) {
            if (s.dests.length <= 1) break;
            s.delete(s.nameOf(s.dests[d % s.dests.length]));
            s.picks(d);
          }
          const weights = s.dests.map((id) => s.table.weight[id]);
          const positive = weights.filter((w) => w > 0);
          if (positive.length === 0) {
            expect(s.pick()).toBe('-');
            return;
          }
          const di = positive.reduce((g, w) => {
            let a = g;
            let b = w;
            while (b !== 0) [a, b] = [b, a % b];
            return a;
          });
          const cycle = positive.reduce((sum, w) => sum + w / di, 0);
          const seq: string[] = [];
          for (let i = 0; i < 3 * cycle; i++) seq.push(s.pick());
          for (let start = 0; start + cycle <= seq.length; start++) {
            const counts = new Map<string, number>();
            for (const name of seq.slice(start, start + cycle)) counts.set(name, (counts.get(name) ?? 0) + 1);
            for (const id of s.dests) expect(counts.get(s.nameOf(id)) ?? 0).toBe(s.table.weight[id] / di);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: bound at once, a cycle is the passes cw = mw, mw - di, ..., 1 in list order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10 }), { minLength: 1, maxLength: 6 }), (ws) => {
        const s = new Service(new WrrScheduler());
        const spec: Record<string, number> = {};
        ws.forEach((w, i) => (spec[`d${i}`] = w));
        s.preload(spec).bind();
        const { mw, di } = state(s);
        const cycle: string[] = [];
        for (let cw = mw; cw > 0; cw -= di)
          for (const id of s.dests) if (s.table.weight[id] >= cw) cycle.push(s.nameOf(id));
        if (cycle.length === 0) cycle.push('-');
        const got: string[] = [];
        for (let i = 0; i < 2 * cycle.length; i++) got.push(s.pick());
        expect(got).toEqual([...cycle, ...cycle]);
      }),
      { numRuns: 300 },
    );
  });
});

describe('lc', () => {
  const lc = (): Service => new Service(new LcScheduler()).bind().add('A').add('B').add('C'); // [C, B, A]

  it('picks the least overhead = active * 256 + inactive', () => {
    const s = lc().conns('A', 1, 0).conns('B', 0, 300).conns('C', 1, 1); // 256, 300, 257
    expect(s.pick()).toBe('A');
    s.conns('B', 0, 255);
    expect(s.pick()).toBe('B');
  });

  it('ties go to the first in list order (the most recently added)', () => {
    expect(lc().pick()).toBe('C');
    expect(lc().conns('A', 1, 0).conns('B', 1, 0).conns('C', 0, 300).pick()).toBe('B');
  });

  it('ignores weights except that weight 0 is skipped', () => {
    const s = lc().conns('A', 0, 10).conns('B', 0, 5).conns('C', 0, 50);
    s.edit('A', 100);
    expect(s.pick()).toBe('B');
    s.edit('B', 0);
    expect(s.pick()).toBe('A');
  });

  it('skips OVERLOAD and fails when nothing is eligible', () => {
    const s = lc().conns('B', 0, 1).conns('A', 0, 2);
    s.overload('C');
    expect(s.pick()).toBe('B');
    s.overload('B').overload('A');
    expect(s.pick()).toBe('-');
    expect(new Service(new LcScheduler()).bind().pick()).toBe('-');
  });
});

describe('wlc', () => {
  const wlc = (weights: Record<string, number>): Service => {
    const s = new Service(new WlcScheduler()).bind();
    for (const [name, w] of Object.entries(weights)) s.add(name, w);
    return s;
  };

  it('picks the least overhead / weight', () => {
    const s = wlc({ A: 3, B: 1, C: 2 }).conns('A', 3, 0).conns('B', 1, 1).conns('C', 2, 2); // 256, 257, 257
    expect(s.pick()).toBe('A');
    s.conns('C', 2, 1); // 513 / 2 = 256.5
    expect(s.pick()).toBe('A');
    s.conns('C', 2, 0); // 256: tie with A, C is earlier in the list
    expect(s.pick()).toBe('C');
  });

  it('equal ratios: the first in list order wins', () => {
    const s = wlc({ A: 4, B: 2, C: 1 }).conns('A', 0, 400).conns('B', 0, 200).conns('C', 0, 100);
    expect(s.listOrder()).toBe('CBA');
    expect(s.pick()).toBe('C');
    expect(wlc({ A: 1, B: 100 }).pick()).toBe('B'); // all idle: head of the list
  });

  it('weight 0 is never chosen, also when it is idle', () => {
    const s = wlc({ A: 0, B: 1 }).conns('B', 0, 10); // [B, A]
    expect(s.pick()).toBe('B');
    const t = wlc({ A: 1, B: 0 }).conns('A', 5, 0); // [B, A]: B skipped as first candidate
    expect(t.pick()).toBe('A');
    expect(wlc({ A: 0, B: 0 }).pick()).toBe('-');
  });

  it('skips OVERLOAD as first candidate and later', () => {
    const s = wlc({ A: 1, B: 1, C: 1 }).conns('A', 0, 3).conns('B', 0, 1).conns('C', 0, 2);
    s.overload('C');
    expect(s.pick()).toBe('B');
    s.overload('B');
    expect(s.pick()).toBe('A');
    s.overload('A');
    expect(s.pick()).toBe('-');
  });

  it('stays exact when overhead * weight exceeds 2^32', () => {
    // overhead(A) = 65535 * 2^20 with weight 65535; overhead(B) = 65534 * 2^20 - 1 with weight 65534:
    // B is lower by 1/65534 of a connection; both products are ~2^52.
    const s = wlc({ B: 65534, A: 65535 }); // [A, B]: B must replace A
    s.conns('A', 65535 * 4096, 0).conns('B', 65534 * 4096 - 1, 255);
    expect(s.pick()).toBe('B');
    s.conns('B', 65534 * 4096, 0); // now equal ratios: A (first) keeps it
    expect(s.pick()).toBe('A');
  });

  it('property: matches an exact argmin of overhead / weight, first in list on ties', () => {
    const dest = fc.record({
      weight: fc.integer({ min: 0, max: 65535 }),
      active: fc.integer({ min: 0, max: 1 << 22 }),
      inactive: fc.integer({ min: 0, max: 1 << 20 }),
      overloaded: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(dest, { minLength: 0, maxLength: 8 }), (ds) => {
        const s = new Service(new WlcScheduler()).bind();
        ds.forEach((d, i) => {
          s.add(`d${i}`, d.weight).conns(`d${i}`, d.active, d.inactive);
          if (d.overloaded) s.overload(`d${i}`);
        });
        let best = -1;
        let bestOh = 0n;
        let bestW = 1n;
        for (const id of s.dests) {
          const w = BigInt(s.table.weight[id]);
          if (w === 0n || s.table.isOverloaded(id)) continue;
          const oh = BigInt(s.table.activeConns[id]) * 256n + BigInt(s.table.inactConns[id]);
          if (best === -1 || oh * bestW < bestOh * w) {
            best = id;
            bestOh = oh;
            bestW = w;
          }
        }
        expect(s.scheduler.schedule(s.dests, s.table, PKT)).toBe(best);
      }),
      { numRuns: 500 },
    );
  });
});

describe('schedule allocates nothing (smoke)', () => {
  it('runs many picks on every scheduler', () => {
    for (const name of ['rr', 'wrr', 'lc', 'wlc']) {
      const sched = createScheduler(name);
      if (sched === undefined) throw new Error(name);
      const s = new Service(sched).bind().add('A', 3).add('B', 2).add('C', 1);
      const out = s.picks(600);
      expect(out).not.toContain('-');
    }
  });
});
