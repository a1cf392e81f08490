/**
 * sed — shortest expected delay (kernel net/netfilter/ipvs/ip_vs_sed.c).
 *
 * Like wlc, but the expected overhead of a destination is activeconns + 1 (the incoming connection
 * included; inactive connections are ignored): the destination with the smallest
 * (activeconns + 1) / weight wins, compared without division. The first candidate is the first
 * destination (list order) that is not OVERLOADed and has weight > 0; a later D replaces the best L
 * only when (active(L) + 1) * weight(D) > (active(D) + 1) * weight(L) — strictly, so ties keep the
 * earlier destination. The kernel computes the products in 64 bits ((__s64) casts); plain JS numbers
 * are exact here.
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import type { DestinationChange, PacketTuple, Scheduler } from './scheduler.js';

export class SedScheduler implements Scheduler {
  readonly name = 'sed';

  update(_dests: readonly number[], _table: DestinationTable, _change: DestinationChange, _changed: number): void {
    // Stateless.
  }

  schedule(dests: readonly number[], table: DestinationTable, _pkt: PacketTuple): number {
    const weight = table.weight;
    const flags = table.flags;
    const active = table.activeConns;
    const n = dests.length;
    let i = 0;
    for (; i < n; i++) {
      const id = dests[i];
      if ((flags[id] & DEST_F_OVERLOAD) === 0 && weight[id] > 0) break;
    }
    if (i === n) return -1;
    let least = dests[i];
    let leastOverhead = active[least] + 1;
    // As in wlc, the rest of the list only skips OVERLOAD: a weight-0 destination cannot win since
    // loh * 0 > doh * weight(L) never holds.
    for (i = i + 1; i < n; i++) {
      const id = dests[i];
      if ((flags[id] & DEST_F_OVERLOAD) !== 0) continue;
      const overhead = active[id] + 1;
      if (leastOverhead * weight[id] > overhead * weight[least]) {
        least = id;
        leastOverhead = overhead;
      }
    }
    return least;
  }
}
