/** CPU time of a process (all its threads), from /proc/<pid>/stat. */
import fs from 'node:fs';

/** Clock ticks per second for /proc times (USER_HZ; 100 on every mainstream Linux architecture). */
const USER_HZ = 100;

/** utime + stime of `pid` in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  return (utime + stime) / USER_HZ;
}

/** Run `fn` and return its result with the CPU seconds `pid` used meanwhile. */
export async function withCpu<T>(pid: number, fn: () => Promise<T>): Promise<{ value: T; cpu: number }> {
  const before = cpuSeconds(pid);
  const value = await fn();
  return { value, cpu: cpuSeconds(pid) - before };
}
