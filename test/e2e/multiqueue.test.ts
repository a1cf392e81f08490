/**
 * tapvsd --queues 2 end to end: a multiqueue TAP with one worker thread per queue, each with its own
 * pipeline and connection table, and tapvs's BPF steering bringing both directions of a connection to
 * one queue. Real clients and servers in the lab's namespaces (IPv4 and IPv6): every connection must
 * complete, both queues must carry traffic, and the listings must show the sum of the queues.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fold6, steeringQueue } from '../../src/dataplane/flow-steering.js';
import { parseIpv4 } from '../../src/dataplane/wire/ipv4.js';
import { parseIpv6 } from '../../src/dataplane/wire/ipv6.js';
import { ControlClient } from '../../src/control/client.js';
import { LAB_CLIENT, LAB_CLIENT6, LAB_VIP, LAB_VIP6, labRealServer, labRealServer6 } from '../../src/lab/topology.js';
import { SKIP_REASON, servers, tapvsOk, useLab, type Served } from './lab-fixture.js';
import { stop, waitFor, type Background } from '../../src/lab/processes.js';

const VIP = LAB_VIP;
const RS1 = labRealServer(0);
const RS2 = labRealServer(1);
const FN_VIP = '198.18.1.103';
const LIP = '198.18.2.200';

interface QueueCounters {
  framesIn: number;
  connections: number;
  queues: { framesIn: number; forwardedIn: number; connections: number }[];
}

describe.skipIf(SKIP_REASON !== null)('tapvsd --queues 2', () => {
  // Rules applied before the queues start: the workers must get them too.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapvs-mq-'));
  const rulesFile = path.join(dir, 'rules');
  fs.writeFileSync(rulesFile, `-A -t ${VIP}:8080 -s wrr\n-a -t ${VIP}:8080 -r ${RS2}:80 -m -w 1\n`);
  const { lab, daemon } = useLab({ ipv6: true, directorArgs: ['--queues', '2', '--rules', rulesFile, '--metrics', '127.0.0.1:0'] });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** GET the metrics from inside the director's namespace (where tapvsd bound 127.0.0.1). */
  async function scrape(): Promise<string> {
    const url = /metrics listening url=(\S+)/.exec(daemon().output())![1];
    const r = await lab().exec(lab().dir, process.execPath, ['-e', `fetch(${JSON.stringify(url)}).then(async (r) => process.stdout.write(await r.text()))`]);
    if (r.code !== 0) throw new Error(`scrape failed: ${r.stderr}`);
    return r.stdout;
  }

  async function counters(): Promise<QueueCounters> {
    const client = new ControlClient(lab().socketPath);
    try {
      const reply = await client.request({ op: 'get-counters' });
      if (!reply.ok) throw new Error(reply.message ?? reply.errno);
      return reply.counters as unknown as QueueCounters;
    } finally {
      client.close();
    }
  }

  it('the --rules file applied before the queues started works on both', async () => {
    const res = await lab().client<Served[]>(['http', `${VIP}:8080`, '--count', '10']);
    expect(res.filter((r) => r.error)).toEqual([]);
    expect(new Set(servers(res))).toEqual(new Set(['rs2']));
    const c = await counters();
    for (const q of c.queues) expect(q.forwardedIn).toBeGreaterThan(0);
  });

  it('NAT over both queues: every connection completes, listings and metrics sum the queues', async () => {
    await tapvsOk(lab(), ['-C']);
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '-m']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS2}:80`, '-m']);
    const res = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '60']);
    expect(res.filter((r) => r.error)).toEqual([]);
    expect(new Set(servers(res))).toEqual(new Set(['rs1', 'rs2']));

    const c = await counters();
    expect(c.queues).toHaveLength(2);
    // Client ports spread the connections over both queues; the replies came back to the same queue
    // (else the connections above would not have completed).
    for (const q of c.queues) expect(q.forwardedIn).toBeGreaterThan(20);
    expect(c.framesIn).toBe(c.queues[0].framesIn + c.queues[1].framesIn);

    // The listing is the sum of both queues' counts: 60 connections, none of them active any more.
    const stats = await tapvsOk(lab(), ['-L', '-n', '--stats', '--exact']);
    const svc = stats.split('\n').find((l) => l.startsWith('TCP'))!.trim().split(/\s+/);
    expect(Number(svc[2])).toBe(60); // Conns
    // Every connection is counted on one queue or the other (the last FINs may still be on their way).
    let counted = 0;
    for (let attempt = 0; attempt < 25 && counted !== 60; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 200));
      const list = await tapvsOk(lab(), ['-L', '-n']);
      counted = list
        .split('\n')
        .filter((l) => l.startsWith('  -> 198.'))
        .reduce((n, l) => n + Number(l.trim().split(/\s+/)[4]) + Number(l.trim().split(/\s+/)[5]), 0);
    }
    expect(counted).toBe(60);
    const conns = await tapvsOk(lab(), ['-L', '-n', '-c']);
    // Both queues' connections, the rules file service's ones (deleted by -C) included, as ipvsadm -L -c shows them.
    expect(conns.split('\n').filter((l) => / 198\.18\.1\.100:80 /.test(l)).length).toBe(60);
    expect(conns.split('\n').filter((l) => / 198\.18\.1\.100:8080 /.test(l)).length).toBe(10);
    // The director's totals: these 60 and the 10 of the rules file's service (deleted by -C, still counted).
    const metrics = await scrape();
    expect(metrics).toMatch(/^node_ipvs_connections_total 70$/m);
    // The connection table's gauges are the queues' too: the 70 connections, in TIME_WAIT for 2 minutes.
    expect(metrics).toMatch(/^tapvs_connection_table_entries 70$/m);
    expect(metrics).toMatch(/^tapvs_connections\{kind="connection",proto="TCP",state="TIME_WAIT"\} 70$/m);
    expect(metrics).toMatch(/^tapvs_rx_frames_total [1-9]\d*$/m);
    // Each queue schedules round robin on its own, so the split between the two need not be 30/30.
    const inactive = [...metrics.matchAll(/^node_ipvs_backend_connections_inactive\{local_address="198\.18\.1\.100",local_port="80",.*\} (\d+)$/gm)].map((m) => Number(m[1]));
    expect(inactive).toHaveLength(2);
    expect(inactive[0] + inactive[1]).toBe(60);
  });

  it('UDP and FULLNAT: each queue takes local ports whose replies come back to it', async () => {
    await tapvsOk(lab(), ['-C']);
    await tapvsOk(lab(), ['-A', '-t', `${FN_VIP}:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['--add-laddr', '-t', `${FN_VIP}:80`, '-z', LIP]);
    await tapvsOk(lab(), ['-a', '-t', `${FN_VIP}:80`, '-r', `${RS1}:80`, '--fullnat']);
    await tapvsOk(lab(), ['-a', '-t', `${FN_VIP}:80`, '-r', `${RS2}:80`, '--fullnat']);
    const res = await lab().client<Served[]>(['http', `${FN_VIP}:80`, '--count', '40']);
    expect(res.filter((r) => r.error)).toEqual([]);
    for (const r of res) expect(r.peer).toBe(LIP);

    await tapvsOk(lab(), ['-A', '-u', `${VIP}:9000`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', `${RS1}:9000`, '-m']);
    const udp = await lab().client<Served[]>(['udp-new', `${VIP}:9000`, '--count', '20']);
    expect(udp.filter((r) => r.error)).toEqual([]);
    const c = await counters();
    for (const q of c.queues) expect(q.forwardedIn).toBeGreaterThan(10);
  });

  it("ICMP errors go to the queue of the connection they are about (NAT and FULLNAT, IPv4 and IPv6)", async () => {
    await tapvsOk(lab(), ['-C']);
    const FN6_VIP = 'fd00:1::102', LIP6 = 'fd00:2::200';
    await tapvsOk(lab(), ['-A', '-u', `${VIP}:9999`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9999`, '-r', `${RS1}:9999`, '-m']);
    await tapvsOk(lab(), ['-A', '-u', `${FN_VIP}:9999`, '-s', 'rr']);
    await tapvsOk(lab(), ['--add-laddr', '-u', `${FN_VIP}:9999`, '-z', LIP]);
    await tapvsOk(lab(), ['-a', '-u', `${FN_VIP}:9999`, '-r', `${RS1}:9999`, '--fullnat']);
    await tapvsOk(lab(), ['-A', '-u', `[${LAB_VIP6}]:9999`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-u', `[${LAB_VIP6}]:9999`, '-r', `[${labRealServer6(0)}]:9999`, '-m']);
    await tapvsOk(lab(), ['-A', '-u', `[${FN6_VIP}]:9999`, '-s', 'rr']);
    await tapvsOk(lab(), ['--add-laddr', '-u', `[${FN6_VIP}]:9999`, '-z', LIP6]);
    await tapvsOk(lab(), ['-a', '-u', `[${FN6_VIP}]:9999`, '-r', `[${labRealServer6(0)}]:9999`, '--fullnat']);
    // Six sockets per VIP, from source ports chosen so that three connections live on each queue (six:
    // the real server's kernel sends one peer no more than a burst of 6 errors). rs1 serves nothing on
    // 9999: its port unreachable must come back translated to every socket, whichever queue it is on.
    const portsFor = (key: number, from: number): number[] => {
      const ports: number[] = [];
      for (const q of [0, 1]) for (let p = from, n = 0; n < 3; p++) if (steeringQueue(key, p, 2) === q) ports.push(p), n++;
      return ports;
    };
    const cases: [string, string, number[]][] = [
      ['AF_INET', VIP, portsFor(parseIpv4(LAB_CLIENT), 40000)],
      ['AF_INET', FN_VIP, portsFor(parseIpv4(LAB_CLIENT), 41000)],
      ['AF_INET6', LAB_VIP6, portsFor(fold6(parseIpv6(LAB_CLIENT6)!), 40000)],
      ['AF_INET6', FN6_VIP, portsFor(fold6(parseIpv6(LAB_CLIENT6)!), 41000)],
    ];
    for (const [family, vip, ports] of cases) {
      const any = family === 'AF_INET' ? '0.0.0.0' : '::';
      const r = await lab().exec(lab().cli, 'python3', [
        '-c',
        `import socket\nout=[]\nfor p in [${ports.join(',')}]:\n  s=socket.socket(socket.${family},socket.SOCK_DGRAM)\n  s.bind(('${any}',p))\n  s.settimeout(2)\n  s.connect(('${vip}',9999))\n  s.send(b'x')\n  try:\n    s.recv(100); out.append('reply')\n  except ConnectionRefusedError: out.append('refused')\n  except socket.timeout: out.append('timeout')\nprint(' '.join(out))`,
      ], 60_000);
      expect(r.stdout.trim(), `${vip} from ports ${ports}: ${r.stderr}`).toBe(Array(6).fill('refused').join(' '));
    }
  }, 90_000);

  it('IPv6 NAT: Neighbour Discovery learnt on queue 0 reaches the other queue', async () => {
    await tapvsOk(lab(), ['-C']);
    await tapvsOk(lab(), ['-A', '-t', `[${LAB_VIP6}]:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `[${LAB_VIP6}]:80`, '-r', `[${labRealServer6(0)}]:80`, '-m']);
    await tapvsOk(lab(), ['-a', '-t', `[${LAB_VIP6}]:80`, '-r', `[${labRealServer6(1)}]:80`, '-m']);
    const res = await lab().client<Served[]>(['http', `[${LAB_VIP6}]:80`, '--count', '30']);
    expect(res.filter((r) => r.error)).toEqual([]);
    expect(new Set(servers(res))).toEqual(new Set(['rs1', 'rs2']));
  });

  it('refuses a persistent service, with nothing applied', async () => {
    await tapvsOk(lab(), ['-C']);
    const r = await lab().tapvs(['-A', '-t', `${VIP}:81`, '-s', 'rr', '-p', '60']);
    expect(r.code).not.toBe(0);
    expect(await tapvsOk(lab(), ['-S', '-n'])).toBe('');
    expect(daemon().output()).toContain('persistent services need tapvsd --steer-by address');
  });
});

describe.skipIf(SKIP_REASON !== null)('tapvsd --queues 2 --steer-by address', () => {
  const { lab, daemon } = useLab({ directorArgs: ['--queues', '2', '--steer-by', 'address'] });
  // More client addresses, chosen so that the program's hash (address only) puts some on each queue.
  const clients = Array.from({ length: 6 }, (_, i) => `198.18.1.${3 + i}`);
  const queueOf = (a: string): number => steeringQueue(parseIpv4(a), 0, 2);
  beforeAll(async () => {
    expect(new Set(clients.map(queueOf))).toEqual(new Set([0, 1]));
    for (const a of clients) {
      const r = await lab().exec(lab().cli, 'ip', ['addr', 'add', `${a}/24`, 'dev', 'eth0']);
      expect(r.code, r.stderr).toBe(0);
    }
  });

  async function forwardedPerQueue(): Promise<number[]> {
    const client = new ControlClient(lab().socketPath);
    try {
      const reply = await client.request({ op: 'get-counters' });
      if (!reply.ok) throw new Error(reply.message ?? reply.errno);
      return (reply.counters as unknown as QueueCounters).queues.map((q) => q.forwardedIn);
    } finally {
      client.close();
    }
  }

  it('persistence holds for every client although the clients are spread over both queues', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', 'rr', '-p', '60']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS1}:80`, '-m']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', `${RS2}:80`, '-m']);
    const before = await forwardedPerQueue();
    const chosen = new Set<string>();
    for (const a of clients) {
      const res = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '6', '--source', a]);
      expect(res.filter((r) => r.error)).toEqual([]);
      const served = new Set(servers(res));
      expect(served.size, `${a}: ${servers(res)}`).toBe(1); // one real server per client, whatever the port
      chosen.add([...served][0]);
    }
    expect(chosen).toEqual(new Set(['rs1', 'rs2'])); // the templates of different clients differ
    const after = await forwardedPerQueue();
    expect(after[0] - before[0]).toBeGreaterThan(0);
    expect(after[1] - before[1]).toBeGreaterThan(0);
    // One template per client (persistent connections: 6 per client address).
    const conns = await tapvsOk(lab(), ['-L', '-n', '-c']);
    const templates = conns.split('\n').filter((l) => / 198\.18\.1\.100:80 /.test(l) && / (NONE|ASSURED) /.test(l));
    expect(templates.length).toBe(clients.length);
  });

  it('refuses persistence by network (-M coarser than a host), nothing applied', async () => {
    await tapvsOk(lab(), ['-C']);
    const r = await lab().tapvs(['-A', '-t', `${VIP}:81`, '-s', 'rr', '-p', '60', '-M', '255.255.255.0']);
    expect(r.code).not.toBe(0);
    expect(await tapvsOk(lab(), ['-S', '-n'])).toBe('');
    expect(daemon().output()).toContain('persistence works per client address only');
  });

  it('FULLNAT: local ports still steer replies to their queue', async () => {
    await tapvsOk(lab(), ['-C']);
    await tapvsOk(lab(), ['-A', '-t', `${FN_VIP}:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['--add-laddr', '-t', `${FN_VIP}:80`, '-z', LIP]);
    await tapvsOk(lab(), ['-a', '-t', `${FN_VIP}:80`, '-r', `${RS1}:80`, '--fullnat']);
    for (const a of clients) {
      const res = await lab().client<Served[]>(['http', `${FN_VIP}:80`, '--count', '5', '--source', a]);
      expect(res.filter((r) => r.error)).toEqual([]);
    }
  });
});

describe.skipIf(SKIP_REASON !== null)('tapvsd --queues 2 --keepalived', () => {
  // The health checkers run on the main thread; what they change must reach both queues.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapvs-mq-ka-'));
  const conf = path.join(dir, 'keepalived.conf');
  fs.writeFileSync(
    conf,
    `virtual_server ${VIP} 80 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    retry 1\n    delay_before_retry 1\n    connect_timeout 1\n` +
      `    real_server ${RS1} 80 {\n        weight 1\n        TCP_CHECK {\n        }\n    }\n` +
      `    real_server ${RS2} 80 {\n        weight 1\n        TCP_CHECK {\n        }\n    }\n}\n`,
  );
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const started: Background[] = [];
  const { lab } = useLab({
    directorArgs: ['--queues', '2', '--keepalived', conf],
    startRealServers: async (l) => {
      for (let i = 0; i < 2; i++) started.push(await l.startRealServer(i));
    },
  });
  const list = async (): Promise<string> => tapvsOk(lab(), ['-L', '-n']);

  it('a real server taken out by its TCP_CHECK gets no connection on any queue, and comes back on both', async () => {
    const both = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '20']);
    expect(new Set(servers(both))).toEqual(new Set(['rs1', 'rs2']));

    await stop(started[1]);
    await waitFor('rs2 removed by its TCP_CHECK', async () => !(await list()).includes(`${RS2}:80`), 15_000);
    const one = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '20']);
    expect(new Set(servers(one))).toEqual(new Set(['rs1']));

    started[1] = await lab().startRealServer(1);
    await waitFor('rs2 back', async () => (await list()).includes(`${RS2}:80`), 15_000);
    const again = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '20']);
    expect(new Set(servers(again))).toEqual(new Set(['rs1', 'rs2']));
  }, 60_000);
});
