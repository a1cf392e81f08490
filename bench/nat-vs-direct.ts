/**
 * `npm run bench`: tapvs NAT against the direct path, nftables DNAT and HAProxy, side by side, on the
 * lab topology in one run (see kernel-director.ts for the addressing):
 *
 *   direct     client 198.18.1.2 -> rs1's front address 198.18.1.11, on-link over the bridge
 *   nft        client -> 198.18.1.101 (director kernel, `dnat to numgen inc mod 2 map`, conntrack) -> rs 198.18.2.2x
 *   haproxy    client -> 198.18.1.102 (HAProxy mode tcp, 1 thread, director namespace) -> rs 198.18.2.1x
 *   tapvs      client -> VIP 198.18.1.100 -> tapvsd (TAP) -> rs 198.18.2.1x (-m), replies via the DIP
 *   fullnat    client -> VIP 198.18.1.103 -> tapvsd (TAP) -> LIP 198.18.2.200 -> rs 198.18.2.1x (--fullnat),
 *              replies to the LIP (the same tapvsd as the tapvs path)
 *   dr         client -> VIP 198.18.1.104 -> tapvsd (TAP, MAC rewrite) -> rs (-g, VIP on lo), replies
 *              straight to the client over the bridge (direct-routing-path.ts)
 *   nat6       tapvs NAT over IPv6: client fd00:1::2 -> [fd00:1::100] -> tapvsd -> rs fd00:2::1x (the lab
 *              built with IPv6 beside IPv4; the same tapvsd). No request/response: sockperf 3.7 has no IPv6.
 *
 * Tests (`--tests`, comma separated; default all): tcp1, tcp4 (iperf3, 1 and 4 streams), udp (64-byte
 * UDP at iperf3's maximum rate, and the highest offered rate with loss <= 0.1 % by bisection), cps
 * (wrk -t1 -c32 -H 'Connection: close' against nginx on both real servers), rr_tcp, rr_udp (sockperf
 * ping-pong, 64 B, full round trip p50/p99), idle (tapvsd's and haproxy's CPU over 5 s without
 * traffic, after the load). Each repetition runs every test on every path back to back, the order of
 * the paths rotated between repetitions; runs overlapping other work on the machine are repeated
 * within a time budget and flagged. Prints median [min-max] and the ratios tapvs/nft, tapvs/haproxy,
 * tapvs/direct. A benchmark, not a test: it fails only when the lab cannot be built.
 *
 * Layout (as perf.md §2/§3): load generators and servers on CPU 0, tapvsd and haproxy on CPU 1 (the
 * kernel paths run in softirq on the sender's CPU); `--no-pin` leaves placement to the scheduler.
 * Everything lives in namespaces of this run (198.18.0.0/15 only), every load is bounded in time, and
 * the lab (namespaces, and every server process by PID) is torn down at the end, on failure and on Ctrl-C.
 *
 *   npm run bench [-- --quick] [--reps N] [--tests tcp1,tcp4,udp,cps,rr_tcp,rr_udp,idle]
 *                 [--paths direct,nft,haproxy,tapvs,fullnat,dr,nat6] [--no-pin] [--udp-buffer auto|default|BYTES]
 *
 * The default paths are the first six; nat6 runs when asked for.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run, type Background } from '../src/lab/processes.js';
import { LAB_LIP } from '../src/lab/modes.js';
import { LAB_CLIENT, LAB_TAP, LAB_VIP, LAB_VIP6, labRealServer, labRealServer6, labUnavailableReason, LabTopology, namespacesWithPrefix } from '../src/lab/topology.js';
import { addDirectPath, DIRECT_ADDRESS } from './direct-path.js';
import { addDirectRoutingPath, DR_VIP } from './direct-routing-path.js';
import { IPERF_PORT, killIperfClients, startIperfServer, tcpThroughput, udpRate, type Placement, type UdpResult } from './iperf.js';
import { dropsSince, formatDrops, readDrops, tapQueueLength } from './drop-counters.js';
import { lossFreeRate } from './loss-free.js';
import { busyPercent, readCpuTimes } from './cpu-busy.js';
import { ForeignLoad } from './foreign-load.js';
import { cpuSeconds } from './process-cpu.js';
import { Samples } from './samples.js';
import { HAPROXY_VIP, NFT_VIP, nftBackend, nftDnatCount, setupKernelDirector } from './kernel-director.js';
import { startHaproxy } from './haproxy.js';
import { HTTP_PORT, startNginx } from './nginx.js';
import { shortConnections } from './wrk.js';
import { requestResponse, SOCKPERF_PORT, startSockperfServers } from './sockperf.js';
import { ensureTools } from './tools.js';
import { formatTable, type Cell, type TableRow } from './table.js';

const TCP_SECONDS = 3;
const UDP_MAX_SECONDS = 2;
const UDP_STEP_SECONDS = 2;
const UDP_STEPS = 3;
const UDP_PAYLOAD = 64;
const MAX_LOSS_PERCENT = 0.1;
const CPS_SECONDS = 4;
const RR_SECONDS = 2;
const IDLE_SECONDS = 5;
/** Other work (see foreign-load.ts) using more CPUs than this during a run marks it as disturbed. */
const FOREIGN_LOAD_LIMIT = 0.15;
const RETRIES_WHEN_DISTURBED = 1;
/** Wall time that repeated (disturbed) runs may use in total. */
const RETRY_BUDGET_MS = 20_000;

const PATHS = ['direct', 'nft', 'haproxy', 'tapvs', 'fullnat', 'dr', 'nat6'] as const;
/** What runs without --paths. */
const DEFAULT_PATHS = PATHS.filter((p) => p !== 'nat6');
/** The tapvs FULLNAT path: its own VIP, the same real servers, one local address (seed 004's setup). */
const FULLNAT_VIP = '198.18.1.103';
type PathName = (typeof PATHS)[number];
const TESTS = ['tcp1', 'tcp4', 'udp', 'cps', 'rr_tcp', 'rr_udp', 'idle'] as const;
type TestName = (typeof TESTS)[number];
/** Tools each test needs (on top of nft/haproxy for their paths). */
const TEST_TOOLS: Record<TestName, string[]> = {
  tcp1: ['iperf3'],
  tcp4: ['iperf3'],
  udp: ['iperf3'],
  cps: ['wrk', 'nginx'],
  rr_tcp: ['sockperf'],
  rr_udp: ['sockperf'],
  idle: [],
};
/** HAProxy cannot carry UDP; the IPv6 path has no request/response test (sockperf 3.7 has no IPv6). */
const supports = (p: PathName, t: TestName): boolean => !(p === 'haproxy' && (t === 'udp' || t === 'rr_udp')) && !(p === 'nat6' && (t === 'rr_tcp' || t === 'rr_udp'));

const TARGET: Record<PathName, string> = { direct: DIRECT_ADDRESS, nft: NFT_VIP, haproxy: HAPROXY_VIP, tapvs: LAB_VIP, fullnat: FULLNAT_VIP, dr: DR_VIP, nat6: LAB_VIP6 };
/** A path's target in a URL (IPv6 in brackets). */
const urlHost = (p: PathName): string => (TARGET[p].includes(':') ? `[${TARGET[p]}]` : TARGET[p]);
/** Where rs1's servers for each path are bound (HAProxy connects to the tapvs backend address). */
const SERVER_BIND: Record<PathName, string> = { direct: DIRECT_ADDRESS, nft: nftBackend(0), haproxy: labRealServer(0), tapvs: labRealServer(0), fullnat: labRealServer(0), dr: DR_VIP, nat6: labRealServer6(0) };

const out = (s = ''): void => {
  process.stdout.write(s + '\n');
};

function option(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
}

function listOption<T extends string>(args: string[], name: string, all: readonly T[], dflt: readonly T[] = all): T[] {
  const v = option(args, name, '');
  if (!v) return [...dflt];
  const picked = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = picked.filter((s) => !all.includes(s as T));
  if (bad.length) throw new Error(`${name}: unknown ${bad.join(', ')} (choose from ${all.join(',')})`);
  return all.filter((s) => picked.includes(s));
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

/** Samples per metric and path. */
class Results {
  private readonly m = new Map<string, Map<PathName, Samples>>();
  readonly busy = new Map<string, Map<PathName, CpuSamples>>();

  get(metric: string, p: PathName): Samples {
    let byPath = this.m.get(metric);
    if (!byPath) this.m.set(metric, (byPath = new Map()));
    let s = byPath.get(p);
    if (!s) byPath.set(p, (s = new Samples()));
    return s;
  }

  add(metric: string, p: PathName, v: number): void {
    this.get(metric, p).add(v);
  }

  addBusy(test: string, p: PathName, busy: number[]): void {
    let byPath = this.busy.get(test);
    if (!byPath) this.busy.set(test, (byPath = new Map()));
    let s = byPath.get(p);
    if (!s) byPath.set(p, (s = new CpuSamples()));
    s.add(busy);
  }
}

interface Measured<T> {
  value: T;
  /** CPU seconds of the path's balancer process (NaN when it has none). */
  cpu: number;
  busy: number[];
  foreign: number;
  foreignTop: string[];
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('-h') || args.includes('--help')) {
    out('usage: npm run bench [-- --quick] [--reps N] [--tests tcp1,tcp4,udp,cps,rr_tcp,rr_udp,idle] [--paths direct,nft,haproxy,tapvs,fullnat,dr] [--no-pin] [--udp-buffer auto|default|BYTES] [--tapvsd "OPTIONS"]');
    return 0;
  }
  const quick = args.includes('--quick');
  const reps = Math.max(1, Math.min(10, Number(option(args, '--reps', quick ? '1' : '3')) || 3));
  const udpBuffer = udpSocketBuffer(option(args, '--udp-buffer', 'auto'));
  const pin = !args.includes('--no-pin') && os.availableParallelism() >= 2;
  // Extra tapvsd options for this run, e.g. --tapvsd "--busy-poll-us 200".
  const tapvsdArgs = option(args, '--tapvsd', '').split(/\s+/).filter((a) => a !== '');
  let tests: TestName[];
  let paths: PathName[];
  try {
    tests = listOption(args, '--tests', TESTS);
    paths = listOption(args, '--paths', PATHS, DEFAULT_PATHS);
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return 2;
  }
  const why = labUnavailableReason();
  if (why) {
    process.stderr.write(`bench: cannot build the lab: ${why} (the lab needs root, /dev/net/tun and iproute2)\n`);
    return 1;
  }
  const started = Date.now();
  out(`== tapvs bench: direct | nftables DNAT | HAProxy mode tcp | tapvs NAT | tapvs FULLNAT | tapvs DR ==`);
  out(`# command: npm run bench${args.length ? ' -- ' + args.join(' ') : ''}   date: ${new Date().toISOString()}`);
  out(`# machine: ${machine()}`);

  const needed = new Set<string>(tests.flatMap((t) => TEST_TOOLS[t]));
  if (paths.includes('nft')) needed.add('nft');
  if (paths.includes('haproxy')) needed.add('haproxy');
  const missing = await ensureTools([...needed], out);
  if (missing.includes('nft')) paths = paths.filter((p) => p !== 'nft');
  if (missing.includes('haproxy')) paths = paths.filter((p) => p !== 'haproxy');
  tests = tests.filter((t) => TEST_TOOLS[t].every((c) => !missing.includes(c)));
  if (missing.length) out(`# skipped for missing tools (${missing.join(', ')}): tests now ${tests.join(',')}, paths ${paths.join(',')}`);

  const lab = new LabTopology({ id: `tapvs-bench${process.pid}`, realServers: 2, ipv6: paths.includes('nat6') });
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapvs-bench-'));
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write('\nbench: interrupted, tearing down...\n');
    killIperfClients();
    lab.down().then(() => {
      fs.rmSync(workDir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const load: Placement = { cpu: pin ? 0 : null };
  const balancerCpu = pin ? 1 : null;
  const rs1 = lab.rs[0];
  const results = new Results();
  const generatorLimited: Record<PathName, number> = { direct: 0, nft: 0, haproxy: 0, tapvs: 0, fullnat: 0, dr: 0, nat6: 0 };
  const disturbed: Record<PathName, number> = { direct: 0, nft: 0, haproxy: 0, tapvs: 0, fullnat: 0, dr: 0, nat6: 0 };
  const cpsErrors: Record<PathName, number> = { direct: 0, nft: 0, haproxy: 0, tapvs: 0, fullnat: 0, dr: 0, nat6: 0 };
  const failures: string[] = [];
  let retried = 0;
  let retryMs = 0;
  let idleCells: Partial<Record<PathName, Cell>> = {};

  try {
    out(`# paths: direct ${LAB_CLIENT} -> ${DIRECT_ADDRESS} (rs1 front, on-link) | nft ${NFT_VIP} -> ${nftBackend(0)}/${nftBackend(1)} | haproxy ${HAPROXY_VIP} -> ${labRealServer(0)}/${labRealServer(1)} | tapvs ${LAB_VIP} -> ${labRealServer(0)}/${labRealServer(1)} | fullnat ${FULLNAT_VIP} -> ${LAB_LIP} -> ${labRealServer(0)}/${labRealServer(1)} | dr ${DR_VIP} -> ${labRealServer(0)}/${labRealServer(1)} (VIP on lo)`);
    out(`#   HTTP :${HTTP_PORT} round robin over rs1+rs2 on the balancers (direct: rs1 only); iperf3 :${IPERF_PORT} and sockperf :${SOCKPERF_PORT} to rs1 only`);
    out(`# layout: ${pin ? 'load generators + servers on CPU 0, tapvsd and haproxy on CPU 1 (kernel paths: softirq on the sender CPU)' : 'unpinned'}; ${reps} repetition(s), paths rotated`);
    out(`# tests: ${tests.join(',')}; paths: ${paths.join(',')}`);
    const idle = new ForeignLoad();
    await new Promise((r) => setTimeout(r, 1000));
    const idleUse = idle.measure();
    out(`# other work on this machine before start: ${idleUse.seconds.toFixed(2)} CPUs over 1 s${idleUse.top.length ? ` (${idleUse.top.join(', ')})` : ''}`);
    out();

    // --- topology and balancers ---
    await lab.up();
    await addDirectPath(rs1);
    await setupKernelDirector(lab, [HTTP_PORT]);
    const daemon: Background = await lab.startDirector(tapvsdArgs);
    if (tapvsdArgs.length) out(`# tapvsd options: ${tapvsdArgs.join(' ')}`);
    if (pin) {
      const r = await run('taskset', ['-a', '-p', '-c', '1', String(daemon.pid)]);
      if (r.code !== 0) out(`# warning: cannot pin tapvsd: ${r.stderr.trim()}`);
    }
    out(`# ${LAB_TAP} txqueuelen ${(await tapQueueLength(lab)) ?? '?'}`);
    const hp = (a: string, port: number): string => (a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`);
    const svc = (proto: '-t' | '-u', port: number, servers: number, vip = LAB_VIP, forward = '-m'): string[][] => [
      ['-A', proto, hp(vip, port), '-s', 'rr'],
      ...Array.from({ length: servers }, (_, i) => ['-a', proto, hp(vip, port), '-r', hp(vip.includes(':') ? labRealServer6(i) : labRealServer(i), port), forward]),
      ...(forward === '--fullnat' ? [['--add-laddr', proto, hp(vip, port), '-z', LAB_LIP]] : []),
    ];
    const services = (vip: string, forward: string): string[][] => [
      ...svc('-t', IPERF_PORT, 1, vip, forward),
      ...svc('-u', IPERF_PORT, 1, vip, forward),
      ...svc('-t', HTTP_PORT, lab.rs.length, vip, forward),
      ...svc('-t', SOCKPERF_PORT, 1, vip, forward),
      ...svc('-u', SOCKPERF_PORT, 1, vip, forward),
    ];
    if (paths.includes('dr')) await addDirectRoutingPath(lab);
    for (const c of [
      ...services(LAB_VIP, '-m'),
      ...(paths.includes('fullnat') ? services(FULLNAT_VIP, '--fullnat') : []),
      ...(paths.includes('dr') ? services(DR_VIP, '-g') : []),
      ...(paths.includes('nat6') ? services(LAB_VIP6, '-m') : []),
    ]) {
      const r = await lab.tapvs(c);
      if (r.code !== 0) throw new Error(`tapvs ${c.join(' ')} failed: ${r.stderr.trim()}`);
    }
    out(`# tapvs: TCP ${IPERF_PORT}, UDP ${IPERF_PORT}, TCP ${SOCKPERF_PORT}, UDP ${SOCKPERF_PORT} -> rs1; TCP ${HTTP_PORT} rr -> rs1, rs2; all -m${paths.includes('fullnat') ? `; the same at ${FULLNAT_VIP} --fullnat from ${LAB_LIP}` : ''}${paths.includes('dr') ? `; the same at ${DR_VIP} -g` : ''}`);
    const haproxy: Background | null = paths.includes('haproxy')
      ? await startHaproxy(
          lab,
          workDir,
          [
            { port: IPERF_PORT, roundRobin: false },
            { port: HTTP_PORT, roundRobin: true },
            { port: SOCKPERF_PORT, roundRobin: false },
          ],
          balancerCpu,
        )
      : null;
    const balancerPid = (p: PathName): number | null => (p === 'tapvs' || p === 'fullnat' || p === 'dr' || p === 'nat6' ? daemon.pid : p === 'haproxy' ? (haproxy?.pid ?? null) : null);

    // --- servers ---
    const binds = [...new Set(paths.map((p) => SERVER_BIND[p]))];
    const iperfServers = new Map<string, Background>();
    if (tests.some((t) => TEST_TOOLS[t].includes('iperf3'))) for (const b of binds) iperfServers.set(b, await startIperfServer(lab, rs1, b, load));
    if (tests.includes('cps')) for (const ns of lab.rs) await startNginx(lab, ns, workDir, load.cpu);
    if (tests.includes('rr_tcp') || tests.includes('rr_udp')) for (const b of binds) if (!b.includes(':')) await startSockperfServers(lab, rs1, b, load.cpu);

    /** Run one measurement; a failed run is reported and skipped (its iperf3 server restarted if it died). */
    const attempt = async <T>(label: string, p: PathName, fn: () => Promise<T>): Promise<T | null> => {
      try {
        return await fn();
      } catch (e) {
        if (interrupted) return new Promise<never>(() => undefined); // the teardown exits the process
        const msg = `${label} ${p}: ${(e as Error).message}`;
        failures.push(msg);
        out(`  ! ${msg}`);
        const srv = iperfServers.get(SERVER_BIND[p]);
        if (srv && (srv.child.exitCode !== null || srv.child.signalCode !== null)) iperfServers.set(SERVER_BIND[p], await startIperfServer(lab, rs1, SERVER_BIND[p], load));
        return null;
      }
    };

    /** Run `fn`, noting per-CPU load, other work on the machine, and the balancer's CPU seconds. */
    const measured = async <T>(p: PathName, fn: () => Promise<T>): Promise<Measured<T>> => {
      const pid = balancerPid(p);
      const cpu0 = pid === null ? NaN : cpuSeconds(pid);
      const times0 = readCpuTimes();
      const foreign = new ForeignLoad();
      const t0 = Date.now();
      const value = await fn();
      const seconds = (Date.now() - t0) / 1000;
      const foreignUse = foreign.measure();
      const foreignCores = seconds >= 0.5 ? foreignUse.seconds / seconds : NaN;
      const busy = seconds >= 0.5 ? busyPercent(times0, readCpuTimes()) : [];
      const cpu = pid === null ? NaN : cpuSeconds(pid) - cpu0;
      return { value, cpu, busy, foreign: foreignCores, foreignTop: foreignUse.top };
    };
    const foreignText = (m: { foreign: number; foreignTop: string[] }): string =>
      `${m.foreign.toFixed(2)} CPUs busy with other work (${m.foreignTop.length ? `biggest other processes: ${m.foreignTop.join(', ')}` : 'kernel or short-lived processes'})`;
    const loadText = (m: Measured<unknown>): string =>
      (Number.isFinite(m.cpu) ? `; ${m.cpu.toFixed(2)} s balancer CPU` : '') +
      (m.busy.length ? `; CPU busy ${m.busy.map((b, i) => `${i}:${b.toFixed(0)}%`).join(' ')}` : '') +
      (m.foreign > FOREIGN_LOAD_LIMIT ? ` !! ${foreignText(m)}` : '');

    /** `measured`, repeated (within the budget) while other work used more than FOREIGN_LOAD_LIMIT CPUs. */
    const measuredUndisturbed = async <T>(label: string, p: PathName, fn: () => Promise<T>): Promise<Measured<T> | null> => {
      for (let i = 0; ; i++) {
        const t0 = Date.now();
        const m = await attempt(label, p, () => measured(p, fn));
        if (!m) return null;
        if (i > 0) retryMs += Date.now() - t0;
        const isDisturbed = m.foreign > FOREIGN_LOAD_LIMIT;
        if (!isDisturbed || i >= RETRIES_WHEN_DISTURBED || retryMs > RETRY_BUDGET_MS) {
          if (Number.isFinite(m.foreign)) results.add('foreign', p, m.foreign);
          if (isDisturbed) disturbed[p]++;
          return m;
        }
        retried++;
        out(`  (${label} ${p} again: ${foreignText(m)})`);
      }
    };

    /** One test on one path: records its samples and prints one line. */
    const runTest = async (t: TestName, p: PathName): Promise<void> => {
      const tag = `${t.padEnd(6)} ${p.padEnd(7)}`;
      const keepCpu = (m: Measured<unknown>): void => {
        if (Number.isFinite(m.cpu)) results.add(`${t}_cpu`, p, m.cpu);
        results.addBusy(t, p, m.busy);
      };
      if (t === 'tcp1' || t === 'tcp4') {
        const m = await measuredUndisturbed(t, p, () => tcpThroughput(lab, TARGET[p], TCP_SECONDS, load, t === 'tcp1' ? 1 : 4));
        if (!m) return;
        results.add(t, p, m.value.bps / 1e9);
        keepCpu(m);
        out(`  ${tag} ${(m.value.bps / 1e9).toFixed(2)} Gb/s, ${m.value.retransmits} retransmits${loadText(m)}`);
      } else if (t === 'udp') {
        let maxLine = '';
        let max: UdpResult | null = null;
        const m = await measuredUndisturbed(t, p, async () => {
          const d0 = await readDrops(lab, rs1);
          max = await udpRate(lab, TARGET[p], UDP_PAYLOAD, 0, UDP_MAX_SECONDS, load, udpBuffer);
          const drops = dropsSince(d0, await readDrops(lab, rs1));
          maxLine = `max: offered ${(max.offeredPps / 1e3).toFixed(1)} kpps, received ${(max.receivedPps / 1e3).toFixed(1)} kpps, loss ${max.lostPercent.toFixed(2)} % (${formatDrops(drops)})`;
          const tapLoss = max.sent > 0 ? (100 * drops.tap) / max.sent : NaN;
          // The search starts from the maximum *offered* rate: at -b 0 the sender can crowd out the
          // receiver on a shared core, so the loss-free rate may exceed the rate received at -b 0.
          const free = await lossFreeRate({ ...max, receivedPps: max.offeredPps }, (pps) => udpRate(lab, TARGET[p], UDP_PAYLOAD, pps, UDP_STEP_SECONDS, load, udpBuffer), UDP_STEPS, MAX_LOSS_PERCENT);
          return { max, free, tapLoss };
        });
        if (!m) return;
        const { free } = m.value;
        results.add('udp_max', p, m.value.max.receivedPps / 1e3);
        results.add('udp_max_loss', p, m.value.max.lostPercent);
        results.add('udp_free', p, free.pps / 1e3);
        if (p === 'tapvs' || p === 'fullnat' || p === 'dr' || p === 'nat6') results.add('udp_loss_tap', p, m.value.tapLoss);
        if (free.generatorLimited) generatorLimited[p]++;
        keepCpu(m);
        const steps = free.steps.map((s) => `${(s.offeredPps / 1e3).toFixed(1)}k:${s.lostPercent.toFixed(2)}%`).join(' ');
        out(`  ${tag} ${maxLine}`);
        out(`  ${tag} loss-free ${(free.pps / 1e3).toFixed(1)} kpps${free.generatorLimited ? ' (no loss at max offered rate: generator-limited)' : ` (offered:loss ${steps})`}${loadText(m)}`);
      } else if (t === 'cps') {
        const m = await measuredUndisturbed(t, p, () => shortConnections(lab, `http://${urlHost(p)}:${HTTP_PORT}/`, CPS_SECONDS, load.cpu));
        if (!m) return;
        results.add(t, p, m.value.cps);
        cpsErrors[p] += m.value.errors;
        keepCpu(m);
        out(`  ${tag} ${m.value.cps.toFixed(0)} conn/s (${m.value.requests} requests, ${m.value.errors} errors)${loadText(m)}`);
      } else if (t === 'rr_tcp' || t === 'rr_udp') {
        const m = await measuredUndisturbed(t, p, () => requestResponse(lab, TARGET[p], t === 'rr_tcp', RR_SECONDS, load.cpu));
        if (!m) return;
        results.add(`${t}_p50`, p, m.value.p50);
        results.add(`${t}_p99`, p, m.value.p99);
        keepCpu(m);
        out(`  ${tag} RTT p50 ${m.value.p50.toFixed(1)} us, p99 ${m.value.p99.toFixed(1)} us, avg ${m.value.avg.toFixed(1)} us (${m.value.observations} round trips)${loadText(m)}`);
      }
    };

    // Warm-up: ARP caches, conntrack, tapvs connection path, page cache of the tools.
    if (iperfServers.size) {
      out('# warm-up: 1 s TCP on each path');
      for (const p of paths) await attempt('warm-up', p, () => tcpThroughput(lab, TARGET[p], 1, load));
    }
    const loadTests = tests.filter((t) => t !== 'idle');
    for (let rep = 0; rep < reps; rep++) {
      const k = rep % paths.length;
      const order = [...paths.slice(k), ...paths.slice(0, k)];
      out(`# repetition ${rep + 1}/${reps} (${order.join(', ')})`);
      for (const t of loadTests) for (const p of order) if (supports(p, t)) await runTest(t, p);
    }

    if (tests.includes('idle')) {
      await new Promise((r) => setTimeout(r, 1000));
      const procs: [PathName, number][] = (['tapvs', 'haproxy'] as const).flatMap((p): [PathName, number][] => {
        const pid = balancerPid(p);
        return pid !== null && paths.includes(p) ? [[p, pid]] : [];
      });
      const before = procs.map(([, pid]) => cpuSeconds(pid));
      await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
      idleCells = {};
      procs.forEach(([p, pid], i) => {
        const pct = (100 * (cpuSeconds(pid) - before[i])) / IDLE_SECONDS;
        const s = new Samples();
        s.add(pct);
        idleCells[p] = s;
        out(`  idle   ${p.padEnd(7)} ${pct.toFixed(1)} % of a core over ${IDLE_SECONDS} s without traffic`);
      });
      if (paths.includes('nft')) idleCells.nft = '0 (no process)';
      if (paths.includes('fullnat')) idleCells.fullnat = 'as tapvs';
      if (paths.includes('dr')) idleCells.dr = 'as tapvs';
      if (paths.includes('nat6')) idleCells.nat6 = 'as tapvs';
    }

    // --- table ---
    out();
    out(`== results: median [min-max] of ${reps} run(s); ratios = tapvs median / other median (latency: > 1 is slower) ==`);
    const cells = (metric: string, scale = 1): Record<string, Cell> => {
      const c: Record<string, Cell> = {};
      for (const p of paths) {
        const s = results.get(metric, p);
        if (!s.count) {
          c[p] = null;
          continue;
        }
        if (scale === 1) c[p] = s;
        else {
          const scaled = new Samples();
          for (const v of s.values) scaled.add(v * scale);
          c[p] = scaled;
        }
      }
      return c;
    };
    const naFor = (c: Record<string, Cell>, t: TestName): Record<string, Cell> => {
      for (const p of paths) if (!supports(p, t)) c[p] = 'n/a';
      return c;
    };
    /** Balancer CPU: tapvsd / haproxy process; nft's work is softirq in whichever process's context. */
    const cpuCells = (t: TestName): Record<string, Cell> => {
      const c = naFor(cells(`${t}_cpu`), t);
      if (paths.includes('nft')) c.nft = 'softirq';
      return c;
    };
    const busyCells = (t: TestName): Record<string, Cell> => {
      const c: Record<string, Cell> = {};
      for (const p of paths) c[p] = results.busy.get(t)?.get(p)?.format() ?? (supports(p, t) ? null : 'n/a');
      return c;
    };
    const rows: TableRow[] = [];
    const has = (t: TestName): boolean => tests.includes(t);
    const cpuList = Array.from({ length: os.availableParallelism() }, (_, i) => i).join('/');
    if (has('tcp1')) rows.push({ metric: `TCP 1 stream, ${TCP_SECONDS} s (Gb/s)`, cells: cells('tcp1'), digits: 2, ratio: true });
    if (has('tcp4')) rows.push({ metric: `TCP 4 streams, ${TCP_SECONDS} s (Gb/s)`, cells: cells('tcp4'), digits: 2, ratio: true });
    if (has('udp')) {
      rows.push({ metric: `UDP ${UDP_PAYLOAD} B max, received (kpps)`, cells: naFor(cells('udp_max'), 'udp'), digits: 1, ratio: true });
      rows.push({ metric: `UDP ${UDP_PAYLOAD} B max, loss (%)`, cells: naFor(cells('udp_max_loss'), 'udp'), digits: 1, ratio: false });
      rows.push({ metric: `  of which at the TAP queue (%)`, cells: cells('udp_loss_tap'), digits: 1, ratio: false });
      rows.push({ metric: `UDP ${UDP_PAYLOAD} B loss <= ${MAX_LOSS_PERCENT} % (kpps)`, cells: naFor(cells('udp_free'), 'udp'), digits: 1, ratio: true });
    }
    if (has('cps')) rows.push({ metric: `HTTP short connections/s (wrk -c32)`, cells: cells('cps'), digits: 0, ratio: true });
    if (has('rr_tcp')) {
      rows.push({ metric: `TCP RR RTT p50 (us)`, cells: naFor(cells('rr_tcp_p50'), 'rr_tcp'), digits: 0, ratio: true });
      rows.push({ metric: `TCP RR RTT p99 (us)`, cells: naFor(cells('rr_tcp_p99'), 'rr_tcp'), digits: 0, ratio: true });
    }
    if (has('rr_udp')) {
      rows.push({ metric: `UDP RR RTT p50 (us)`, cells: naFor(cells('rr_udp_p50'), 'rr_udp'), digits: 0, ratio: true });
      rows.push({ metric: `UDP RR RTT p99 (us)`, cells: naFor(cells('rr_udp_p99'), 'rr_udp'), digits: 0, ratio: true });
    }
    const cpuTitles: Partial<Record<TestName, string>> = {
      tcp1: 'TCP 1 stream',
      tcp4: 'TCP 4 streams',
      udp: 'UDP max + search',
      cps: 'HTTP short conns',
      rr_tcp: 'TCP RR',
      rr_udp: 'UDP RR',
    };
    for (const t of loadTests) rows.push({ metric: `balancer CPU s per run, ${cpuTitles[t]}`, cells: cpuCells(t), digits: 2, ratio: false });
    if (has('idle')) rows.push({ metric: `balancer idle CPU, ${IDLE_SECONDS} s no traffic (% core)`, cells: idleCells, digits: 1, ratio: false });
    for (const t of (['tcp1', 'udp', 'cps', 'rr_tcp'] as const).filter(has)) rows.push({ metric: `CPU ${cpuList} busy, ${cpuTitles[t]} (%)`, cells: busyCells(t), digits: 0, ratio: false });
    rows.push({ metric: `other work on the machine during runs (CPUs)`, cells: cells('foreign'), digits: 2, ratio: false });
    for (const l of formatTable(paths, 'tapvs', ['nft', 'haproxy', 'direct'], rows)) out(l);
    out();

    out('notes:');
    out(`- balancer CPU = utime+stime of the tapvsd / haproxy process (all threads) during a run; nft's work runs in softirq in the context`);
    out(`  of whichever task or CPU receives the packet and cannot be attributed to a process (see the per-CPU busy rows instead).`);
    out(`- RR = sockperf ping-pong, 64 B, one message in flight, ${RR_SECONDS} s (0.4 s warm-up excluded), full round trip (--full-rtt).`);
    out(`- UDP: iperf3 -u -l ${UDP_PAYLOAD}, socket buffers ${udpBuffer ? `-w ${udpBuffer}` : 'kernel default'}; loss-free = bisection, ${UDP_STEPS} steps x ${UDP_STEP_SECONDS} s; HAProxy carries no UDP (n/a).`);
    if (paths.includes('nft')) out(`- nft: the DNAT rules translated ${await nftDnatCount(lab)} connections/flows in all (conntrack handled the rest of their packets).`);
    for (const p of paths) if (generatorLimited[p]) out(`- ${p} UDP loss-free is generator-limited in ${generatorLimited[p]} run(s): no loss at iperf3's max rate.`);
    for (const p of paths) if (cpsErrors[p]) out(`- ${p}: wrk reported ${cpsErrors[p]} socket errors / non-2xx responses in all.`);
    if (retried) out(`- ${retried} runs were repeated because other work used > ${FOREIGN_LOAD_LIMIT} CPUs meanwhile.`);
    for (const p of paths) if (disturbed[p]) out(`- WARNING: ${disturbed[p]} ${p} runs overlapped other work using > ${FOREIGN_LOAD_LIMIT} CPUs: their figures are disturbed (!! above).`);
    out(`# elapsed ${((Date.now() - started) / 1000).toFixed(0)} s`);

    if (failures.length) {
      out();
      out(`# ${failures.length} failed runs. tapvs -L -n --stats:`);
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
      fs.rmSync(workDir, { recursive: true, force: true });
      const left = await namespacesWithPrefix(lab.id);
      if (left.length) process.stderr.write(`bench: namespaces left behind: ${left.join(' ')}\n`);
    }
  }
}

main().then((code) => process.exit(code));
