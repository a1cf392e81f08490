/**
 * Observability end to end, on one lab (client, director running tapvsd, two real servers):
 * - `--metrics`: a real HTTP scrape from inside the director's namespace, parsed as Prometheus text, whose
 *   values equal `tapvs -L -n --stats --exact`, `--rate --exact` and `-L -n` after real traffic;
 * - `tapvs top`: one frame when not a terminal, and the live view in tmux (captured, then quit with q and
 *   with Ctrl-C, the terminal's alternate screen left);
 * - SIGHUP: the --rules file re-read and applied as a whole, and a bad file refused with file:line.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAB_VIP, LabTopology, TAPVS_JS, labRealServer } from '../../src/lab/topology.js';
import { run, waitFor, type Background } from '../../src/lab/processes.js';
import { parsePrometheusText, samplesOf, valueOf, type Exposition } from '../prom-text.js';
import { SKIP_REASON, servers, tapvsOk, type Served, testLabId } from './lab-fixture.js';

const VIP = LAB_VIP;
const RS1 = labRealServer(0);
const RS2 = labRealServer(1);

const RULES_1 = `-A -t ${VIP}:80 -s rr
-a -t ${VIP}:80 -r ${RS1}:80 -m -w 1
-a -t ${VIP}:80 -r ${RS2}:80 -m -w 1
-A -u ${VIP}:9000 -s rr
-a -u ${VIP}:9000 -r ${RS1}:9000 -m -w 1
-a -u ${VIP}:9000 -r ${RS2}:9000 -m -w 2
`;

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const TMUX = hasTmux();
if (!SKIP_REASON && !TMUX) console.warn('tapvs top tmux test skipped: tmux is not installed (apt-get install tmux)');

/** One row of an ipvsadm-style listing: the label and its numbers. */
interface ListingRow {
  kind: 'service' | 'dest';
  proto: string; // service protocol (for dests, their service's)
  vip: string; // service address:port
  rip?: string; // destination address:port
  numbers: number[];
}

function parseListing(text: string): ListingRow[] {
  const rows: ListingRow[] = [];
  let proto = '', vip = '';
  for (const line of text.split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] === 'TCP' || w[0] === 'UDP') {
      proto = w[0];
      vip = w[1];
      rows.push({ kind: 'service', proto, vip, numbers: w.slice(2).filter((x) => /^\d+$/.test(x)).map(Number) });
    } else if (w[0] === '->' && /^\d/.test(w[1] ?? '')) {
      rows.push({ kind: 'dest', proto, vip, rip: w[1], numbers: w.slice(2).filter((x) => /^\d+$/.test(x)).map(Number) });
    }
  }
  return rows;
}

const split = (ap: string): [string, string] => {
  const i = ap.lastIndexOf(':');
  return [ap.slice(0, i), ap.slice(i + 1)];
};
function serviceMatch(r: ListingRow): Record<string, string> {
  const [a, p] = split(r.vip);
  return { local_address: a, local_port: p, proto: r.proto, local_mark: '' };
}
function backendMatch(r: ListingRow): Record<string, string> {
  const [ra, rp] = split(r.rip!);
  return { ...serviceMatch(r), remote_address: ra, remote_port: rp };
}

describe.skipIf(SKIP_REASON !== null)('observability end to end', () => {
  let lab: LabTopology;
  let daemon: Background;
  let metricsUrl = '';
  let dir = '';
  let rulesFile = '';
  let tmuxSocket = '';
  const tmuxSessions: string[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapvs-obs-'));
    rulesFile = path.join(dir, 'rules');
    tmuxSocket = path.join(dir, 'tmux.sock');
    fs.writeFileSync(rulesFile, RULES_1);
    lab = new LabTopology({ id: testLabId() });
    try {
      await lab.up();
      await lab.startRealServer(0);
      await lab.startRealServer(1);
      daemon = await lab.startDirector(['--rules', rulesFile, '--metrics', '127.0.0.1:0']);
      await waitFor('metrics listening', () => /metrics listening url=(\S+)/.test(lab.daemonOutput), 10_000);
      metricsUrl = /metrics listening url=(\S+)/.exec(lab.daemonOutput)![1];
    } catch (e) {
      await lab.down();
      throw e;
    }
  }, 60_000);

  afterAll(async () => {
    for (const s of tmuxSessions) await run('tmux', ['-S', tmuxSocket, 'kill-session', '-t', s]);
    await lab?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  /** GET the metrics from inside the director's namespace (where tapvsd bound 127.0.0.1). */
  async function scrape(): Promise<{ text: string; contentType: string }> {
    const script = `fetch(${JSON.stringify(metricsUrl)}).then(async (r) => { if (!r.ok) process.exit(3); process.stdout.write(JSON.stringify({ type: r.headers.get('content-type'), text: await r.text() })); })`;
    const r = await lab.exec(lab.dir, process.execPath, ['-e', script]);
    if (r.code !== 0) throw new Error(`scrape failed (${r.code}): ${r.stderr}`);
    const j = JSON.parse(r.stdout) as { type: string; text: string };
    return { text: j.text, contentType: j.type };
  }

  /**
   * Read the listings, scrape, read the listings again; retry until nothing moved in between (late
   * FIN/ACKs, an estimator tick, an expiring connection), so the comparison is of one state.
   */
  async function consistentView(): Promise<{ stats: string; rate: string; list: string; metrics: Exposition }> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const stats = await tapvsOk(lab, ['-L', '-n', '--stats', '--exact']);
      const rate = await tapvsOk(lab, ['-L', '-n', '--rate', '--exact']);
      const list = await tapvsOk(lab, ['-L', '-n']);
      const { text } = await scrape();
      const after = [await tapvsOk(lab, ['-L', '-n', '--stats', '--exact']), await tapvsOk(lab, ['-L', '-n', '--rate', '--exact']), await tapvsOk(lab, ['-L', '-n'])];
      if (after[0] === stats && after[1] === rate && after[2] === list) return { stats, rate, list, metrics: parsePrometheusText(text) };
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('the director never stood still long enough to compare');
  }

  it('serves /metrics whose values equal tapvs -L -n --stats --exact, --rate and -L -n after real traffic', async () => {
    const http = await lab.client<Served[]>(['http', `${VIP}:80`, '--count', '6']);
    expect(servers(http).sort()).toEqual(['rs1', 'rs1', 'rs1', 'rs2', 'rs2', 'rs2']);
    const udp = await lab.client<Served[]>(['udp-new', `${VIP}:9000`, '--count', '3']);
    expect(servers(udp)).toHaveLength(3);

    const { contentType } = await scrape();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const view = await consistentView();
    const e = view.metrics;

    const stats = parseListing(view.stats);
    expect(stats.filter((r) => r.kind === 'service')).toHaveLength(2);
    expect(stats.filter((r) => r.kind === 'dest')).toHaveLength(4);
    const statNames = ['connections', 'incoming_packets', 'outgoing_packets', 'incoming_bytes', 'outgoing_bytes'];
    const totals = [0, 0, 0, 0, 0];
    for (const r of stats) {
      expect(r.numbers).toHaveLength(5);
      statNames.forEach((n, f) => {
        const value = r.kind === 'service' ? valueOf(e, `tapvs_service_${n}_total`, serviceMatch(r)) : valueOf(e, `tapvs_backend_${n}_total`, backendMatch(r));
        expect(value, `${r.kind} ${r.vip} ${r.rip ?? ''} ${n}`).toBe(r.numbers[f]);
        if (r.kind === 'service') totals[f] += r.numbers[f];
      });
    }
    // The traffic is there: 6 TCP connections, 3 UDP ones, packets both ways.
    expect(valueOf(e, 'tapvs_service_connections_total', { local_port: '80' })).toBe(6);
    expect(valueOf(e, 'tapvs_service_connections_total', { local_port: '9000' })).toBe(3);
    expect(valueOf(e, 'tapvs_service_outgoing_packets_total', { local_port: '80' })).toBeGreaterThan(6);
    // node_exporter's totals are the sum over services.
    statNames.forEach((n, f) => expect(valueOf(e, `node_ipvs_${n}_total`), n).toBe(totals[f]));

    const rateNames = ['connections_per_second', 'incoming_packets_per_second', 'outgoing_packets_per_second', 'incoming_bytes_per_second', 'outgoing_bytes_per_second'];
    for (const r of parseListing(view.rate)) {
      rateNames.forEach((n, f) => {
        const value = r.kind === 'service' ? valueOf(e, `tapvs_service_${n}`, serviceMatch(r)) : valueOf(e, `tapvs_backend_${n}`, backendMatch(r));
        expect(value, `${r.kind} ${r.vip} ${r.rip ?? ''} ${n}`).toBe(r.numbers[f]);
      });
    }
    // -L -n: Weight ActiveConn InActConn = node_ipvs_backend_{weight,connections_active,connections_inactive}.
    const dests = parseListing(view.list).filter((r) => r.kind === 'dest');
    expect(dests).toHaveLength(4);
    for (const r of dests) {
      const [weight, active, inact] = r.numbers;
      expect(valueOf(e, 'node_ipvs_backend_weight', backendMatch(r))).toBe(weight);
      expect(valueOf(e, 'node_ipvs_backend_connections_active', backendMatch(r))).toBe(active);
      expect(valueOf(e, 'node_ipvs_backend_connections_inactive', backendMatch(r))).toBe(inact);
    }
    expect(valueOf(e, 'node_ipvs_backend_weight', { remote_address: RS2, remote_port: '9000', proto: 'UDP' })).toBe(2);

    // The connection table: entries by state add up to the entry count, which -L -c lists.
    const entries = valueOf(e, 'tapvs_connection_table_entries');
    expect(entries).toBeGreaterThanOrEqual(3);
    expect(samplesOf(e, 'tapvs_connections').reduce((n, s) => n + s.value, 0)).toBe(entries);
    expect(valueOf(e, 'tapvs_connections', { kind: 'connection', proto: 'UDP', state: 'UDP' })).toBe(3);
    // The data plane counted frames and forwarded both ways; the neighbour cache knows the hosts.
    expect(valueOf(e, 'tapvs_rx_frames_total')).toBeGreaterThan(0);
    expect(valueOf(e, 'tapvs_rx_batches_total')).toBeGreaterThan(0);
    expect(valueOf(e, 'tapvs_forwarded_packets_total', { direction: 'out' })).toBeGreaterThan(0);
    expect(valueOf(e, 'tapvs_neighbor_cache_entries', { state: 'reachable' })).toBeGreaterThanOrEqual(3);
    expect(valueOf(e, 'tapvs_tap_rx_frames_total')).toBeGreaterThan(0);
    expect(e.types.get('tapvs_nodejs_eventloop_lag_seconds')).toBe('gauge');

    // -Z zeroes the service counters and, as the kernel's "zero all" does, the totals.
    await tapvsOk(lab, ['-Z']);
    const z = parsePrometheusText((await scrape()).text);
    expect(valueOf(z, 'tapvs_service_connections_total', { local_port: '80' })).toBe(0);
    expect(valueOf(z, 'node_ipvs_connections_total')).toBe(0);
  });

  it('tapvs top prints one frame when stdout is not a terminal', async () => {
    const r = await run(process.execPath, [TAPVS_JS, 'top', '--socket', lab.socketPath, '-n']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('\x1b');
    expect(r.stdout).toMatch(/^TCP {2}198\.18\.1\.100:80\s+rr\s/m);
    expect(r.stdout).toMatch(/^UDP {2}198\.18\.1\.100:9000\s+rr\s/m);
    expect(r.stdout).toMatch(/^ {2}-> 198\.18\.2\.11:80\s+Masq\s+1\s+-\s/m);
    const once = await run(process.execPath, [TAPVS_JS, '--socket', lab.socketPath, 'top', '--once']);
    expect(once.code).toBe(0);
    const gone = await run(process.execPath, [TAPVS_JS, 'top', '--socket', path.join(dir, 'nothing.sock'), '--once']);
    expect(gone.code).toBe(255);
    expect(gone.stderr).toMatch(/cannot connect to tapvsd/);
  });

  it.skipIf(!TMUX)('tapvs top refreshes in place in a terminal (tmux) and quits with q or Ctrl-C', async () => {
    await tapvsOk(lab, ['-Z']);
    const res = await lab.client<Served[]>(['http', `${VIP}:80`, '--count', '4']);
    expect(servers(res)).toHaveLength(4);

    const tmux = (args: string[]): Promise<{ code: number; stdout: string }> => run('tmux', ['-S', tmuxSocket, ...args]);
    const statusFile = (name: string): string => path.join(dir, `${name}.status`);
    const start = async (name: string): Promise<void> => {
      // The shell records top's exit status (tmux's own #{pane_dead_status} is not reliable in 3.3).
      const cmd = `${process.execPath} ${TAPVS_JS} top --socket ${lab.socketPath} -n --interval 0.5; echo $? > ${statusFile(name)}`;
      const r = await tmux(['-f', '/dev/null', 'new-session', '-d', '-s', name, '-x', '160', '-y', '40', cmd]);
      expect(r.code, 'tmux new-session').toBe(0);
      tmuxSessions.push(name);
      // Keep the pane after the program exits, to look at the screen it left.
      await tmux(['set-option', '-t', name, 'remain-on-exit', 'on']);
    };
    const capture = async (name: string): Promise<string> => (await tmux(['capture-pane', '-p', '-t', name])).stdout;
    const exited = async (name: string, how: string): Promise<void> => {
      await waitFor(`top to quit on ${how}`, () => fs.existsSync(statusFile(name)) && fs.readFileSync(statusFile(name), 'utf8').trim() !== '', 10_000, 100);
      expect(fs.readFileSync(statusFile(name), 'utf8').trim(), `exit status after ${how}`).toBe('0');
      await waitFor('pane to close', async () => (await tmux(['display-message', '-p', '-t', name, '#{pane_dead}'])).stdout.trim() === '1', 10_000, 100);
      // The alternate screen was left: the frame is no longer on the terminal.
      expect(await capture(name)).not.toContain('tapvs top -');
    };

    const a = `top-q-${process.pid}`;
    await start(a);
    // The frame shows the service and both real servers with the numbers -L -n --stats --exact has.
    const stats = parseListing(await tapvsOk(lab, ['-L', '-n', '--stats', '--exact'])).filter((r) => r.vip === `${VIP}:80`);
    let frame = '';
    await waitFor(
      'tapvs top frame in tmux',
      async () => {
        frame = await capture(a);
        return stats.every((r) => {
          const label = r.kind === 'service' ? `TCP  ${r.vip}` : `  -> ${r.rip}`;
          const line = frame.split('\n').find((l) => l.startsWith(label));
          return line !== undefined && line.trim().split(/\s+/).includes(String(r.numbers[0]));
        });
      },
      15_000,
      200,
    );
    expect(frame).toMatch(/^tapvs top - .* - every 0\.5s - \d\d:\d\d:\d\d {4}q: quit$/m);
    const svcLine = frame.split('\n').find((l) => l.startsWith(`TCP  ${VIP}:80`))!;
    // Sched ActConn InActConn Conns: 4 connections since -Z.
    expect(svcLine.trim().split(/\s+/).slice(2, 6)).toEqual(['rr', expect.stringMatching(/^\d+$/), expect.stringMatching(/^\d+$/), '4']);
    for (const rip of [`${RS1}:80`, `${RS2}:80`]) {
      const l = frame.split('\n').find((x) => x.startsWith(`  -> ${rip}`))!;
      // Fwd Weight Health ActConn InActConn Conns (2 each: rr over two servers)
      const w = l.trim().split(/\s+/);
      expect(w.slice(2, 5)).toEqual(['Masq', '1', '-']);
      expect(w[7]).toBe('2');
    }
    expect(frame).toMatch(/^Drops: /m);
    await tmux(['send-keys', '-t', a, 'q']);
    await exited(a, 'q');

    const b = `top-c-${process.pid}`;
    await start(b);
    await waitFor('second frame', async () => (await capture(b)).includes(`TCP  ${VIP}:80`), 15_000, 200);
    await tmux(['send-keys', '-t', b, 'C-c']);
    await exited(b, 'Ctrl-C');
  });

  it('SIGHUP re-reads --rules and replaces the configuration all or nothing', async () => {
    const rules2 = `-A -t ${VIP}:8080 -s wrr
-a -t ${VIP}:8080 -r ${RS1}:80 -m -w 3
-a -t ${VIP}:8080 -r ${RS2}:80 -m -w 1
`;
    fs.writeFileSync(rulesFile, rules2);
    const logged = (what: RegExp): number => (lab.daemonOutput.match(new RegExp(what.source, 'gm')) ?? []).length;
    const before = logged(/rules reloaded/);
    process.kill(daemon.pid, 'SIGHUP');
    await waitFor('rules reloaded', () => logged(/rules reloaded/) > before, 10_000);
    expect(lab.daemonOutput).toMatch(new RegExp(`rules reloaded file=${rulesFile.replace(/[.]/g, '\\.')} commands=3`));
    const saved = await tapvsOk(lab, ['-S', '-n']);
    expect(saved).toBe(`-A -t ${VIP}:8080 -s wrr\n-a -t ${VIP}:8080 -r ${RS1}:80 -m -w 3\n-a -t ${VIP}:8080 -r ${RS2}:80 -m -w 1\n`);
    const res = servers(await lab.client<Served[]>(['http', `${VIP}:8080`, '--count', '4']));
    expect(res.filter((s) => s === 'rs1')).toHaveLength(3);

    // A bad line: nothing changes, the log names file:line.
    fs.writeFileSync(rulesFile, `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${RS1}:80 -m -w nine\n`);
    const failedBefore = logged(/rules reload failed/);
    process.kill(daemon.pid, 'SIGHUP');
    await waitFor('rules reload failed', () => logged(/rules reload failed/) > failedBefore, 10_000);
    expect(lab.daemonOutput).toMatch(/ERROR rules reload failed, configuration unchanged file=\S+ line=2 /);
    expect(await tapvsOk(lab, ['-S', '-n'])).toBe(saved);

    // A command the daemon refuses (a real server for a missing service): nothing changes either.
    fs.writeFileSync(rulesFile, `-A -t ${VIP}:81 -s rr\n-a -t ${VIP}:82 -r ${RS1}:80 -m\n`);
    const failed2 = logged(/rules reload failed/);
    process.kill(daemon.pid, 'SIGHUP');
    await waitFor('rules reload failed again', () => logged(/rules reload failed/) > failed2, 10_000);
    expect(lab.daemonOutput).toMatch(/rules reload failed, configuration unchanged file=\S+ line=2 error=ESRCH/);
    expect(await tapvsOk(lab, ['-S', '-n'])).toBe(saved);
    expect(daemon.child.exitCode).toBeNull();
  });
});
