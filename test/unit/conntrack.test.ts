import { describe, expect, it } from 'vitest';
import { ConnectionTable, TICK_MS } from '../../src/conntrack/connection-table.js';
import { ConnectionTracker } from '../../src/conntrack/connection-tracker.js';
import { CONN_F_INACTIVE, CONN_F_TEMPLATE, PROTO_INET6 } from '../../src/conntrack/connection-flags.js';
import { DIR_INPUT, DIR_OUTPUT, TCP_S_CLOSE_WAIT, TCP_S_ESTABLISHED, TCP_S_SYN_RECV, TCP_S_TIME_WAIT } from '../../src/conntrack/tcp-state.js';
import { DEST_F_AVAILABLE, DEST_F_OVERLOAD, DestinationTable } from '../../src/dataplane/destination-table.js';

const TCP = 6, UDP = 17;
const SYN = 0x02, ACK = 0x10, FIN = 0x01;
const CIP = 0xc6120102, VIP = 0xc6120164, RIP = 0xc612020b;

function oneDest(): { dests: DestinationTable; d: number } {
  const dests = new DestinationTable();
  const d = dests.allocate();
  dests.addr[d] = RIP;
  dests.port[d] = 80;
  dests.weight[d] = 1;
  dests.flags[d] = DEST_F_AVAILABLE;
  return { dests, d };
}

describe('ConnectionTable', () => {
  it('an IPv6 fwmark template holds its client and real-server address ids, not the mark in the VIP field', () => {
    const t = new ConnectionTable(64, 64, 0);
    const ids = t.addresses6;
    const client = ids.acquireText('fd00:1::2'), rs = ids.acquireText('fd00:2::11'), other = ids.acquireText('fd00:1::100');
    const before = [client, rs, other].map((id) => ids.references(id));
    // Template <IPPROTO_IP, client, 0, mark, 0>: the mark equals another address's id on purpose.
    const tpl = t.insert(PROTO_INET6, client, 0, other, 0, rs, 0, CONN_F_TEMPLATE, 600_000, 0);
    expect([client, rs, other].map((id) => ids.references(id))).toEqual([before[0] + 1, before[1] + 1, before[2]]);
    expect(t.lookupTemplate(PROTO_INET6, client, other, 0)).toBe(tpl);
    t.remove(tpl);
    expect([client, rs, other].map((id) => ids.references(id))).toEqual(before);
  });

  it('finds an entry from both directions by the client side', () => {
    const t = new ConnectionTable(1000);
    const id = t.insert(TCP, CIP, 40000, VIP, 80, RIP, 8080, 0, 3000, 0);
    expect(t.lookupIn(TCP, CIP, 40000, VIP, 80)).toBe(id);
    expect(t.lookupIn(TCP, CIP, 40001, VIP, 80)).toBe(-1);
    expect(t.lookupIn(UDP, CIP, 40000, VIP, 80)).toBe(-1);
    // reply: RIP:8080 -> CIP:40000
    expect(t.lookupOutMasq(TCP, RIP, 8080, CIP, 40000)).toBe(id);
    expect(t.lookupOutMasq(TCP, RIP, 80, CIP, 40000)).toBe(-1);
  });

  it('grows and rehashes without losing entries, and refuses beyond maxEntries', () => {
    const t = new ConnectionTable(20_000, 16);
    const ids: number[] = [];
    for (let i = 0; i < 20_000; i++) ids.push(t.insert(TCP, CIP + (i >> 10), 1024 + (i & 1023), VIP, 80, RIP, 80, 0, 60_000, 0));
    expect(ids.every((x) => x >= 0)).toBe(true);
    expect(t.count).toBe(20_000);
    for (let i = 0; i < 20_000; i += 997) expect(t.lookupIn(TCP, CIP + (i >> 10), 1024 + (i & 1023), VIP, 80)).toBe(ids[i]);
    expect(t.insert(TCP, 1, 1, VIP, 80, RIP, 80, 0, 60_000, 0)).toBe(-1);
  });

  it('expires on time with the lazy wheel, re-arming entries that were refreshed', () => {
    const t = new ConnectionTable(100);
    const a = t.insert(TCP, CIP, 1, VIP, 80, RIP, 80, 0, 10_000, 0);
    const b = t.insert(TCP, CIP, 2, VIP, 80, RIP, 80, 0, 10_000, 0);
    const expired: number[] = [];
    const onExpire = (id: number): void => {
      expired.push(id);
    };
    t.refresh(b, 10_000, 5_000); // b now expires at 15 s
    t.expire(9_000, onExpire);
    expect(expired).toEqual([]);
    t.expire(10_000 + TICK_MS, onExpire);
    expect(expired).toEqual([a]);
    expect(t.lookupIn(TCP, CIP, 1, VIP, 80)).toBe(-1);
    expect(t.lookupIn(TCP, CIP, 2, VIP, 80)).toBe(b);
    t.expire(15_000 + TICK_MS, onExpire);
    expect(expired).toEqual([a, b]);
    expect(t.count).toBe(0);
  });

  it('moves an entry earlier when its timeout shrinks', () => {
    const t = new ConnectionTable(100);
    const a = t.insert(TCP, CIP, 1, VIP, 80, RIP, 80, 0, 900_000, 0);
    t.refresh(a, 10_000, 1_000); // e.g. ESTABLISHED -> CLOSE
    const expired: number[] = [];
    t.expire(11_000 + TICK_MS, (id) => expired.push(id));
    expect(expired).toEqual([a]);
  });

  it('handles timeouts longer than one turn of the wheel', () => {
    const t = new ConnectionTable(100);
    const a = t.insert(UDP, CIP, 1, VIP, 53, RIP, 53, 0, 2 * 3600_000, 0);
    const expired: number[] = [];
    t.expire(3600_000, (id) => expired.push(id));
    expect(expired).toEqual([]);
    t.expire(2 * 3600_000 + TICK_MS, (id) => expired.push(id));
    expect(expired).toEqual([a]);
  });

  it('reports remaining whole seconds', () => {
    const t = new ConnectionTable(10);
    const a = t.insert(TCP, CIP, 1, VIP, 80, RIP, 80, 0, 60_000, 0);
    expect(t.remainingSeconds(a, 500)).toBe(59);
  });
});

describe('ConnectionTracker', () => {
  it('counts a new connection inactive, active once established, inactive after FIN, gone on expiry', () => {
    const { dests, d } = oneDest();
    const tr = new ConnectionTracker(dests, 100, 0);
    const id = tr.create(TCP, CIP, 40000, VIP, 80, d, 0);
    expect(dests.inactConns[d]).toBe(1);
    expect(tr.table.flagsOf(id) & CONN_F_INACTIVE).toBe(CONN_F_INACTIVE);
    tr.transition(id, DIR_INPUT, SYN, 0);
    expect(tr.table.stateOf(id)).toBe(TCP_S_SYN_RECV);
    expect([dests.activeConns[d], dests.inactConns[d]]).toEqual([1, 0]); // SYN_RECV is active
    tr.transition(id, DIR_OUTPUT, SYN | ACK, 1);
    tr.transition(id, DIR_INPUT, ACK, 2);
    expect(tr.table.stateOf(id)).toBe(TCP_S_ESTABLISHED);
    expect(tr.table.remainingSeconds(id, 2)).toBe(900);
    expect(tr.table.remainingSeconds(id, 1002)).toBe(899);
    tr.transition(id, DIR_INPUT, FIN | ACK, 3);
    expect(tr.table.stateOf(id)).toBe(TCP_S_CLOSE_WAIT);
    expect([dests.activeConns[d], dests.inactConns[d]]).toEqual([0, 1]);
    tr.transition(id, DIR_OUTPUT, FIN | ACK, 4);
    expect(tr.table.stateOf(id)).toBe(TCP_S_TIME_WAIT);
    expect(tr.reusableForNewSyn(id)).toBe(true);
    tr.expire(4 + 120_000 + TICK_MS);
    expect(tr.table.count).toBe(0);
    expect([dests.activeConns[d], dests.inactConns[d]]).toEqual([0, 0]);
  });

  it('uses the UDP timeout and the timeouts set with --set', () => {
    const { dests, d } = oneDest();
    const tr = new ConnectionTracker(dests, 100, 0);
    expect(tr.timeouts.set(0, 0, 30)).toBe(true);
    const id = tr.create(UDP, CIP, 5000, VIP, 53, d, 0);
    tr.transition(id, DIR_INPUT, 0, 0);
    expect(tr.table.remainingSeconds(id, 0)).toBe(30);
    expect(dests.inactConns[d]).toBe(1); // UDP connections are never active
  });

  it('trips OVERLOAD at the upper threshold and clears it below the lower one', () => {
    const { dests, d } = oneDest();
    dests.uThreshold[d] = 2;
    dests.lThreshold[d] = 1;
    const tr = new ConnectionTracker(dests, 100, 0);
    const a = tr.create(UDP, CIP, 1, VIP, 53, d, 0);
    expect(dests.flags[d] & DEST_F_OVERLOAD).toBe(0);
    const b = tr.create(UDP, CIP, 2, VIP, 53, d, 0);
    expect(dests.flags[d] & DEST_F_OVERLOAD).toBe(DEST_F_OVERLOAD);
    tr.expireNow(a);
    expect(dests.flags[d] & DEST_F_OVERLOAD).toBe(DEST_F_OVERLOAD); // total 1, not < 1
    tr.expireNow(b);
    expect(dests.flags[d] & DEST_F_OVERLOAD).toBe(0);
  });

  it('refuses and counts new connections when the table is full, keeping the existing ones', () => {
    const { dests, d } = oneDest();
    const tr = new ConnectionTracker(dests, 2, 0);
    expect(tr.create(TCP, CIP, 1, VIP, 80, d, 0)).toBeGreaterThanOrEqual(0);
    expect(tr.create(TCP, CIP, 2, VIP, 80, d, 0)).toBeGreaterThanOrEqual(0);
    expect(tr.create(TCP, CIP, 3, VIP, 80, d, 0)).toBe(-1);
    expect(tr.refusedFull).toBe(1);
    expect(tr.table.lookupIn(TCP, CIP, 1, VIP, 80)).toBeGreaterThanOrEqual(0);
    expect(dests.inactConns[d]).toBe(2);
  });

  it('tells when the last connection of a destination went away', () => {
    const { dests, d } = oneDest();
    const tr = new ConnectionTracker(dests, 10, 0);
    const seen: number[] = [];
    tr.onDestinationUnreferenced = (x) => seen.push(x);
    const a = tr.create(TCP, CIP, 1, VIP, 80, d, 0);
    tr.expireNow(a);
    expect(seen).toEqual([d]);
  });
});
