/**
 * CPU time used by processes that are not part of this benchmark (other users of a shared machine):
 * user+system time of every non-kernel process outside this process's tree, from /proc/<pid>/stat,
 * between two snapshots. Processes that start during the interval count in full; processes that exit
 * count through their parent's cutime/cstime once reaped. Kernel threads (softirq, workers) are left
 * out: their work cannot be attributed.
 */
import fs from 'node:fs';

interface ProcTimes {
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks. */
  ticks: number;
  kernel: boolean;
}

const USER_HZ = 100;
const PF_KTHREAD = 0x00200000;

function snapshot(): Map<number, ProcTimes> {
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
      ppid: at(4),
      ticks: at(14) + at(15) + at(16) + at(17),
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

export class ForeignLoad {
  private readonly before = snapshot();

  /** CPU seconds used by foreign processes since construction. */
  seconds(): number {
    const after = snapshot();
    let ticks = 0;
    for (const [pid, p] of after) {
      if (p.kernel || ours(pid, after)) continue;
      ticks += p.ticks - (this.before.get(pid)?.ticks ?? 0);
    }
    return Math.max(0, ticks) / USER_HZ;
  }
}
