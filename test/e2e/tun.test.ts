/**
 * IP tunnelling (LVS-TUN, ipvsadm -i, "Tunnel") end to end. This kernel has no ipip module, so the real
 * server runs tapvs's companion `tapvs-rs ipip`, which decapsulates on a raw socket and hands the client's
 * packet to its stack through a TUN device; the real server answers the client directly from the VIP.
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LAB_CLIENT, LAB_VIP, labRealServer } from '../../src/lab/topology.js';
import { SKIP_REASON, servers, tapvsOk, useLab, type Served } from './lab-fixture.js';

const VIP = LAB_VIP;
const RS1 = labRealServer(0);

describe.skipIf(SKIP_REASON !== null)('IPIP tunnelling end to end', () => {
  const { lab } = useLab({ realServers: 1 });

  beforeAll(async () => {
    await lab().realServerForDirectRouting(0);
    await lab().startTunnelReceiver(0);
    await lab().startTunnelReceiver(0, VIP, 'gre');
    await lab().startTunnelReceiver(0, VIP, 'gue', 6080);
    await lab().startRealServer(0, ['--no-http', '--udp-address', VIP]);
  });

  beforeEach(async () => {
    await tapvsOk(lab(), ['-C']);
  });

  it('carries TCP to the real server in IPIP; the real server answers the client directly', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', RS1, '-i']);
    expect(await tapvsOk(lab(), ['-L', '-n'])).toContain(`  -> ${`${RS1}:80`.padEnd(28)} Tunnel  1      0          0         \n`);
    const res = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '3']);
    expect(servers(res)).toEqual(['rs1', 'rs1', 'rs1']);
    for (const r of res) {
      expect(r.from).toBe(`${VIP}:80`);
      expect(r.peer).toBe(LAB_CLIENT);
    }
    const stats = await tapvsOk(lab(), ['-L', '-n', '--stats', '--exact']);
    const svc = stats.split('\n').find((l) => l.startsWith('TCP'))!.trim().split(/\s+/).slice(2).map(Number);
    expect(svc[0]).toBe(3);
    expect(svc[2]).toBe(0); // OutPkts: replies bypass the director
  });

  it('carries UDP', async () => {
    await tapvsOk(lab(), ['-A', '-u', `${VIP}:9000`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', RS1, '-i']);
    const res = await lab().client<Served[]>(['udp-new', `${VIP}:9000`, '--count', '3']);
    expect(servers(res)).toEqual(['rs1', 'rs1', 'rs1']);
    expect(res[0].from).toBe(`${VIP}:9000`);
  });

  it('GRE (with checksum) and GUE (with and without checksum) tunnels, decapsulated by tapvs-rs', async () => {
    for (const opts of [['--tun-type', 'gre', '--tun-csum'], ['--tun-type', 'gre'], ['--tun-type', 'gue', '--tun-port', '6080'], ['--tun-type', 'gue', '--tun-port', '6080', '--tun-csum']]) {
      await tapvsOk(lab(), ['-C']);
      await tapvsOk(lab(), ['-A', '-t', `${VIP}:80`, '-s', 'rr']);
      await tapvsOk(lab(), ['-a', '-t', `${VIP}:80`, '-r', RS1, '-i', ...opts]);
      const res = await lab().client<Served[]>(['http', `${VIP}:80`, '--count', '2']);
      expect(servers(res), opts.join(' ')).toEqual(['rs1', 'rs1']);
      expect(res[0].peer).toBe(LAB_CLIENT);
      expect(res[0].from).toBe(`${VIP}:80`);
    }
    const info = await tapvsOk(lab(), ['-L', '-n', '--tun-info']);
    expect(info).toContain('gue:6080:+c');
    expect(await tapvsOk(lab(), ['-S', '-n'])).toContain('-i -w 1 --tun-type gue --tun-port 6080 --tun-csum');
  });

  it('a datagram that no longer fits with the outer header gets ICMP fragmentation needed with MTU 1480', async () => {
    await tapvsOk(lab(), ['-A', '-u', `${VIP}:9000`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', RS1, '-i']);
    // 1472 bytes of payload = a 1500-byte IP packet with DF set (IP_MTU_DISCOVER = IP_PMTUDISC_DO).
    const send = await lab().exec(lab().cli, 'python3', [
      '-c',
      `import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(socket.IPPROTO_IP,10,2)\ns.sendto(b'x'*1472,('${VIP}',9000))\ntime.sleep(0.5)`,
    ]);
    expect(send.code).toBe(0);
    const route = await lab().exec(lab().cli, 'ip', ['route', 'get', VIP]);
    expect(route.stdout).toMatch(/mtu 1480/);
  });
});

describe.skipIf(SKIP_REASON !== null)('tapvsd --mtu', () => {
  const { lab } = useLab({ realServers: 1, directorArgs: ['--mtu', '1400'] });

  it('sets the TAP MTU and the tunnel MTU the director reports (1400 - 20)', async () => {
    const link = await lab().exec(lab().dir, 'ip', ['link', 'show', 'tapvs0']);
    expect(link.stdout).toMatch(/mtu 1400 /);
    await lab().realServerForDirectRouting(0);
    await tapvsOk(lab(), ['-A', '-u', `${VIP}:9000`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-u', `${VIP}:9000`, '-r', RS1, '-i']);
    const send = await lab().exec(lab().cli, 'python3', [
      '-c',
      `import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(socket.IPPROTO_IP,10,2)\ns.sendto(b'x'*1372,('${VIP}',9000))\ntime.sleep(0.5)`,
    ]);
    expect(send.code).toBe(0);
    expect((await lab().exec(lab().cli, 'ip', ['route', 'get', VIP])).stdout).toMatch(/mtu 1380/);
  });
});
