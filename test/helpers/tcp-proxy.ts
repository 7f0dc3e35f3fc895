/**
 * A loopback TCP proxy a test can break and mend under a running server, to fake what a database's network does:
 * - `cut()` (refuse): every connection is dropped and new ones are refused;
 * - `blackHole()`: connections stay open and new ones are accepted, but nothing is forwarded either way (a partition,
 *   a stopped VM, a full queue: the database accepts and never answers);
 * - `resume()` / `restore()`: forwarding again; what was held during a black hole is delivered then.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

type Mode = 'open' | 'refuse' | 'black-hole';

interface Link {
  client: Socket;
  upstream?: Socket;
  /** Connected upstream and unpiped by a black hole: `resume()` pipes it again (once: a second pipe doubles every byte). */
  held?: boolean;
}

export class TcpProxy {
  #server: Server;
  #links = new Set<Link>();
  #mode: Mode = 'open';
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.#server = createServer((client) => {
      if (this.#mode === 'refuse') {
        client.destroy();
        return;
      }
      const link: Link = { client };
      this.#links.add(link);
      client.on('error', () => client.destroy());
      client.on('close', () => {
        this.#links.delete(link);
        link.upstream?.destroy();
      });
      if (this.#mode === 'black-hole')
        client.pause(); // held: connected upstream on resume
      else this.#forward(link);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
    return this;
  }

  /** Drops every connection and refuses new ones. */
  cut(): void {
    this.#mode = 'refuse';
    for (const { client, upstream } of this.#links) {
      client.destroy();
      upstream?.destroy();
    }
  }

  /** Accepts connections and keeps them, but forwards nothing in either direction until `resume()`. */
  blackHole(): void {
    this.#mode = 'black-hole';
    for (const link of this.#links) {
      const { client, upstream } = link;
      if (!upstream || link.held) continue;
      link.held = true;
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /**
   * Forwards again: held connections are connected upstream, held data is delivered. Idempotent: links that are
   * already forwarding are left alone (piping a socket twice would deliver every byte twice).
   */
  resume(): void {
    this.#mode = 'open';
    for (const link of this.#links) {
      if (link.upstream) {
        if (!link.held) continue;
        link.held = false;
        link.client.pipe(link.upstream);
        link.upstream.pipe(link.client);
        link.client.resume();
        link.upstream.resume();
      } else {
        this.#forward(link);
      }
    }
  }

  /** After `cut()`: accepts and forwards again. */
  restore(): void {
    this.resume();
  }

  /** Connections open through the proxy right now. */
  get connections(): number {
    return this.#links.size;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #forward(link: Link): void {
    const upstream = connect(this.target.port, this.target.host);
    link.upstream = upstream;
    upstream.on('error', () => upstream.destroy());
    upstream.on('close', () => link.client.destroy());
    link.client.pipe(upstream).pipe(link.client);
    link.client.resume();
  }
}
