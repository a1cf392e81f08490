/**
 * Request/response round trip: sockperf ping-pong with 64-byte messages (`sockperf pp -m 64 -t N
 * --full-rtt`, one message in flight), TCP or UDP; percentiles of the full round trip in µs. Servers
 * (`sockperf sr`) are bound to one address each, so UDP answers leave from the address the client
 * (or the balancer) talked to.
 */
import { run, waitFor, type Background } from '../src/lab/processes.js';
import { type LabTopology } from '../src/lab/topology.js';

export const SOCKPERF_PORT = 11111;

export interface RttResult {
  p50: number;
  p99: number;
  avg: number;
  observations: number;
}

const pinArgs = (cpu: number | null): string[] => (cpu === null ? [] : ['taskset', '-c', String(cpu)]);

/** Start a UDP and a TCP `sockperf sr` bound to `bind` in namespace `ns`. */
export async function startSockperfServers(lab: LabTopology, ns: string, bind: string, cpu: number | null): Promise<Background[]> {
  const procs: Background[] = [];
  for (const tcp of [false, true]) {
    const [cmd, ...args] = [...pinArgs(cpu), 'sockperf', 'sr', ...(tcp ? ['--tcp'] : []), '-i', bind, '-p', String(SOCKPERF_PORT)];
    const p = lab.spawnIn(ns, cmd, args);
    procs.push(p);
    await waitFor(
      `sockperf ${tcp ? 'TCP' : 'UDP'} server on ${bind}`,
      async () => {
        if (p.child.exitCode !== null) return true;
        const r = await lab.exec(ns, 'ss', [tcp ? '-Hltn' : '-Hlun', `src ${bind}:${SOCKPERF_PORT}`]);
        return r.stdout.trim() !== '';
      },
      10_000,
      100,
    );
    if (p.child.exitCode !== null) throw new Error(`sockperf server on ${bind} exited: ${p.output()}`);
  }
  return procs;
}

export async function requestResponse(lab: LabTopology, target: string, tcp: boolean, seconds: number, cpu: number | null): Promise<RttResult> {
  const r = await run(
    'ip',
    ['netns', 'exec', lab.cli, ...pinArgs(cpu), 'sockperf', 'pp', ...(tcp ? ['--tcp'] : []), '-i', target, '-p', String(SOCKPERF_PORT), '-m', '64', '-t', String(seconds), '--full-rtt'],
    { timeoutMs: (seconds + 10) * 1000 },
  );
  // eslint-disable-next-line no-control-regex
  const text = r.stdout.replace(/\x1b\[[0-9;]*m/g, '');
  const pct = (p: string): number => Number(new RegExp(`percentile ${p} =\\s+([\\d.]+)`).exec(text)?.[1] ?? NaN);
  const avg = Number(/avg-rtt=([\d.]+)/.exec(text)?.[1] ?? NaN);
  const observations = Number(/Total (\d+) observations/.exec(text)?.[1] ?? 0);
  const res = { p50: pct('50.000'), p99: pct('99.000'), avg, observations };
  if (r.code !== 0 || !Number.isFinite(res.p50) || observations === 0) {
    throw new Error(`sockperf pp ${tcp ? '--tcp ' : ''}${target}: exit ${r.code} ${(r.stderr + text).trim().split('\n').slice(-3).join(' ')}`);
  }
  return res;
}
