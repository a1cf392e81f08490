/**
 * nq — never queue (kernel net/netfilter/ipvs/ip_vs_nq.c).
 *
 * One walk over the list, skipping OVERLOADed destinations and those with weight 0. The first
 * destination without active connections is returned at once (an idle server, whatever its weight);
 * otherwise the result is the sed minimum of (activeconns + 1) / weight, compared by
 * cross-multiplication, strictly (ties keep the earlier destination in list order).
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import type { DestinationChange, PacketTuple, Scheduler } from './scheduler.js';

export class NqScheduler implements Scheduler {
  readonly name = 'nq';

  update(_dests: readonly number[], _table: DestinationTable, _change: DestinationChange, _changed: number): void {
    // Stateless.
  }

  schedule(dests: readonly number[], table: DestinationTable, _pkt: PacketTuple): number {
    const weight = table.weight;
    const flags = table.flags;
    const active = table.activeConns;
    let least = -1;
    let leastOverhead = 0;
    for (let i = 0; i < dests.length; i++) {
      const id = dests[i];
      // Kernel: `!atomic_read(&dest->weight)` — weight 0 (weights are never negative).
      if ((flags[id] & DEST_F_OVERLOAD) !== 0 || weight[id] === 0) continue;
      const overhead = active[id] + 1;
      // Return the server directly if it is idle.
      if (active[id] === 0) return id;
      if (least === -1 || leastOverhead * weight[id] > overhead * weight[least]) {
        least = id;
        leastOverhead = overhead;
      }
    }
    return least;
  }
}
