import { it } from 'vitest';
import { DEST_F_AVAILABLE, DestinationTable } from '../../src/dataplane/destination-table.js';
import { DestinationChange } from '../../src/schedulers/scheduler.js';
import { MhScheduler } from '../../src/schedulers/mh.js';
import { LblcScheduler } from '../../src/schedulers/lblc.js';

it('bench', () => {
  const t = new DestinationTable(16);
  const dests: number[] = [];
  for (let i = 0; i < 8; i++) {
    const id = t.allocate();
    t.weight[id] = 1; t.lastWeight[id] = 1; t.flags[id] = DEST_F_AVAILABLE;
    t.addr[id] = 0x0a000000 + i; t.port[id] = 80; dests.unshift(id);
  }
  for (const s of [new MhScheduler(), new LblcScheduler()]) {
    s.update(dests, t, DestinationChange.Added, -1);
    const pkt = { saddr: 0, daddr: 0, sport: 1, dport: 80 };
    let x = 0;
    const t0 = performance.now();
    for (let i = 0; i < 1_000_000; i++) { pkt.saddr = i * 2654435761 >>> 0; pkt.daddr = i & 0xfff; x += s.schedule(dests, t, pkt); }
    console.log(s.name, (performance.now() - t0).toFixed(0), 'ms / 1M', x);
  }
});
