/**
 * HAProxy `mode tcp`, one thread, in the director namespace on its own VIP: the first real server for
 * iperf3 and sockperf, round robin over all real servers for HTTP (as perf.md §2). Started in the
 * foreground (-db) so the lab stops it by PID.
 */
import fs from 'node:fs';
import path from 'node:path';
import { waitFor, type Background } from '../src/lab/processes.js';
import { labRealServer, type LabTopology } from '../src/lab/topology.js';
import { HAPROXY_VIP } from './kernel-director.js';

export interface HaproxyService {
  port: number;
  /** Round robin over every real server; otherwise real server 1 only. */
  roundRobin: boolean;
}

export async function startHaproxy(lab: LabTopology, workDir: string, services: HaproxyService[], cpu: number | null): Promise<Background> {
  const cfg = [
    'global',
    '  nbthread 1',
    '  maxconn 8000',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    ...services.flatMap((s) => [
      `listen svc${s.port}`,
      `  bind ${HAPROXY_VIP}:${s.port}`,
      ...(s.roundRobin ? ['  balance roundrobin'] : []),
      ...(s.roundRobin ? lab.rs.map((_, i) => `  server rs${i + 1} ${labRealServer(i)}:${s.port}`) : [`  server rs1 ${labRealServer(0)}:${s.port}`]),
    ]),
    '',
  ].join('\n');
  const file = path.join(workDir, 'haproxy.cfg');
  fs.writeFileSync(file, cfg);
  const pin = cpu === null ? [] : ['taskset', '-c', String(cpu)];
  const [cmd, ...args] = [...pin, 'haproxy', '-db', '-f', file];
  const p = lab.spawnIn(lab.dir, cmd, args);
  await waitFor(
    'haproxy listening',
    async () => {
      if (p.child.exitCode !== null) return true;
      const r = await lab.exec(lab.dir, 'ss', ['-Hltn', `src ${HAPROXY_VIP}`]);
      return r.stdout.trim().split('\n').filter(Boolean).length >= services.length;
    },
    10_000,
    100,
  );
  if (p.child.exitCode !== null) throw new Error(`haproxy exited: ${p.output()}`);
  return p;
}
