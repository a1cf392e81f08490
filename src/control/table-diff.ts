/**
 * The difference between two configurations as control commands, so a reload changes only what changed:
 * unchanged services and real servers keep their connections, counters and scheduler state (ipvsadm
 * -E/-e edit in place; only what disappeared is deleted). Used by keepalived.conf reloads and by
 * tapvsd's --rules reload (SIGHUP).
 */
import { applyCommand } from './commands.js';
import type { DestinationConfig, DestinationKey, MarkRule, ServiceConfig, ServiceKey, TableSnapshot } from './model.js';
import { SVC_F_PERSISTENT, sameMarkRule } from './model.js';
import type { Command } from './protocol.js';
import { ServiceTable } from './service-table.js';
import { DestinationTable } from '../dataplane/destination-table.js';
import { ProtocolTimeouts } from '../conntrack/timeouts.js';
import { formatIpv4 } from '../dataplane/wire/ipv4.js';

/** A configuration: services with their destinations (and, where known, FULLNAT local addresses). */
export interface TableLike {
  services: ReadonlyArray<ServiceConfig & { dests: ReadonlyArray<DestinationConfig>; laddrs?: ReadonlyArray<string> }>;
}

export function serviceKeyString(s: ServiceKey): string {
  return s.fwmark !== 0 ? `FWM ${s.af}/${s.fwmark >>> 0}` : `${s.af}/${s.protocol}/${s.addr}/${s.port}`;
}

export function destKeyString(d: DestinationKey): string {
  return `${d.af}/${d.addr}/${d.port}`;
}

function serviceConfigOf(s: ServiceConfig): ServiceConfig {
  const c: ServiceConfig = { af: s.af, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark, scheduler: s.scheduler, flags: s.flags, timeout: s.timeout, netmask: s.netmask, pe: s.pe };
  if (s.clientAddress !== undefined) c.clientAddress = s.clientAddress;
  return c;
}

function serviceKeyOf(s: ServiceKey): ServiceKey {
  return { af: s.af, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark };
}

function destConfigOf(d: DestinationConfig): DestinationConfig {
  return { af: d.af, addr: d.addr, port: d.port, forward: d.forward, weight: d.weight, uThreshold: d.uThreshold, lThreshold: d.lThreshold, tunType: d.tunType, tunPort: d.tunPort, tunFlags: d.tunFlags };
}

function serviceDiffers(a: ServiceConfig, b: ServiceConfig): boolean {
  const persistent = ((a.flags | b.flags) & SVC_F_PERSISTENT) !== 0;
  return (
    a.scheduler !== b.scheduler ||
    a.flags !== b.flags ||
    a.netmask !== b.netmask ||
    a.pe !== b.pe ||
    (persistent && a.timeout !== b.timeout) ||
    (a.clientAddress ?? 'none') !== (b.clientAddress ?? 'none')
  );
}

function destDiffers(a: DestinationConfig, b: DestinationConfig): boolean {
  return (
    a.forward !== b.forward ||
    a.weight !== b.weight ||
    a.uThreshold !== b.uThreshold ||
    a.lThreshold !== b.lThreshold ||
    a.tunType !== b.tunType ||
    a.tunPort !== b.tunPort ||
    a.tunFlags !== b.tunFlags
  );
}

/**
 * Commands that turn `current` into `desired`, touching nothing that is equal: destinations and
 * services only in `current` are deleted, differing ones edited (ipvsadm -E / -e, which keep
 * connections and counters), new ones added. With `owned`, only services and destinations listed there
 * may be deleted (so services from `--rules` or the CLI are left alone). Local addresses are compared only
 * where `desired` lists them.
 *
 * Order: destination deletions, service deletions, service edits, local-address changes, destination
 * edits, then additions (a new service immediately followed by its local addresses and destinations).
 */
export function diffCommands(current: TableLike, desired: TableLike, owned?: TableLike): Command[] {
  const cmds: Command[] = [];
  const cur = new Map(current.services.map((s) => [serviceKeyString(s), s]));
  const des = new Map(desired.services.map((s) => [serviceKeyString(s), s]));
  const ownedDests = owned ? new Map(owned.services.map((s) => [serviceKeyString(s), new Set(s.dests.map(destKeyString))])) : null;
  const mayDeleteService = (k: string): boolean => ownedDests === null || ownedDests.has(k);
  const mayDeleteDest = (k: string, d: string): boolean => ownedDests === null || (ownedDests.get(k)?.has(d) ?? false);

  for (const [k, c] of cur) {
    const d = des.get(k);
    if (!d) continue;
    const wanted = new Set(d.dests.map(destKeyString));
    for (const cd of c.dests) {
      const dk = destKeyString(cd);
      if (!wanted.has(dk) && mayDeleteDest(k, dk)) cmds.push({ op: 'delete-server', service: serviceKeyOf(c), dest: { af: cd.af, addr: cd.addr, port: cd.port } });
    }
  }
  for (const [k, c] of cur) if (!des.has(k) && mayDeleteService(k)) cmds.push({ op: 'delete-service', service: serviceKeyOf(c) });
  for (const [k, d] of des) {
    const c = cur.get(k);
    if (c && serviceDiffers(c, d)) cmds.push({ op: 'edit-service', service: serviceConfigOf(d) });
  }
  for (const [k, d] of des) {
    const c = cur.get(k);
    if (!c || d.laddrs === undefined) continue;
    const have = c.laddrs ?? [];
    for (const l of have) if (!d.laddrs.includes(l)) cmds.push({ op: 'delete-laddr', service: serviceKeyOf(d), laddr: l });
    for (const l of d.laddrs) if (!have.includes(l)) cmds.push({ op: 'add-laddr', service: serviceKeyOf(d), laddr: l });
  }
  for (const [k, d] of des) {
    const c = cur.get(k);
    if (!c) continue;
    const have = new Map(c.dests.map((x) => [destKeyString(x), x]));
    for (const dd of d.dests) {
      const cd = have.get(destKeyString(dd));
      if (cd && destDiffers(cd, dd)) cmds.push({ op: 'edit-server', service: serviceKeyOf(d), dest: destConfigOf(dd) });
    }
  }
  for (const [k, d] of des) {
    const c = cur.get(k);
    if (!c) {
      cmds.push({ op: 'add-service', service: serviceConfigOf(d) });
      for (const l of d.laddrs ?? []) cmds.push({ op: 'add-laddr', service: serviceKeyOf(d), laddr: l });
      for (const dd of d.dests) cmds.push({ op: 'add-server', service: serviceKeyOf(d), dest: destConfigOf(dd) });
      continue;
    }
    const have = new Set(c.dests.map(destKeyString));
    for (const dd of d.dests) if (!have.has(destKeyString(dd))) cmds.push({ op: 'add-server', service: serviceKeyOf(d), dest: destConfigOf(dd) });
  }
  return cmds;
}

/**
 * tapvsd's --rules reload: the commands that turn the live configuration into what the rules file
 * describes, by difference. The file is first applied to an empty scratch table (a bad line is reported by
 * its index, nothing changes); then mark rules, services, real servers and local addresses are compared.
 * Services for which `foreign(key)` is true (e.g. managed by keepalived.conf) are left alone.
 */
export function rulesReloadCommands(
  current: TableSnapshot,
  rules: Command[],
  foreign: (serviceKey: string) => boolean = () => false,
): { commands: Command[] } | { failedIndex: number; errno: string; message?: string } {
  const scratch = new ServiceTable(new DestinationTable());
  const timeouts = new ProtocolTimeouts();
  const timeoutCommands: Command[] = [];
  for (let i = 0; i < rules.length; i++) {
    const err = applyCommand(scratch, timeouts, rules[i]);
    if (err) return { failedIndex: i, errno: err.errno, message: err.message };
    if (rules[i].op === 'set-timeouts') timeoutCommands.push(rules[i]);
  }
  const desired: TableLike = {
    services: scratch.services.map((svc) => ({
      ...svc.config,
      laddrs: svc.laddrs.map(formatIpv4),
      dests: [...svc.dests].reverse().map((id) => svc.destConfigs.get(id)!), // oldest first: added in the file's order
    })),
  };
  const mine: TableLike = { services: current.services.filter((s) => !foreign(serviceKeyString(s))) };
  const commands: Command[] = [];
  const wantedMarks: MarkRule[] = scratch.markRules;
  for (const m of current.marks ?? []) if (!wantedMarks.some((w) => sameMarkRule(w, m))) commands.push({ op: 'delete-mark', rule: m });
  for (const m of wantedMarks) if (!(current.marks ?? []).some((c) => sameMarkRule(c, m))) commands.push({ op: 'add-mark', rule: m });
  commands.push(...diffCommands(mine, desired));
  commands.push(...timeoutCommands);
  return { commands };
}

