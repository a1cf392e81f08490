/**
 * The bench's tools, installed with apt-get when missing (one apt-get install for all, apt-get update
 * and a second try when it fails), and the installed versions printed.
 */
import { run } from '../src/lab/processes.js';

/** Command -> Debian package. sockperf is in Debian's repositories (bookworm: 3.7). */
export const TOOLS: Record<string, string> = {
  iperf3: 'iperf3',
  wrk: 'wrk',
  nginx: 'nginx',
  haproxy: 'haproxy',
  nft: 'nftables',
  sockperf: 'sockperf',
};

const has = async (cmd: string): Promise<boolean> => (await run('sh', ['-c', `command -v ${cmd}`])).code === 0;

async function version(pkg: string): Promise<string> {
  const r = await run('dpkg-query', ['-W', '-f', '${Version}', pkg]);
  return r.code === 0 ? r.stdout.trim() : '?';
}

/**
 * Make sure every command in `needed` exists; returns the commands still missing afterwards (the
 * tests needing them are skipped). Prints what it installed.
 */
export async function ensureTools(needed: string[], out: (s: string) => void): Promise<string[]> {
  const missing: string[] = [];
  for (const cmd of needed) if (!(await has(cmd))) missing.push(cmd);
  if (missing.length) {
    const pkgs = missing.map((c) => TOOLS[c] ?? c);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    out(`# missing: ${missing.join(' ')}: apt-get install -y ${pkgs.join(' ')}`);
    let r = await run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env, timeoutMs: 300_000 });
    if (r.code !== 0) {
      out('# apt-get install failed; apt-get update, then again');
      await run('apt-get', ['update'], { env, timeoutMs: 300_000 });
      r = await run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env, timeoutMs: 300_000 });
    }
    if (r.code !== 0) out(`# warning: apt-get install failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
    for (const pkg of pkgs) out(`# installed: ${pkg} ${await version(pkg)}`);
  }
  const still: string[] = [];
  for (const cmd of needed) if (!(await has(cmd))) still.push(cmd);
  const present = needed.filter((c) => !still.includes(c));
  out(`# tools: ${(await Promise.all(present.map(async (c) => `${TOOLS[c] ?? c} ${await version(TOOLS[c] ?? c)}`))).join(', ')}`);
  return still;
}
