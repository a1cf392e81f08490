/**
 * The director side of `npm run bench:mq-steering` (run by it inside the lab's director namespace): the
 * lab's NAT service (VIP 198.18.1.100:80 -> rs1, rs2) on a TAP with IFF_MULTI_QUEUE and two queues, one
 * Pipeline per queue over shared tables (one thread: this measures where the kernel steers frames, not
 * parallel speed). Counts, for every reply of a connection, whether it arrived on the queue that last
 * received (and wrote out) a client packet of the connection, and how often client packets change queue.
 * With --steering, tapvs's BPF steering (src/dataplane/flow-steering.ts) picks the queues instead of the
 * kernel's own. SIGUSR1 prints the counts as JSON; SIGTERM ends it.
 */
import { ServiceTable } from '../src/control/service-table.js';
import { ForwardMethod } from '../src/control/model.js';
import { ConnectionTracker } from '../src/conntrack/connection-tracker.js';
import { HostStack } from '../src/dataplane/host.js';
import { NeighborTable } from '../src/dataplane/neighbors.js';
import { Pipeline } from '../src/dataplane/pipeline.js';
import { RoutingTable } from '../src/dataplane/routes.js';
import { Tap } from '../src/dataplane/tap.js';
import { TxBatch } from '../src/dataplane/tx-batch.js';
import { parseIpv4 } from '../src/dataplane/wire/ipv4.js';
import { FlowSteering } from '../src/dataplane/flow-steering.js';
import { parseIpv6 } from '../src/dataplane/wire/ipv6.js';
import { Ipv6Addresses } from '../src/dataplane/addresses6.js';

const QUEUES = 2;
const MAC = Uint8Array.from([2, 0, 0, 0, 0, 0xfe]);
const VIP = parseIpv4('198.18.1.100');
const RIPS = new Set([parseIpv4('198.18.2.11'), parseIpv4('198.18.2.12')]);
// --ipv6: the IPv6 lab's service instead ([fd00:1::100]:80 -> [fd00:2::11], [fd00:2::12]).
const IPV6 = process.argv.includes('--ipv6');
const VIP6 = 'fd00:1::100', RIPS6 = ['fd00:2::11', 'fd00:2::12'];

const services = new ServiceTable();
const tracker = new ConnectionTracker(services.dests, 1 << 16, performance.now());
const routes = new RoutingTable([
  { addr: parseIpv4('198.18.1.1'), prefix: 24 },
  { addr: parseIpv4('198.18.2.1'), prefix: 24 },
]);
const neighbors = new NeighborTable(256, 64);
const neighbors6 = new NeighborTable(256, 64);
const svc = IPV6
  ? { af: 6 as const, protocol: 6, addr: VIP6, port: 80, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '128', pe: '' }
  : { af: 4 as const, protocol: 6, addr: '198.18.1.100', port: 80, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' };
services.addService(svc);
for (const rs of IPV6 ? RIPS6 : ['198.18.2.11', '198.18.2.12'])
  services.addDest(svc, { af: svc.af, addr: rs, port: 80, forward: ForwardMethod.Masq, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 });
const vip6Bytes = parseIpv6(VIP6)!, rips6Bytes = RIPS6.map((r) => parseIpv6(r)!);
const same16 = (a: Uint8Array, b: Uint8Array, off: number): boolean => a.every((x, i) => b[off + i] === x);

/** What this director counts (printed as JSON on SIGUSR1; read by bench:mq-steering and its e2e test). */
export interface SteeringCounts {
  /** Frames received per queue. */
  framesPerQueue: number[];
  /** Connections opened (client SYNs). */
  requests: number;
  /** Client packets that arrived on another queue than their connection's previous client packet. */
  requestMoves: number;
  /** Real-server packets that arrived on the queue that last wrote out their connection's client packet, or on another. */
  repliesSameQueue: number;
  repliesOtherQueue: number;
  /** Real-server packets of no recorded connection. */
  repliesUnknown: number;
}

/** Client endpoint -> the queue its connection's first packet came in on. */
const owner = new Map<string, number>();
const counts: SteeringCounts = { framesPerQueue: new Array<number>(QUEUES).fill(0), requests: 0, requestMoves: 0, repliesSameQueue: 0, repliesOtherQueue: 0, repliesUnknown: 0 };

function observe(q: number, arena: Uint8Array, off: number, len: number): void {
  counts.framesPerQueue[q]++;
  if (IPV6) return observe6(q, arena, off, len);
  if (len < 54 || arena[off + 12] !== 8 || arena[off + 13] !== 0 || arena[off + 23] !== 6) return;
  const ip = off + 14, l4 = ip + (arena[ip] & 15) * 4;
  const src = ((arena[ip + 12] << 24) | (arena[ip + 13] << 16) | (arena[ip + 14] << 8) | arena[ip + 15]) >>> 0;
  const dst = ((arena[ip + 16] << 24) | (arena[ip + 17] << 16) | (arena[ip + 18] << 8) | arena[ip + 19]) >>> 0;
  const sport = (arena[l4] << 8) | arena[l4 + 1], dport = (arena[l4 + 2] << 8) | arena[l4 + 3];
  if (dst === VIP) {
    // The queue that last received (and so wrote out) a packet of this connection's client side.
    if ((arena[l4 + 13] & 0x12) === 0x02) counts.requests++;
    else if (owner.has(`${src}:${sport}`) && owner.get(`${src}:${sport}`) !== q) counts.requestMoves++;
    owner.set(`${src}:${sport}`, q);
  } else if (RIPS.has(src)) {
    const o = owner.get(`${dst}:${dport}`);
    if (o === undefined) counts.repliesUnknown++;
    else if (o === q) counts.repliesSameQueue++;
    else counts.repliesOtherQueue++;
  }
}

function observe6(q: number, arena: Uint8Array, off: number, len: number): void {
  if (len < 74 || arena[off + 12] !== 0x86 || arena[off + 13] !== 0xdd || arena[off + 20] !== 6) return;
  const ip = off + 14, l4 = ip + 40;
  const sport = (arena[l4] << 8) | arena[l4 + 1], dport = (arena[l4 + 2] << 8) | arena[l4 + 3];
  const srcText = Array.from(arena.subarray(ip + 8, ip + 24)).join('.'), dstText = Array.from(arena.subarray(ip + 24, ip + 40)).join('.');
  if (same16(vip6Bytes, arena, ip + 24)) {
    if ((arena[l4 + 13] & 0x12) === 0x02) counts.requests++;
    else if (owner.has(`${srcText}:${sport}`) && owner.get(`${srcText}:${sport}`) !== q) counts.requestMoves++;
    owner.set(`${srcText}:${sport}`, q);
  } else if (rips6Bytes.some((r) => same16(r, arena, ip + 8))) {
    const o = owner.get(`${dstText}:${dport}`);
    if (o === undefined) counts.repliesUnknown++;
    else if (o === q) counts.repliesSameQueue++;
    else counts.repliesOtherQueue++;
  }
}

const taps: Tap[] = [];
const pipelines: Pipeline[] = [];
for (let q = 0; q < QUEUES; q++) {
  const tap = new Tap('tapvs0', { multiQueue: true });
  if (q === 0) {
    tap.device.addToBridge('br0');
    tap.device.setUp(true);
  }
  const tx = new TxBatch(tap);
  const pipeline = new Pipeline(MAC, services, tracker, routes, neighbors, new HostStack(MAC, tx), tx, neighbors6);
  if (IPV6) pipeline.setAddresses6(new Ipv6Addresses([{ addr: parseIpv6('fd00:1::1')!, prefix: 64 }, { addr: parseIpv6('fd00:2::1')!, prefix: 64 }]));
  taps.push(tap);
  pipelines.push(pipeline);
  tap.start((n) => {
    for (let i = 0; i < n; i++) observe(q, tap.arena, tap.rxOffset(i), tap.rxLengths[i]);
    pipeline.processBatch(tap.arena, tap.slotSize, tap.headroom, tap.rxLengths, n, performance.now());
  });
}
// --steering: tapvs's own steering by the client end (flow-steering.ts) instead of the kernel's.
const steering = process.argv.includes('--steering') ? new FlowSteering() : null;
if (steering) {
  steering.setServiceAddresses([VIP, ...RIPS], [vip6Bytes, ...rips6Bytes]);
  steering.attach(taps[0]);
}
const timers = [setInterval(() => tracker.expire(performance.now()), 250), setInterval(() => pipelines[0].tickNeighbors(performance.now()), 1000)];
process.on('SIGUSR1', () => process.stdout.write(`${JSON.stringify(counts)}\n`));
process.on('SIGTERM', () => {
  timers.forEach(clearInterval);
  for (const t of taps) t.close();
  steering?.close();
  process.exit(0);
});
process.stdout.write(`multiqueue director ready: ${QUEUES} queues\n`);
