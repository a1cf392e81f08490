/**
 * `npm run bench`: tapvs NAT against the direct path, side by side, on the lab topology in one run.
 *
 *   direct     client 198.18.1.2 -> rs1's front address 198.18.1.11, on-link over the bridge
 *   tapvs NAT  client -> VIP 198.18.1.100:5201 -> tapvsd (TAP) -> rs1 198.18.2.11:5201, replies via the DIP
 *
 * Measures, `--reps` times (default 3) with direct and tapvs interleaved: one TCP stream (iperf3, 4 s),
 * 64-byte UDP at iperf3's maximum rate (3 s), and the highest offered 64-byte UDP rate with loss
 * <= 0.1 % (bisection, 4 steps x 2 s); plus tapvsd's CPU time per tapvs run, per-CPU load, where UDP
 * datagrams were lost, and how much other work ran on the machine meanwhile (runs disturbed by it are
 * repeated, within a time budget, and flagged). Prints median [min-max] and the ratio tapvs/direct.
 * A benchmark, not a test: it fails only when the lab cannot be built.
 *
 * Layout (as perf.md §3): iperf3 client and server on CPU 0, tapvsd on CPU 1; `--no-pin` leaves
 * placement to the scheduler. Everything lives in namespaces of this run (198.18.0.0/15 only), every
 * load is bounded by iperf3 -t, and the lab is torn down at the end, on failure and on Ctrl-C.
 *
 *   npm run bench [-- --reps N] [--no-pin] [--udp-buffer auto|default|BYTES]
 */
import fs from 'node:fs';
import os from 'node:os';
import { run, type Background } from '../src/lab/processes.js';
import { LAB_CLIENT, LAB_TAP, LAB_VIP, labRealServer, labUnavailableReason, LabTopology, namespacesWithPrefix } from '../src/lab/topology.js';
import { addDirectPath, DIRECT_ADDRESS } from './direct-path.js';
import { IPERF_PORT, killIperfClients, startIperfServer, tcpThroughput, udpRate, type Placement, type UdpResult } from './iperf.js';
import { dropsSince, formatDrops, readDrops, tapQueueLength, type Drops } from './drop-counters.js';
import { lossFreeRate } from './loss-free.js';
import { busyPercent, readCpuTimes } from './cpu-busy.js';
import { ForeignLoad } from './foreign-load.js';
import { cpuSeconds } from './process-cpu.js';
import { Samples } from './samples.js';
import { forwardedPackets } from './tapvs-counters.js';

const TCP_SECONDS = 4;
const UDP_MAX_SECONDS = 3;
const UDP_STEP_SECONDS = 2;
const UDP_STEPS = 4;
const UDP_PAYLOAD = 64;
const MAX_LOSS_PERCENT = 0.1;
/** Other work (see foreign-load.ts) using more CPUs than this during a run marks it as disturbed. */
const FOREIGN_LOAD_LIMIT = 0.15;
const RETRIES_WHEN_DISTURBED = 2;
/** Wall time that repeated (disturbed) runs may use in total (keeps the whole bench under ~3 min). */
const RETRY_BUDGET_MS = 50_000;

type PathName = 'direct' | 'tapvs';

const out = (s = ''): void => {
  process.stdout.write(s + '\n');
};

function option(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
}

/** iperf3 must be installed; install it with apt-get when it is not. */
async function ensureIperf3(): Promise<void> {
  if ((await run('sh', ['-c', 'command -v iperf3'])).code === 0) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  out('# iperf3 not found: apt-get install -y iperf3');
  let r = await run('apt-get', ['install', '-y', 'iperf3'], { env, timeoutMs: 300_000 });
  if (r.code !== 0) {
    out('# apt-get install failed; apt-get update, then apt-get install -y iperf3');
    await run('apt-get', ['update'], { env, timeoutMs: 300_000 });
    r = await run('apt-get', ['install', '-y', 'iperf3'], { env, timeoutMs: 300_000 });
  }
  if (r.code !== 0) throw new Error(`cannot install iperf3: ${r.stderr.trim()}`);
  out(`# installed: ${(await run('iperf3', ['--version'])).stdout.split('\n')[0]}`);
}

/**
 * Socket buffer for the UDP tests (iperf3 -w, on both ends). 'auto': 4 MiB, capped by
 * net.core.rmem_max/wmem_max (iperf3 fails when it cannot get what it asked for); 'default': the
 * kernel's default (~200 KB), with which the iperf3 server socket overflows first on either path when
 * it shares a core with the sender.
 */
function udpSocketBuffer(arg: string): string | null {
  if (arg === 'default') return null;
  if (arg !== 'auto') return arg;
  const sysctl = (name: string): number => Number(fs.readFileSync(`/proc/sys/net/core/${name}`, 'utf8').trim()) || 0;
  const bytes = Math.min(4 << 20, sysctl('rmem_max'), sysctl('wmem_max'));
  return bytes > 0 ? String(bytes) : null;
}

function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `nproc ${os.availableParallelism()}, ${cpu}, kernel ${os.release()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`;
}

/** Median busy percentage per CPU over repeated runs. */
class CpuSamples {
  private readonly perCpu: Samples[] = [];

  add(busy: number[]): void {
    busy.forEach((b, i) => (this.perCpu[i] ??= new Samples()).add(b));
  }

  format(): string {
    return this.perCpu.length ? this.perCpu.map((s) => s.median.toFixed(0)).join('/') : 'n/a';
  }
}

const cpuLabels = Array.from({ length: os.availableParallelism() }, (_, i) => i).join('/');

/** One row of the result table: repeated samples, or an already formatted cell. */
interface Row {
  metric: string;
  direct: Samples | string | null;
  tapvs: Samples | string;
  digits: number;
  /** Print the tapvs/direct ratio of the medians. */
  ratio: boolean;
}

function printTable(rows: Row[]): void {
  const cell = (v: Samples | string | null, digits: number): string => (v === null ? '-' : typeof v === 'string' ? v : v.format(digits));
  const cells = rows.map((r) => [
    r.metric,
    cell(r.direct, r.digits),
    cell(r.tapvs, r.digits),
    r.ratio && r.direct instanceof Samples && r.tapvs instanceof Samples && r.direct.count && r.tapvs.count && r.direct.median > 0
      ? (r.tapvs.median / r.direct.median).toFixed(2)
      : '-',
  ]);
  const head = ['metric', 'direct', 'tapvs NAT', 'ratio'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]): string => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('   ');
  out(line(head));
  out(widths.map((w) => '-'.repeat(w)).join('   '));
  for (const c of cells) out(line(c));
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('-h') || args.includes('--help')) {
    out('usage: npm run bench [-- --reps N] [--no-pin] [--udp-buffer auto|default|BYTES]');
    return 0;
  }
  const reps = Math.max(1, Math.min(10, Number(option(args, '--reps', '3')) || 3));
  const udpBuffer = udpSocketBuffer(option(args, '--udp-buffer', 'auto'));
  const pin = !args.includes('--no-pin') && os.availableParallelism() >= 2;
  const why = labUnavailableReason();
  if (why) {
    process.stderr.write(`bench: cannot build the lab: ${why} (the lab needs root, /dev/net/tun and iproute2)\n`);
    return 1;
  }
  await ensureIperf3();

  const started = Date.now();
  const lab = new LabTopology({ id: `tapvs-bench${process.pid}`, realServers: 1 });
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write('\nbench: interrupted, tearing down...\n');
    killIperfClients();
    lab.down().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const load: Placement = { cpu: pin ? 0 : null };
  const rs = lab.rs[0];
  const backend = labRealServer(0);
  const target: Record<PathName, string> = { direct: DIRECT_ADDRESS, tapvs: LAB_VIP };

  const tcp = { direct: new Samples(), tapvs: new Samples() };
  const udpMax = { direct: new Samples(), tapvs: new Samples() };
  const udpMaxLoss = { direct: new Samples(), tapvs: new Samples() };
  const lossAtSocket = { direct: new Samples(), tapvs: new Samples() };
  const lossAtTap = { direct: new Samples(), tapvs: new Samples() };
  const udpFree = { direct: new Samples(), tapvs: new Samples() };
  const generatorLimited = { direct: 0, tapvs: 0 };
  const cpuTcp = new Samples();
  const cpuUdpMax = new Samples();
  const cpuUdpFree = new Samples();
  const usPerPktTcp = new Samples();
  const usPerPktUdp = new Samples();
  const busyTcp = { direct: new CpuSamples(), tapvs: new CpuSamples() };
  const busyUdp = { direct: new CpuSamples(), tapvs: new CpuSamples() };
  const foreignLoad = { direct: new Samples(), tapvs: new Samples() };
  const disturbed = { direct: 0, tapvs: 0 };
  let retried = 0;
  let retryMs = 0;
  const tapvsdCpuDirect = new Samples();
  const failures: string[] = [];

  try {
    out(`== tapvs bench: NAT vs direct ==`);
    out(`# command: npm run bench${args.length ? ' -- ' + args.join(' ') : ''}   date: ${new Date().toISOString()}`);
    out(`# machine: ${machine()}`);
    out(`# direct:    ${LAB_CLIENT} -> ${DIRECT_ADDRESS}:${IPERF_PORT} (rs1 front address, on-link over the bridge)`);
    out(`# tapvs NAT: ${LAB_CLIENT} -> ${LAB_VIP}:${IPERF_PORT} -> tapvsd -> ${backend}:${IPERF_PORT} (-m, replies via the DIP)`);
    out(`# layout: ${pin ? 'iperf3 client+server on CPU 0, tapvsd on CPU 1 (as perf.md §3)' : 'unpinned'}; ${reps} repetitions, direct and tapvs interleaved`);
    out(`# UDP: iperf3 -u -l ${UDP_PAYLOAD}, socket buffers ${udpBuffer ? `-w ${udpBuffer}` : 'kernel default'}; loss-free = highest offered rate with loss <= ${MAX_LOSS_PERCENT} % (${UDP_STEPS} bisection steps x ${UDP_STEP_SECONDS} s)`);
    const idle = new ForeignLoad();
    await new Promise((r) => setTimeout(r, 1000));
    const idleUse = idle.measure();
    out(`# other work on this machine before start: ${idleUse.seconds.toFixed(2)} CPUs over 1 s${idleUse.top.length ? ` (${idleUse.top.join(', ')})` : ''}`);
    out();
    await lab.up();
    await addDirectPath(rs);
    const daemon: Background = await lab.startDirector();
    if (pin) {
      const r = await run('taskset', ['-a', '-p', '-c', '1', String(daemon.pid)]);
      if (r.code !== 0) out(`# warning: cannot pin tapvsd: ${r.stderr.trim()}`);
    }
    out(`# ${LAB_TAP} txqueuelen ${(await tapQueueLength(lab)) ?? '?'} (frames queued for tapvsd before the kernel drops)`);
    for (const c of [
      ['-A', '-t', `${LAB_VIP}:${IPERF_PORT}`, '-s', 'rr'],
      ['-a', '-t', `${LAB_VIP}:${IPERF_PORT}`, '-r', `${backend}:${IPERF_PORT}`, '-m'],
      ['-A', '-u', `${LAB_VIP}:${IPERF_PORT}`, '-s', 'rr'],
      ['-a', '-u', `${LAB_VIP}:${IPERF_PORT}`, '-r', `${backend}:${IPERF_PORT}`, '-m'],
    ]) {
      out(`# tapvs ${c.join(' ')}`);
      const r = await lab.tapvs(c);
      if (r.code !== 0) throw new Error(`tapvs ${c.join(' ')} failed: ${r.stderr.trim()}`);
    }
    // Both servers on port 5201, each bound to its own address so that UDP replies leave from the
    // address the client talked to (an unbound UDP server would answer from the on-link front address).
    const servers: Record<PathName, Background> = {
      direct: await startIperfServer(lab, rs, DIRECT_ADDRESS, load),
      tapvs: await startIperfServer(lab, rs, backend, load),
    };
    const serverBind: Record<PathName, string> = { direct: DIRECT_ADDRESS, tapvs: backend };

    /** Run one measurement; a failed run is reported and skipped (its server restarted if it died). */
    const attempt = async <T>(label: string, path: PathName, fn: () => Promise<T>): Promise<T | null> => {
      try {
        return await fn();
      } catch (e) {
        if (interrupted) return new Promise<never>(() => undefined); // the teardown exits the process
        const msg = `${label} ${path}: ${(e as Error).message}`;
        failures.push(msg);
        out(`  ! ${msg}`);
        if (servers[path].child.exitCode !== null || servers[path].child.signalCode !== null) {
          servers[path] = await startIperfServer(lab, rs, serverBind[path], load);
        }
        return null;
      }
    };

    /**
     * Run `fn` and note how busy each CPU was, how much other work ran meanwhile, tapvsd's CPU seconds
     * and the packets it forwarded (both ~0 on the direct path).
     */
    const measured = async <T>(fn: () => Promise<T>): Promise<{ value: T; cpu: number; packets: number; busy: number[]; foreign: number; foreignTop: string[] }> => {
      const pkts0 = await forwardedPackets(lab);
      const cpu0 = cpuSeconds(daemon.pid);
      const times0 = readCpuTimes();
      const foreign = new ForeignLoad();
      const t0 = Date.now();
      const value = await fn();
      const seconds = (Date.now() - t0) / 1000;
      // Runs that did not send anything (a search that needed no step) have no meaningful load figures.
      const foreignUse = foreign.measure();
      const foreignCores = seconds >= 0.5 ? foreignUse.seconds / seconds : NaN;
      const busy = seconds >= 0.5 ? busyPercent(times0, readCpuTimes()) : [];
      const cpu = cpuSeconds(daemon.pid) - cpu0;
      const packets = (await forwardedPackets(lab)) - pkts0;
      return { value, cpu, packets, busy, foreign: foreignCores, foreignTop: foreignUse.top };
    };
    const foreignText = (m: { foreign: number; foreignTop: string[] }): string =>
      `${m.foreign.toFixed(2)} CPUs busy with other work (${m.foreignTop.length ? `biggest other processes: ${m.foreignTop.join(', ')}` : 'kernel or short-lived processes'})`;
    const busyText = (m: { busy: number[]; foreign: number; foreignTop: string[] }): string =>
      m.busy.length === 0
        ? ''
        : `; CPU busy ${m.busy.map((b, i) => `${i}:${b.toFixed(0)}%`).join(' ')}${m.foreign > FOREIGN_LOAD_LIMIT ? ` !! ${foreignText(m)}` : ''}`;

    /**
     * `measured`, repeated (at most RETRIES_WHEN_DISTURBED times, and only within the time budget)
     * while other processes on this shared machine used more than FOREIGN_LOAD_LIMIT CPUs meanwhile.
     */
    const measuredUndisturbed = async <T>(label: string, path: PathName, fn: () => Promise<T>) => {
      for (let i = 0; ; i++) {
        const t0 = Date.now();
        const m = await attempt(label, path, () => measured(fn));
        if (!m) return null;
        if (i > 0) retryMs += Date.now() - t0;
        const isDisturbed = m.foreign > FOREIGN_LOAD_LIMIT;
        if (!isDisturbed || i >= RETRIES_WHEN_DISTURBED || retryMs > RETRY_BUDGET_MS) {
          if (Number.isFinite(m.foreign)) foreignLoad[path].add(m.foreign);
          if (isDisturbed) disturbed[path]++;
          return m;
        }
        retried++;
        out(`  (${label} ${path} again: ${foreignText(m)})`);
      }
    };

    // Warm-up: ARP caches, tapvs connection path, page cache for iperf3.
    out('# warm-up: 1 s TCP on each path');
    for (const p of ['direct', 'tapvs'] as const) await attempt('warm-up', p, () => tcpThroughput(lab, target[p], 1, load));
    out();

    const udpMaxRuns: Record<PathName, UdpResult | null> = { direct: null, tapvs: null };
    for (let rep = 0; rep < reps; rep++) {
      const order: PathName[] = rep % 2 === 0 ? ['direct', 'tapvs'] : ['tapvs', 'direct'];
      out(`# repetition ${rep + 1}/${reps} (${order.join(', ')})`);
      for (const p of order) {
        const m = await measuredUndisturbed('TCP', p, () => tcpThroughput(lab, target[p], TCP_SECONDS, load));
        if (!m) continue;
        tcp[p].add(m.value.bps / 1e9);
        busyTcp[p].add(m.busy);
        let extra = `, ${m.value.retransmits} retransmits${busyText(m)}`;
        if (p === 'direct') tapvsdCpuDirect.add(m.cpu);
        if (p === 'tapvs') {
          cpuTcp.add(m.cpu);
          if (m.packets > 0) usPerPktTcp.add((m.cpu * 1e6) / m.packets);
          extra += `, tapvsd CPU ${m.cpu.toFixed(2)} s for ${m.packets} packets`;
        }
        out(`  TCP ${p.padEnd(6)} ${(m.value.bps / 1e9).toFixed(2)} Gb/s${extra}`);
      }
      for (const p of order) {
        let drops0 = await readDrops(lab, rs);
        const m = await measuredUndisturbed('UDP max', p, async () => {
          drops0 = await readDrops(lab, rs);
          return udpRate(lab, target[p], UDP_PAYLOAD, 0, UDP_MAX_SECONDS, load, udpBuffer);
        });
        udpMaxRuns[p] = m?.value ?? null;
        if (!m) continue;
        const drops = dropsSince(drops0, await readDrops(lab, rs));
        udpMax[p].add(m.value.receivedPps / 1e3);
        udpMaxLoss[p].add(m.value.lostPercent);
        if (m.value.sent > 0) {
          lossAtSocket[p].add((100 * drops.socket) / m.value.sent);
          lossAtTap[p].add((100 * drops.tap) / m.value.sent);
        }
        busyUdp[p].add(m.busy);
        let extra = `; ${formatDrops(drops)}${busyText(m)}`;
        if (p === 'direct') tapvsdCpuDirect.add(m.cpu);
        if (p === 'tapvs') {
          cpuUdpMax.add(m.cpu);
          if (m.packets > 0) usPerPktUdp.add((m.cpu * 1e6) / m.packets);
          extra += `; tapvsd CPU ${m.cpu.toFixed(2)} s for ${m.packets} packets`;
        }
        out(
          `  UDP ${p.padEnd(6)} max: offered ${(m.value.offeredPps / 1e3).toFixed(1)} kpps, received ${(m.value.receivedPps / 1e3).toFixed(1)} kpps, loss ${m.value.lostPercent.toFixed(2)} %${extra}`,
        );
      }
      for (const p of order) {
        const max = udpMaxRuns[p];
        if (!max) continue;
        const stepDrops: Drops[] = [];
        const step = async (pps: number): Promise<UdpResult> => {
          const d0 = await readDrops(lab, rs);
          const r = await udpRate(lab, target[p], UDP_PAYLOAD, pps, UDP_STEP_SECONDS, load, udpBuffer);
          stepDrops.push(dropsSince(d0, await readDrops(lab, rs)));
          return r;
        };
        const m = await measuredUndisturbed('UDP loss-free', p, () => {
          stepDrops.length = 0;
          // The search starts from the maximum *offered* rate: at -b 0 the sender can crowd out the
          // receiver on a shared core, so the loss-free rate may exceed the rate received at -b 0.
          return lossFreeRate({ ...max, receivedPps: max.offeredPps }, step, UDP_STEPS, MAX_LOSS_PERCENT);
        });
        if (!m) continue;
        udpFree[p].add(m.value.pps / 1e3);
        if (m.value.generatorLimited) generatorLimited[p]++;
        if (p === 'tapvs') cpuUdpFree.add(m.cpu);
        else tapvsdCpuDirect.add(m.cpu);
        const steps = m.value.steps
          .map((s, i) => `${(s.offeredPps / 1e3).toFixed(1)}k:${s.lostPercent.toFixed(2)}%${s.lostPercent > MAX_LOSS_PERCENT && stepDrops[i] ? `[sock ${stepDrops[i].socket}, tap ${stepDrops[i].tap}]` : ''}`)
          .join(' ');
        out(
          `  UDP ${p.padEnd(6)} loss-free: ${(m.value.pps / 1e3).toFixed(1)} kpps${m.value.generatorLimited ? ' (no loss at max offered rate: generator-limited)' : ` (offered:loss[where] ${steps})`}${busyText(m)}`,
        );
      }
    }

    out();
    out(`== results: median [min-max] of ${reps} runs; ratio = tapvs median / direct median ==`);
    printTable([
      { metric: `TCP 1 stream, ${TCP_SECONDS} s (Gb/s)`, direct: tcp.direct, tapvs: tcp.tapvs, digits: 2, ratio: true },
      { metric: `UDP ${UDP_PAYLOAD} B max, received (kpps)`, direct: udpMax.direct, tapvs: udpMax.tapvs, digits: 1, ratio: true },
      { metric: `UDP ${UDP_PAYLOAD} B max, loss (%)`, direct: udpMaxLoss.direct, tapvs: udpMaxLoss.tapvs, digits: 1, ratio: false },
      { metric: `  of which at server socket (%)`, direct: lossAtSocket.direct, tapvs: lossAtSocket.tapvs, digits: 1, ratio: false },
      { metric: `  of which at TAP queue (%)`, direct: null, tapvs: lossAtTap.tapvs, digits: 1, ratio: false },
      { metric: `UDP ${UDP_PAYLOAD} B loss <= ${MAX_LOSS_PERCENT} % (kpps)`, direct: udpFree.direct, tapvs: udpFree.tapvs, digits: 1, ratio: true },
      { metric: `CPU ${cpuLabels} busy, TCP run (%)`, direct: busyTcp.direct.format(), tapvs: busyTcp.tapvs.format(), digits: 0, ratio: false },
      { metric: `CPU ${cpuLabels} busy, UDP max run (%)`, direct: busyUdp.direct.format(), tapvs: busyUdp.tapvs.format(), digits: 0, ratio: false },
      { metric: `other work on the machine during runs (CPUs)`, direct: foreignLoad.direct, tapvs: foreignLoad.tapvs, digits: 2, ratio: false },
      { metric: `tapvsd CPU per TCP run (s)`, direct: null, tapvs: cpuTcp, digits: 2, ratio: false },
      { metric: `tapvsd CPU per UDP max run (s)`, direct: null, tapvs: cpuUdpMax, digits: 2, ratio: false },
      { metric: `tapvsd CPU per loss-free search (s)`, direct: null, tapvs: cpuUdpFree, digits: 2, ratio: false },
      { metric: `tapvsd CPU per packet, TCP (us)`, direct: null, tapvs: usPerPktTcp, digits: 1, ratio: false },
      { metric: `tapvsd CPU per packet, UDP max (us)`, direct: null, tapvs: usPerPktUdp, digits: 1, ratio: false },
    ]);
    out();
    if (tapvsdCpuDirect.count) out(`note: tapvsd used ${tapvsdCpuDirect.max.toFixed(2)} s CPU at most during a direct run (should be ~0: direct traffic does not reach the TAP)`);
    out(
      `note: UDP socket buffers ${udpBuffer ? `iperf3 -w ${udpBuffer} on both ends` : 'kernel default'}; loss "at server socket" = UDP RcvbufErrors in rs1, "at TAP queue" = TX drops of ${LAB_TAP} (tapvsd did not read fast enough).`,
    );
    if (retried) out(`note: ${retried} runs were repeated because other work used > ${FOREIGN_LOAD_LIMIT} CPUs meanwhile (at most ${RETRIES_WHEN_DISTURBED} repeats each, ${RETRY_BUDGET_MS / 1000} s in all).`);
    for (const p of ['direct', 'tapvs'] as const) {
      if (disturbed[p]) out(`WARNING: ${disturbed[p]} ${p} runs overlapped other work using > ${FOREIGN_LOAD_LIMIT} CPUs (shared machine: other processes, other namespaces' traffic): their figures are disturbed (marked !! above).`);
    }
    for (const p of ['direct', 'tapvs'] as const) {
      if (generatorLimited[p]) out(`note: ${p} loss-free is generator-limited in ${generatorLimited[p]} of ${udpFree[p].count} runs (no loss at iperf3's max rate)`);
    }
    out(
      `note: tapvsd CPU = utime+stime of the daemon (all threads) during the run (a TCP run lasts ${TCP_SECONDS} s, a UDP max run ${UDP_MAX_SECONDS} s, a search ${UDP_STEPS} x ${UDP_STEP_SECONDS} s); per packet = that / (InPkts+OutPkts of tapvs --stats).`,
    );
    out('note: for orientation, the perf.md prototype TAP forwarders reached ~1 Gb/s TCP and ~95 kpps loss-free 64 B UDP without offloads');
    out('      (~8 Gb/s TCP with IFF_VNET_HDR/TSO); the direct path there: 8.35 Gb/s TCP, iperf3 UDP 64 B -b 0 57 kpps delivered.');
    out(`# elapsed ${((Date.now() - started) / 1000).toFixed(0)} s`);

    const suspicious = (tcp.tapvs.count > 0 && tcp.tapvs.median < 0.1) || (udpFree.tapvs.count > 0 && udpFree.tapvs.median < 10);
    if (failures.length || suspicious) {
      out();
      out(`# ${failures.length} failed runs${suspicious ? '; tapvs figures look suspiciously low' : ''}. tapvs -L -n --stats:`);
      process.stdout.write((await lab.tapvs(['-L', '-n', '--stats'])).stdout);
      out('# tapvsd log (tail):');
      out(lab.daemonOutput.split('\n').slice(-30).join('\n'));
    }
    return 0;
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    const log = lab.daemonOutput;
    if (log) process.stderr.write(`tapvsd log:\n${log.split('\n').slice(-50).join('\n')}\n`);
    return 1;
  } finally {
    if (!interrupted) {
      await lab.down();
      const left = await namespacesWithPrefix(lab.id);
      if (left.length) process.stderr.write(`bench: namespaces left behind: ${left.join(' ')}\n`);
    }
  }
}

main().then((code) => process.exit(code));
