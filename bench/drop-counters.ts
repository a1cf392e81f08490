/**
 * Where datagrams were lost: kernel drop counters of the lab, read before and after a UDP run.
 *
 *   socket   UDP RcvbufErrors in the server's namespace (the iperf3 server did not keep up)
 *   tap      TX drops of the TAP: frames the kernel could not queue to tapvsd (tapvsd did not keep up)
 *   links    RX+TX drops of every other interface in the lab's namespaces (veths, bridge)
 *   backlog  per-CPU input backlog drops (/proc/net/softnet_stat; machine-wide)
 */
import fs from 'node:fs';
import { LAB_TAP, type LabTopology } from '../src/lab/topology.js';

export interface Drops {
  socket: number;
  tap: number;
  links: number;
  backlog: number;
}

interface LinkStats {
  ifname: string;
  txqlen?: number;
  stats64?: { rx?: { dropped?: number }; tx?: { dropped?: number } };
}

async function linkDrops(lab: LabTopology, ns: string): Promise<{ tap: number; links: number }> {
  const r = await lab.exec(ns, 'ip', ['-s', '-j', 'link', 'show']);
  let tap = 0;
  let links = 0;
  for (const l of JSON.parse(r.stdout || '[]') as LinkStats[]) {
    if (l.ifname === LAB_TAP) tap += l.stats64?.tx?.dropped ?? 0;
    else links += (l.stats64?.rx?.dropped ?? 0) + (l.stats64?.tx?.dropped ?? 0);
  }
  return { tap, links };
}

async function udpRcvbufErrors(lab: LabTopology, ns: string): Promise<number> {
  const r = await lab.exec(ns, 'cat', ['/proc/net/snmp']);
  const udp = r.stdout.split('\n').filter((l) => l.startsWith('Udp: '));
  if (udp.length < 2) return 0;
  const names = udp[0].split(/\s+/);
  const values = udp[1].split(/\s+/);
  return Number(values[names.indexOf('RcvbufErrors')]) || 0;
}

function backlogDrops(): number {
  // One line per CPU, hexadecimal columns; the second is "dropped" (backlog full).
  return fs
    .readFileSync('/proc/net/softnet_stat', 'utf8')
    .split('\n')
    .filter(Boolean)
    .reduce((sum, line) => sum + parseInt(line.trim().split(/\s+/)[1] ?? '0', 16), 0);
}

/** Current drop counters; `serverNs` is the namespace of the UDP receiver. */
export async function readDrops(lab: LabTopology, serverNs: string): Promise<Drops> {
  let tap = 0;
  let links = 0;
  for (const ns of [lab.dir, lab.cli, ...lab.rs]) {
    const d = await linkDrops(lab, ns);
    tap += d.tap;
    links += d.links;
  }
  return { socket: await udpRcvbufErrors(lab, serverNs), tap, links, backlog: backlogDrops() };
}

export function dropsSince(before: Drops, after: Drops): Drops {
  return {
    socket: after.socket - before.socket,
    tap: after.tap - before.tap,
    links: after.links - before.links,
    backlog: after.backlog - before.backlog,
  };
}

export function formatDrops(d: Drops): string {
  return `drops socket ${d.socket}, tap ${d.tap}, links ${d.links}, backlog ${d.backlog}`;
}

/** The TAP's queue length (frames the kernel holds for tapvsd before dropping: its only buffer). */
export async function tapQueueLength(lab: LabTopology): Promise<number | null> {
  const r = await lab.exec(lab.dir, 'ip', ['-j', 'link', 'show', LAB_TAP]);
  const links = JSON.parse(r.stdout || '[]') as LinkStats[];
  return links[0]?.txqlen ?? null;
}
