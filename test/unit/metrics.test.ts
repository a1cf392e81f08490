/**
 * Prometheus exposition without a data plane: a Director that is not started (no TAP), configured
 * through its control requests, with counters written into its typed arrays as the pipeline would.
 * Checks node_exporter's names and label values, the director-wide totals across -D / -Z / -C, the
 * text format (parsed strictly), the --metrics address syntax, and that the Grafana dashboard only
 * queries metrics that exist.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Director } from '../../src/director.js';
import { Logger } from '../../src/logger.js';
import type { DestinationConfig, ServiceConfig } from '../../src/control/model.js';
import { STAT_FIELDS } from '../../src/stats/counters.js';
import { createMetricsRegistry } from '../../src/stats/metrics.js';
import { parseMetricsListen } from '../../src/stats/metrics-server.js';
import { parsePrometheusText, samplesOf, valueOf } from '../prom-text.js';

const here = path.dirname(fileURLToPath(import.meta.url));

function director(): Director {
  return new Director({
    tap: 'unused0',
    addresses: [{ addr: 0xc6120101, prefix: 24 }],
    socketPath: '/nonexistent/tapvs.sock',
    connMax: 1000,
    logger: new Logger('text', 'error', () => {}),
  });
}

const svc = (addr: string, port: number, protocol = 6, fwmark = 0): ServiceConfig => ({
  af: 4, protocol, addr, port, fwmark, scheduler: 'wrr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '',
});
const dest = (addr: string, port: number, weight: number): DestinationConfig => ({
  af: 4, addr, port, forward: 0, weight, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0,
});

function ok(d: Director, req: Parameters<Director['handle']>[0]): void {
  const r = d.handle(req);
  if (!r.ok) throw new Error(`${req.op}: ${r.errno} ${r.message ?? ''}`);
}

/** Add counts to a service and one of its destinations, as the pipeline does for a packet. */
function count(d: Director, svcId: number, destId: number, v: number[]): void {
  for (let f = 0; f < STAT_FIELDS; f++) {
    d.services.serviceStats.values[svcId * STAT_FIELDS + f] += v[f];
    d.services.destStats.values[destId * STAT_FIELDS + f] += v[f];
  }
}

async function scrape(d: Director): Promise<ReturnType<typeof parsePrometheusText>> {
  return parsePrometheusText(await createMetricsRegistry(d).metrics());
}

describe('Prometheus metrics', () => {
  const WEB = svc('198.18.1.100', 80);
  const DNS = svc('198.18.1.100', 53, 17);
  const MARK = svc('0.0.0.0', 0, 6, 3);

  function configured(): { d: Director; web: number; dns: number; mark: number; rs1: number; rs2: number; rs3: number } {
    const d = director();
    ok(d, { op: 'add-service', service: WEB });
    ok(d, { op: 'add-server', service: WEB, dest: dest('198.18.2.11', 80, 3) });
    ok(d, { op: 'add-server', service: WEB, dest: dest('198.18.2.12', 8080, 1) });
    ok(d, { op: 'add-service', service: DNS });
    ok(d, { op: 'add-server', service: DNS, dest: dest('198.18.2.11', 53, 1) });
    ok(d, { op: 'add-service', service: MARK });
    ok(d, { op: 'add-server', service: MARK, dest: dest('198.18.2.13', 443, 2) });
    const id = (s: ServiceConfig): number => d.services.find(s)!.id;
    const destId = (s: ServiceConfig, addr: string): number => {
      const v = d.services.find(s)!;
      return v.dests.find((x) => v.destConfigs.get(x)!.addr === addr)!;
    };
    return { d, web: id(WEB), dns: id(DNS), mark: id(MARK), rs1: destId(WEB, '198.18.2.11'), rs2: destId(WEB, '198.18.2.12'), rs3: destId(MARK, '198.18.2.13') };
  }

  it("exposes node_exporter's ipvs backend metrics with its exact label names and values", async () => {
    const { d, rs1, rs2 } = configured();
    d.services.dests.activeConns[rs1] = 7;
    d.services.dests.inactConns[rs1] = 2;
    d.services.dests.inactConns[rs2] = 5;
    const e = await scrape(d);
    expect(e.types.get('node_ipvs_backend_connections_active')).toBe('gauge');
    expect(e.types.get('node_ipvs_connections_total')).toBe('counter');
    const active = samplesOf(e, 'node_ipvs_backend_connections_active');
    expect(active).toHaveLength(4);
    for (const s of active) expect(Object.keys(s.labels).sort()).toEqual(['local_address', 'local_mark', 'local_port', 'proto', 'remote_address', 'remote_port']);
    const web1 = { local_address: '198.18.1.100', local_port: '80', remote_address: '198.18.2.11', remote_port: '80', proto: 'TCP', local_mark: '' };
    expect(valueOf(e, 'node_ipvs_backend_connections_active', web1)).toBe(7);
    expect(valueOf(e, 'node_ipvs_backend_connections_inactive', web1)).toBe(2);
    expect(valueOf(e, 'node_ipvs_backend_weight', web1)).toBe(3);
    expect(valueOf(e, 'node_ipvs_backend_connections_inactive', { remote_address: '198.18.2.12', remote_port: '8080' })).toBe(5);
    expect(valueOf(e, 'node_ipvs_backend_weight', { proto: 'UDP', local_port: '53', remote_port: '53' })).toBe(1);
    // fwmark services, as node_exporter reads "FWM  00000003" from /proc/net/ip_vs.
    const fwm = { local_address: '', local_port: '0', remote_address: '198.18.2.13', remote_port: '443', proto: 'FWM', local_mark: '00000003' };
    expect(valueOf(e, 'node_ipvs_backend_weight', fwm)).toBe(2);
  });

  it('per service and per backend counters equal the typed arrays; rates come from the estimator', async () => {
    const { d, web, rs1, rs2, mark, rs3 } = configured();
    count(d, web, rs1, [3, 30, 20, 3000, 20000]);
    count(d, web, rs2, [1, 10, 8, 1000, 8000]);
    count(d, mark, rs3, [2, 4, 4, 400, 400]);
    d.rates.run();
    const e = await scrape(d);
    const webL = { local_address: '198.18.1.100', local_port: '80', proto: 'TCP', local_mark: '' };
    expect(valueOf(e, 'tapvs_service_connections_total', webL)).toBe(4);
    expect(valueOf(e, 'tapvs_service_incoming_packets_total', webL)).toBe(40);
    expect(valueOf(e, 'tapvs_service_outgoing_bytes_total', webL)).toBe(28000);
    expect(valueOf(e, 'tapvs_backend_incoming_bytes_total', { remote_address: '198.18.2.11', local_port: '80' })).toBe(3000);
    expect(valueOf(e, 'tapvs_backend_connections_total', { remote_address: '198.18.2.12' })).toBe(1);
    expect(valueOf(e, 'tapvs_backend_outgoing_packets_total', { proto: 'FWM', local_mark: '00000003' })).toBe(4);
    // One estimator period: avg = (4 << 9) >> 2 = 512 -> (512 + 0x1FF) >> 10 = 0 cps; 40 pkts -> 5 pps.
    expect(valueOf(e, 'tapvs_service_connections_per_second', webL)).toBe(d.rates.serviceRate(web).cps);
    expect(valueOf(e, 'tapvs_service_incoming_packets_per_second', webL)).toBe(5);
    expect(valueOf(e, 'tapvs_backend_outgoing_bytes_per_second', { remote_address: '198.18.2.11', local_port: '80' })).toBe(d.rates.destRate(rs1).outbps);
    expect(valueOf(e, 'tapvs_service_info', { ...webL, scheduler: 'wrr' })).toBe(1);
    expect(valueOf(e, 'tapvs_backend_healthy', { remote_address: '198.18.2.13' })).toBe(1);
    // Totals: every service.
    expect(valueOf(e, 'node_ipvs_connections_total')).toBe(6);
    expect(valueOf(e, 'node_ipvs_incoming_packets_total')).toBe(44);
    expect(valueOf(e, 'node_ipvs_outgoing_bytes_total')).toBe(28400);
  });

  it('keeps the totals as the kernel does: -D and -Z of one service keep them, -Z of all zeroes them', async () => {
    const { d, web, rs1, dns, mark, rs3 } = configured();
    const dnsDest = d.services.find(DNS)!.dests[0];
    count(d, web, rs1, [3, 30, 20, 3000, 20000]);
    count(d, dns, dnsDest, [5, 5, 5, 500, 500]);
    count(d, mark, rs3, [1, 1, 1, 100, 100]);
    const conns = async (): Promise<number> => valueOf(await scrape(d), 'node_ipvs_connections_total');
    expect(await conns()).toBe(9);
    ok(d, { op: 'delete-service', service: DNS });
    expect(await conns()).toBe(9);
    ok(d, { op: 'zero', service: WEB });
    expect(valueOf(await scrape(d), 'tapvs_service_connections_total', { local_port: '80' })).toBe(0);
    expect(await conns()).toBe(9);
    ok(d, { op: 'batch', commands: [{ op: 'zero', service: MARK }, { op: 'flush' }] });
    expect(await conns()).toBe(9);
    ok(d, { op: 'add-service', service: WEB });
    ok(d, { op: 'add-server', service: WEB, dest: dest('198.18.2.11', 80, 1) });
    const v = d.services.find(WEB)!;
    count(d, v.id, v.dests[0], [2, 2, 2, 2, 2]);
    expect(await conns()).toBe(11);
    // A failed batch changes nothing, totals included.
    expect(d.handle({ op: 'batch', commands: [{ op: 'zero' }, { op: 'delete-service', service: DNS }] }).ok).toBe(false);
    expect(await conns()).toBe(11);
    ok(d, { op: 'zero' });
    expect(await conns()).toBe(0);
    expect(valueOf(await scrape(d), 'node_ipvs_incoming_bytes_total')).toBe(0);
  });

  it('exposes the data plane and table metrics (zero before the TAP is up) and the Node.js defaults', async () => {
    const { d } = configured();
    const e = await scrape(d);
    expect(valueOf(e, 'tapvs_drops_total', { reason: 'malformed' })).toBe(0);
    expect(samplesOf(e, 'tapvs_drops_total').map((s) => s.labels.reason)).toContain('table-full');
    expect(valueOf(e, 'tapvs_connection_table_max_entries')).toBe(1000);
    expect(valueOf(e, 'tapvs_connection_table_entries')).toBe(0);
    expect(valueOf(e, 'tapvs_connection_table_memory_bytes')).toBeGreaterThan(0);
    expect(valueOf(e, 'tapvs_connections', { kind: 'connection', proto: 'TCP', state: 'ESTABLISHED' })).toBe(0);
    expect(valueOf(e, 'tapvs_neighbor_cache_capacity')).toBe(d.neighbors.slots);
    expect(valueOf(e, 'tapvs_rx_batch_frames_mean')).toBe(0);
    expect(e.types.get('tapvs_nodejs_eventloop_lag_seconds')).toBe('gauge');
    expect(e.types.get('tapvs_process_cpu_seconds_total')).toBe('counter');
    // Every metric has HELP and TYPE.
    for (const s of e.samples) {
      const family = [...e.types.keys()].find((n) => s.name === n || s.name.startsWith(`${n}_`));
      expect(family, s.name).toBeDefined();
    }
  });

  it('parses --metrics HOST:PORT', () => {
    expect(parseMetricsListen('127.0.0.1:9466')).toEqual({ host: '127.0.0.1', port: 9466 });
    expect(parseMetricsListen(':9466')).toEqual({ host: '0.0.0.0', port: 9466 });
    expect(parseMetricsListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseMetricsListen('localhost:80')).toEqual({ host: 'localhost', port: 80 });
    expect(parseMetricsListen('9466')).toBeNull();
    expect(parseMetricsListen('1.2.3.4:70000')).toBeNull();
    expect(parseMetricsListen('::1:80')).toBeNull();
  });

  it('the Grafana dashboard parses and queries only metrics tapvs exposes', async () => {
    const dash = JSON.parse(fs.readFileSync(path.join(here, '../../docker/grafana-dashboard.json'), 'utf8'));
    const { d } = configured();
    const e = await scrape(d);
    const exposed = new Set([...e.types.keys(), ...e.samples.map((s) => s.name)]);
    const exprs: string[] = [];
    const visit = (p: { targets?: { expr: string }[]; panels?: unknown[] }): void => {
      for (const t of p.targets ?? []) exprs.push(t.expr);
      for (const c of (p.panels ?? []) as (typeof p)[]) visit(c);
    };
    for (const p of dash.panels) visit(p);
    for (const v of dash.templating.list) if (typeof v.definition === 'string') exprs.push(v.definition);
    expect(exprs.length).toBeGreaterThan(20);
    const names = new Set(exprs.flatMap((x) => x.match(/\b(?:node_ipvs|tapvs)_[a-z0-9_]+/g) ?? []));
    for (const n of names) expect(exposed.has(n), n).toBe(true);
    for (const n of ['node_ipvs_backend_connections_active', 'node_ipvs_backend_connections_inactive', 'tapvs_drops_total', 'tapvs_connections']) expect(names.has(n)).toBe(true);
  });
});
