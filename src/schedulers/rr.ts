/**
 * rr — round robin (kernel net/netfilter/ipvs/ip_vs_rr.c).
 *
 * The only state is a cursor: the last chosen destination, or the list head before the first pick.
 * A pick walks forward from the cursor (wrapping once, the cursor itself checked last) and takes the
 * first destination with weight > 0 that is not OVERLOADed.
 */
import type { DestinationTable } from '../dataplane/destination-table.js';
import { DEST_F_OVERLOAD } from '../dataplane/destination-table.js';
import { DestinationChange, type PacketTuple, type Scheduler } from './scheduler.js';

/** Cursor value meaning "the list head" (kernel: sched_data = &svc->destinations). */
const LIST_HEAD = -1;

export class RrScheduler implements Scheduler {
  readonly name = 'rr';
  /** Destination id of the last chosen destination, or LIST_HEAD. */
  private cursor = LIST_HEAD;

  update(dests: readonly number[], _table: DestinationTable, change: DestinationChange, changed: number): void {
    if (changed === -1) {
      // init_service: start at the list head.
      this.cursor = LIST_HEAD;
      return;
    }
    // The kernel rr has no add_dest/upd_dest hook: the cursor keeps pointing at the same destination,
    // so a newly added destination (linked at the head) is reached after the walk wraps.
    if (change !== DestinationChange.Deleted || this.cursor !== changed) return;
    // ip_vs_rr_del_dest: the cursor moves to the predecessor of the removed destination
    // (p->next->prev after the unlink), i.e. the list head when it was the first entry.
    const index = dests.indexOf(changed);
    this.cursor = index > 0 ? dests[index - 1] : LIST_HEAD;
  }

  schedule(dests: readonly number[], table: DestinationTable, _pkt: PacketTuple): number {
    const n = dests.length;
    const weight = table.weight;
    const flags = table.flags;
    // A cursor that is no longer in the list (should not happen: deletions go through update) acts
    // like the list head.
    const last = this.cursor === LIST_HEAD ? -1 : dests.indexOf(this.cursor);
    // First pass: the entries after the cursor; second pass (only when not starting at the head):
    // from the head up to and including the cursor itself.
    for (let step = 1; step <= n; step++) {
      let i = last + step;
      if (i >= n) i -= n;
      const id = dests[i];
      if ((flags[id] & DEST_F_OVERLOAD) === 0 && weight[id] > 0) {
        this.cursor = id;
        return id;
      }
    }
    return -1;
  }
}
