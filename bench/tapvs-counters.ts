/** Packets tapvs forwarded, summed over all virtual services, from `tapvs -L -n --stats --exact`. */
import { type LabTopology } from '../src/lab/topology.js';

/** InPkts + OutPkts over every virtual service (destination lines are not added: they repeat them). */
export async function forwardedPackets(lab: LabTopology): Promise<number> {
  const r = await lab.tapvs(['-L', '-n', '--stats', '--exact']);
  if (r.code !== 0) throw new Error(`tapvs -L --stats failed: ${r.stderr.trim()}`);
  let total = 0;
  for (const line of r.stdout.split('\n')) {
    const m = /^(?:TCP|UDP|SCTP)\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(line);
    if (m) total += Number(m[2]) + Number(m[3]);
  }
  return total;
}
