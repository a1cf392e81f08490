/**
 * A bounded packet capture into a pcap file, with the `cap` package (libpcap). Run it inside a network
 * namespace (`ip netns exec NS node dist/src/lab/capture.js ...`): cap opens devices in the namespace of
 * the process that loads it, which is why the packet walk runs one of these per capture point.
 *
 *   capture.js --device IFNAME --out FILE.pcap [--seconds N] [--filter BPF] [--max-packets N]
 *
 * Prints `capturing on IFNAME` once the device is open (the parent waits for it), appends every packet
 * to FILE as it arrives, and exits 0 after N seconds (default 10, at most 300), after --max-packets
 * packets, or on SIGTERM/SIGINT. Exits 3 when cap cannot be loaded (optional dependency not installed or
 * libpcap missing), 2 on usage errors, 1 when the device cannot be opened.
 */
import fs from 'node:fs';
import { loadCap } from './cap.js';
import { LINKTYPE_ETHERNET, PCAP_DEFAULT_SNAPLEN, pcapGlobalHeader, pcapRecord } from './pcap.js';

const LINKTYPES: Record<string, number> = { ETHERNET: LINKTYPE_ETHERNET, NULL: 0, RAW: 101, LINUX_SLL: 113, IEEE802_11: 105 };

function main(): number {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const device = opt('--device');
  const outFile = opt('--out');
  const seconds = Math.min(300, Math.max(0.1, Number(opt('--seconds') ?? '10') || 10));
  const filter = opt('--filter') ?? '';
  const maxPackets = Math.max(1, Number(opt('--max-packets') ?? '100000') || 100000);
  if (!device || !outFile) {
    process.stderr.write('usage: capture.js --device IFNAME --out FILE.pcap [--seconds N] [--filter BPF] [--max-packets N]\n');
    return 2;
  }
  const { cap, error } = loadCap();
  if (!cap) {
    process.stderr.write(`capture: the cap package is not available (${error}); install libpcap-dev and run npm install\n`);
    return 3;
  }
  const c = new cap.Cap();
  const buffer = Buffer.alloc(PCAP_DEFAULT_SNAPLEN);
  let linkTypeName: string;
  try {
    linkTypeName = c.open(device, filter, 4 * 1024 * 1024, buffer);
  } catch (e) {
    process.stderr.write(`capture: cannot open ${device}: ${(e as Error).message}\n`);
    return 1;
  }
  const linkType = LINKTYPES[linkTypeName] ?? LINKTYPE_ETHERNET;
  const fd = fs.openSync(outFile, 'w');
  fs.writeSync(fd, pcapGlobalHeader(linkType, PCAP_DEFAULT_SNAPLEN));
  let count = 0;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    try {
      c.close();
    } catch {
      /* already closed */
    }
    fs.closeSync(fd);
    process.stdout.write(`captured ${count} packets on ${device} into ${outFile}\n`);
    process.exit(0);
  };
  c.on('packet', (nbytes: number) => {
    if (done) return;
    // performance.timeOrigin + now() is the wall clock with sub-millisecond resolution.
    const timeUs = Math.round((performance.timeOrigin + performance.now()) * 1000);
    const len = Math.min(nbytes, buffer.length);
    fs.writeSync(fd, pcapRecord({ timeUs, origLen: nbytes, data: buffer.subarray(0, len) }));
    if (++count >= maxPackets) finish();
  });
  const timer = setTimeout(finish, seconds * 1000);
  process.on('SIGTERM', finish);
  process.on('SIGINT', finish);
  process.stdout.write(`capturing on ${device} (${linkTypeName}) filter '${filter}' for at most ${seconds} s\n`);
  return -1; // keep running until finish()
}

const code = main();
if (code >= 0) process.exit(code);
