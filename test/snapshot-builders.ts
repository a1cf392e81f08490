/** Table snapshots for listing and save-format tests: services and destinations with IPVS defaults. */
import type { DestinationSnapshot, ServiceSnapshot, TableSnapshot } from '../src/control/model.js';

export const ZERO_STATS = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
export const ZERO_RATE = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };

export function dest(addr: string, port: number, extra: Partial<DestinationSnapshot> = {}): DestinationSnapshot {
  return {
    af: addr.includes(':') ? 6 : 4,
    addr,
    port,
    forward: 0,
    weight: 1,
    uThreshold: 0,
    lThreshold: 0,
    tunType: 0,
    tunPort: 0,
    tunFlags: 0,
    activeConns: 0,
    inactConns: 0,
    persistConns: 0,
    stats: { ...ZERO_STATS },
    rate: { ...ZERO_RATE },
    ...extra,
  };
}

export function service(protocol: number, addr: string, port: number, dests: DestinationSnapshot[], extra: Partial<ServiceSnapshot> = {}): ServiceSnapshot {
  const af = addr.includes(':') ? 6 : 4;
  return {
    af,
    protocol,
    addr,
    port,
    fwmark: 0,
    scheduler: 'wlc',
    flags: 0,
    timeout: 0,
    netmask: af === 6 ? '128' : '255.255.255.255',
    pe: '',
    dests,
    stats: { ...ZERO_STATS },
    rate: { ...ZERO_RATE },
    ...extra,
  };
}

export function table(services: ServiceSnapshot[]): TableSnapshot {
  return { connTabSize: 4096, services, timeouts: { tcp: 900, tcpfin: 120, udp: 300 } };
}
