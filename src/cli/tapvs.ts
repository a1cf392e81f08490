#!/usr/bin/env node
/**
 * `tapvs`: the ipvsadm-compatible command line of tapvsd. It parses the arguments as ipvsadm 1.31
 * does, sends the resulting command to the daemon over its control socket and prints what ipvsadm
 * would print. Differences from ipvsadm: `--socket PATH` selects the daemon, and `-R` is
 * all-or-nothing (every line is parsed first, then all are applied as one batch, or none is).
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ControlClient, ControlConnectionError, type ControlChannel } from '../control/client.js';
import { ipvsStrerror, operationOf, type IpvsOperation } from '../control/errors.js';
import {
  DEFAULT_LISTING_FORMAT,
  formatConnections,
  formatLocalAddresses,
  formatSingleService,
  formatMarkRules,
  formatTable,
  formatTimeouts,
  servicesInListingOrder,
} from '../control/listing.js';
import type { ServiceKey, ServiceSnapshot, TableSnapshot } from '../control/model.js';
import { socketPathFromEnv, type Command, type Reply, type Request } from '../control/protocol.js';
import { formatSave } from '../control/save-format.js';
import { canonicalAddress, systemNames, type NameDatabase } from './address-port.js';
import { parseRestoreText } from './restore-input.js';
import { runTop, topArguments } from './tapvs-top.js';
import { checkersArguments, runCheckers } from './tapvs-checkers.js';
import { runReload } from './tapvs-reload.js';
import { subcommandArguments } from './subcommand.js';
import {
  PROGRAM_NAME,
  VERSION_LINE,
  parseIpvsadmArgs,
  usageText,
  type Invocation,
  type UsageFailure,
} from './ipvsadm-options.js';

/** Exit statuses, as ipvsadm uses them. */
const EXIT_OK = 0;
const EXIT_LIST_FAILED = 1;
const EXIT_USAGE = 2;
/** A failed IPVS operation (ipvsadm's main returns -1); tapvs also uses it when tapvsd is unreachable. */
const EXIT_OPERATION_FAILED = 255;

export interface TextSink {
  write(text: string): unknown;
}

/** Everything runTapvs touches outside itself. */
export interface TapvsIo {
  stdout: TextSink;
  stderr: TextSink;
  /** The text of standard input (read only by -R), or a function that reads it. */
  stdin: string | (() => Promise<string>);
  /** Opens a control channel to the daemon's socket (called at most once, lazily). */
  connect(socketPath: string): ControlChannel;
  /** Name look-ups (default: /etc/hosts and /etc/services). */
  names?: NameDatabase;
}

/** Runs one tapvs invocation; `argv` are the words after the program name. Returns the exit status. */
export async function runTapvs(argv: readonly string[], io: TapvsIo): Promise<number> {
  const split = extractSocketOption(argv);
  if ('failure' in split) return report(io, split.failure);
  const session = new Session(io, socketPathFromEnv(split.socketPath));
  try {
    if (split.args.length === 0) return await session.execute({ kind: 'list-all', format: { ...DEFAULT_LISTING_FORMAT } });
    const parsed = parseIpvsadmArgs(split.args, { names: session.names });
    if (!parsed.ok) return report(io, parsed.failure);
    return await session.execute(parsed.invocation);
  } catch (error) {
    if (error instanceof ControlConnectionError) {
      io.stderr.write(`${PROGRAM_NAME}: ${error.message}\n`);
      return EXIT_OPERATION_FAILED;
    }
    throw error;
  } finally {
    session.close();
  }
}

function report(io: TapvsIo, failure: UsageFailure): number {
  io.stderr.write(`${failure.prefixed ? `${PROGRAM_NAME}: ` : ''}${failure.message}\n`);
  return failure.exitCode;
}

/**
 * tapvs's own `--socket PATH` / `--socket=PATH`, taken out of the arguments wherever it appears
 * (before a `--`), so that the ipvsadm rule "the command comes first" still holds for the rest.
 */
function extractSocketOption(argv: readonly string[]): { args: string[]; socketPath?: string } | { failure: UsageFailure } {
  const args: string[] = [];
  let socketPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      args.push(...argv.slice(i));
      break;
    }
    let value: string | undefined;
    if (word === '--socket') {
      if (i + 1 >= argv.length) return { failure: { message: '--socket: missing argument', exitCode: 255, prefixed: false } };
      value = argv[++i]!;
    } else if (word.startsWith('--socket=')) {
      value = word.slice('--socket='.length);
    } else {
      args.push(word);
      continue;
    }
    if (socketPath !== undefined) {
      return { failure: { message: "multiple 'socket' options specified", exitCode: 2, prefixed: false } };
    }
    socketPath = value;
  }
  return socketPath === undefined ? { args } : { args, socketPath };
}

/** One invocation's use of the daemon. */
class Session {
  readonly names: NameDatabase;
  private channel: ControlChannel | undefined;

  constructor(
    private readonly io: TapvsIo,
    private readonly socketPath: string,
  ) {
    this.names = io.names ?? systemNames;
  }

  close(): void {
    this.channel?.close();
  }

  private request(req: Request): Promise<Reply> {
    this.channel ??= this.io.connect(this.socketPath);
    return this.channel.request(req);
  }

  private out(text: string): void {
    this.io.stdout.write(text);
  }

  private err(text: string): void {
    this.io.stderr.write(text);
  }

  async execute(invocation: Invocation): Promise<number> {
    switch (invocation.kind) {
      case 'help':
        this.out(usageText());
        return EXIT_OK;
      case 'version':
        this.out(`${VERSION_LINE}\n`);
        return EXIT_OK;
      case 'command':
        return this.runCommand(invocation.command);
      case 'list-all': {
        const table = await this.fetchTable('get-services');
        if (typeof table === 'number') return table;
        this.out(formatTable(table, invocation.format, this.names));
        return EXIT_OK;
      }
      case 'list-service': {
        const table = await this.fetchTable('get-service');
        if (typeof table === 'number') return table;
        const service = findService(table.services, invocation.service);
        if (service === undefined) {
          this.err(`${ipvsStrerror('get-service', 'ESRCH')}\n`);
          return EXIT_LIST_FAILED;
        }
        this.out(formatSingleService(service, invocation.format, this.names));
        return EXIT_OK;
      }
      case 'list-connections': {
        const reply = await this.request({ op: 'get-connections' });
        if (!reply.ok || reply.connections === undefined) return this.listFailed('get-connections', reply);
        this.out(formatConnections(reply.connections, invocation.format, this.names));
        return EXIT_OK;
      }
      case 'list-timeouts': {
        const reply = await this.request({ op: 'get-timeouts' });
        if (!reply.ok || reply.timeouts === undefined) return this.listFailed('get-timeouts', reply);
        this.out(formatTimeouts(reply.timeouts));
        return EXIT_OK;
      }
      case 'list-marks': {
        const table = await this.fetchTable('get-services');
        if (typeof table === 'number') return table;
        this.out(formatMarkRules(table.marks ?? []));
        return EXIT_OK;
      }
      case 'list-laddrs': {
        // tapvs's own -G (DPVS): one service (unknown: "No such service", exit 1, as -L -t) or all, sorted
        const table = await this.fetchTable('get-services');
        if (typeof table === 'number') return table;
        let services = servicesInListingOrder(table.services, false);
        if (invocation.service !== undefined) {
          const service = findService(table.services, invocation.service);
          if (service === undefined) {
            this.err(`${ipvsStrerror('get-laddrs', 'ESRCH')}\n`);
            return EXIT_LIST_FAILED;
          }
          services = [service];
        }
        this.out(formatLocalAddresses(services, this.names));
        return EXIT_OK;
      }
      case 'save': {
        const table = await this.fetchTable('get-services');
        if (typeof table === 'number') return table;
        this.out(formatSave(table, invocation.numeric, this.names));
        return EXIT_OK;
      }
      case 'restore':
        return this.restore();
    }
  }

  private async runCommand(command: Command): Promise<number> {
    const reply = await this.request(command);
    if (reply.ok) return EXIT_OK;
    this.err(`${ipvsStrerror(operationOf(command), reply.errno)}\n`);
    return EXIT_OPERATION_FAILED;
  }

  private async fetchTable(operation: IpvsOperation): Promise<TableSnapshot | number> {
    const reply = await this.request({ op: 'get-table' });
    if (!reply.ok || reply.table === undefined) return this.listFailed(operation, reply);
    return reply.table;
  }

  private listFailed(operation: IpvsOperation, reply: Reply): number {
    this.err(reply.ok ? `${PROGRAM_NAME}: malformed reply from tapvsd\n` : `${ipvsStrerror(operation, reply.errno)}\n`);
    return EXIT_LIST_FAILED;
  }

  /**
   * -R, all or nothing: parse every line (a bad line stops everything before anything is sent:
   * `tapvs: line N: …`, exit 2), then apply all commands as one batch.
   */
  private async restore(): Promise<number> {
    const text = typeof this.io.stdin === 'string' ? this.io.stdin : await this.io.stdin();
    const parsed = parseRestoreText(text, this.names);
    if ('error' in parsed) {
      this.err(`${PROGRAM_NAME}: line ${parsed.line}: ${parsed.error}\n`);
      return EXIT_USAGE;
    }
    const { commands, lines: lineNumbers } = parsed;
    if (commands.length === 0) return EXIT_OK;
    const reply = await this.request({ op: 'batch', commands });
    if (reply.ok) return EXIT_OK;
    const index = reply.failedIndex;
    const failed = index !== undefined ? commands[index] : undefined;
    if (failed !== undefined) {
      this.err(`${PROGRAM_NAME}: line ${lineNumbers[index!]}: ${ipvsStrerror(operationOf(failed), reply.errno)}\n`);
    } else {
      this.err(`${PROGRAM_NAME}: ${ipvsStrerror(undefined, reply.errno)}\n`);
    }
    this.err(`${PROGRAM_NAME}: no rules restored\n`);
    return EXIT_OPERATION_FAILED;
  }
}

/** The kernel's service lookup for `-L -t|-u|…`: by fwmark (and family), else by the 4-tuple. */
function findService(services: readonly ServiceSnapshot[], key: ServiceKey): ServiceSnapshot | undefined {
  return services.find((s) => {
    if (key.fwmark !== 0 || s.fwmark !== 0) return s.fwmark === key.fwmark && s.af === key.af;
    return (
      s.af === key.af &&
      s.protocol === key.protocol &&
      s.port === key.port &&
      canonicalAddress(s.af, s.addr) === canonicalAddress(key.af, key.addr)
    );
  });
}

// ------------------------------------------------------------------------------------------------
// The executable

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      text += chunk;
    });
    process.stdin.on('end', () => resolve(text));
    process.stdin.on('error', reject);
  });
}

async function main(): Promise<void> {
  // `tapvs top` (the live view) is tapvs's own; ipvsadm never takes a bare word first.
  const top = topArguments(process.argv.slice(2));
  if (top !== null) {
    process.exitCode = await runTop(top);
    return;
  }
  // `tapvs reload`: what SIGHUP does (re-read --rules / --keepalived, apply the difference).
  const reload = subcommandArguments(process.argv.slice(2), 'reload');
  if (reload !== null) {
    process.exitCode = await runReload(reload);
    return;
  }
  // `tapvs checkers`: the keepalived health checkers (tapvsd --keepalived).
  const checkers = checkersArguments(process.argv.slice(2));
  if (checkers !== null) {
    process.exitCode = await runCheckers(checkers);
    return;
  }
  process.exitCode = await runTapvs(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: readStdin,
    connect: (socketPath) => new ControlClient(socketPath),
  });
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((error: unknown) => {
    process.stderr.write(`${PROGRAM_NAME}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = EXIT_OPERATION_FAILED;
  });
}
