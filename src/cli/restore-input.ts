/**
 * Rules in `ipvsadm -S` / `-R` format (and tapvs's `--add-mark` and `--add-laddr` lines) to control commands: used by
 * `tapvs -R` and by `tapvsd --rules`.
 * Every line is parsed before anything is applied; a line that is not a rule command, or fails
 * ipvsadm's validation, stops the whole restore.
 */
import type { Command } from '../control/protocol.js';
import { tokenizeRestoreInput } from '../control/save-format.js';
import type { NameDatabase } from './address-port.js';
import { parseIpvsadmArgs } from './ipvsadm-options.js';

export type RestoreParse =
  | { commands: Command[]; /** 1-based input line of each command */ lines: number[] }
  | { error: string; line: number; exitCode: number };

/** `names`: host, netmask and port look-ups (default: the system's /etc/hosts and /etc/services). */
export function parseRestoreText(text: string, names?: NameDatabase): RestoreParse {
  const commands: Command[] = [];
  const lines: number[] = [];
  for (const { lineNumber, args } of tokenizeRestoreInput(text)) {
    const parsed = parseIpvsadmArgs(args, names === undefined ? {} : { names });
    if (!parsed.ok) return { error: parsed.failure.message, line: lineNumber, exitCode: parsed.failure.exitCode };
    const inv = parsed.invocation;
    if (inv.kind === 'restore') return { error: 'restore (-R) is not allowed inside restore input', line: lineNumber, exitCode: 2 };
    if (inv.kind !== 'command') return { error: `not a rule command: ${args.join(' ')}`, line: lineNumber, exitCode: 2 };
    commands.push(inv.command);
    lines.push(lineNumber);
  }
  return { commands, lines };
}
