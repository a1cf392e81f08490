/**
 * lc — least connection (kernel net/netfilter/ipvs/ip_vs_lc.c).
 *
 * The destination with the smallest overhead (activeconns * 256 + inactconns) among those with
 * weight > 0 that are not OVERLOADed. Strict `<`: on a tie the first in list order (the most
 * recently added) wins.
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import type { DestinationChange, PacketTuple, Scheduler } from './scheduler.js';

export class LcScheduler implements Scheduler {
  readonly name = 'lc';

  update(_dests: readonly number[], _table: DestinationTable, _change: DestinationChange, _changed: number): void {
    // Stateless.
  }

  schedule(dests: readonly number[], table: DestinationTable, _pkt: PacketTuple): number {
    const weight = table.weight;
    const flags = table.flags;
    const active = table.activeConns;
    const inactive = table.inactConns;
    let least = -1;
    let leastOverhead = 0;
    for (let i = 0; i < dests.length; i++) {
      const id = dests[i];
      if ((flags[id] & DEST_F_OVERLOAD) !== 0 || weight[id] === 0) continue;
      // ip_vs_dest_conn_overhead, computed exactly (the kernel's int would wrap past 2^23 active).
      const overhead = active[id] * 256 + inactive[id];
      if (least === -1 || overhead < leastOverhead) {
        least = id;
        leastOverhead = overhead;
      }
    }
    return least;
  }
}
