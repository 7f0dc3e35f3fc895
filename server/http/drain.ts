/**
 * Graceful drain of the HTTP listener, for a rolling deploy behind a load balancer or Kubernetes:
 *
 * - the listener stops accepting (new connections are refused, so the balancer tries another instance);
 * - every response not yet started, and every request that still arrives on an open keep-alive connection, is
 *   answered with `Connection: close`, so its client opens its next connection elsewhere;
 * - keep-alive connections are closed as soon as they go idle: once at the start, and again after every response
 *   (a connection becomes idle after each one);
 * - every request in flight gets its whole response, until the deadline; then the connections still busy are cut.
 *
 * Closing idle connections is deferred to the end of the current turn of the event loop (setImmediate): a request whose
 * bytes arrived together with the shutdown signal is read and counted as in flight first, not mistaken for an idle
 * connection and reset.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export interface DrainResult {
  /** Requests that finished with a complete response after the drain began. */
  drained: number;
  /** Requests still in flight at the deadline, whose connections were cut. */
  cut: number;
}

export class HttpDrain {
  readonly #server: Server;
  readonly #inFlight = new Set<ServerResponse>();
  #draining = false;
  #drained = 0;
  #settle: (() => void) | undefined;

  /** Must be created before the application's `request` listener, so every request is tracked from its start. */
  constructor(server: Server) {
    this.#server = server;
    server.on('request', (_req: IncomingMessage, res: ServerResponse) => this.#track(res));
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Requests being answered right now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Stops accepting and waits (at most `deadlineMs`) for the requests in flight; then cuts what is left. */
  async drain(deadlineMs: number): Promise<DrainResult> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => {
      setImmediate(() => {
        for (const res of this.#inFlight) closeAfter(res);
        if (this.#server.listening) this.#server.close(() => resolve());
        else resolve();
        this.#server.closeIdleConnections();
      });
    });
    const idle = new Promise<void>((resolve) => {
      this.#settle = () => {
        if (this.#inFlight.size === 0) resolve();
      };
      setImmediate(() => this.#settle?.());
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const outcome = await Promise.race([idle.then(() => closed), deadline]);
    clearTimeout(timer);
    let cut = 0;
    if (outcome === 'deadline') {
      cut = this.#inFlight.size;
      this.#server.closeAllConnections();
    } else {
      this.#server.closeAllConnections(); // only idle ones can be left: none is busy
    }
    return { drained: this.#drained, cut };
  }

  #track(res: ServerResponse): void {
    this.#inFlight.add(res);
    if (this.#draining) closeAfter(res);
    res.once('close', () => {
      this.#inFlight.delete(res);
      if (!this.#draining) return;
      if (res.writableFinished) this.#drained++;
      // The connection may be idle now (a keep-alive response went out before the drain began): close it.
      setImmediate(() => {
        this.#server.closeIdleConnections();
        this.#settle?.();
      });
    });
  }
}

/** Asks the client to close the connection after this response (when its headers have not gone out yet). */
function closeAfter(res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('Connection', 'close');
}
