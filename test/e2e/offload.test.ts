/**
 * tapvsd --offload end to end: IFF_VNET_HDR with checksum and TCP segmentation offload on the TAP, so TCP
 * crosses it as super-frames of up to 64 KB. Large uploads and downloads through every forwarding method,
 * checked byte for byte (SHA-256 of what the real server received); NAT, DR and plain FULLNAT forward the
 * super-frames as they are, tunnels and PROXY-protocol FULLNAT cut them into segments in userspace.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import { LAB_VIP, LAB_VIP6, labRealServer, labRealServer6, type LabTopology } from '../../src/lab/topology.js';
import { SKIP_REASON, tapvsOk, useLab } from './lab-fixture.js';

const SIZE = 8 * 1024 * 1024;

/** Upload SIZE bytes with a POST from the client; what the real server says it received. */
async function upload(lab: LabTopology, host: string, port = 80): Promise<{ received: number; sha256: string; expected: string; peer: string; proxyClient?: string }> {
  const family = host.includes(':') ? 'socket.AF_INET6' : 'socket.AF_INET';
  const r = await lab.exec(lab.cli, 'python3', [
    '-c',
    [
      'import socket, hashlib, json',
      `data = bytes(range(256)) * ${SIZE / 256}`,
      `s = socket.socket(${family}, socket.SOCK_STREAM)`,
      's.settimeout(30)',
      `s.connect(('${host}', ${port}))`,
      `s.sendall(b'POST /upload HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: ${SIZE}\\r\\nConnection: close\\r\\n\\r\\n' + data)`,
      "d = b''",
      'while True:',
      '  c = s.recv(65536)',
      '  if not c: break',
      '  d += c',
      "body = json.loads(d.split(b'\\r\\n\\r\\n', 1)[1])",
      "body['expected'] = hashlib.sha256(data).hexdigest()",
      'print(json.dumps(body))',
    ].join('\n'),
  ], 60_000);
  if (r.code !== 0) throw new Error(`upload failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Download SIZE bytes (the lab server's ?bytes=N); the byte count the client got. */
async function download(lab: LabTopology, host: string): Promise<number> {
  const target = host.includes(':') ? `[${host}]` : host;
  const r = await lab.exec(lab.cli, 'python3', [
    '-c',
    `import urllib.request\nprint(len(urllib.request.urlopen('http://${target}/?bytes=${SIZE}', timeout=30).read()))`,
  ], 60_000);
  if (r.code !== 0) throw new Error(`download failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

async function offloadCounters(lab: LabTopology): Promise<{ enabled: boolean; superFrames: number; segmented: number }> {
  const client = new ControlClient(lab.socketPath);
  const reply = await client.request({ op: 'get-counters' });
  client.close();
  if (!reply.ok) throw new Error('get-counters failed');
  return (reply.counters as { offload: { enabled: boolean; superFrames: number; segmented: number } }).offload;
}

describe.skipIf(SKIP_REASON !== null)('tapvsd --offload (IPv4)', () => {
  const { lab } = useLab({ realServers: 2, directorArgs: ['--offload'] });
  const RS1 = labRealServer(0), RS2 = labRealServer(1);

  beforeEach(async () => {
    await tapvsOk(lab(), ['-C']);
  });

  it('NAT forwards super-frames both ways: 8 MB up and down, byte for byte', async () => {
    await tapvsOk(lab(), ['-A', '-t', `${LAB_VIP}:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `${LAB_VIP}:80`, '-r', `${RS1}:80`, '-m']);
    const before = await offloadCounters(lab());
    expect(before.enabled).toBe(true);
    const up = await upload(lab(), LAB_VIP);
    expect([up.received, up.sha256]).toEqual([SIZE, up.expected]);
    expect(await download(lab(), LAB_VIP)).toBe(SIZE);
    const after = await offloadCounters(lab());
    expect(after.superFrames).toBeGreaterThan(before.superFrames); // the TAP did carry super-frames
    expect(after.segmented).toBe(before.segmented); // and NAT forwarded them whole
  });

  it('TUN cuts super-frames into segments before encapsulating', async () => {
    await lab().realServerForDirectRouting(1, '198.18.1.105');
    await lab().startTunnelReceiver(1, '198.18.1.105', 'ipip');
    await tapvsOk(lab(), ['-A', '-t', '198.18.1.105:80', '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', '198.18.1.105:80', '-r', `${RS2}:80`, '-i']);
    const before = await offloadCounters(lab());
    const up = await upload(lab(), '198.18.1.105');
    expect([up.received, up.sha256]).toEqual([SIZE, up.expected]);
    expect((await offloadCounters(lab())).segmented).toBeGreaterThan(before.segmented);
  });

  it('DR forwards super-frames to the real server as they are', async () => {
    await lab().holdVipOnLoopback(1, '198.18.1.106');
    await tapvsOk(lab(), ['-A', '-t', '198.18.1.106:80', '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', '198.18.1.106:80', '-r', `${RS2}:80`, '-g']);
    const up = await upload(lab(), '198.18.1.106');
    expect([up.received, up.sha256]).toEqual([SIZE, up.expected]);
  });

  it('FULLNAT: plain forwards super-frames; with PROXY protocol they are cut, and the header still comes first', async () => {
    await tapvsOk(lab(), ['-A', '-t', '198.18.1.107:80', '-s', 'rr']);
    await tapvsOk(lab(), ['--add-laddr', '-t', '198.18.1.107:80', '-z', '198.18.2.201']);
    await tapvsOk(lab(), ['-a', '-t', '198.18.1.107:80', '-r', `${RS1}:80`, '--fullnat']);
    const plain = await upload(lab(), '198.18.1.107');
    expect([plain.received, plain.sha256, plain.peer]).toEqual([SIZE, plain.expected, '198.18.2.201']);
    expect(await download(lab(), '198.18.1.107')).toBe(SIZE);

    await lab().startRealServer(0, ['--http-port', '8080', '--udp-port', '9001', '--proxy-protocol']);
    await tapvsOk(lab(), ['-A', '-t', '198.18.1.108:80', '-s', 'rr', '--proxy-protocol']);
    await tapvsOk(lab(), ['--add-laddr', '-t', '198.18.1.108:80', '-z', '198.18.2.202']);
    await tapvsOk(lab(), ['-a', '-t', '198.18.1.108:80', '-r', `${RS1}:8080`, '--fullnat']);
    const before = await offloadCounters(lab());
    expect(await download(lab(), '198.18.1.108')).toBe(SIZE);
    expect((await offloadCounters(lab())).segmented).toBeGreaterThan(before.segmented);
  });
});

describe.skipIf(SKIP_REASON !== null)('tapvsd --offload (IPv6)', () => {
  const { lab } = useLab({ realServers: 2, ipv6: true, directorArgs: ['--offload'] });

  it('NAT and TUN over IPv6: 8 MB byte for byte, super-frames forwarded or cut', async () => {
    await tapvsOk(lab(), ['-A', '-t', `[${LAB_VIP6}]:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `[${LAB_VIP6}]:80`, '-r', `[${labRealServer6(0)}]:80`, '-m']);
    const up = await upload(lab(), LAB_VIP6);
    expect([up.received, up.sha256]).toEqual([SIZE, up.expected]);
    expect(await download(lab(), LAB_VIP6)).toBe(SIZE);
    expect((await offloadCounters(lab())).superFrames).toBeGreaterThan(0);

    const TUN_VIP = 'fd00:1::105';
    await lab().realServerForDirectRouting(1, TUN_VIP);
    await lab().startTunnelReceiver(1, TUN_VIP, 'ipip');
    await tapvsOk(lab(), ['-A', '-t', `[${TUN_VIP}]:80`, '-s', 'rr']);
    await tapvsOk(lab(), ['-a', '-t', `[${TUN_VIP}]:80`, '-r', `[${labRealServer6(1)}]:80`, '-i']);
    const before = await offloadCounters(lab());
    const tun = await upload(lab(), TUN_VIP);
    expect([tun.received, tun.sha256]).toEqual([SIZE, tun.expected]);
    expect((await offloadCounters(lab())).segmented).toBeGreaterThan(before.segmented);
  });
});
