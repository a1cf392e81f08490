/**
 * The CLI's end of the control socket: one JSON request per line, one JSON reply line per request,
 * answered in order, over a Unix stream socket to tapvsd.
 */
import { createConnection, type Socket } from 'node:net';
import type { Reply, Request } from './protocol.js';

/** The socket could not be reached (or was lost before a reply came). */
export class ControlConnectionError extends Error {
  constructor(
    readonly socketPath: string,
    readonly reason: string,
  ) {
    super(`cannot connect to tapvsd at ${socketPath}: ${reason}`);
    this.name = 'ControlConnectionError';
  }
}

/** What the CLI needs from a control connection (tests substitute their own). */
export interface ControlChannel {
  request(req: Request): Promise<Reply>;
  close(): void;
}

/** glibc's strerror() text for the errors a Unix-socket connect can meet. */
const SOCKET_ERROR_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or directory',
  ECONNREFUSED: 'Connection refused',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOTSOCK: 'Socket operation on non-socket',
  ENOTDIR: 'Not a directory',
  ECONNRESET: 'Connection reset by peer',
  EPIPE: 'Broken pipe',
  ETIMEDOUT: 'Connection timed out',
  EAGAIN: 'Resource temporarily unavailable',
  ENAMETOOLONG: 'File name too long',
};

function reasonOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined && SOCKET_ERROR_TEXT[code] !== undefined) return SOCKET_ERROR_TEXT[code];
    return error.message;
  }
  return String(error);
}

interface Pending {
  resolve(reply: Reply): void;
  reject(error: Error): void;
}

export class ControlClient implements ControlChannel {
  private socket: Socket | undefined;
  private connected: Promise<void> | undefined;
  private buffered = '';
  private readonly pending: Pending[] = [];
  private failure: ControlConnectionError | undefined;

  constructor(readonly socketPath: string) {}

  request(req: Request): Promise<Reply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return this.connect().then(
      () =>
        new Promise<Reply>((resolve, reject) => {
          if (this.failure !== undefined) {
            reject(this.failure);
            return;
          }
          this.pending.push({ resolve, reject });
          this.socket!.write(`${JSON.stringify(req)}\n`);
        }),
    );
  }

  close(): void {
    this.socket?.end();
    this.socket?.destroy();
    this.socket = undefined;
  }

  private connect(): Promise<void> {
    this.connected ??= new Promise<void>((resolve, reject) => {
      const socket = createConnection({ path: this.socketPath });
      this.socket = socket;
      socket.setEncoding('utf8');
      let isOpen = false;
      socket.once('connect', () => {
        isOpen = true;
        resolve();
      });
      socket.on('data', (chunk: string) => this.receive(chunk));
      socket.on('error', (error) => {
        this.fail(reasonOf(error));
        if (!isOpen) reject(this.failure);
      });
      socket.on('close', () => {
        this.fail('connection closed by tapvsd');
        if (!isOpen) reject(this.failure);
      });
    });
    return this.connected;
  }

  private receive(chunk: string): void {
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      if (line.trim() === '') continue;
      const waiter = this.pending.shift();
      if (waiter === undefined) continue;
      try {
        waiter.resolve(JSON.parse(line) as Reply);
      } catch (error) {
        waiter.reject(new ControlConnectionError(this.socketPath, `bad reply from tapvsd: ${reasonOf(error)}`));
      }
    }
  }

  private fail(reason: string): void {
    this.failure ??= new ControlConnectionError(this.socketPath, reason);
    for (const waiter of this.pending.splice(0)) waiter.reject(this.failure);
  }
}
