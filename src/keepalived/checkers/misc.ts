/**
 * MISC_CHECK (check_misc.c): run misc_path (its words split with keepalived's quoting rules, executed
 * directly as keepalived 2.x does, not through a shell), kill it after misc_timeout (SIGTERM, then SIGKILL
 * 1 s later) — a timeout is a failure. Exit 0 = up, anything else = down; with misc_dynamic: 0 = up with
 * the weight unchanged, 1 = down, 2..255 = up with weight exit - 2. A script that cannot be executed
 * counts as success, as in keepalived ("script errors aren't server errors").
 */
import { spawn } from 'node:child_process';
import type { MiscChecker } from '../config.js';
import { errText, fail, ok, seconds, type CheckOutcome } from './types.js';

/** keepalived's reading of a MISC_CHECK exit (misc_check_child_thread). */
export function miscOutcome(code: number | null, signal: string | null, dynamic: boolean, timedOut: boolean, timeout = 0): CheckOutcome {
  if (timedOut) return fail(`script timed out after ${seconds(timeout)}`);
  if (code === null) return fail(`script killed by ${signal ?? 'a signal'}`);
  if (code === 0) return ok('script exited 0');
  if (dynamic) {
    if (code === 1) return fail('script exited 1');
    if (code >= 2 && code <= 255) return ok(`script exited ${code}: weight ${code - 2}`, code - 2);
  }
  return fail(`script exited ${code}`);
}

export function miscCheck(c: MiscChecker, signal: AbortSignal): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    const [cmd, ...args] = c.script.argv;
    if (!cmd) return resolve(ok('empty misc_path (keepalived counts script errors as success)'));
    let timedOut = false;
    let settled = false;
    const child = spawn(cmd, args, { stdio: 'ignore' });
    const kill = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 1000);
    };
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, c.timeout * 1000);
    const onAbort = (): void => kill();
    signal.addEventListener('abort', onAbort);
    const settle = (o: CheckOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      signal.removeEventListener('abort', onAbort);
      resolve(o);
    };
    child.on('error', (e) => settle(ok(`cannot run ${cmd}: ${errText(e)} (keepalived counts script errors as success)`)));
    child.on('exit', (code, sig) => settle(signal.aborted && !timedOut ? fail('aborted') : miscOutcome(code, sig, c.dynamic, timedOut, c.timeout)));
  });
}
