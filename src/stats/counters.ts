/**
 * Per-service and per-destination traffic counters (ipvsadm --stats), in Float64Arrays: exact integers
 * up to 2^53, incremented in place by the data plane, read by the control socket at listing time.
 * Layout: 5 counters per id, in the order conns, inpkts, outpkts, inbytes, outbytes.
 */
import type { StatsSnapshot } from '../control/model.js';

export const STAT_CONNS = 0;
export const STAT_INPKTS = 1;
export const STAT_OUTPKTS = 2;
export const STAT_INBYTES = 3;
export const STAT_OUTBYTES = 4;
export const STAT_FIELDS = 5;

export class CounterTable {
  values: Float64Array;

  constructor(capacity = 64) {
    this.values = new Float64Array(capacity * STAT_FIELDS);
  }

  ensure(id: number): void {
    if ((id + 1) * STAT_FIELDS <= this.values.length) return;
    let n = this.values.length;
    while (n < (id + 1) * STAT_FIELDS) n *= 2;
    const v = new Float64Array(n);
    v.set(this.values);
    this.values = v;
  }

  zero(id: number): void {
    this.values.fill(0, id * STAT_FIELDS, (id + 1) * STAT_FIELDS);
  }

  snapshot(id: number): StatsSnapshot {
    const v = this.values, o = id * STAT_FIELDS;
    return { conns: v[o], inpkts: v[o + 1], outpkts: v[o + 2], inbytes: v[o + 3], outbytes: v[o + 4] };
  }
}

/** The statistics tables a packet is counted in: per destination and per service (kernel ip_vs_in/out_stats). */
export interface TrafficStats {
  readonly destStats: CounterTable;
  readonly serviceStats: CounterTable;
  readonly dests: { readonly service: Int32Array };
}

/** Count a client-side packet of `bytes` for destination `dest` and its service. */
export function countInbound(t: TrafficStats, dest: number, bytes: number): void {
  countPacket(t, dest, bytes, STAT_INPKTS, STAT_INBYTES);
}

/** Count a real-server-side packet of `bytes` for destination `dest` and its service. */
export function countOutbound(t: TrafficStats, dest: number, bytes: number): void {
  countPacket(t, dest, bytes, STAT_OUTPKTS, STAT_OUTBYTES);
}

function countPacket(t: TrafficStats, dest: number, bytes: number, pkts: number, octets: number): void {
  const ds = t.destStats.values, ss = t.serviceStats.values, svcId = t.dests.service[dest];
  ds[dest * STAT_FIELDS + pkts]++;
  ds[dest * STAT_FIELDS + octets] += bytes;
  ss[svcId * STAT_FIELDS + pkts]++;
  ss[svcId * STAT_FIELDS + octets] += bytes;
}

/** Count a new connection for destination `dest` and service `svcId`. */
export function countConnection(t: TrafficStats, dest: number, svcId: number): void {
  t.destStats.values[dest * STAT_FIELDS + STAT_CONNS]++;
  t.serviceStats.values[svcId * STAT_FIELDS + STAT_CONNS]++;
}
