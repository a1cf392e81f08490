/**
 * nginx on a real server for the short-connection test: one worker, `return 200 "ok"`, no keep-alive,
 * no access log; listening on every address of the namespace (TCP answers from the address the client
 * reached, so each path's routing holds). Foreground (daemon off) so the lab stops it by PID.
 */
import fs from 'node:fs';
import path from 'node:path';
import { waitFor, type Background } from '../src/lab/processes.js';
import { type LabTopology } from '../src/lab/topology.js';

export const HTTP_PORT = 80;

export async function startNginx(lab: LabTopology, ns: string, workDir: string, cpu: number | null): Promise<Background> {
  const dir = path.join(workDir, `nginx-${ns}`);
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const conf = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 0;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  server {
    listen ${HTTP_PORT} backlog=4096;
    listen [::]:${HTTP_PORT} backlog=4096;
    location / { return 200 "ok"; }
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const pin = cpu === null ? [] : ['taskset', '-c', String(cpu)];
  const [cmd, ...args] = [...pin, 'nginx', '-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`];
  const p = lab.spawnIn(ns, cmd, args);
  await waitFor(
    `nginx in ${ns}`,
    async () => {
      if (p.child.exitCode !== null) return true;
      const r = await lab.exec(ns, 'ss', ['-Hltn', `sport = :${HTTP_PORT}`]);
      return r.stdout.trim() !== '';
    },
    10_000,
    100,
  );
  if (p.child.exitCode !== null) {
    const log = fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
    throw new Error(`nginx in ${ns} exited: ${p.output()} ${log}`);
  }
  return p;
}
