/**
 * The health-check engine: runs every real server's checkers (scheduler.ts + one file per checker type),
 * keeps each real server's alive state (alive only when all its checkers are up) and effective weight
 * (misc_dynamic), and is the controller's RuntimeState: every change goes through
 * KeepalivedController.applyRuntime, i.e. planTable's table applied as a control batch (so inhibit,
 * quorum, hysteresis and the sorry server are decided in one place). Runs notify_up/notify_down and
 * quorum_up/quorum_down scripts, logs one line per state change, and serves the status view.
 *
 * Reload (controller.onApplied): checkers whose type and parameters are unchanged (checkerFingerprint)
 * keep their runner and state; new checkers of a real server that was down start down (a failed real
 * server is not re-added by a reload: it waits for its checker, as keepalived 2.2+); removed ones stop.
 */
import { spawn } from 'node:child_process';
import type { RealServerCheckStatus } from '../../control/protocol.js';
import type { Logger } from '../../logger.js';
import { checkerFingerprint, type Checker, type KeepalivedConfig, type RealServer, type ScriptSpec, type VirtualServer } from '../config.js';
import type { KeepalivedController } from '../controller.js';
import { formatRef } from '../diagnostics.js';
import type { RuntimeState } from '../to-commands.js';
import { checkerTarget, runCheck } from './index.js';
import { CheckerRunner, realClock, type CheckResult, type Clock, type Transition } from './scheduler.js';
import type { CheckOutcome } from './types.js';

interface CheckerEntry {
  checker: Checker;
  fingerprint: string;
  runner: CheckerRunner;
  /** misc_dynamic: the weight the last 2..255 exit asked for. */
  dynamicWeight?: number;
  owner: ServerEntry;
}

interface ServerEntry {
  key: string;
  vs: VirtualServer;
  rs: RealServer;
  checkers: CheckerEntry[];
  alive: boolean;
}

export type CheckFunction = (c: Checker, signal: AbortSignal) => Promise<CheckOutcome>;

/** The effective weight: configured weight plus each dynamic checker's (weight - configured) (keepalived update_svr_wgt). */
export function effectiveWeight(configured: number, dynamicWeights: (number | undefined)[]): number {
  let w = configured;
  for (const d of dynamicWeights) if (d !== undefined) w += d - configured;
  return Math.max(0, Math.min(0x7fffffff, w));
}

const SCRIPT_TIMEOUT_MS = 30_000;

export class HealthCheckEngine implements RuntimeState {
  private servers = new Map<string, ServerEntry>();
  private stopped = false;
  /** Checkers run only after begin() (tapvsd calls it once its data plane is up). */
  private begun = false;

  constructor(
    private readonly controller: KeepalivedController,
    private readonly log: Logger,
    private readonly clock: Clock = realClock,
    private readonly check: CheckFunction = runCheck,
    /** Runs notify/quorum scripts (tests replace it). */
    private readonly runScript: (s: ScriptSpec, why: string) => void = (s, why) => runScriptDetached(s, why, log),
  ) {}

  /** Plug into the controller: before controller.start(). */
  attach(): this {
    this.controller.runtime = this;
    this.controller.onApplied = (config) => this.sync(config);
    this.controller.onStop = () => this.stop();
    this.controller.onStartCheckers = () => this.begin();
    this.controller.checkersRunning = true;
    return this;
  }

  // RuntimeState ----------------------------------------------------------------------------------
  realServerAlive(vsId: string, rsId: string): boolean | undefined {
    return this.servers.get(`${vsId}|${rsId}`)?.alive;
  }
  quorumUp(vsId: string): boolean | undefined {
    return this.controller.plan?.state.quorumUp(vsId);
  }
  realServerWeight(vsId: string, rsId: string): number | undefined {
    const e = this.servers.get(`${vsId}|${rsId}`);
    if (!e || !e.checkers.some((c) => c.dynamicWeight !== undefined)) return undefined;
    return this.weightOf(e);
  }

  private weightOf(e: ServerEntry): number {
    return effectiveWeight(e.rs.weight, e.checkers.map((c) => c.dynamicWeight));
  }

  /** A configuration was applied (start or reload): start, keep or stop checkers. */
  sync(config: KeepalivedConfig): void {
    if (this.stopped) return;
    const next = new Map<string, ServerEntry>();
    const fresh: CheckerRunner[] = [];
    for (const vs of config.virtualServers) {
      for (const rs of vs.realServers) {
        const key = `${vs.id}|${rs.id}`;
        const old = this.servers.get(key);
        const entry: ServerEntry = { key, vs, rs, checkers: [], alive: true };
        const spare = old ? [...old.checkers] : [];
        for (const c of rs.checkers) {
          const fp = checkerFingerprint(c);
          const i = spare.findIndex((x) => x.fingerprint === fp);
          if (i >= 0) {
            const kept = spare.splice(i, 1)[0];
            kept.checker = c;
            kept.owner = entry;
            entry.checkers.push(kept);
            continue;
          }
          const ce: CheckerEntry = { checker: c, fingerprint: fp, owner: entry } as CheckerEntry;
          const startDown = old !== undefined && !old.alive;
          ce.runner = new CheckerRunner(
            c,
            (signal) => this.check(ce.checker, signal),
            this.clock,
            (_r, result, t) => this.onResult(ce, result, t),
            startDown ? { up: false, retryIt: 0, hasRun: false } : undefined,
          );
          entry.checkers.push(ce);
          fresh.push(ce.runner);
        }
        for (const gone of spare) gone.runner.stop();
        entry.alive = entry.checkers.every((c) => c.runner.state.up);
        next.set(key, entry);
      }
    }
    for (const [key, old] of this.servers) if (!next.has(key)) for (const c of old.checkers) c.runner.stop();
    this.servers = next;
    if (this.begun) for (const r of fresh) r.start();
    // A reload may have changed a real server's checkers (and so its state): bring the table in line.
    const state = this.controller.plan?.state;
    if (state && [...next.values()].some((e) => state.realServerAlive(e.vs.id, e.rs.id) !== e.alive)) this.apply();
  }

  private onResult(ce: CheckerEntry, result: CheckResult, transition: Transition): void {
    if (this.stopped) return;
    const e = ce.owner;
    if (this.servers.get(e.key) !== e) return; // replaced by a reload
    const c = ce.checker;
    const what = `${c.type} ${checkerTarget(c)}`;
    let changed = false;
    if (!result.ok && transition === null && (c.logAllFailures || ce.runner.state.up))
      this.log.info(`keepalived: ${what} of real server ${e.rs.id} (virtual_server ${e.vs.id}) failed: ${result.reason}${ce.runner.state.up ? `; retry ${ce.runner.state.retryIt}/${c.retry} in ${c.delayBeforeRetry} s` : ''}`);
    const weightBefore = this.weightOf(e);
    if (result.ok && result.weight !== undefined) ce.dynamicWeight = result.weight;
    if (transition !== null) {
      const alive = e.checkers.every((x) => x.runner.state.up);
      if (alive !== e.alive) {
        e.alive = alive;
        changed = true;
        const action = alive ? `weight ${this.weightOf(e)}` : e.rs.inhibitOnFailure ? 'weight 0 (inhibit_on_failure)' : 'removed';
        const why = transition === 'down' ? `${what}: ${result.reason}${c.retry > 0 ? ` (after ${c.retry} retries)` : ''}` : `${what}: ${result.reason}`;
        this.log.info(`keepalived: real server ${e.rs.id} of virtual_server ${e.vs.id} is ${alive ? 'UP' : 'DOWN'} (${action}): ${why}`);
        const script = alive ? e.rs.notifyUp : e.rs.notifyDown;
        if (script) this.runScript(script, `notify_${alive ? 'up' : 'down'} of real server ${e.rs.id}`);
      } else {
        this.log.info(`keepalived: ${what} of real server ${e.rs.id} (virtual_server ${e.vs.id}) is ${transition === 'up' ? 'UP' : 'DOWN'}: ${result.reason}; real server stays ${e.alive ? 'UP' : 'DOWN'}`);
      }
    }
    const weightAfter = this.weightOf(e);
    if (weightAfter !== weightBefore) {
      changed = true;
      this.log.info(`keepalived: real server ${e.rs.id} of virtual_server ${e.vs.id}: weight ${weightBefore} -> ${weightAfter} (${what}: ${result.reason})`);
    }
    if (changed) this.apply();
  }

  /** Apply planTable(config, this) through the controller; log and script quorum changes. */
  private apply(): void {
    const before = new Map(this.controller.plan?.state.quorum ?? []);
    const reply = this.controller.applyRuntime();
    if (!reply.ok) {
      this.log.error(`keepalived: applying a health-check change failed: ${reply.message ?? reply.errno}`);
      return;
    }
    const after = this.controller.plan?.state.quorum;
    const config = this.controller.config;
    if (!after || !config) return;
    for (const vs of config.virtualServers) {
      const was = before.get(vs.id);
      const now = after.get(vs.id);
      if (was === undefined || now === undefined || was === now) continue;
      const sum = vs.realServers.reduce((n, rs) => n + (this.realServerAlive(vs.id, rs.id) ? (this.realServerWeight(vs.id, rs.id) ?? rs.weight) : 0), 0);
      const sorry = vs.sorryServer ? (now ? `; sorry server ${vs.sorryServer.id} out` : `; sorry server ${vs.sorryServer.id} in`) : '';
      this.log.info(`keepalived: virtual_server ${vs.id} quorum ${now ? 'gained' : 'lost'} (alive weight ${sum}, quorum ${vs.quorum}, hysteresis ${vs.hysteresis})${sorry}`);
      const script = now ? vs.quorumUp : vs.quorumDown;
      if (script) this.runScript(script, `quorum_${now ? 'up' : 'down'} of virtual_server ${vs.id}`);
    }
  }

  status(): RealServerCheckStatus[] {
    const out: RealServerCheckStatus[] = [];
    const now = this.clock.now();
    for (const e of this.servers.values()) {
      out.push({
        virtualServer: e.vs.id,
        realServer: e.rs.id,
        alive: e.alive,
        weight: this.weightOf(e),
        inhibitOnFailure: e.rs.inhibitOnFailure,
        checkers: e.checkers.map((ce) => ({
          type: ce.checker.type,
          at: formatRef(ce.checker.at),
          target: checkerTarget(ce.checker),
          up: ce.runner.state.up,
          result: ce.runner.last ? (ce.runner.last.ok ? 'ok' : 'failed') : null,
          time: ce.runner.last ? new Date(ce.runner.last.at).toISOString() : null,
          reason: ce.runner.last?.reason ?? 'not checked yet',
          retries: ce.runner.state.up ? ce.runner.state.retryIt : 0,
          retry: ce.checker.retry,
          nextCheckIn: ce.runner.nextAt !== null ? Math.max(0, (ce.runner.nextAt - now) / 1000) : null,
        })),
      });
    }
    return out;
  }

  /** Start every checker (first check at 1 s + random(0..warmup)). */
  begin(): void {
    if (this.stopped || this.begun) return;
    this.begun = true;
    for (const e of this.servers.values()) for (const c of e.checkers) c.runner.start();
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.servers.values()) for (const c of e.checkers) c.runner.stop();
  }
}

/** Run a notify/quorum script as keepalived does: its own argv (no arguments appended), asynchronously, bounded. */
export function runScriptDetached(s: ScriptSpec, why: string, log: Logger): void {
  const [cmd, ...args] = s.argv;
  if (!cmd) return;
  let child;
  try {
    child = spawn(cmd, args, { stdio: 'ignore' });
  } catch (e) {
    log.warn(`keepalived: ${why}: cannot run ${s.command}: ${(e as Error).message}`);
    return;
  }
  const timer = setTimeout(() => {
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 1000).unref();
    log.warn(`keepalived: ${why}: ${s.command} still running after ${SCRIPT_TIMEOUT_MS / 1000} s: killed`);
  }, SCRIPT_TIMEOUT_MS);
  timer.unref();
  child.on('error', (e) => {
    clearTimeout(timer);
    log.warn(`keepalived: ${why}: cannot run ${s.command}: ${e.message}`);
  });
  child.on('exit', (code, sig) => {
    clearTimeout(timer);
    if (code !== 0) log.warn(`keepalived: ${why}: ${s.command} exited ${code ?? sig}`);
  });
}
