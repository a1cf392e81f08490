/** Why the data plane dropped a frame: one counter per reason, shown by `tapvs --drops` and the logs. */

export const DROP_MALFORMED = 0; // too short, bad header lengths
export const DROP_IP_CHECKSUM = 1;
export const DROP_FRAGMENT = 2; // IPv4 fragments (no reassembly yet)
export const DROP_NOT_FOR_US = 3; // unicast frame for another MAC (the bridge flooded it)
export const DROP_UNSUPPORTED = 4; // EtherType / protocol tapvs does not handle
export const DROP_NOT_ROUTED = 5; // IPv4 not for a VIP/own address and no connection: tapvs is no router
export const DROP_NO_DESTINATION = 6; // scheduler found no destination (ICMP port unreachable sent)
export const DROP_DEST_UNAVAILABLE = 7; // connection's destination deleted (expire_nodest_conn=0)
export const DROP_TABLE_FULL = 8; // connection table at its limit
export const DROP_TTL_EXCEEDED = 9;
export const DROP_NEIGHBOR_UNRESOLVED = 10; // next hop did not answer ARP / queue full
export const DROP_TX_FULL = 11; // no transmit slot left in this batch
export const DROP_HOST = 12; // addressed to the director itself and answered or ignored by its host stack
export const DROP_TOO_BIG = 13; // larger than the path MTU with DF set (ICMP fragmentation needed sent)
export const DROP_NO_LOCAL_PORT = 14; // FULLNAT: the service has no local address, or no free local port
export const DROP_REASON_COUNT = 15;

export const DROP_REASON_NAMES: readonly string[] = [
  'malformed',
  'ip-checksum',
  'fragment',
  'not-for-us',
  'unsupported',
  'not-routed',
  'no-destination',
  'destination-unavailable',
  'table-full',
  'ttl-exceeded',
  'neighbor-unresolved',
  'tx-full',
  'host',
  'too-big',
  'no-local-port',
];

export class DropCounters {
  readonly counts = new Float64Array(DROP_REASON_COUNT);

  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < DROP_REASON_COUNT; i++) out[DROP_REASON_NAMES[i]] = this.counts[i];
    return out;
  }
}
