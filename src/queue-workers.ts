/**
 * The worker threads of a multiqueue director (tapvsd --queues N), seen from the main thread.
 *
 * Each worker (src/queue-worker.ts) owns one queue of the TAP and runs a whole data plane on it: its own
 * Pipeline, ConnectionTracker and replica of the service table. The main thread keeps the control plane
 * (control socket, keepalived, metrics) and talks to the workers with synchronous calls: it posts a
 * control request on a worker's MessagePort and waits on a shared word (Atomics.wait) until the worker
 * has answered, then takes the answer off the port (receiveMessageOnPort). So `Director.handle` stays
 * synchronous, as the control socket and keepalived expect, and every worker has applied a command before
 * the client hears "ok".
 *
 * Worker 0 opens its queue first (it creates the device, sets MTU, bridge and link, and attaches the
 * steering program); the others attach afterwards. Frames that teach neighbours (ARP, Neighbour Discovery)
 * are not TCP/UDP, so the steering program gives them all to queue 0: worker 0 relays them here and they
 * are passed on to the other workers (`relayNeighborFrame`).
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { Reply, Request } from './control/protocol.js';
import type { Logger } from './logger.js';
import type { QueueWorkerData, QueueWorkerEvent } from './queue-worker.js';

/** A control call on a worker's port, and its answer. */
export interface QueueCall {
  seq: number;
  req: Request;
}
export interface QueueAnswer {
  seq: number;
  reply: Reply;
}

/** How long a control call waits for a worker before it reports the worker as not answering. */
const CALL_TIMEOUT_MS = 10_000;

interface QueueWorkerHandle {
  worker: Worker;
  port: MessagePort;
  /** [0]: set to 1 by the worker after each answer it posts. */
  signal: Int32Array;
  /** Number of the last call (answers carry it, so that a late answer is never taken for another's). */
  seq: number;
  exited: boolean;
}

export class QueueWorkers {
  private readonly handles: QueueWorkerHandle[] = [];
  private stopping = false;
  /** Called when a running queue's worker dies (its queue's traffic then goes nowhere). */
  onLost: (queue: number, why: string) => void = () => {};

  constructor(
    private readonly base: Omit<QueueWorkerData, 'queue' | 'port' | 'signal'>,
    private readonly log: Logger,
  ) {}

  get count(): number {
    return this.handles.length;
  }

  /** Start the workers one after the other (queue 0 creates the device); rejects when one cannot start. */
  async start(): Promise<void> {
    const queues = this.base.queues;
    for (let q = 0; q < queues; q++) await this.startOne(q);
  }

  private startOne(index: number): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    const signal = new Int32Array(new SharedArrayBuffer(4));
    const data: QueueWorkerData = { ...this.base, queue: index, port: port2, signal };
    const worker = new Worker(new URL('./queue-worker.js', import.meta.url), { workerData: data, transferList: [port2] });
    const handle: QueueWorkerHandle = { worker, port: port1, signal, seq: 0, exited: false };
    this.handles.push(handle);
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: QueueWorkerEvent) => {
        if (m.kind === 'ready') {
          ready = true;
          resolve();
        } else if (m.kind === 'failed') reject(new Error(`queue ${index}: ${m.error}`));
        else if (m.kind === 'neighbor-frame') this.relayNeighborFrame(index, m.frame);
      });
      let failure = '';
      worker.on('error', (e) => {
        failure = e.message;
        this.log.error('queue worker failed', { queue: index, error: e.message });
        if (!ready) reject(new Error(`queue ${index}: ${e.message}`));
      });
      worker.on('exit', (code) => {
        handle.exited = true;
        if (!ready) reject(new Error(`queue ${index}: worker exited (${code}) before it was ready`));
        else if (!this.stopping) this.onLost(index, failure || `worker exited (${code})`);
      });
    });
  }

  /** A frame that teaches neighbours, received by worker `from`: every other worker learns from it. */
  private relayNeighborFrame(from: number, frame: Uint8Array): void {
    this.handles.forEach((h, q) => {
      if (q !== from && !h.exited) h.worker.postMessage({ kind: 'neighbor-frame', frame });
    });
  }

  /** One control request to worker `q`, answered synchronously. */
  call(q: number, req: Request): Reply {
    const h = this.handles[q];
    if (!h || h.exited) return { ok: false, errno: 'EIO', message: `queue ${q} is not running` };
    const seq = ++h.seq;
    Atomics.store(h.signal, 0, 0);
    h.port.postMessage({ seq, req } satisfies QueueCall);
    const deadline = Date.now() + CALL_TIMEOUT_MS;
    for (;;) {
      const m = receiveMessageOnPort(h.port);
      if (m) {
        const answer = m.message as QueueAnswer;
        if (answer.seq === seq) return answer.reply;
        continue; // the late answer to a call that timed out: dropped
      }
      const left = deadline - Date.now();
      if (left <= 0) return { ok: false, errno: 'EIO', message: `queue ${q} did not answer within ${CALL_TIMEOUT_MS / 1000} s` };
      // The worker posts its answer before it sets the signal, so the port holds it once we wake.
      Atomics.wait(h.signal, 0, 0, left);
      Atomics.store(h.signal, 0, 0);
    }
  }

  /** The same request to every worker, in queue order; their answers. */
  broadcast(req: Request): Reply[] {
    return this.handles.map((_, q) => this.call(q, req));
  }

  /** Stop the workers: each closes its queue; the device goes away with the last one (if it was created). */
  async stop(): Promise<void> {
    this.stopping = true;
    const stopping = this.handles.map(async (h) => {
      if (h.exited) return;
      const exited = new Promise<void>((resolve) => h.worker.once('exit', () => resolve()));
      h.worker.postMessage({ kind: 'stop' });
      const timer = setTimeout(() => void h.worker.terminate(), 5000);
      await exited;
      clearTimeout(timer);
      h.port.close();
    });
    await Promise.all(stopping);
    this.handles.length = 0;
  }
}
