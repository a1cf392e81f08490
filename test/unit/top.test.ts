/** `tapvs top`: argument handling and the frame it draws, from a fixed snapshot. */
import { describe, expect, it } from 'vitest';
import { FileNameDatabase } from '../../src/cli/address-port.js';
import { compactNumber, parseTopArgs, renderTopFrame, topArguments } from '../../src/cli/tapvs-top.js';
import type { DestinationSnapshot, ServiceSnapshot, TableSnapshot } from '../../src/control/model.js';

const zero = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
const noRate = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };

function dest(addr: string, weight: number, active: number, inact: number, conns: number, inpps: number): DestinationSnapshot {
  return {
    af: 4, addr, port: 80, forward: 0, weight, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0,
    activeConns: active, inactConns: inact, persistConns: 0,
    stats: { ...zero, conns }, rate: { ...noRate, inpps, inbps: 123456 },
  };
}

const service: ServiceSnapshot = {
  af: 4, protocol: 6, addr: '198.18.1.100', port: 80, fwmark: 0, scheduler: 'wrr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '',
  stats: { ...zero, conns: 9 }, rate: { ...noRate, cps: 4, inpps: 30 },
  dests: [dest('198.18.2.12', 1, 1, 2, 3, 10), dest('198.18.2.11', 3, 4, 5, 6, 20)],
};
const table: TableSnapshot = { connTabSize: 4096, services: [service], timeouts: { tcp: 900, tcpfin: 120, udp: 300 } };
const counters = {
  connections: 12,
  neighbors: 3,
  framesIn: 300,
  batches: 100,
  connectionCapacity: { maxEntries: 1048576, memoryBytes: 3 << 20 },
  drops: { malformed: 0, host: 7, 'not-routed': 2, 'table-full': 0 },
};
const names = FileNameDatabase.fromText('198.18.1.100 www.example\n', 'http 80/tcp\n');

describe('tapvs top', () => {
  it('is dispatched only when top is the first word after --socket', () => {
    expect(topArguments(['top', '--once'])).toEqual(['--once']);
    expect(topArguments(['--socket', '/s', 'top', '-n'])).toEqual(['--socket', '/s', '-n']);
    expect(topArguments(['--socket=/s', 'top'])).toEqual(['--socket=/s']);
    expect(topArguments(['-L', '-n'])).toBeNull();
    expect(topArguments(['-A', '-t', 'top:80'])).toBeNull();
    expect(topArguments([])).toBeNull();
  });

  it('parses its options', () => {
    expect(parseTopArgs(['--socket', '/x', '--interval', '0.5', '-n', '--once'])).toEqual({ socketPath: '/x', intervalMs: 500, numeric: true, once: true });
    const d = parseTopArgs([]);
    expect(d).toMatchObject({ intervalMs: 2000, numeric: false, once: false });
    expect(parseTopArgs(['--interval', '0'])).toHaveProperty('error');
    expect(parseTopArgs(['--bogus'])).toHaveProperty('error');
    expect(parseTopArgs(['-h'])).toBe('help');
  });

  it('draws services and real servers in ipvsadm order with rates, connections, weight and health', () => {
    const frame = renderTopFrame(table, counters, { socketPath: '/run/tapvs.sock', intervalMs: 2000, numeric: true, names, now: new Date(2025, 0, 1, 12, 34, 56) });
    const lines = frame.split('\n');
    expect(lines[0]).toBe('tapvs top - /run/tapvs.sock - every 2s - 12:34:56    q: quit');
    expect(lines[1]).toBe('Services 1  Real servers 2  Connection table 12/1048576 (3.0 MiB)  Neighbours 3  Frames in 300 (3.0/batch)');
    const svc = lines.find((l) => l.startsWith('TCP  198.18.1.100:80'))!;
    // Sched, ActConn (sum), InActConn (sum), Conns, CPS, InPPS, OutPPS, InBPS, OutBPS
    expect(svc.split(/\s+/).slice(2)).toEqual(['wrr', '5', '7', '9', '4', '30', '0', '0', '0']);
    const rs = lines.filter((l) => l.startsWith('  -> 198.18.2.'));
    // ipvsadm sorts real servers by address.
    expect(rs[0].split(/\s+/).slice(1)).toEqual(['->', '198.18.2.11:80', 'Masq', '3', '-', '4', '5', '6', '0', '20', '0', '123K', '0']);
    expect(rs[1].split(/\s+/).slice(1)).toEqual(['->', '198.18.2.12:80', 'Masq', '1', '-', '1', '2', '3', '0', '10', '0', '123K', '0']);
    expect(frame).toContain('Drops: 9 total: host 7, not-routed 2\n');
  });

  it('resolves names without -n, and cuts lines at the terminal width', () => {
    const frame = renderTopFrame(table, counters, { socketPath: '/s', intervalMs: 1000, numeric: false, names, now: new Date(), columns: 60 });
    expect(frame).toContain('TCP  www.example:http');
    for (const l of frame.split('\n')) expect(l.length).toBeLessThanOrEqual(60);
  });

  it('shows compact numbers like ipvsadm (1000-based)', () => {
    expect(compactNumber(99999)).toBe('99999');
    expect(compactNumber(123456)).toBe('123K');
    expect(compactNumber(1_500_000)).toBe('1.5M');
    expect(compactNumber(2_000_000_000)).toBe('2.0G');
  });
});
