/**
 * CPU time spent on things other than this benchmark (other users of a shared machine) during an
 * interval: all busy CPU time (/proc/stat) minus the CPU time of this process's tree (the bench, its
 * iperf3s, tapvsd, and children it reaped meanwhile, through cutime/cstime). What remains is other
 * processes, including short-lived ones, and kernel work done outside our processes' context (other
 * namespaces' softirq traffic, kernel threads; also any of our own softirq work deferred to ksoftirqd,
 * which is small when the machine is otherwise idle).
 *
 * The biggest other processes are named as a hint (their own utime+stime only).
 */
import fs from 'node:fs';
import { readCpuTimes } from './cpu-busy.js';

interface ProcTimes {
  comm: string;
  ppid: number;
  /** utime + stime, in ticks. */
  own: number;
  /** cutime + cstime: children reaped so far, in ticks. */
  reaped: number;
  kernel: boolean;
}

const USER_HZ = 100;
const PF_KTHREAD = 0x00200000;

function processes(): Map<number, ProcTimes> {
  const procs = new Map<number, ProcTimes>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // f[0] = field 3 (state): ppid 4, flags 9, utime 14, stime 15, cutime 16, cstime 17
    const at = (field: number): number => Number(f[field - 3]);
    procs.set(Number(name), {
      comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      ppid: at(4),
      own: at(14) + at(15),
      reaped: at(16) + at(17),
      kernel: (at(9) & PF_KTHREAD) !== 0 || at(4) === 2 || Number(name) === 2,
    });
  }
  return procs;
}

/** Is `pid` this process or one of its descendants? */
function ours(pid: number, procs: Map<number, ProcTimes>): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (p === process.pid) return true;
    const next = procs.get(p)?.ppid;
    if (next === undefined) return false;
    p = next;
  }
  return false;
}

interface Snapshot {
  procs: Map<number, ProcTimes>;
  /** Ticks of this process tree, reaped children included. */
  oursTicks: number;
  busyTicks: number;
}

function snapshot(): Snapshot {
  const procs = processes();
  let oursTicks = 0;
  for (const [pid, p] of procs) if (ours(pid, procs)) oursTicks += p.own + p.reaped;
  const busyTicks = readCpuTimes().busy.reduce((a, b) => a + b, 0);
  return { procs, oursTicks, busyTicks };
}

export interface ForeignUse {
  /** CPU seconds not spent by this benchmark's processes. */
  seconds: number;
  /** The biggest other processes, as "comm[pid] seconds". */
  top: string[];
}

export class ForeignLoad {
  private readonly before = snapshot();

  /** CPU use by others since construction. */
  measure(): ForeignUse {
    const after = snapshot();
    const ticks = after.busyTicks - this.before.busyTicks - (after.oursTicks - this.before.oursTicks);
    const named: [string, number][] = [];
    for (const [pid, p] of after.procs) {
      if (ours(pid, after.procs)) continue;
      const used = p.own - (this.before.procs.get(pid)?.own ?? 0);
      if (used > 0) named.push([`${p.comm}[${pid}]`, used / USER_HZ]);
    }
    named.sort((a, b) => b[1] - a[1]);
    return { seconds: Math.max(0, ticks) / USER_HZ, top: named.slice(0, 3).map(([name, s]) => `${name} ${s.toFixed(2)} s`) };
  }
}
