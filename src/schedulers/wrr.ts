/**
 * wrr — weighted round robin (kernel net/netfilter/ipvs/ip_vs_wrr.c).
 *
 * State (struct ip_vs_wrr_mark): cl = the cursor (last chosen destination or the list head),
 * cw = the current weight, mw = the maximum weight reduced by (di - 1), di = the gcd of all
 * weights > 0. A pass selects, in list order, every destination with weight >= cw; at the end of
 * the list cw drops by di, and when it reaches <= 0 it restarts at mw. Per cycle a destination of
 * weight w is chosen w/di times, the heavier ones earlier in the cycle.
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import { DestinationChange, type PacketTuple, type Scheduler } from './scheduler.js';

/** Cursor value meaning "the list head". */
const LIST_HEAD = -1;

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

export class WrrScheduler implements Scheduler {
  readonly name = 'wrr';
  /** cl: destination id of the last chosen destination, or LIST_HEAD. */
  private cursor = LIST_HEAD;
  /** cw: current weight. */
  private currentWeight = 0;
  /** mw: maximum weight - (di - 1). */
  private maxWeight = 0;
  /** di: decreasing interval, the gcd of the weights > 0 (1 when there are none). */
  private interval = 1;

  /** The kernel mark fields, for tests and debugging (allocates; not for the hot path). */
  get state(): { cw: number; mw: number; di: number } {
    return { cw: this.currentWeight, mw: this.maxWeight, di: this.interval };
  }

  update(dests: readonly number[], table: DestinationTable, change: DestinationChange, changed: number): void {
    // For Deleted the list still contains `changed`; the kernel calls del_dest after the unlink, so
    // it does not take part in the gcd/max.
    const skip = change === DestinationChange.Deleted ? changed : -2;
    let g = 0;
    let max = 0;
    for (let i = 0; i < dests.length; i++) {
      const id = dests[i];
      if (id === skip) continue;
      const w = table.weight[id];
      if (w > 0) g = g > 0 ? gcd(w, g) : w;
      if (w > max) max = w;
    }
    this.cursor = LIST_HEAD;
    this.interval = g > 0 ? g : 1;
    this.maxWeight = max - (this.interval - 1);
    if (changed === -1) {
      // ip_vs_wrr_init_svc: a fresh cycle.
      this.currentWeight = this.maxWeight;
    } else if (this.currentWeight > this.maxWeight || this.currentWeight === 0) {
      // ip_vs_wrr_dest_changed. Kernel quirk: cw is NOT reset to mw on every change; it is kept
      // (rounded to a pass boundary when di > 1). Destinations added one by one to a new service
      // therefore leave cw at 1 and the first picks are a cw = 1 pass over the whole list.
      this.currentWeight = this.maxWeight;
    } else if (this.interval > 1) {
      this.currentWeight = Math.trunc(this.currentWeight / this.interval) * this.interval + 1;
    }
  }

  schedule(dests: readonly number[], table: DestinationTable, _pkt: PacketTuple): number {
    // No available dests? (all weights 0 at the last update; cl stays where it is)
    if (this.maxWeight === 0) return -1;
    const n = dests.length;
    const weight = table.weight;
    const flags = table.flags;
    // `last` is where this scan started (-1 = the head); `stop` is set for the final pass that
    // revisits the entries up to `last` with cw <= di.
    const last = this.cursor === LIST_HEAD ? -1 : dests.indexOf(this.cursor);
    let stop = -2;
    let lastPass = false;
    let restarted = false;
    let i = last;
    for (;;) {
      for (i = i + 1; i < n; i++) {
        const id = dests[i];
        if ((flags[id] & DEST_F_OVERLOAD) === 0 && weight[id] >= this.currentWeight) {
          this.cursor = id;
          return id;
        }
        if (i === stop) {
          // err_over: all destinations are overloaded; cl = the stop entry.
          this.cursor = id;
          return -1;
        }
      }
      // Reached the list head.
      this.currentWeight -= this.interval;
      if (this.currentWeight <= 0) {
        this.currentWeight = this.maxWeight;
        // Stop if the w >= 1 pass already covered every destination: either it ran as the last
        // pass before the restart, or the scan started at the head (its first traversal was full).
        if (lastPass || last === -1) {
          this.cursor = LIST_HEAD;
          return -1;
        }
        restarted = true;
      }
      lastPass = this.currentWeight <= this.interval;
      // The first w >= 1 traversal covered only the entries after `last`; now check the rest too.
      if (lastPass && restarted && last !== -1) stop = last;
      i = -1;
    }
  }
}
