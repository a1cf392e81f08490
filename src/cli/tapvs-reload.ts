/**
 * `tapvs reload [--socket PATH]`: make tapvsd re-read its --rules and --keepalived files and apply only the
 * difference, as SIGHUP does. Prints the daemon's summary; exit 0, or 255 with the reason (a bad file is
 * named with file:line and nothing changes).
 */
import { ControlClient, ControlConnectionError } from '../control/client.js';
import { socketPathFromEnv } from '../control/protocol.js';
import { takeSocketOption } from './subcommand.js';

export const RELOAD_USAGE = 'Usage: tapvs reload [--socket PATH]\n';

export async function runReload(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  const parsed = takeSocketOption(argv);
  if ('error' in parsed || parsed.rest.length > 0) {
    err(`tapvs reload: ${'error' in parsed ? parsed.error : `unexpected argument ${parsed.rest[0]}`}\n${RELOAD_USAGE}`);
    return 2;
  }
  const path = socketPathFromEnv(parsed.socket);
  const client = new ControlClient(path);
  try {
    const reply = await client.request({ op: 'reload' });
    if (!reply.ok) {
      err(`tapvs reload: ${reply.message ?? reply.errno}\n`);
      return 255;
    }
    out(`${reply.message ?? 'reloaded'}\n`);
    return 0;
  } catch (e) {
    const why = e instanceof ControlConnectionError ? e.message : String(e);
    err(`tapvs: cannot connect to tapvsd at ${path}: ${why}\n`);
    return 255;
  } finally {
    client.close();
  }
}
