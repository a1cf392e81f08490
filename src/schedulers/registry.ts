/**
 * Scheduler registry (kernel register_ip_vs_scheduler / ip_vs_scheduler_get): `-s NAME` resolves
 * here. One file per scheduler; each is registered below under its kernel name, in the kernel's
 * documentation order (rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos).
 *
 * Factories receive the service flags (IP_VS_SVC_F_*): sh and mh read SCHED1 (fallback) and SCHED2
 * (port) from them. A factory that ignores them (`() => Scheduler`, the SchedulerFactory type) is
 * accepted as well.
 */
import type { Scheduler, SchedulerFactory } from './scheduler.js';
import { RrScheduler } from './rr.js';
import { WrrScheduler } from './wrr.js';
import { LcScheduler } from './lc.js';
import { WlcScheduler } from './wlc.js';
import { LblcScheduler } from './lblc.js';
import { LblcrScheduler } from './lblcr.js';
import { DhScheduler } from './dh.js';
import { ShScheduler } from './sh.js';
import { SedScheduler } from './sed.js';
import { NqScheduler } from './nq.js';
import { FoScheduler } from './fo.js';
import { OvfScheduler } from './ovf.js';
import { MhScheduler } from './mh.js';
import { TwosScheduler } from './twos.js';

/** A factory that is given the service flags (IP_VS_SVC_F_*). */
export type FlaggedSchedulerFactory = (flags: number) => Scheduler;

const factories = new Map<string, FlaggedSchedulerFactory>();

/** Register (or replace) the factory for a scheduler name. */
export function registerScheduler(name: string, factory: SchedulerFactory | FlaggedSchedulerFactory): void {
  factories.set(name, factory);
}

/**
 * A fresh scheduler instance for one service, or undefined for an unknown name. `flags` are the
 * service flags (sh-fallback/mh-fallback = SCHED1 0x0008, sh-port/mh-port = SCHED2 0x0010).
 */
export function createScheduler(name: string, flags = 0): Scheduler | undefined {
  const factory = factories.get(name);
  return factory === undefined ? undefined : factory(flags);
}

/** Registered names, in registration order. */
export function schedulerNames(): string[] {
  return [...factories.keys()];
}

registerScheduler('rr', () => new RrScheduler());
registerScheduler('wrr', () => new WrrScheduler());
registerScheduler('lc', () => new LcScheduler());
registerScheduler('wlc', () => new WlcScheduler());
registerScheduler('lblc', () => new LblcScheduler());
registerScheduler('lblcr', () => new LblcrScheduler());
registerScheduler('dh', () => new DhScheduler());
registerScheduler('sh', (flags) => new ShScheduler(flags));
registerScheduler('sed', () => new SedScheduler());
registerScheduler('nq', () => new NqScheduler());
registerScheduler('fo', () => new FoScheduler());
registerScheduler('ovf', () => new OvfScheduler());
registerScheduler('mh', (flags) => new MhScheduler(flags));
registerScheduler('twos', () => new TwosScheduler());
