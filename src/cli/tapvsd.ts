#!/usr/bin/env node
/**
 * tapvsd — the tapvs daemon: owns a TAP device and balances the virtual services configured over its
 * control socket (with `tapvs`, ipvsadm's syntax) or from a rules file in `ipvsadm -S` format.
 *
 *   tapvsd --tap IFNAME [--bridge BRIDGE] [--mac MAC] --address IP/PREFIX [--address ...]
 *          [--gateway IP] [--socket PATH] [--rules FILE] [--conn-max N] [--log-format text|json]
 *          [--metrics HOST:PORT] [--keepalived FILE] [--queues N]
 *   tapvsd --keepalived FILE [--rules FILE] --check
 *
 * SIGHUP re-reads --rules FILE and replaces the configuration with it, all or nothing. With
 * --keepalived, SIGHUP re-reads keepalived.conf (and --rules, in the same batch) and applies only the
 * difference (src/keepalived/daemon.ts).
 */
import fs from 'node:fs';
import { Director } from '../director.js';
import { Logger } from '../logger.js';
import type { Reply } from '../control/protocol.js';
import { parseRestoreText } from './restore-input.js';
import { reloadOnSighup, runKeepalivedCheck, startKeepalived } from '../keepalived/daemon.js';
import type { KeepalivedController } from '../keepalived/controller.js';
import { parseDaemonArgs, UsageError, USAGE, type DaemonArgs } from './tapvsd-options.js';

async function main(argv: string[]): Promise<number> {
  let args: DaemonArgs | 'help';
  try {
    args = parseDaemonArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`tapvsd: ${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.check && args.keepalived)
    return runKeepalivedCheck(args.keepalived, args.rules, (s) => process.stdout.write(s), (s) => process.stderr.write(s));
  const logger = new Logger(args.logFormat);
  const director = new Director({
    tap: args.tap,
    bridge: args.bridge,
    mac: args.mac,
    addresses: args.addresses,
    addresses6: args.addresses6,
    gateway: args.gateway,
    gateway6: args.gateway6,
    socketPath: args.socket,
    connMax: args.connMax,
    sysctls: args.sysctls,
    busyPollUs: args.busyPollUs,
    queues: args.queues,
    steerByAddress: args.steerByAddress,
    offload: args.offload,
    mtu: args.mtu,
    logger,
    metrics: args.metrics,
  });

  if (args.rules) {
    let text: string;
    try {
      text = fs.readFileSync(args.rules, 'utf8');
    } catch (e) {
      process.stderr.write(`tapvsd: cannot read rules file ${args.rules}: ${(e as Error).message}\n`);
      return 2;
    }
    const parsed = parseRestoreText(text);
    if ('error' in parsed) {
      process.stderr.write(`tapvsd: ${args.rules}:${parsed.line}: ${parsed.error}\n`);
      return 2;
    }
    const reply = director.applyInitial({ op: 'batch', commands: parsed.commands });
    if (!reply.ok) {
      const line = reply.failedIndex !== undefined ? parsed.lines[reply.failedIndex] : 0;
      process.stderr.write(`tapvsd: ${args.rules}:${line}: ${reply.message ?? reply.errno}; no rules applied\n`);
      return 2;
    }
    logger.info('rules loaded', { file: args.rules, commands: parsed.commands.length });
  }

  let keepalived: KeepalivedController | null = null;
  if (args.keepalived) {
    const started = startKeepalived(args.keepalived, director, logger);
    if ('error' in started) {
      process.stderr.write(`tapvsd: ${started.error}\n`);
      return 2;
    }
    keepalived = started;
  }

  try {
    await director.start();
  } catch (e) {
    process.stderr.write(`tapvsd: ${(e as Error).message}\n`);
    await director.stop();
    return 1;
  }
  keepalived?.startCheckers(); // health checkers run once the data plane is up

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    keepalived?.stop(); // health checkers
    director.stop().then(
      () => process.exit(0),
      (e) => {
        process.stderr.write(`tapvsd: ${(e as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  // Reload (SIGHUP, systemctl reload, `tapvs reload`): re-read --rules and --keepalived and apply only
  // the difference, all or nothing.
  const reload = (): Reply => {
    if (keepalived) return reloadOnSighup(keepalived, args.rules, logger);
    if (!args.rules) {
      logger.warn('reload ignored: no --rules or --keepalived file to reload');
      return { ok: false, errno: 'EINVAL', message: 'nothing to reload: tapvsd was started without --rules or --keepalived' };
    }
    const file = args.rules;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      logger.error('rules reload failed, configuration unchanged', { file, error: (e as Error).message });
      return { ok: false, errno: 'EINVAL', message: `cannot read ${file}: ${(e as Error).message}; configuration unchanged` };
    }
    const parsed = parseRestoreText(text);
    if ('error' in parsed) {
      logger.error('rules reload failed, configuration unchanged', { file, line: parsed.line, error: parsed.error });
      return { ok: false, errno: 'EINVAL', message: `${file}:${parsed.line}: ${parsed.error}; configuration unchanged` };
    }
    const reply = director.replaceRules(parsed.commands);
    if (!reply.ok) {
      const line = reply.failedIndex !== undefined ? parsed.lines[reply.failedIndex] ?? null : null;
      logger.error('rules reload failed, configuration unchanged', { file, line, error: reply.message ?? reply.errno });
      return { ok: false, errno: reply.errno, message: `${file}${line !== null ? `:${line}` : ''}: ${reply.message ?? reply.errno}; configuration unchanged` };
    }
    logger.info('rules reloaded', { file, commands: parsed.commands.length });
    return { ok: true, message: `${file} reloaded` };
  };
  director.reloadConfiguration = reload;
  director.onQueueLost = () => {
    if (stopping) return;
    stopping = true;
    keepalived?.stop();
    void director.stop().finally(() => process.exit(1));
  };
  process.on('SIGHUP', () => {
    if (!stopping) reload();
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e) => {
    process.stderr.write(`tapvsd: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
