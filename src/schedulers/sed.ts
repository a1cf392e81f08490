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
import type { DestinationChange, PacketTuple, Scheduler } from './scheduler.js';
import { leastWeightedOverhead } from './wlc.js';

export class SedScheduler implements Scheduler {
  readonly name = 'sed';

  update(_dests: readonly number[], _table: DestinationTable, _change: DestinationChange, _changed: number): void {
    // Stateless.
  }

  schedule(dests: readonly number[], table: DestinationTable, _pkt: PacketTuple): number {
    // wlc's walk with sed's overhead: (activeconns + 1), inactive connections ignored.
    return leastWeightedOverhead(dests, table, 1, 0, 1);
  }
}
