/**
 * twos — power of two choices (kernel net/netfilter/ipvs/ip_vs_twos.c).
 *
 * T = the sum of the weights of the eligible destinations (not OVERLOADed, weight > 0); none → fail.
 * Two numbers r1, r2 are drawn uniformly from [0, T] (get_random_u32_below(T + 1)). Walking the list,
 * each eligible weight is subtracted from both; choice1 is the first destination where r1 <= 0,
 * choice2 the first where r2 <= 0. So the first eligible destination covers [0, w1] (probability
 * (w1 + 1) / (T + 1)) and every later one (W_{k-1}, W_k] (probability w_k / (T + 1)). The result is
 * choice2 when weight2 * overhead1 > weight1 * overhead2 (overhead = activeconns * 256 + inactconns),
 * else choice1 — ties and equal draws keep choice1.
 *
 * Kernel quirk copied: unlike wlc/lblc (which cast to __s64), twos multiplies in plain C `int`, so
 * the products wrap at 32 bits (the kernel is built with -fno-strict-overflow); Math.imul does the
 * same. With e.g. weight 100 and 100000 active connections the comparison goes the "wrong" way,
 * exactly as in the kernel.
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import type { DestinationChange, PacketTuple, Scheduler } from './scheduler.js';

/** A uniform random integer in [0, bound) (kernel get_random_u32_below). */
export type RandomBelow = (bound: number) => number;

/** Default random source: Math.random scaled to [0, bound). */
export const mathRandomBelow: RandomBelow = (bound) => Math.floor(Math.random() * bound);

export class TwosScheduler implements Scheduler {
  readonly name = 'twos';

  constructor(private readonly randomBelow: RandomBelow = mathRandomBelow) {}

  update(_dests: readonly number[], _table: DestinationTable, _change: DestinationChange, _changed: number): void {
    // Stateless.
  }

  schedule(dests: readonly number[], table: DestinationTable, _pkt: PacketTuple): number {
    const weight = table.weight;
    const flags = table.flags;
    const n = dests.length;
    let total = 0;
    // Kernel: choice1 starts as the last eligible destination (only observable if a draw were > T).
    let choice1 = -1;
    for (let i = 0; i < n; i++) {
      const id = dests[i];
      if ((flags[id] & DEST_F_OVERLOAD) === 0 && weight[id] > 0) {
        total += weight[id];
        choice1 = id;
      }
    }
    if (choice1 === -1) return -1;
    // Add 1 so that the random weights are inclusive from 0 to the total.
    total += 1;
    let r1 = this.randomBelow(total);
    let r2 = this.randomBelow(total);
    let choice2 = -1;
    let weight1 = -1;
    let weight2 = -1;
    let overhead1 = 0;
    let overhead2 = 0;
    for (let i = 0; i < n; i++) {
      const id = dests[i];
      if ((flags[id] & DEST_F_OVERLOAD) !== 0) continue;
      const w = weight[id];
      if (w <= 0) continue;
      r1 -= w;
      r2 -= w;
      if (r1 <= 0 && weight1 === -1) {
        choice1 = id;
        weight1 = w;
        overhead1 = ((table.activeConns[id] << 8) + table.inactConns[id]) | 0; // C int
      }
      if (r2 <= 0 && weight2 === -1) {
        choice2 = id;
        weight2 = w;
        overhead2 = ((table.activeConns[id] << 8) + table.inactConns[id]) | 0;
      }
      if (weight1 !== -1 && weight2 !== -1) break;
    }
    // r1, r2 <= T, so both choices are always found by the end of the list.
    if (choice2 !== -1 && Math.imul(weight2, overhead1) > Math.imul(weight1, overhead2)) return choice2;
    return choice1;
  }
}
