/** How busy each CPU was over an interval (user+system+irq+softirq+steal), from /proc/stat. */
import fs from 'node:fs';

export interface CpuTimes {
  busy: number[];
  total: number[];
}

/** Cumulative jiffies per CPU. */
export function readCpuTimes(): CpuTimes {
  const busy: number[] = [];
  const total: number[] = [];
  for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    // user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user)
    const v = m[2].split(/\s+/).slice(0, 8).map(Number);
    const sum = v.reduce((a, b) => a + b, 0);
    busy[Number(m[1])] = sum - v[3] - v[4];
    total[Number(m[1])] = sum;
  }
  return { busy, total };
}

/** Busy percentage of each CPU between two readings. */
export function busyPercent(before: CpuTimes, after: CpuTimes): number[] {
  return after.total.map((t, i) => {
    const dt = t - (before.total[i] ?? 0);
    return dt > 0 ? (100 * (after.busy[i] - (before.busy[i] ?? 0))) / dt : NaN;
  });
}
