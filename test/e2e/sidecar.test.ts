/**
 * The container sidecar's network plumbing (docker/sidecar-net.sh), without Docker: the namespaces that
 * `docker compose -f docker/compose.sidecar.yaml up` would build, made with `ip netns`, and the same
 * script run in the application's namespace. The application connects to the VIP; tapvsd balances to
 * the peers; the peers see the application's address (masqueraded) and need no route back. The rules
 * are the compose example's (docker/sidecar-rules).
 *
 *   netns <id>-net   bridge br0 (the compose network)
 *   netns <id>-app   eth0 198.18.20.2/24 (the application's namespace, shared by the tapvs sidecar)
 *   netns <id>-rs1   198.18.20.11/24 peer   netns <id>-rs2   198.18.20.12/24 peer
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT, TAPVSD_JS, TAPVS_JS } from '../../src/lab/topology.js';
import { background, must, run, stop, waitFor, type Background } from '../../src/lab/processes.js';
import { SKIP_REASON, servers, type Served, testLabId } from './lab-fixture.js';

const SCRIPT = path.join(PACKAGE_ROOT, 'docker', 'sidecar-net.sh');
const CLIENT_JS = path.join(PACKAGE_ROOT, 'dist', 'src', 'lab', 'client.js');
const SERVER_JS = path.join(PACKAGE_ROOT, 'dist', 'src', 'lab', 'real-server.js');
const APP = '198.18.20.2';
const PEERS = ['198.18.20.11', '198.18.20.12'];
const VIP = '198.18.30.100';

function hasNft(): boolean {
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const NFT = hasNft();
if (!SKIP_REASON && !NFT) console.warn('sidecar test skipped: nft (nftables) is not installed');

describe.skipIf(SKIP_REASON !== null || !NFT)('container sidecar plumbing (docker/sidecar-net.sh) in namespaces', () => {
  const id = testLabId();
  const ns = { net: `${id}-net`, app: `${id}-app`, rs: [`${id}-rs1`, `${id}-rs2`] };
  const created: string[] = [];
  const procs: Background[] = [];
  let dir = '';
  let socket = '';
  // The compose example's rules file, as shipped.
  const rules = path.join(PACKAGE_ROOT, 'docker', 'sidecar-rules');
  let sidecar: Background | null = null;

  const inApp = (cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    run('ip', ['netns', 'exec', ns.app, cmd, ...args]);

  async function startSidecar(): Promise<Background> {
    const p = background('ip', [
      'netns', 'exec', ns.app, 'env', `TAPVSD=${process.execPath} ${TAPVSD_JS}`,
      'sh', SCRIPT, '--socket', socket, '--rules', rules,
    ]);
    procs.push(p);
    await waitFor('sidecar tapvsd', () => p.output().includes('control socket listening') || p.child.exitCode !== null, 15_000);
    if (p.child.exitCode !== null) throw new Error(`sidecar exited (${p.child.exitCode}):\n${p.output()}`);
    return p;
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapvs-sidecar-'));
    socket = path.join(dir, 'tapvs.sock');
    for (const n of [ns.net, ns.app, ...ns.rs]) {
      await must('ip', ['netns', 'add', n]);
      created.push(n);
      await must('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
      await run('ip', ['netns', 'exec', n, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    await must('ip', ['-n', ns.net, 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0']);
    await must('ip', ['-n', ns.net, 'link', 'set', 'br0', 'up']);
    const hosts: [string, string][] = [[ns.app, APP], [ns.rs[0], PEERS[0]], [ns.rs[1], PEERS[1]]];
    for (let i = 0; i < hosts.length; i++) {
      const [n, addr] = hosts[i];
      await must('ip', ['-n', ns.net, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n]);
      await must('ip', ['-n', ns.net, 'link', 'set', `v${i}`, 'master', 'br0', 'up']);
      await must('ip', ['-n', n, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
      await must('ip', ['-n', n, 'link', 'set', 'eth0', 'up']);
    }
    // As Docker sets up the application's namespace: a default route, and the compose file's sysctls.
    await must('ip', ['-n', ns.app, 'route', 'add', 'default', 'via', '198.18.20.1']);
    await must('ip', ['netns', 'exec', ns.app, 'sysctl', '-qw',
      'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv4.conf.default.accept_local=1']);
    for (let i = 0; i < 2; i++) {
      const p = background('ip', ['netns', 'exec', ns.rs[i], process.execPath, SERVER_JS, '--name', `rs${i + 1}`, '--address', PEERS[i]]);
      procs.push(p);
      await waitFor(`peer rs${i + 1}`, () => p.output().includes('listening') || p.child.exitCode !== null, 10_000);
    }
    sidecar = await startSidecar();
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.splice(0).map((p) => stop(p)));
    for (const n of created.splice(0).reverse()) await run('ip', ['netns', 'del', n]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  async function request(count: number): Promise<Served[]> {
    const r = await inApp(process.execPath, [CLIENT_JS, 'http', `${VIP}:80`, '--count', String(count)]);
    if (r.code !== 0) throw new Error(`client failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Served[];
  }

  it('the application reaches its peers through the VIP; replies come from the VIP', async () => {
    const res = await request(4);
    expect(servers(res)).toEqual(['rs2', 'rs1', 'rs2', 'rs1']);
    for (const r of res) {
      expect(r.from).toBe(`${VIP}:80`);
      expect(r.peer).toBe(APP); // masqueraded by the namespace's kernel: the peers need no route back
    }
    const stats = await run(process.execPath, [TAPVS_JS, '--socket', socket, '-L', '-n', '--stats', '--exact']);
    expect(stats.stdout).toMatch(new RegExp(`^TCP {2}${VIP.replace(/\./g, '\\.')}:80 +4 `, 'm'));
  });

  it('survives a sidecar restart: the script finds its own plumbing and runs again', async () => {
    await stop(sidecar!);
    const rulesBefore = (await inApp('ip', ['rule', 'show'])).stdout;
    sidecar = await startSidecar();
    expect((await inApp('ip', ['rule', 'show'])).stdout).toBe(rulesBefore);
    expect((await inApp('nft', ['list', 'tables'])).stdout.match(/tapvs_sidecar/g)).toHaveLength(1);
    const res = await request(2);
    expect(servers(res).sort()).toEqual(['rs1', 'rs2']);
  });
});
