/**
 * `tapvs checkers [--socket PATH] [--json]`: the keepalived health checkers of a tapvsd started with
 * --keepalived — per real server its state and effective weight, and per checker its state, last result,
 * time and reason (the control request `get-checkers`).
 */
import { subcommandArguments } from './subcommand.js';
import { ControlClient } from '../control/client.js';
import { socketPathFromEnv, type RealServerCheckStatus } from '../control/protocol.js';

export const CHECKERS_USAGE = 'Usage: tapvs checkers [--socket PATH] [--json]\n';

/** The words after `checkers` when this invocation is `tapvs [--socket PATH] checkers ...`, else null. */
export function checkersArguments(argv: readonly string[]): string[] | null {
  return subcommandArguments(argv, 'checkers');
}

export function formatCheckers(list: RealServerCheckStatus[]): string {
  if (list.length === 0) return 'No keepalived real servers.\n';
  const lines: string[] = [];
  let vs = '';
  for (const rs of list) {
    if (rs.virtualServer !== vs) {
      vs = rs.virtualServer;
      lines.push(`virtual_server ${vs}`);
    }
    lines.push(`  real_server ${rs.realServer}  ${rs.alive ? 'UP' : 'DOWN'}  weight ${rs.weight}${rs.inhibitOnFailure ? '  inhibit_on_failure' : ''}`);
    if (rs.checkers.length === 0) lines.push('    (no checkers: always up)');
    for (const c of rs.checkers) {
      const last = c.result === null ? 'not checked yet' : `${c.result === 'ok' ? 'OK' : 'FAILED'} at ${c.time}: ${c.reason}`;
      const retries = c.up && c.retries > 0 ? `  retry ${c.retries}/${c.retry}` : '';
      const next = c.nextCheckIn !== null ? `  next in ${c.nextCheckIn.toFixed(1)} s` : '  checking';
      lines.push(`    ${c.type.padEnd(10)} ${c.target.padEnd(22)} ${c.up ? 'UP  ' : 'DOWN'}  ${last}${retries}${next}  (${c.at})`);
    }
  }
  return lines.join('\n') + '\n';
}

export async function runCheckers(argv: readonly string[]): Promise<number> {
  let socket: string | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--socket') socket = argv[++i];
    else if (a.startsWith('--socket=')) socket = a.slice('--socket='.length);
    else if (a === '--json') json = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(CHECKERS_USAGE);
      return 0;
    } else {
      process.stderr.write(`tapvs checkers: unknown argument '${a}'\n${CHECKERS_USAGE}`);
      return 2;
    }
  }
  const client = new ControlClient(socketPathFromEnv(socket));
  try {
    const reply = await client.request({ op: 'get-checkers' });
    if (!reply.ok) {
      process.stderr.write(`tapvs checkers: ${reply.message ?? reply.errno}\n`);
      return 1;
    }
    const list = reply.checkers ?? [];
    process.stdout.write(json ? JSON.stringify(list, null, 2) + '\n' : formatCheckers(list));
    return 0;
  } catch (e) {
    process.stderr.write(`tapvs checkers: ${(e as Error).message}\n`);
    return 255;
  } finally {
    client.close();
  }
}
