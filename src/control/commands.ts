/**
 * Apply control commands (the ipvsadm verbs) to the service table. One entry point for every source:
 * the CLI over the control socket, `-R` batches, the `--rules` file at start.
 *
 * Batches are all-or-nothing: they are first run against a scratch copy of the configuration; only if
 * every command succeeds are they applied to the live table, so a failing line leaves nothing half
 * applied. (ipvsadm -R applies line by line and keeps going; tapvs deliberately does not.)
 */
import type { ConnectionTracker } from '../conntrack/connection-tracker.js';
import { DestinationTable } from '../dataplane/destination-table.js';
import type { Command } from './protocol.js';
import { ServiceTable, type ControlError } from './service-table.js';
import { ProtocolTimeouts } from '../conntrack/timeouts.js';
import { formatIpv4 } from '../dataplane/wire/ipv4.js';

export function applyCommand(services: ServiceTable, timeouts: ProtocolTimeouts, cmd: Command): ControlError | null {
  switch (cmd.op) {
    case 'add-service':
      return services.addService(cmd.service);
    case 'edit-service':
      return services.editService(cmd.service);
    case 'delete-service':
      return services.deleteService(cmd.service);
    case 'flush':
      return services.flush();
    case 'add-server':
      return services.addDest(cmd.service, cmd.dest);
    case 'edit-server':
      return services.editDest(cmd.service, cmd.dest);
    case 'delete-server':
      return services.deleteDest(cmd.service, cmd.dest);
    case 'zero':
      return services.zero(cmd.service);
    case 'add-mark':
      return services.addMarkRule(cmd.rule);
    case 'delete-mark':
      return services.deleteMarkRule(cmd.rule);
    case 'add-laddr':
      return services.addLocalAddress(cmd.service, cmd.laddr);
    case 'delete-laddr':
      return services.deleteLocalAddress(cmd.service, cmd.laddr);
    case 'set-timeouts': {
      const t = cmd.timeouts;
      return timeouts.set(t.tcp, t.tcpfin, t.udp) ? null : { errno: 'EINVAL' };
    }
    default:
      return { errno: 'EINVAL', message: `unknown operation ${(cmd as { op: string }).op}` };
  }
}

/** A copy of the configuration (services, destinations, timeouts) with none of the live state. */
function scratchCopy(services: ServiceTable, timeouts: ProtocolTimeouts): { services: ServiceTable; timeouts: ProtocolTimeouts } {
  const copy = new ServiceTable(new DestinationTable());
  for (const rule of services.markRules) copy.addMarkRule(rule);
  for (const svc of services.services) {
    copy.addService(svc.config);
    // Re-add destinations oldest first so that the copy's list order equals the original's.
    for (let i = svc.dests.length - 1; i >= 0; i--) copy.addDest(svc.config, svc.destConfigs.get(svc.dests[i])!);
    for (const l of svc.laddrs) copy.addLocalAddress(svc.config, svc.config.af === 6 ? services.addresses6.text(l) : formatIpv4(l));
  }
  const t = new ProtocolTimeouts();
  const cur = timeouts.get();
  t.set(cur.tcp, cur.tcpfin, cur.udp);
  return { services: copy, timeouts: t };
}

export interface BatchFailure extends ControlError {
  failedIndex: number;
}

export function applyBatch(services: ServiceTable, tracker: ConnectionTracker, commands: Command[]): BatchFailure | null {
  const scratch = scratchCopy(services, tracker.timeouts);
  for (let i = 0; i < commands.length; i++) {
    const err = applyCommand(scratch.services, scratch.timeouts, commands[i]);
    if (err) return { ...err, failedIndex: i };
  }
  for (let i = 0; i < commands.length; i++) {
    const err = applyCommand(services, tracker.timeouts, commands[i]);
    // Cannot happen after a successful dry run; report it rather than hide it.
    if (err) return { ...err, failedIndex: i, message: `applied partially (internal error): ${err.message ?? err.errno}` };
  }
  return null;
}
