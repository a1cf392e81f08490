/**
 * fo — weighted fail-over (kernel net/netfilter/ipvs/ip_vs_fo.c).
 *
 * The non-OVERLOADed destination with the highest weight. The running maximum starts at 0 and is
 * replaced only by a strictly greater weight, so weight-0 destinations are never chosen and ties keep
 * the earlier destination in list order (the most recently added). Connection counts play no part.
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import type { DestinationChange, PacketTuple, Scheduler } from './scheduler.js';

export class FoScheduler implements Scheduler {
  readonly name = 'fo';

  update(_dests: readonly number[], _table: DestinationTable, _change: DestinationChange, _changed: number): void {
    // Stateless.
  }

  schedule(dests: readonly number[], table: DestinationTable, _pkt: PacketTuple): number {
    const weight = table.weight;
    const flags = table.flags;
    let best = -1;
    let hw = 0;
    for (let i = 0; i < dests.length; i++) {
      const id = dests[i];
      if ((flags[id] & DEST_F_OVERLOAD) === 0 && weight[id] > hw) {
        best = id;
        hw = weight[id];
      }
    }
    return best;
  }
}
