/**
 * ovf — weighted overflow (kernel net/netfilter/ipvs/ip_vs_ovf.c).
 *
 * Candidates are the destinations that are not OVERLOADed, have weight > 0 and have no more active
 * connections than their weight (activeconns <= weight). Among them the highest weight wins, the
 * first in list order on ties. Only active connections count: UDP connections are always inactive,
 * so for UDP this degenerates into fail-over (the kernel documents the same caveat).
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import type { DestinationChange, PacketTuple, Scheduler } from './scheduler.js';

export class OvfScheduler implements Scheduler {
  readonly name = 'ovf';

  update(_dests: readonly number[], _table: DestinationTable, _change: DestinationChange, _changed: number): void {
    // Stateless.
  }

  schedule(dests: readonly number[], table: DestinationTable, _pkt: PacketTuple): number {
    const weight = table.weight;
    const flags = table.flags;
    const active = table.activeConns;
    let best = -1;
    let hw = 0;
    for (let i = 0; i < dests.length; i++) {
      const id = dests[i];
      const w = weight[id];
      if ((flags[id] & DEST_F_OVERLOAD) !== 0 || active[id] > w || w === 0) continue;
      if (best === -1 || w > hw) {
        best = id;
        hw = w;
      }
    }
    return best;
  }
}
