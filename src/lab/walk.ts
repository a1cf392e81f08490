/**
 * The packet walk: the seed articles teach each forwarding method by listing a packet's addresses at
 * every hop (CIP→VIP, CIP→RIP, RIP→CIP, VIP→CIP...). This shows the same from real traffic.
 *
 * It captures at the client's eth0, at the director's TAP (tapvs0 in the director namespace sees both
 * directions: frames to the director's MAC are "director in", frames from it "director out"), and at
 * every real server's eth0, while the lab client makes one HTTP request through the VIP. Each capture
 * runs as a small child process inside its namespace (src/lab/capture.ts with the `cap` package, or
 * tcpdump when cap is not installed) and writes a pcap file. The files are then read back here
 * (src/lab/pcap.ts), the connection is followed from the client's SYN (its initial sequence number is
 * the same at every hop, whatever a method rewrites), and each packet of the handshake, the request and
 * the response is listed at every hop where it was seen. In an IPv6 lab the request goes to the IPv6 VIP
 * and the table lists IPv6 addresses ([addr]:port; TUN as IPv6-in-IPv6).
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadCap } from './cap.js';
import { hostPort, labAddresses } from './family.js';
import { decodeFrame, readPcap, tcpFlagsText, type DecodedFrame, type DecodedIp } from './pcap.js';
import { run, stop, waitFor, type Background } from './processes.js';
import { LAB_TAP, PACKAGE_ROOT, type LabTopology } from './topology.js';

const CAPTURE_JS = path.join(PACKAGE_ROOT, 'dist', 'src', 'lab', 'capture.js');
/** TCP (over IPv4 or IPv6), IPIP and IPv6-in-IPv6: the connection itself and its tunnelled form. */
const CAPTURE_FILTER = 'tcp or ip proto 4 or ip6 proto 41';

export type CaptureBackend = 'cap' | 'tcpdump';

export interface WalkOptions {
  /** Directory for the pcap files (created if missing); one file per capture point. */
  pcapDir: string;
  /** Where the client connects (default the lab's VIP, port 80: VIP:80, or [VIP]:80 in an IPv6 lab). */
  target?: string;
  /** Address roles (IP -> CIP, VIP, DIP, RIP...). */
  roles?: Record<string, string>;
  /** Method title for the heading (LVS-NAT...). */
  title?: string;
  /** cap (default when installed) or tcpdump. */
  backend?: CaptureBackend | 'auto';
  /** List every packet of the connection, not only up to the first response segment. */
  all?: boolean;
  /** Upper bound of each capture process's life, seconds (default 30). */
  captureSeconds?: number;
}

export type Hop = 'client' | 'director in' | 'director out' | 'director (flooded)' | string;

export interface WalkRow {
  /** 1-based number of the packet in the walk (the same segment at every hop shares it). */
  packet: number;
  /** SYN, SYN-ACK, ACK, request (PSH-ACK, 78 B), response (...), FIN-ACK... */
  label: string;
  /** True for client-to-server packets. */
  toServer: boolean;
  /** client, director in, director out, rs1, rs2... */
  hop: Hop;
  srcMac: string;
  dstMac: string;
  /** MACs by the host that owns them (client, director, rs1...), or their last three bytes. */
  macText: string;
  /** Outer addresses: IP:port ([IP]:port for IPv6), or IP alone for IPIP and IPv6-in-IPv6. */
  src: string;
  dst: string;
  /** e.g. 'CIP → VIP', or for a tunnel the outer 'DIP → RIP'. */
  roles: string;
  /** For IPIP and IPv6-in-IPv6: the encapsulated packet's addresses and roles. */
  inner?: { src: string; dst: string; roles: string };
  timeUs: number;
}

export interface WalkResult {
  rows: WalkRow[];
  /** The connection as the client sees it. */
  client: { src: string; dst: string };
  /** The real server namespace(s) that saw it (rs1...). */
  servedBy: string[];
  /** Capture point -> pcap file. */
  files: Record<string, string>;
  backend: CaptureBackend;
  /** Packets of the connection after the listed exchange (ACKs, FINs), left out of rows. */
  moreAfter: number;
  macNames: Record<string, string>;
  text: string;
}

interface CapturePoint {
  name: string;
  ns: string;
  device: string;
}

/** cap when it loads, else tcpdump when installed; throws when neither is available. */
export async function chooseBackend(wanted: CaptureBackend | 'auto' = 'auto'): Promise<CaptureBackend> {
  if (wanted === 'cap' || wanted === 'auto') {
    const { cap, error } = loadCap();
    if (cap) return 'cap';
    if (wanted === 'cap') throw new Error(`the cap package is not available (${error}): apt-get install libpcap-dev && npm install`);
  }
  const t = await run('tcpdump', ['--version'], { timeoutMs: 5000 });
  if (t.code === 0) return 'tcpdump';
  throw new Error('no packet capture available: install libpcap-dev and run npm install (for the optional cap package), or install tcpdump');
}

function startCapture(lab: LabTopology, point: CapturePoint, file: string, backend: CaptureBackend, seconds: number): Background {
  if (backend === 'cap') {
    return lab.spawnIn(point.ns, process.execPath, [CAPTURE_JS, '--device', point.device, '--out', file, '--seconds', String(seconds), '--filter', CAPTURE_FILTER]);
  }
  // timeout(1) bounds tcpdump's life even if nobody stops it; -U writes each packet as it comes.
  return lab.spawnIn(point.ns, 'timeout', [String(seconds), 'tcpdump', '-i', point.device, '-U', '-w', file, '--immediate-mode', '-Z', 'root', '-s', '65535', '-n', CAPTURE_FILTER]);
}

async function linkMac(ns: string, dev: string): Promise<string | null> {
  const r = await run('ip', ['-n', ns, '-j', 'link', 'show', dev], { timeoutMs: 5000 });
  if (r.code !== 0) return null;
  try {
    return (JSON.parse(r.stdout) as { address?: string }[])[0]?.address ?? null;
  } catch {
    return null;
  }
}

/** The endpoint as the client's target is written: 198.18.1.100:80, [fd00:1::100]:80. */
const endpoint = (ip: DecodedIp, side: 'src' | 'dst'): string => (side === 'src' ? hostPort(ip.src, ip.srcPort ?? 0) : hostPort(ip.dst, ip.dstPort ?? 0));
/** The packet carrying the connection's ports: the inner one of a tunnel. */
const transport = (ip: DecodedIp): DecodedIp => (ip.inner && ip.inner.srcPort !== undefined ? ip.inner : ip);
const tupleKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);

export interface Seen {
  point: string;
  frame: DecodedFrame;
  ip: DecodedIp;
  t: DecodedIp;
  timeUs: number;
  index: number;
}

/**
 * Run the walk on a lab whose service is configured: capture, make one request, read the captures back.
 * Every capture process is stopped before this returns (and lab.down() would stop it too).
 */
export async function packetWalk(lab: LabTopology, opts: WalkOptions): Promise<WalkResult> {
  const target = opts.target ?? hostPort(labAddresses(lab).vip, 80);
  const backend = await chooseBackend(opts.backend ?? 'auto');
  const seconds = opts.captureSeconds ?? 30;
  fs.mkdirSync(opts.pcapDir, { recursive: true });
  const points: CapturePoint[] = [
    { name: 'client', ns: lab.cli, device: 'eth0' },
    { name: 'director', ns: lab.dir, device: LAB_TAP },
    ...lab.rs.map((ns, i) => ({ name: `rs${i + 1}`, ns, device: 'eth0' })),
  ];
  const files: Record<string, string> = {};
  const captures: Background[] = [];
  try {
    for (const p of points) {
      files[p.name] = path.join(opts.pcapDir, `${p.name}.pcap`);
      fs.rmSync(files[p.name], { force: true });
      captures.push(startCapture(lab, p, files[p.name], backend, seconds));
    }
    await Promise.all(
      captures.map((c, i) =>
        waitFor(`capture on ${points[i].name}`, () => /capturing on|listening on/.test(c.output()) || c.child.exitCode !== null, 10_000).then(() => {
          if (c.child.exitCode !== null) throw new Error(`capture on ${points[i].name} exited (${c.child.exitCode}): ${c.output().trim()}`);
        }),
      ),
    );
    const served = await lab.client<{ server?: string; error?: string }[]>(['http', target, '--count', '1']);
    if (served[0]?.error) throw new Error(`the walk's request failed: ${served[0].error}`);
    // Let the closing segments (and any late copy) reach every capture point.
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await Promise.all(captures.map((c) => stop(c)));
  }

  // Who owns which MAC.
  const macNames: Record<string, string> = {};
  for (const p of points) {
    if (p.name === 'director') continue;
    const m = await linkMac(p.ns, 'eth0');
    if (m) macNames[m] = p.name;
  }
  const hostBridge = await linkMac(lab.dir, 'br0');
  if (hostBridge) macNames[hostBridge] = 'dir-host';

  const perPoint = new Map<string, Seen[]>();
  for (const p of points) {
    const list: Seen[] = [];
    const bytes = fs.existsSync(files[p.name]) ? fs.readFileSync(files[p.name]) : new Uint8Array(0);
    if (bytes.length === 0) throw new Error(`capture on ${p.name} wrote no file (${files[p.name]})`);
    readPcap(bytes).records.forEach((rec, index) => {
      const frame = decodeFrame(rec.data);
      if (!frame?.ip) return;
      const t = transport(frame.ip);
      if (!t.tcp) return;
      list.push({ point: p.name, frame, ip: frame.ip, t, timeUs: rec.timeUs, index });
    });
    perPoint.set(p.name, list);
  }
  return buildWalk(perPoint, { target, roles: opts.roles ?? {}, title: opts.title, files, backend, macNames, all: opts.all ?? false, pcapDir: opts.pcapDir });
}

export interface BuildContext {
  target: string;
  roles: Record<string, string>;
  title?: string;
  files: Record<string, string>;
  backend: CaptureBackend;
  macNames: Record<string, string>;
  all: boolean;
  pcapDir: string;
}

/** Follow the client's first connection to `target` through the captures and lay out the table. */
export function buildWalk(perPoint: Map<string, Seen[]>, ctx: BuildContext): WalkResult {
  const clientSeen = perPoint.get('client') ?? [];
  const syn = clientSeen.find((s) => s.t.tcp!.flags === 0x02 && endpoint(s.t, 'dst') === ctx.target);
  if (!syn) throw new Error(`the client capture has no SYN to ${ctx.target}`);
  const isn = syn.t.tcp!.seq;
  const clientMac = syn.frame.srcMac;
  const directorMac = syn.frame.dstMac; // the client resolved the VIP to the director
  ctx.macNames[clientMac] = 'client';
  ctx.macNames[directorMac] = 'director';

  // The connection's tuples at every hop, and which endpoint is the client side of each. The client's
  // ISN identifies it wherever a method rewrites addresses or ports (NAT, FULLNAT).
  const tuples = new Set<string>([tupleKey(endpoint(syn.t, 'src'), endpoint(syn.t, 'dst'))]);
  const clientSide = new Set<string>([endpoint(syn.t, 'src')]);
  const order = ['client', 'director', ...[...perPoint.keys()].filter((k) => k !== 'client' && k !== 'director')];
  for (const name of order) {
    for (const s of perPoint.get(name) ?? []) {
      const f = s.t.tcp!.flags & 0x12;
      if (f === 0x02 && s.t.tcp!.seq === isn) {
        tuples.add(tupleKey(endpoint(s.t, 'src'), endpoint(s.t, 'dst')));
        clientSide.add(endpoint(s.t, 'src'));
      } else if (f === 0x12 && s.t.tcp!.ack === ((isn + 1) >>> 0)) {
        tuples.add(tupleKey(endpoint(s.t, 'src'), endpoint(s.t, 'dst')));
        clientSide.add(endpoint(s.t, 'dst'));
      }
    }
  }

  interface Group {
    key: string;
    toServer: boolean;
    label: string;
    payload: number;
    seen: Seen[];
  }
  const groups = new Map<string, Group>();
  const servedBy = new Set<string>();
  for (const name of order) {
    for (const s of perPoint.get(name) ?? []) {
      const a = endpoint(s.t, 'src');
      const b = endpoint(s.t, 'dst');
      if (!tuples.has(tupleKey(a, b))) continue;
      const tcp = s.t.tcp!;
      const toServer = clientSide.has(a);
      const key = `${toServer ? 'c' : 's'}/${tcp.seq}/${tcp.ack}/${tcp.flags}/${tcp.payloadLength}`;
      let g = groups.get(key);
      if (!g) {
        const flags = tcpFlagsText(tcp.flags);
        const label = tcp.payloadLength > 0 ? `${toServer ? 'request' : 'response'} (${flags}, ${tcp.payloadLength} B)` : flags;
        g = { key, toServer, label, payload: tcp.payloadLength, seen: [] };
        groups.set(key, g);
      }
      g.seen.push(s);
      if (name !== 'client' && name !== 'director') servedBy.add(name);
    }
  }

  // Order the packets as the client saw them (one clock, one process); others by capture time.
  const sortTime = (g: Group): number => (g.seen.find((s) => s.point === 'client') ?? g.seen.reduce((m, s) => (s.timeUs < m.timeUs ? s : m))).timeUs;
  const sorted = [...groups.values()].sort((x, y) => sortTime(x) - sortTime(y));
  let cut = sorted.length;
  if (!ctx.all) {
    const firstResponse = sorted.findIndex((g) => !g.toServer && g.payload > 0);
    if (firstResponse >= 0) cut = firstResponse + 1;
  }
  const shown = sorted.slice(0, cut);

  const hopOf = (s: Seen): Hop => {
    if (s.point !== 'director') return s.point;
    if (s.frame.srcMac === directorMac) return 'director out';
    if (s.frame.dstMac === directorMac) return 'director in';
    return 'director (flooded)';
  };
  const hopRank = (hop: Hop, toServer: boolean): number => {
    const director = ['director in', 'director out', 'director (flooded)'];
    const d = director.indexOf(hop);
    if (hop === 'client') return toServer ? 0 : 9;
    if (d >= 0) return 2 + d;
    return toServer ? 8 : 1; // a real server
  };
  const macName = (m: string): string => ctx.macNames[m] ?? (m === 'ff:ff:ff:ff:ff:ff' ? 'broadcast' : `..${m.slice(-8)}`);
  const role = (ip: string): string => ctx.roles[ip] ?? ip;
  const addr = (ip: DecodedIp, side: 'src' | 'dst'): string => {
    const a = side === 'src' ? ip.src : ip.dst;
    const port = side === 'src' ? ip.srcPort : ip.dstPort;
    return port === undefined ? a : hostPort(a, port);
  };

  const rows: WalkRow[] = [];
  shown.forEach((g, i) => {
    const seen = [...g.seen].sort((x, y) => hopRank(hopOf(x), g.toServer) - hopRank(hopOf(y), g.toServer) || x.timeUs - y.timeUs);
    for (const s of seen) {
      const outer = s.ip;
      const row: WalkRow = {
        packet: i + 1,
        label: g.label,
        toServer: g.toServer,
        hop: hopOf(s),
        srcMac: s.frame.srcMac,
        dstMac: s.frame.dstMac,
        macText: `${macName(s.frame.srcMac)} → ${macName(s.frame.dstMac)}`,
        src: addr(outer, 'src'),
        dst: addr(outer, 'dst'),
        roles: `${role(outer.src)} → ${role(outer.dst)}`,
        timeUs: s.timeUs,
      };
      if (outer.inner) row.inner = { src: addr(outer.inner, 'src'), dst: addr(outer.inner, 'dst'), roles: `${role(outer.inner.src)} → ${role(outer.inner.dst)}` };
      rows.push(row);
    }
  });

  const result: WalkResult = {
    rows,
    client: { src: endpoint(syn.t, 'src'), dst: endpoint(syn.t, 'dst') },
    servedBy: [...servedBy].sort(),
    files: ctx.files,
    backend: ctx.backend,
    moreAfter: sorted.length - shown.length,
    macNames: ctx.macNames,
    text: '',
  };
  result.text = formatWalk(result, ctx.title, ctx.pcapDir);
  return result;
}

/** The walk as a table, one line per packet per hop, in the manner of the seed articles. */
export function formatWalk(w: WalkResult, title: string | undefined, pcapDir: string): string {
  const lines: string[] = [];
  lines.push(`packet walk${title ? ` (${title})` : ''}: one connection ${w.client.src} → ${w.client.dst}, served by ${w.servedBy.join(', ') || '?'}`);
  const macs = Object.entries(w.macNames)
    .filter(([, n]) => n !== 'dir-host')
    .sort(([, a], [, b]) => a.localeCompare(b))
    .map(([m, n]) => `${n} ${m}`);
  lines.push(`MACs: ${macs.join(', ')}`);
  lines.push(`pcap files (${w.backend}) in ${pcapDir}: ${Object.values(w.files).map((f) => path.basename(f)).join(' ')}`);
  lines.push('');
  const table: string[][] = [['#', 'packet', 'hop', 'MAC src → dst', 'src → dst', 'as in the articles']];
  let last = 0;
  for (const r of w.rows) {
    const first = r.packet !== last;
    last = r.packet;
    // The inner packet of a tunnel: in braces where IPv6 endpoints already use brackets ([fd00:1::2]:80),
    // in brackets (as the articles write it) for the roles.
    const addresses = r.inner ? `${r.src} → ${r.dst} {${r.inner.src} → ${r.inner.dst}}` : `${r.src} → ${r.dst}`;
    const roles = r.inner ? `${r.roles} [${r.inner.roles}]` : r.roles;
    table.push([first ? String(r.packet) : '', first ? r.label : '', r.hop, r.macText, addresses, roles]);
  }
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => [...row[c]].length)));
  for (const row of table) lines.push(row.map((cell, c) => (c === row.length - 1 ? cell : cell + ' '.repeat(widths[c] - [...cell].length))).join('  ').trimEnd());
  const tunnelled = w.rows.find((r) => r.inner);
  if (tunnelled) lines.push(`[...] is the packet carried inside ${tunnelled.src.includes(':') ? 'IPv6-in-IPv6' : 'IPIP'}, behind the outer addresses.`);
  if (w.moreAfter > 0) lines.push(`(${w.moreAfter} more packets of this connection, ACKs and the close, are in the pcap files)`);
  return lines.join('\n');
}
