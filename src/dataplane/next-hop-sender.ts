/**
 * Sending a forwarded frame to its next hop through a neighbour cache (ARP's for IPv4, keyed by address;
 * Neighbour Discovery's for IPv6, keyed by address id): with the neighbour known, set the MACs and queue
 * the frame (with its virtio_net_hdr while it is still offloaded); otherwise queue a copy until the
 * neighbour answers. Either way, ask again (ARP request, neighbour solicitation) when that is due.
 */
import * as D from './drops.js';
import { NEIGH_REACHABLE, type NeighborTable } from './neighbors.js';
import type { FrameOffload } from './offload.js';
import type { TxBatch } from './tx-batch.js';
import { copyMac } from './wire/bytes.js';

export class NextHopSender {
  constructor(
    private readonly mac: Uint8Array,
    private readonly neighbors: NeighborTable,
    private readonly tx: TxBatch,
    private readonly offload: FrameOffload,
    private readonly drops: D.DropCounters,
    /** Ask who has `hop` (an ARP request, a neighbour solicitation). */
    private readonly probe: (hop: number) => void,
  ) {}

  /**
   * Send the frame at buf[off, off+len) to next hop `hop` (0: none, dropped as not routed), using the
   * cached neighbour `slot` when it is still that hop's. Returns the slot to cache.
   */
  send(buf: Uint8Array, off: number, len: number, hop: number, slot: number, now: number): number {
    const n = this.neighbors;
    if (hop === 0) {
      this.drops.counts[D.DROP_NOT_ROUTED]++;
      return slot;
    }
    if (slot < 0 || n.ip[slot] !== hop) slot = n.ensure(hop);
    if (n.state[slot] === NEIGH_REACHABLE) {
      copyMac(buf, off, n.mac, slot * 6);
      copyMac(buf, off + 6, this.mac, 0);
      this.sendFrame(buf, off, len);
    } else {
      const o = this.offload;
      if (!o.gso) o.completeChecksum(buf, off, len); // queued copies carry no virtio_net_hdr
      if (o.gso || !n.enqueue(slot, buf, off, len)) this.drops.counts[D.DROP_NEIGHBOR_UNRESOLVED]++;
    }
    if (n.shouldProbe(slot, now)) this.probe(hop); // unresolved, or stale: (re-)confirm
    return slot;
  }

  /** Queue a frame whose MACs are set: with the current frame's virtio_net_hdr while it is still offloaded. */
  sendFrame(buf: Uint8Array, off: number, len: number): void {
    const o = this.offload;
    if (o.active) this.tx.sendOffloaded(off, len, o.rxVnet!, o.at);
    else this.tx.send(off, len);
  }
}
