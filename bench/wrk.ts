/** Short TCP connections per second: wrk -t1 -c32 -H 'Connection: close' from the client namespace. */
import { run } from '../src/lab/processes.js';
import { type LabTopology } from '../src/lab/topology.js';

export interface CpsResult {
  /** Completed requests (= connections) per second. */
  cps: number;
  requests: number;
  /** connect/read/write/timeout errors and non-2xx responses. */
  errors: number;
}

export async function shortConnections(lab: LabTopology, url: string, seconds: number, cpu: number | null, connections = 32): Promise<CpsResult> {
  const pin = cpu === null ? [] : ['taskset', '-c', String(cpu)];
  const r = await run('ip', ['netns', 'exec', lab.cli, ...pin, 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '2s', '-H', 'Connection: close', url], {
    timeoutMs: (seconds + 10) * 1000,
  });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (r.code !== 0 || !rps) throw new Error(`wrk ${url}: exit ${r.code} ${r.stderr.trim() || r.stdout.trim()}`);
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const errors = (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx;
  return { cps: Number(rps[1]), requests, errors };
}
