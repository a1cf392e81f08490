/**
 * iperf3 inside the lab: start a server in a namespace, run bounded client tests from the client
 * namespace and read the receiver-side figures out of iperf3's JSON (`-J`).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { waitFor, type Background } from '../src/lab/processes.js';
import { type LabTopology } from '../src/lab/topology.js';

export const IPERF_PORT = 5201;

export interface Placement {
  /** CPU for iperf3's own affinity (`-A`), or null to leave it to the scheduler. */
  cpu: number | null;
}

export interface TcpResult {
  /** Receiver bits/s. */
  bps: number;
  retransmits: number;
}

export interface UdpResult {
  /** Datagrams the client sent. */
  sent: number;
  /** Datagrams the server received (iperf3's sequence-number accounting). */
  received: number;
  lostPercent: number;
  /** Received datagrams per second (server-side duration). */
  receivedPps: number;
  /** Sent datagrams per second (client-side duration). */
  offeredPps: number;
}

const affinity = (p: Placement): string[] => (p.cpu === null ? [] : ['-A', String(p.cpu)]);

/** Start `iperf3 -s` bound to `bind` in namespace `ns` and wait until it listens. */
export async function startIperfServer(lab: LabTopology, ns: string, bind: string, placement: Placement): Promise<Background> {
  const p = lab.spawnIn(ns, 'iperf3', ['-s', '-p', String(IPERF_PORT), '-B', bind, ...affinity(placement)]);
  await waitFor(
    `iperf3 server on ${bind}:${IPERF_PORT} in ${ns}`,
    async () => {
      if (p.child.exitCode !== null) return true;
      const r = await lab.exec(ns, 'ss', ['-Hltn', `src ${bind.includes(':') ? `[${bind}]` : bind}:${IPERF_PORT}`]);
      return r.stdout.trim() !== '';
    },
    10_000,
    100,
  );
  if (p.child.exitCode !== null) throw new Error(`iperf3 server on ${bind} exited: ${p.output()}`);
  return p;
}

interface IperfSum {
  seconds?: number;
  bits_per_second?: number;
  packets?: number;
  lost_packets?: number;
  lost_percent?: number;
  retransmits?: number;
}

interface IperfJson {
  error?: string;
  end?: { sum?: IperfSum; sum_sent?: IperfSum; sum_received?: IperfSum };
}

/** iperf3 clients running now: killed by PID on interrupt (the lab only knows its long-running processes). */
const running = new Set<ChildProcess>();

/** Kill the iperf3 clients still running (SIGKILL, by PID). */
export function killIperfClients(): void {
  for (const c of running) c.kill('SIGKILL');
  running.clear();
}

/** `iperf3 ARGS` in namespace `ns`, bounded by `timeoutMs`. */
function iperf3In(ns: string, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('ip', ['netns', 'exec', ns, 'iperf3', ...args], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      running.delete(child);
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err?.message ?? '') });
    });
    running.add(child);
  });
}

/** Run one iperf3 client test; retries briefly while the server is still busy with the previous test. */
async function client(lab: LabTopology, args: string[], seconds: number, placement: Placement): Promise<IperfJson> {
  let last = '';
  for (let attempt = 0; attempt < 4; attempt++) {
    const r = await iperf3In(lab.cli, ['-J', '-p', String(IPERF_PORT), ...affinity(placement), ...args], (seconds + 15) * 1000);
    let json: IperfJson | null = null;
    try {
      json = JSON.parse(r.stdout) as IperfJson;
    } catch {
      json = null;
    }
    if (r.code === 0 && json && !json.error && json.end) return json;
    last = json?.error ?? (r.stderr.trim() || `exit ${r.code}`);
    if (!/busy|connect|refused/i.test(last)) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`iperf3 ${args.join(' ')}: ${last}`);
}

/** `streams` TCP streams (iperf3 -P) for `seconds`: the receiver's rate, all streams together. */
export async function tcpThroughput(lab: LabTopology, target: string, seconds: number, placement: Placement, streams = 1): Promise<TcpResult> {
  const j = await client(lab, ['-c', target, '-t', String(seconds), ...(streams > 1 ? ['-P', String(streams)] : [])], seconds, placement);
  const rx = j.end?.sum_received;
  const tx = j.end?.sum_sent;
  if (rx?.bits_per_second === undefined) throw new Error('iperf3 TCP: no receiver figures in the JSON');
  return { bps: rx.bits_per_second, retransmits: tx?.retransmits ?? 0 };
}

/**
 * UDP with `payload`-byte datagrams for `seconds`, offered at `pps` datagrams/s (0 = as fast as
 * iperf3 can send, `-b 0`). `socketBuffer` (iperf3 -w, applied by client and server) sizes the
 * sockets' buffers (capped by net.core.rmem_max/wmem_max).
 */
export async function udpRate(
  lab: LabTopology,
  target: string,
  payload: number,
  pps: number,
  seconds: number,
  placement: Placement,
  socketBuffer: string | null = null,
): Promise<UdpResult> {
  const bitsPerSecond = pps <= 0 ? 0 : Math.max(1, Math.round(pps * payload * 8));
  const buffer = socketBuffer ? ['-w', socketBuffer] : [];
  const j = await client(lab, ['-c', target, '-u', '-l', String(payload), '-b', String(bitsPerSecond), '-t', String(seconds), ...buffer], seconds, placement);
  const rx = j.end?.sum_received;
  const tx = j.end?.sum_sent ?? j.end?.sum;
  if (rx?.packets === undefined || rx.lost_packets === undefined || !rx.seconds) throw new Error('iperf3 UDP: no receiver figures in the JSON');
  const received = Math.max(0, rx.packets - rx.lost_packets);
  const sent = tx?.packets ?? rx.packets;
  return {
    sent,
    received,
    lostPercent: rx.lost_percent ?? (rx.packets > 0 ? (100 * rx.lost_packets) / rx.packets : 0),
    receivedPps: received / rx.seconds,
    offeredPps: sent / (tx?.seconds || rx.seconds),
  };
}
