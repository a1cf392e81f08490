/**
 * `tapvs top`: a live view of the director, what `watch ipvsadm -L -n --rate` gives and more: every
 * service and real server with the IPVS estimator's rates (CPS, InPPS, OutPPS, InBPS, OutBPS, as
 * `-L --rate`), total connections, active/inactive connections, weight and health, plus the connection
 * table, the neighbour cache and the drops by reason.
 *
 *   tapvs top [--socket PATH] [--interval SEC] [-n] [--once]
 *
 * On a terminal it redraws in place (alternate screen, clear + home) every --interval seconds (default
 * 2, the estimator's period) until `q` or Ctrl-C, then restores the terminal. With --once, or when
 * standard output is not a terminal, it prints one frame and exits.
 */
import { subcommandArguments } from './subcommand.js';
import { backendHealthFrom, NO_HEALTH, type BackendHealth } from '../control/health.js';
import { ControlClient, ControlConnectionError, type ControlChannel } from '../control/client.js';
import { destinationsInListingOrder, forwardName, protocolLabel, servicesInListingOrder } from '../control/listing.js';
import type { ServiceSnapshot, TableSnapshot } from '../control/model.js';
import { socketPathFromEnv } from '../control/protocol.js';
import { formatAddressPort, systemNames, type NameDatabase } from './address-port.js';

export const TOP_USAGE = `Usage: tapvs top [--socket PATH] [--interval SEC] [-n] [--once]

  --socket PATH    tapvsd's control socket (default $TAPVS_SOCKET or /run/tapvs.sock)
  --interval SEC   refresh period in seconds (default 2: rates are the IPVS estimator's, updated every 2 s)
  -n, --numeric    numeric addresses and ports (default: names from /etc/hosts and /etc/services)
  --once           print one frame and exit (also what happens when stdout is not a terminal)

Keys: q or Ctrl-C quits. Health is the keepalived checkers' view (up/down; "-" when not checked).
`;

export interface TopOptions {
  socketPath: string;
  intervalMs: number;
  numeric: boolean;
  once: boolean;
}

/** The words after `top` when this invocation is `tapvs [--socket PATH] top ...`, else null. */
export function topArguments(argv: readonly string[]): string[] | null {
  return subcommandArguments(argv, 'top');
}

export function parseTopArgs(argv: readonly string[]): TopOptions | 'help' | { error: string } {
  let socket: string | undefined;
  let intervalMs = 2000;
  let numeric = false;
  let once = false;
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === '-h' || w === '--help') return 'help';
    if (w === '-n' || w === '--numeric') numeric = true;
    else if (w === '--once') once = true;
    else if (w === '--socket' || w.startsWith('--socket=')) {
      const v = w === '--socket' ? argv[++i] : w.slice('--socket='.length);
      if (v === undefined || v === '') return { error: '--socket: missing argument' };
      if (socket !== undefined) return { error: "multiple 'socket' options specified" };
      socket = v;
    } else if (w === '--interval' || w.startsWith('--interval=')) {
      const v = w === '--interval' ? argv[++i] : w.slice('--interval='.length);
      const sec = Number(v);
      if (v === undefined || v === '' || !Number.isFinite(sec) || sec < 0.1 || sec > 3600) return { error: `invalid --interval '${v ?? ''}' (0.1..3600 seconds)` };
      intervalMs = Math.round(sec * 1000);
    } else return { error: `unknown option '${w}'` };
  }
  return { socketPath: socketPathFromEnv(socket), intervalMs, numeric, once };
}

/** Compact numbers: exact below 100000, then K/M/G/T with one decimal (1000-based, as ipvsadm). */
export function compactNumber(n: number): string {
  if (n < 100_000) return String(n);
  const units = ['K', 'M', 'G', 'T', 'P'];
  let v = n, u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)}${units[u]}`;
}

export interface FrameContext {
  socketPath: string;
  intervalMs: number;
  numeric: boolean;
  names: NameDatabase;
  now: Date;
  /** Terminal width to cut lines at (undefined: no cut). */
  columns?: number;
  /** Health-check state of the real servers (undefined: not checked). */
  health?: BackendHealth;
}

const COLS: [string, number][] = [
  ['Sched/Fwd', 9],
  ['Weight', 6],
  ['Health', 6],
  ['ActConn', 8],
  ['InActConn', 9],
  ['Conns', 9],
  ['CPS', 7],
  ['InPPS', 8],
  ['OutPPS', 8],
  ['InBPS', 8],
  ['OutBPS', 8],
];
const LABEL_WIDTH = 34;

function row(label: string, cells: string[]): string {
  let line = label.length >= LABEL_WIDTH ? label.slice(0, LABEL_WIDTH - 1) + ' ' : label.padEnd(LABEL_WIDTH);
  cells.forEach((c, i) => {
    const [, w] = COLS[i]!;
    line += i <= 2 ? ` ${c.padEnd(w)}` : ` ${c.padStart(w)}`;
  });
  return line.trimEnd();
}

function serviceLabel(svc: ServiceSnapshot, numeric: boolean, names: NameDatabase): string {
  if (svc.fwmark !== 0) return `FWM  ${svc.fwmark >>> 0}`;
  return `${protocolLabel(svc.protocol).padEnd(4)} ${formatAddressPort(svc.af, svc.addr, svc.port, svc.protocol, numeric, names)}`;
}


function mib(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** One frame of `tapvs top` (plain text, no escape sequences). */
export function renderTopFrame(table: TableSnapshot, counters: Record<string, unknown>, ctx: FrameContext): string {
  const lines: string[] = [];
  const time = ctx.now.toTimeString().slice(0, 8);
  lines.push(`tapvs top - ${ctx.socketPath} - every ${ctx.intervalMs / 1000}s - ${time}    q: quit`);
  const services = servicesInListingOrder(table.services, false);
  const nDests = services.reduce((n, s) => n + s.dests.length, 0);
  const conns = Number(counters.connections ?? 0);
  const cap = counters.connectionCapacity as { maxEntries?: number; memoryBytes?: number } | undefined;
  const frames = Number(counters.framesIn ?? 0), batches = Number(counters.batches ?? 0);
  let summary = `Services ${services.length}  Real servers ${nDests}  Connection table ${conns}`;
  if (cap?.maxEntries) summary += `/${cap.maxEntries}`;
  if (cap?.memoryBytes) summary += ` (${mib(cap.memoryBytes)})`;
  summary += `  Neighbours ${Number(counters.neighbors ?? 0)}  Frames in ${frames}`;
  if (batches > 0) summary += ` (${(frames / batches).toFixed(1)}/batch)`;
  lines.push(summary);
  lines.push('');
  lines.push(row('Prot LocalAddress:Port', COLS.map(([h]) => h)));
  lines.push(row('  -> RemoteAddress:Port', COLS.map(() => '')));
  const num = compactNumber;
  for (const svc of services) {
    const dests = destinationsInListingOrder(svc.dests, false);
    const active = dests.reduce((n, d) => n + d.activeConns, 0);
    const inact = dests.reduce((n, d) => n + d.inactConns, 0);
    const r = svc.rate, s = svc.stats;
    lines.push(
      row(serviceLabel(svc, ctx.numeric, ctx.names), [
        svc.scheduler,
        '',
        '',
        num(active),
        num(inact),
        num(s.conns),
        num(r.cps),
        num(r.inpps),
        num(r.outpps),
        num(r.inbps),
        num(r.outbps),
      ]),
    );
    for (const d of dests) {
      const dr = d.rate, ds = d.stats;
      lines.push(
        row(`  -> ${formatAddressPort(d.af, d.addr, d.port, svc.protocol, ctx.numeric, ctx.names)}`, [
          forwardName(d.forward),
          String(d.weight),
          healthLabel(ctx.health?.(svc, d) ?? null),
          num(d.activeConns),
          num(d.inactConns),
          num(ds.conns),
          num(dr.cps),
          num(dr.inpps),
          num(dr.outpps),
          num(dr.inbps),
          num(dr.outbps),
        ]),
      );
    }
  }
  if (services.length === 0) lines.push('(no virtual services)');
  lines.push('');
  const drops = Object.entries((counters.drops ?? {}) as Record<string, number>).filter(([, n]) => n > 0);
  drops.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const totalDrops = drops.reduce((n, [, c]) => n + c, 0);
  lines.push(drops.length === 0 ? 'Drops: none' : `Drops: ${totalDrops} total: ${drops.map(([k, n]) => `${k} ${num(n)}`).join(', ')}`);
  lines.push('Rates: IPVS estimator (2 s, 1/4 EWMA) as ipvsadm -L --rate. Health: keepalived checkers (up/down, "-" not checked).');
  const out = ctx.columns ? lines.map((l) => (l.length > ctx.columns! ? l.slice(0, ctx.columns) : l)) : lines;
  return out.join('\n') + '\n';
}

export interface TopIo {
  stdout: { write(text: string): unknown; isTTY?: boolean; columns?: number; rows?: number; on?(ev: 'resize', f: () => void): unknown };
  stderr: { write(text: string): unknown };
  stdin: NodeJS.ReadStream | null;
  connect(socketPath: string): ControlChannel;
  names?: NameDatabase;
}

async function fetchFrame(channel: ControlChannel): Promise<{ table: TableSnapshot; counters: Record<string, unknown>; health: BackendHealth }> {
  const t = await channel.request({ op: 'get-table' });
  if (!t.ok || !t.table) throw new Error(`tapvsd refused get-table: ${t.ok ? 'no table' : (t.message ?? t.errno)}`);
  const c = await channel.request({ op: 'get-counters' });
  // Without --keepalived the daemon refuses get-checkers: nothing is checked.
  const h = await channel.request({ op: 'get-checkers' });
  const health = h.ok && h.checkers ? backendHealthFrom(h.checkers) : NO_HEALTH;
  return { table: t.table, counters: c.ok && c.counters ? c.counters : {}, health };
}

function healthLabel(alive: boolean | null): string {
  return alive === null ? '-' : alive ? 'up' : 'down';
}

const ALT_SCREEN_ON = '\x1b[?1049h\x1b[?25l';
const ALT_SCREEN_OFF = '\x1b[?25h\x1b[?1049l';
const CLEAR_HOME = '\x1b[H\x1b[2J';

/** Runs `tapvs top`; `argv` are the words after `top`. Resolves with the exit status. */
export async function runTop(argv: readonly string[], io: TopIo = processTopIo()): Promise<number> {
  const parsed = parseTopArgs(argv);
  if (parsed === 'help') {
    io.stdout.write(TOP_USAGE);
    return 0;
  }
  if ('error' in parsed) {
    io.stderr.write(`tapvs top: ${parsed.error}\n${TOP_USAGE}`);
    return 2;
  }
  const opts = parsed;
  const names = io.names ?? systemNames;
  const ctx = (): FrameContext => ({ socketPath: opts.socketPath, intervalMs: opts.intervalMs, numeric: opts.numeric, names, now: new Date(), columns: io.stdout.columns });

  if (opts.once || !io.stdout.isTTY) {
    const channel = io.connect(opts.socketPath);
    try {
      const f = await fetchFrame(channel);
      io.stdout.write(renderTopFrame(f.table, f.counters, { ...ctx(), columns: undefined, health: f.health }));
      return 0;
    } catch (e) {
      io.stderr.write(`tapvs: ${(e as Error).message}\n`);
      return 255;
    } finally {
      channel.close();
    }
  }

  // Live view.
  return new Promise<number>((resolve) => {
    let channel: ControlChannel | null = null;
    let timer: NodeJS.Timeout | null = null;
    let done = false;
    let busy = false;
    const stdin = io.stdin;
    const rawBefore = stdin?.isTTY ? stdin.isRaw : false;

    const draw = async (): Promise<void> => {
      if (busy || done) return;
      busy = true;
      let text: string;
      try {
        channel ??= io.connect(opts.socketPath);
        const f = await fetchFrame(channel);
        text = renderTopFrame(f.table, f.counters, { ...ctx(), health: f.health });
      } catch (e) {
        channel?.close();
        channel = null;
        const msg = e instanceof ControlConnectionError ? e.message : (e as Error).message;
        text = `tapvs top - ${opts.socketPath} - ${new Date().toTimeString().slice(0, 8)}    q: quit\n\n${msg}\n(retrying every ${opts.intervalMs / 1000}s)\n`;
      }
      busy = false;
      if (done) return;
      const rows = io.stdout.rows;
      let lines = text.split('\n');
      if (rows && lines.length > rows) lines = [...lines.slice(0, rows - 1), `... ${lines.length - rows + 1} more lines (enlarge the terminal)`];
      io.stdout.write(CLEAR_HOME + lines.join('\n'));
    };

    const quit = (code: number): void => {
      if (done) return;
      done = true;
      if (timer) clearInterval(timer);
      channel?.close();
      if (stdin?.isTTY) {
        stdin.setRawMode(rawBefore);
        stdin.pause();
      }
      stdin?.off('data', onKey);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      io.stdout.write(ALT_SCREEN_OFF);
      resolve(code);
    };
    const onKey = (d: Buffer | string): void => {
      const s = d.toString();
      if (s.includes('q') || s.includes('Q') || s.includes('\x03') || s.includes('\x04')) quit(0);
      else if (s.includes(' ') || s.includes('r')) void draw();
    };
    const onSignal = (): void => quit(0);

    io.stdout.write(ALT_SCREEN_ON);
    if (stdin) {
      if (stdin.isTTY) stdin.setRawMode(true);
      stdin.on('data', onKey);
      stdin.resume();
    }
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    io.stdout.on?.('resize', () => void draw());
    void draw();
    timer = setInterval(() => void draw(), opts.intervalMs);
  });
}

function processTopIo(): TopIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin.isTTY ? process.stdin : null,
    connect: (p) => new ControlClient(p),
  };
}
