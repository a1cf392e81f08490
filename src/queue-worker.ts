/**
 * One worker thread of a multiqueue director (tapvsd --queues N; the main thread's side is
 * src/queue-workers.ts): a Director on one queue of the TAP, with its own pipeline, connection table and
 * replica of the service table, and no control socket of its own. The main thread's control requests
 * arrive on `port` and are answered on it, then `signal` wakes the waiting main thread.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Command, Reply } from './control/protocol.js';
import type { QueueAnswer, QueueCall } from './queue-workers.js';
import { IpvsSysctls } from './control/sysctls.js';
import type { InterfaceAddress6 } from './dataplane/addresses6.js';
import type { InterfaceAddress } from './dataplane/routes.js';
import { Director } from './director.js';
import { Logger } from './logger.js';

/** What a queue worker is started with (structured-cloned; the port is transferred). */
export interface QueueWorkerData {
  queue: number;
  queues: number;
  port: MessagePort;
  signal: Int32Array;
  tap: string;
  bridge?: string;
  mac: Uint8Array;
  addresses: InterfaceAddress[];
  addresses6: InterfaceAddress6[];
  gateway?: number;
  gateway6?: Uint8Array;
  /** This queue's share of the connection table limit. */
  connMax: number;
  sysctls: string[];
  busyPollUs?: number;
  mtu?: number;
  offload?: boolean;
  steerByAddress: boolean;
  logFormat: 'text' | 'json';
  /** The configuration the main thread took before the queues started (--rules, keepalived.conf). */
  initialCommands: Command[];
}

/** What a worker tells the main thread on its own (not answers to calls). */
export type QueueWorkerEvent =
  | { kind: 'ready' }
  | { kind: 'failed'; error: string }
  /** An ARP or Neighbour Discovery frame this queue received, for the other queues to learn from. */
  | { kind: 'neighbor-frame'; frame: Uint8Array };

/** What the main thread sends on the worker's parent port. */
type QueueWorkerMessage = { kind: 'stop' } | { kind: 'neighbor-frame'; frame: Uint8Array };

async function run(data: QueueWorkerData): Promise<void> {
  const parent = parentPort!;
  // Warnings and errors only: the main thread logs what the queues do alike (services, rules, TAP up).
  const logger = new Logger(data.logFormat, 'warn');
  const sysctls = new IpvsSysctls();
  for (const s of data.sysctls) sysctls.set(s);
  const director = new Director({
    tap: data.tap,
    bridge: data.bridge,
    mac: data.mac,
    addresses: data.addresses,
    addresses6: data.addresses6,
    gateway: data.gateway,
    gateway6: data.gateway6,
    socketPath: '',
    connMax: data.connMax,
    sysctls,
    busyPollUs: data.busyPollUs,
    mtu: data.mtu,
    offload: data.offload,
    steerByAddress: data.steerByAddress,
    logger,
    queue: { index: data.queue, count: data.queues },
  });
  director.onNeighborFrame = (frame) => parent.postMessage({ kind: 'neighbor-frame', frame } satisfies QueueWorkerEvent, [frame.buffer as ArrayBuffer]);

  data.port.on('message', ({ seq, req }: QueueCall) => {
    let reply: Reply;
    try {
      reply = director.handle(req);
    } catch (e) {
      reply = { ok: false, errno: 'EIO', message: `queue ${data.queue}: ${(e as Error).message}` };
    }
    data.port.postMessage({ seq, reply } satisfies QueueAnswer);
    Atomics.store(data.signal, 0, 1);
    Atomics.notify(data.signal, 0);
  });
  parent.on('message', (m: QueueWorkerMessage) => {
    if (m.kind === 'neighbor-frame') director.learnFromRelayedFrame(m.frame);
    else if (m.kind === 'stop') {
      void director.stop().finally(() => {
        data.port.close();
        parent.close();
      });
    }
  });

  try {
    // The configuration first, so that the queue serves it from its first frame on.
    if (data.initialCommands.length > 0) {
      const r = director.applyInitial({ op: 'batch', commands: data.initialCommands });
      if (!r.ok) throw new Error(`the configuration did not apply: ${r.message ?? r.errno}`);
    }
    await director.start();
  } catch (e) {
    parent.postMessage({ kind: 'failed', error: (e as Error).message } satisfies QueueWorkerEvent);
    await director.stop();
    data.port.close();
    parent.close();
    return;
  }
  parent.postMessage({ kind: 'ready' } satisfies QueueWorkerEvent);
}

if (!isMainThread && parentPort) void run(workerData as QueueWorkerData);
