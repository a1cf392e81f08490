/**
 * tapvsd's --keepalived glue (kept here so that tapvsd.ts only calls three functions):
 *
 *  - `runKeepalivedCheck`: `tapvsd --keepalived FILE [--rules FILE] --check` — no TAP, no root;
 *    diagnostics on stderr as FILE:LINE: severity: message, a summary on stdout, keepalived -t's
 *    exit status (0 fine, 4 values fixed up / unknown keywords, 3 cannot run).
 *  - `startKeepalived`: at start, after --rules (a second all-or-nothing batch; the daemon exits 2
 *    before its TAP comes up if it fails, so nothing is ever half applied).
 *  - `reloadOnSighup`: SIGHUP re-reads keepalived.conf (applied by difference) and, when tapvsd also
 *    has --rules, replays the rules file in the same batch (controller.ts combinedReload).
 */
import fs from 'node:fs';
import type { Reply, Request } from '../control/protocol.js';
import type { Logger } from '../logger.js';
import { parseRestoreText } from '../cli/restore-input.js';
import { checkKeepalived, KeepalivedController, type RulesReload } from './controller.js';
import { formatDiagnostic } from './diagnostics.js';
import { HealthCheckEngine } from './checkers/engine.js';

export interface KeepalivedHost {
  handle(req: Request): Reply;
  reloadKeepalived: (() => Reply) | null;
  getCheckers?: (() => Reply) | null;
}

function readRules(file: string): { commands: RulesReload['commands']; lines: number[] } | { error: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    return { error: `${file}:0: cannot read rules file: ${(e as Error).message}` };
  }
  const parsed = parseRestoreText(text);
  if ('error' in parsed) return { error: `${file}:${parsed.line}: ${parsed.error}` };
  return { commands: parsed.commands, lines: parsed.lines };
}

export function runKeepalivedCheck(file: string, rulesFile: string | undefined, out: (s: string) => void, err: (s: string) => void): number {
  let rules: RulesReload['commands'] = [];
  if (rulesFile) {
    const r = readRules(rulesFile);
    if ('error' in r) {
      err(`${r.error}\n`);
      return 3;
    }
    rules = r.commands;
  }
  const result = checkKeepalived(file, rules);
  for (const d of result.diagnostics) err(formatDiagnostic(d) + '\n');
  out(`${result.summary}\n`);
  return result.code;
}

/** Load keepalived.conf into the director; returns the controller, or the error to print. */
export function startKeepalived(file: string, host: KeepalivedHost, log: Logger): KeepalivedController | { error: string } {
  const controller = new KeepalivedController({ file, handle: (req) => host.handle(req), log });
  const engine = new HealthCheckEngine(controller, log).attach();
  const res = controller.start();
  for (const d of res.diagnostics) {
    if (d.severity === 'note') log.info(formatDiagnostic(d));
    else if (d.severity === 'warning') log.warn(formatDiagnostic(d));
  }
  if (!res.ok) {
    engine.stop();
    return { error: `${res.error ?? 'keepalived configuration refused'}; nothing applied` };
  }
  host.reloadKeepalived = () => controller.reload();
  host.getCheckers = () => ({ ok: true, checkers: engine.status() });
  return controller;
}

/** SIGHUP: reload keepalived.conf, and the --rules file with it when there is one. */
export function reloadOnSighup(controller: KeepalivedController, rulesFile: string | undefined, log: Logger): Reply {
  if (!rulesFile) return controller.reload();
  const r = readRules(rulesFile);
  if ('error' in r) {
    const message = `reload refused, configuration unchanged: ${r.error}`;
    log.error(message);
    return { ok: false, errno: 'EINVAL', message };
  }
  const reply = controller.reload({ commands: r.commands, where: (i) => `${rulesFile}:${r.lines[i] ?? 0}` });
  if (reply.ok) log.info('rules reloaded', { file: rulesFile, commands: r.commands.length });
  return reply;
}
