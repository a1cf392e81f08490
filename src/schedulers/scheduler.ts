/**
 * The scheduler interface: one small object per service, chosen by name (`-s NAME`), asked for a
 * destination when a new connection arrives. It sees the service's destinations in kernel list order
 * (the most recently added first) and reads their weights, flags and connection counts from the
 * DestinationTable.
 */
import type { DestinationTable } from '../dataplane/destination-table.js';

/** The fields of the packet some schedulers hash (sh, dh, mh, lblc). IPv4 as host-order u32. */
export interface PacketTuple {
  saddr: number;
  daddr: number;
  sport: number;
  dport: number;
}

/** Why the destination list changed (kernel: add_dest / del_dest / upd_dest hooks). */
export const enum DestinationChange {
  Added,
  Edited,
  Deleted,
}

export interface Scheduler {
  readonly name: string;
  /**
   * The service's list changed. For Deleted, `dests` is the list *before* the removal and `changed` is
   * the destination being removed (rr moves its cursor to the predecessor, as the kernel does).
   * For Added/Edited, `dests` is the list after the change. `changed` is -1 on initial binding.
   */
  update(dests: readonly number[], table: DestinationTable, change: DestinationChange, changed: number): void;
  /** Choose a destination for a new connection; -1 when none is available. */
  schedule(dests: readonly number[], table: DestinationTable, pkt: PacketTuple): number;
}

export type SchedulerFactory = () => Scheduler;
