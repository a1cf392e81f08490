/**
 * keepalived.conf in a running tapvsd: load it at start through the control commands (one all-or-nothing
 * batch), and reload it (SIGHUP or the `reload-keepalived` control request) by applying only the
 * difference between the live table and the new configuration. Also `tapvsd --keepalived FILE --check`.
 *
 * The health-check engine plugs in through `runtime` (which real servers are alive, quorum state,
 * effective weights) and `onApplied` (called with the new configuration after every successful load).
 */
import { applyCommand } from '../control/commands.js';
import { ipvsStrerror, operationOf } from '../control/errors.js';
import { ForwardMethod, type TableSnapshot } from '../control/model.js';
import type { Command, Reply, Request } from '../control/protocol.js';
import { ServiceTable } from '../control/service-table.js';
import { ProtocolTimeouts } from '../conntrack/timeouts.js';
import { DestinationTable } from '../dataplane/destination-table.js';
import type { Logger } from '../logger.js';
import type { KeepalivedConfig } from './config.js';
import { checkExitCode, formatDiagnostic, formatRef, type Diagnostic } from './diagnostics.js';
import type { LexOptions } from './lexer.js';
import { loadKeepalivedConfig } from './load.js';
import { rulesReloadCommands } from '../control/table-diff.js';
import { commandOrigin, describeCommand, diffCommands, initialCommands, planTable, reloadCommands, serviceKeyString, type Plan, type RuntimeState } from './to-commands.js';

export interface KeepalivedControllerOptions {
  file: string;
  /** The director's request handler (Director.handle). */
  handle: (req: Request) => Reply;
  log: Logger;
  lex?: LexOptions;
}

export interface StartResult {
  ok: boolean;
  diagnostics: Diagnostic[];
  /** `FILE:LINE: ...` when not ok. */
  error?: string;
  commands: Command[];
}

/** `FILE:LINE: virtual_server ID[: real_server ID (FILE:LINE)]: <command> refused: <why>`. */
export function describeFailure(cmd: Command, errno: string, message: string | undefined, plan: Plan, previous?: Plan | null): string {
  const origin = commandOrigin(plan, cmd, previous);
  const why = message ?? ipvsStrerror(operationOf(cmd), errno as Parameters<typeof ipvsStrerror>[1]);
  let where = 'keepalived configuration';
  if (origin) {
    where = `${formatRef(origin.vs)}: virtual_server ${origin.vsId}`;
    if (origin.rs) where += `: ${origin.role === 'sorry' ? 'sorry_server' : 'real_server'} ${origin.rsId} (${formatRef(origin.rs)})`;
  }
  let hint = '';
  if ((cmd.op === 'add-server' || cmd.op === 'edit-server') && cmd.dest.forward !== ForwardMethod.Masq) {
    const d = cmd.dest;
    const tun = d.forward === ForwardMethod.Tunnel ? ` type ${['ipip', 'gue', 'gre'][d.tunType] ?? d.tunType}${d.tunPort ? ` port ${d.tunPort}` : ''}${d.tunFlags ? ` ${['nocsum', 'csum', 'remcsum'][d.tunFlags]}` : ''}` : '';
    hint = ` (lvs_method ${d.forward === ForwardMethod.Route ? 'DR' : d.forward === ForwardMethod.Tunnel ? 'TUN' : String(d.forward)}${tun})`;
  }
  return `${where}: ${describeCommand(cmd)} refused by tapvsd: ${why}${hint}`;
}

export class KeepalivedController {
  config: KeepalivedConfig | null = null;
  plan: Plan | null = null;
  /** The health-check engine's live state; null = keep the decisions of the previous plan. */
  runtime: RuntimeState | null = null;
  /** Called after a configuration has been applied (at start and after each successful reload). */
  onApplied: ((config: KeepalivedConfig, plan: Plan, previous: KeepalivedConfig | null) => void) | null = null;
  /** Set by the health-check engine when it runs the checkers; until then start() says they do not run. */
  checkersRunning = false;
  /** Called by stop() (the health-check engine stops its checkers). */
  onStop: (() => void) | null = null;
  /** Called by startCheckers() (the health-check engine starts its checkers). */
  onStartCheckers: (() => void) | null = null;

  constructor(private readonly opts: KeepalivedControllerOptions) {}

  get file(): string {
    return this.opts.file;
  }

  /** Load the file and apply it in one batch. Nothing is applied when anything fails. */
  start(): StartResult {
    const { config, diagnostics } = loadKeepalivedConfig(this.opts.file, this.opts.lex);
    const plan = planTable(config);
    const diags = [...diagnostics, ...plan.diagnostics];
    const fatal = diags.find((d) => d.severity === 'error');
    if (fatal) return { ok: false, diagnostics: diags, error: formatDiagnostic(fatal), commands: [] };
    const commands = initialCommands(plan);
    if (commands.length > 0) {
      const reply = this.opts.handle({ op: 'batch', commands });
      if (!reply.ok) {
        const cmd = commands[reply.failedIndex ?? 0];
        return { ok: false, diagnostics: diags, error: describeFailure(cmd, reply.errno, reply.message, plan), commands };
      }
    }
    this.config = config;
    this.plan = plan;
    this.opts.log.info('keepalived configuration loaded', {
      file: this.opts.file,
      virtualServers: config.virtualServers.length,
      services: plan.services.length,
      commands: commands.length,
    });
    this.onApplied?.(config, plan, null);
    const checkers = config.virtualServers.reduce((n, v) => n + v.realServers.reduce((m, r) => m + r.checkers.length, 0), 0);
    if (!this.checkersRunning && checkers > 0)
      this.opts.log.info('keepalived health checkers are read but not run yet: real servers stay as they start', { checkers });
    return { ok: true, diagnostics: diags, commands };
  }

  /** tapvsd's data plane is up: start the health checkers. */
  startCheckers(): void {
    this.onStartCheckers?.();
  }

  /** tapvsd is stopping: stop the health checkers. */
  stop(): void {
    this.onStop?.();
  }

  /**
   * The runtime state changed (a real server went up or down, a misc_dynamic weight changed): plan the
   * running configuration again with `runtime` and apply the difference to the live table as one batch,
   * touching only what keepalived.conf manages.
   */
  applyRuntime(): Reply {
    if (!this.config || !this.plan) return { ok: true, message: 'no keepalived configuration' };
    const plan = planTable(this.config, this.runtime ?? this.plan.state);
    const got = this.opts.handle({ op: 'get-table' });
    if (!got.ok || !got.table) return { ok: false, errno: 'EINVAL', message: 'cannot read the table' };
    const commands = diffCommands(got.table, plan, this.plan.owned);
    if (commands.length > 0) {
      const reply = this.opts.handle({ op: 'batch', commands });
      if (!reply.ok) {
        const cmd = commands[reply.failedIndex ?? 0];
        return { ok: false, errno: reply.errno, message: describeFailure(cmd, reply.errno, reply.message, plan, this.plan) };
      }
      this.opts.log.info('keepalived: table updated', { changes: commands.map(describeCommand) });
    }
    this.plan = plan;
    return { ok: true, message: `${commands.length} change(s)` };
  }

  /**
   * Re-read the file and apply the difference. On any error the running configuration stays as it is
   * and the reply says why (with file:line).
   *
   * With `rules` (tapvsd started with both --rules and --keepalived, on SIGHUP): the rules file is
   * reloaded in the same batch (see combinedReload).
   */
  reload(rules?: RulesReload): Reply {
    const log = this.opts.log;
    const { config, diagnostics } = loadKeepalivedConfig(this.opts.file, this.opts.lex);
    const plan = planTable(config, this.runtime ?? this.plan?.state);
    const diags = [...diagnostics, ...plan.diagnostics];
    for (const d of diags) if (d.severity !== 'note') log.warn(formatDiagnostic(d));
    const fatal = diags.filter((d) => d.severity === 'error');
    if (fatal.length > 0) {
      const message = `keepalived reload refused, configuration unchanged: ${fatal.map(formatDiagnostic).join('; ')}`;
      log.error(message);
      return { ok: false, errno: 'EINVAL', message };
    }
    const got = this.opts.handle({ op: 'get-table' });
    if (!got.ok || !got.table) return { ok: false, errno: 'EINVAL', message: 'keepalived reload: cannot read the table' };
    const table: TableSnapshot = got.table;
    let commands: Command[];
    if (rules) {
      const combined = combinedReload(plan, table, this.plan, rules);
      if ('error' in combined) {
        const message = `reload refused, configuration unchanged: ${combined.error}`;
        log.error(message);
        return { ok: false, errno: 'EINVAL', message };
      }
      commands = combined.commands;
    } else commands = reloadCommands(plan, table, this.plan);
    if (commands.length > 0) {
      const reply = this.opts.handle({ op: 'batch', commands });
      if (!reply.ok) {
        const index = reply.failedIndex ?? 0;
        const cmd = commands[index];
        const message = `keepalived reload refused, configuration unchanged: ${describeFailure(cmd, reply.errno, reply.message, plan, this.plan)}`;
        log.error(message);
        return { ok: false, errno: reply.errno, message };
      }
    }
    const previous = this.config;
    this.config = config;
    this.plan = plan;
    const count = (op: string): number => commands.filter((c) => c.op.startsWith(op)).length;
    const summary = `keepalived configuration reloaded: ${commands.length} change(s) (${count('add')} added, ${count('edit')} edited, ${count('delete')} deleted)`;
    log.info(summary, { file: this.opts.file, changes: commands.map(describeCommand) });
    this.onApplied?.(config, plan, previous);
    return { ok: true, message: summary };
  }
}

/** The --rules commands to reload together with keepalived.conf. */
export interface RulesReload {
  commands: Command[];
  /** `FILE:LINE` of command i (for messages). */
  where(index: number): string;
}

/**
 * SIGHUP with both --rules and --keepalived, as one batch: the rules file is replayed as tapvsd's
 * rules reload does (every service keepalived does not manage is deleted, every mark rule too, then the
 * file's commands), and keepalived.conf is applied by difference, so keepalived's unchanged services
 * and destinations keep their connections and counters.
 */
function combinedReload(
  plan: Plan,
  table: TableSnapshot,
  previous: Plan | null,
  rules: RulesReload,
): { commands: Command[] } | { error: string } {
  const ruleServices = new Set<string>();
  for (const c of rules.commands) if (c.op === 'add-service') ruleServices.add(serviceKeyString(c.service));
  for (const svc of plan.services) {
    if (ruleServices.has(serviceKeyString(svc)))
      return { error: `${formatRef(svc.origin.vs)}: virtual_server ${svc.origin.vsId}: its service is also defined by the rules file` };
  }
  // The rules file by difference over the services keepalived.conf does not manage, then keepalived.conf
  // by difference: both keep unchanged services' connections and counters.
  const managed = new Set([...(previous ?? plan).owned.services, ...plan.services].map(serviceKeyString));
  const rulesDiff = rulesReloadCommands(table, rules.commands, (k) => managed.has(k));
  if ('failedIndex' in rulesDiff) return { error: `${rules.where(rulesDiff.failedIndex)}: ${rulesDiff.message ?? rulesDiff.errno}` };
  return { commands: [...rulesDiff.commands, ...reloadCommands(plan, table, previous)] };
}

export interface CheckResult {
  /** keepalived -t's status: 0 fine, 4 warnings (values fixed up, unknown keywords), 3 cannot run. */
  code: number;
  diagnostics: Diagnostic[];
  summary: string;
}

/**
 * `tapvsd --keepalived FILE --check`: parse, resolve and dry-run the commands against an empty table
 * (after `rules`, the --rules commands, if given), with no TAP and no privileges.
 */
export function checkKeepalived(file: string, rules: Command[] = [], lex?: LexOptions): CheckResult {
  const { config, diagnostics } = loadKeepalivedConfig(file, lex);
  const plan = planTable(config);
  const diags = [...diagnostics, ...plan.diagnostics];
  if (!diags.some((d) => d.severity === 'error')) {
    const table = new ServiceTable(new DestinationTable());
    const timeouts = new ProtocolTimeouts();
    for (const cmd of rules) applyCommand(table, timeouts, cmd);
    for (const cmd of initialCommands(plan)) {
      const err = applyCommand(table, timeouts, cmd);
      if (err) {
        const origin = commandOrigin(plan, cmd);
        const at = origin ? origin.vs : { file, line: 0 };
        const text = describeFailure(cmd, err.errno, err.message, plan);
        diags.push({ severity: 'error', file: at.file, line: at.line, message: text.startsWith(formatRef(at)) ? text.slice(formatRef(at).length + 2) : text });
        break;
      }
    }
  }
  const dests = plan.services.reduce((n, s) => n + s.dests.length, 0);
  const count = (s: string): number => diags.filter((d) => d.severity === s).length;
  const summary = `${file}: ${config.virtualServers.length} virtual server(s), ${plan.services.length} service(s), ${dests} destination(s); ${count('error')} error(s), ${count('warning')} warning(s)`;
  return { code: checkExitCode(diags), diagnostics: diags, summary };
}
