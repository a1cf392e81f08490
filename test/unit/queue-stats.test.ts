/**
 * A multiqueue director's listings (src/control/queue-stats.ts): the main thread's replica of the service
 * table gets the sums of the queues' counters, matched by service and real-server keys, and the FULLNAT
 * local ports a queue takes are the ones the steering program brings back to it.
 */
import { describe, expect, it } from 'vitest';
import { ServiceTable } from '../../src/control/service-table.js';
import { ForwardMethod, type DestinationConfig, type ServiceConfig } from '../../src/control/model.js';
import { addQueueTables, sumQueueCounters } from '../../src/control/queue-stats.js';
import { STAT_FIELDS } from '../../src/stats/counters.js';
import { steeringQueue, fold6 } from '../../src/dataplane/flow-steering.js';
import { ConnectionTable } from '../../src/conntrack/connection-table.js';
import { allocateLocalPort } from '../../src/modes/fullnat.js';
import { parseIpv6 } from '../../src/dataplane/wire/ipv6.js';
import { PROTO_INET6 } from '../../src/conntrack/connection-flags.js';
import { dest, service, table } from '../snapshot-builders.js';

const SVC: ServiceConfig = { af: 4, protocol: 6, addr: '198.18.1.100', port: 80, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' };
const RS = (addr: string): DestinationConfig => ({ af: 4, addr, port: 80, forward: ForwardMethod.Masq, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 });
const stats = (conns: number, inpkts: number) => ({ conns, inpkts, outpkts: 2 * inpkts, inbytes: 100 * inpkts, outbytes: 200 * inpkts });

describe('queue counters summed into the replica', () => {
  it('adds services and real servers by key, ignores what the replica no longer has, and replaces earlier sums', () => {
    const replica = new ServiceTable();
    replica.addService(SVC);
    replica.addDest(SVC, RS('198.18.2.11'));
    replica.addDest(SVC, RS('198.18.2.12'));
    const svc = replica.find(SVC)!;
    const [rs2, rs1] = svc.dests; // newest first
    const q0 = table([
      service(6, '198.18.1.100', 80, [dest('198.18.2.12', 80, { activeConns: 1, inactConns: 2, stats: stats(3, 10) }), dest('198.18.2.11', 80, { activeConns: 4, stats: stats(4, 20) })], { stats: stats(7, 30) }),
      service(6, '198.18.1.101', 80, [], { stats: stats(99, 99) }), // deleted since: ignored
    ]);
    const q1 = table([service(6, '198.18.1.100', 80, [dest('198.18.2.11', 80, { inactConns: 5, persistConns: 1, stats: stats(1, 5) })], { stats: stats(1, 5) })]);
    for (let round = 0; round < 2; round++) {
      addQueueTables(replica, [q0, q1]); // twice: sums, not accumulations
      const s = replica.serviceStats.values, d = replica.destStats.values;
      expect(Array.from(s.subarray(svc.id * STAT_FIELDS, svc.id * STAT_FIELDS + 5))).toEqual([8, 35, 70, 3500, 7000]);
      expect(Array.from(d.subarray(rs1 * STAT_FIELDS, rs1 * STAT_FIELDS + 2))).toEqual([5, 25]);
      expect(Array.from(d.subarray(rs2 * STAT_FIELDS, rs2 * STAT_FIELDS + 2))).toEqual([3, 10]);
      expect([replica.dests.activeConns[rs1], replica.dests.inactConns[rs1], replica.dests.persistConns[rs1]]).toEqual([4, 5, 1]);
      expect([replica.dests.activeConns[rs2], replica.dests.inactConns[rs2]]).toEqual([1, 2]);
    }
  });

  it('sums the data plane counters and keeps every queue\'s own', () => {
    const q = (framesIn: number, drop: number) => ({ framesIn, forwardedIn: 1, connections: 2, drops: { malformed: drop }, tap: { rxFrames: framesIn }, offload: { enabled: true, superFrames: 3 } });
    const sum = sumQueueCounters([q(10, 1), q(32, 2)]);
    expect(sum.framesIn).toBe(42);
    expect(sum.connections).toBe(4);
    expect(sum.drops).toEqual({ malformed: 3 });
    expect(sum.tap).toEqual({ rxFrames: 42 });
    expect(sum.offload).toEqual({ enabled: true, superFrames: 6 });
    expect((sum.queues as unknown[]).length).toBe(2);
  });
});

describe('FULLNAT local ports per queue', () => {
  it('a queue of a two-queue TAP only takes ports the steering program sends back to it', () => {
    const lip = 0xc61202c8; // 198.18.2.200
    for (const index of [0, 1]) {
      const t = new ConnectionTable(1024, 64, 0);
      t.queue = { index, count: 2 };
      const counters = new Uint32Array(1);
      for (let k = 0; k < 200; k++) {
        const port = allocateLocalPort(t, 6, 0xc612020b, 80, lip, counters, 0);
        expect(steeringQueue(lip, port, 2)).toBe(index);
      }
    }
    // One queue: every port in turn, as before.
    const single = new ConnectionTable(1024, 64, 0);
    const c = new Uint32Array(1);
    expect([0, 1, 2].map(() => allocateLocalPort(single, 6, 0xc612020b, 80, lip, c, 0))).toEqual([5000, 5001, 5002]);
  });

  it('IPv6 local addresses are keyed by their fold, as the program folds them', () => {
    const t = new ConnectionTable(1024, 64, 0);
    t.queue = { index: 1, count: 3 };
    const bytes = parseIpv6('fd00:2::200')!;
    const lip = t.addresses6.acquire(bytes, 0);
    expect(t.addresses6.fold(lip)).toBe(fold6(bytes));
    const counters = new Uint32Array(1);
    for (let k = 0; k < 50; k++) expect(steeringQueue(fold6(bytes), allocateLocalPort(t, 6 | PROTO_INET6, 7, 80, lip, counters, 0), 3)).toBe(1);
  });

  it('steeringQueue is the program\'s hash: (address ^ port) * 0x9e3779b1 in 32 bits, high half, modulo the queues', () => {
    // (0xc6120102 ^ 40000) * 0x9e3779b1 = 0x4460eca2 (mod 2^32): high half 0x4460 = 17504.
    expect(steeringQueue(0xc6120102, 40000, 1 << 16)).toBe(0x4460);
    expect(steeringQueue(0xc6120102, 40000, 4)).toBe(0x4460 % 4);
    expect(steeringQueue(0xc6120102, 40000, 3)).toBe(0x4460 % 3);
    expect(steeringQueue(0xc6120102, 40000, 1)).toBe(0);
  });
});
