/**
 * The service table's destination trash (kernel ip_vs_trash_get_dest / ip_vs_add_dest): a real server
 * deleted while connections use it stays in the trash; adding it back to the same service revives it with
 * its connections and counters, as IPVS does.
 */
import { describe, expect, it } from 'vitest';
import { ServiceTable } from '../../src/control/service-table.js';
import { ConnectionTracker } from '../../src/conntrack/connection-tracker.js';
import { ForwardMethod, type DestinationConfig, type ServiceConfig } from '../../src/control/model.js';
import { STAT_FIELDS, STAT_INPKTS } from '../../src/stats/counters.js';
import { parseIpv4 } from '../../src/dataplane/wire/ipv4.js';
import { applyBatch } from '../../src/control/commands.js';

const SVC: ServiceConfig = { af: 4, protocol: 6, addr: '198.18.1.100', port: 80, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' };
const RS = (addr: string, weight = 1): DestinationConfig => ({ af: 4, addr, port: 80, forward: ForwardMethod.Masq, weight, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 });

function setup() {
  const services = new ServiceTable();
  const tracker = new ConnectionTracker(services.dests, 100, 0);
  tracker.onDestinationUnreferenced = (d) => services.releaseIfUnreferenced(d);
  expect(services.addService(SVC)).toBeNull();
  expect(services.addDest(SVC, RS('198.18.2.11'))).toBeNull();
  const id = services.find(SVC)!.dests[0];
  return { services, tracker, id };
}

describe('the destination trash', () => {
  it('a real server deleted under a connection comes back with its connection and counters', () => {
    const { services, tracker, id } = setup();
    const cid = tracker.create(6, parseIpv4('198.18.1.2'), 40000, parseIpv4('198.18.1.100'), 80, id, 0);
    services.destStats.values[id * STAT_FIELDS + STAT_INPKTS] = 7;
    expect(services.deleteDest(SVC, RS('198.18.2.11'))).toBeNull();
    expect(services.dests.used[id]).toBe(1); // in the trash: the connection still uses it
    expect(services.addDest(SVC, RS('198.18.2.11', 3))).toBeNull();
    const svc = services.find(SVC)!;
    expect(svc.dests).toEqual([id]); // the same destination, revived
    expect(services.dests.weight[id]).toBe(3);
    expect(services.dests.inactConns[id]).toBe(1);
    expect(services.destStats.values[id * STAT_FIELDS + STAT_INPKTS]).toBe(7);
    expect(tracker.table.destOf(cid)).toBe(id);
    // The connection ends: the destination stays (it is in its service again).
    tracker.expireNow(cid);
    expect(services.dests.used[id]).toBe(1);
    expect(services.dests.inactConns[id]).toBe(0);
  });

  it('without connections a deleted real server is gone: adding it again starts from zero', () => {
    const { services, id } = setup();
    services.destStats.values[id * STAT_FIELDS + STAT_INPKTS] = 7;
    expect(services.deleteDest(SVC, RS('198.18.2.11'))).toBeNull();
    expect(services.dests.used[id]).toBe(0);
    expect(services.addDest(SVC, RS('198.18.2.11'))).toBeNull();
    const again = services.find(SVC)!.dests[0];
    expect(services.destStats.values[again * STAT_FIELDS + STAT_INPKTS]).toBe(0);
  });

  it('only the same service revives it; a service deleted and added again rebinds it with fresh counters', () => {
    const { services, tracker, id } = setup();
    tracker.create(6, parseIpv4('198.18.1.2'), 40001, parseIpv4('198.18.1.100'), 80, id, 0);
    services.destStats.values[id * STAT_FIELDS + STAT_INPKTS] = 7;
    const other: ServiceConfig = { ...SVC, port: 81 };
    expect(services.addService(other)).toBeNull();
    expect(services.deleteDest(SVC, RS('198.18.2.11'))).toBeNull();
    expect(services.addDest(other, RS('198.18.2.11'))).toBeNull();
    expect(services.find(other)!.dests[0]).not.toBe(id); // another service: a new destination

    expect(services.deleteService(SVC)).toBeNull();
    expect(services.addService(SVC)).toBeNull();
    expect(services.addDest(SVC, RS('198.18.2.11'))).toBeNull();
    expect(services.find(SVC)!.dests[0]).toBe(id); // the trashed one, bound to the new service
    expect(services.dests.inactConns[id]).toBe(1);
    expect(services.destStats.values[id * STAT_FIELDS + STAT_INPKTS]).toBe(0);
  });
});

describe('batches against the live configuration', () => {
  it('an IPv6 FULLNAT service\'s local addresses are in the dry run\'s copy (a batch can delete one)', () => {
    const services = new ServiceTable();
    const tracker = new ConnectionTracker(services.dests, 100, 0);
    const svc: ServiceConfig = { ...SVC, af: 6, addr: 'fd00:1::103', netmask: '128' };
    expect(services.addService(svc)).toBeNull();
    expect(services.addLocalAddress(svc, 'fd00:2::200')).toBeNull();
    expect(services.addLocalAddress(svc, 'fd00:2::201')).toBeNull();
    expect(applyBatch(services, tracker, [{ op: 'delete-laddr', service: svc, laddr: 'fd00:2::200' }])).toBeNull();
    expect(services.find(svc)!.laddrs.map((l) => services.addresses6.text(l))).toEqual(['fd00:2::201']);
  });
});
