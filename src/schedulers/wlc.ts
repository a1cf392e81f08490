/**
 * wlc — weighted least connection (kernel net/netfilter/ipvs/ip_vs_wlc.c), the default scheduler.
 *
 * The destination with the smallest overhead / weight, compared without division:
 * D replaces the current best L only when overhead(L) * weight(D) > overhead(D) * weight(L)
 * (strict, so the first in list order wins ties). Plain JS numbers keep the products exact:
 * overhead < 2^40 and weight <= 65535 (ipvsadm's limit) give products below 2^53, where the kernel
 * needs its (__s64) casts.
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import type { DestinationChange, PacketTuple, Scheduler } from './scheduler.js';

export class WlcScheduler implements Scheduler {
  readonly name = 'wlc';

  update(_dests: readonly number[], _table: DestinationTable, _change: DestinationChange, _changed: number): void {
    // Stateless.
  }

  schedule(dests: readonly number[], table: DestinationTable, _pkt: PacketTuple): number {
    return leastWeightedOverhead(dests, table);
  }
}

/**
 * The wlc minimum: the destination with the smallest (activeconns * 256 + inactconns) / weight, or -1.
 * Also the "least loaded" choice of lblc and lblcr (__ip_vs_lblc_schedule, __ip_vs_lblcr_schedule), and,
 * with another overhead, sed's: the overhead is activeconns * perActive + inactconns * perInactive + extra
 * (wlc: 256, 1, 0; sed: 1, 0, 1).
 */
export function leastWeightedOverhead(dests: readonly number[], table: DestinationTable, perActive = 256, perInactive = 1, extra = 0): number {
  const weight = table.weight;
  const flags = table.flags;
  const active = table.activeConns;
  const inactive = table.inactConns;
  const n = dests.length;
  // The first candidate: the first non-overloaded destination with weight > 0.
  let i = 0;
  for (; i < n; i++) {
    const id = dests[i];
    if ((flags[id] & DEST_F_OVERLOAD) === 0 && weight[id] > 0) break;
  }
  if (i === n) return -1;
  let least = dests[i];
  let leastOverhead = active[least] * perActive + inactive[least] * perInactive + extra;
  // Kernel: the rest of the list only skips OVERLOAD; a weight-0 destination cannot win because
  // overhead(L) * 0 > overhead(D) * weight(L) never holds.
  for (i = i + 1; i < n; i++) {
    const id = dests[i];
    if ((flags[id] & DEST_F_OVERLOAD) !== 0) continue;
    const overhead = active[id] * perActive + inactive[id] * perInactive + extra;
    if (leastOverhead * weight[id] > overhead * weight[least]) {
      least = id;
      leastOverhead = overhead;
    }
  }
  return least;
}
