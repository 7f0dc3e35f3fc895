/**
 * A lean HTTP/1.1 client for the load generator: node:http over keep-alive connections (fetch costs the load
 * generator several times more CPU per request, and it shares the machine with the server under test), plus a
 * minimal cookie jar (name and path; the servers set no Domain) for the browser side of a login flow.
 */
import { Agent, request } from 'node:http';

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** application/x-www-form-urlencoded body. */
  form?: Record<string, string>;
  cookies?: CookieJar;
}

export class HttpClient {
  readonly #agent: Agent;
  readonly #host: string;
  readonly #port: number;

  constructor(
    readonly origin: string,
    maxSockets: number,
  ) {
    const url = new URL(origin);
    this.#host = url.hostname;
    this.#port = Number(url.port);
    this.#agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  /** One request (no redirect following); `path` is absolute on this origin or a full URL of it. */
  async send(path: string, options: RequestOptions = {}): Promise<Response> {
    try {
      return await this.#send(path, options);
    } catch (error) {
      // A server idle while the others take their round closes its keep-alive sockets after 5 s; a request written
      // to such a socket just as it closes never reached the server. Node's documented remedy: send it again once.
      if (
        (error as { reusedSocket?: boolean; code?: string }).reusedSocket &&
        (error as { code?: string }).code === 'ECONNRESET'
      )
        return this.#send(path, options);
      throw error;
    }
  }

  #send(path: string, options: RequestOptions): Promise<Response> {
    const target = path.startsWith('http') ? new URL(path) : undefined;
    const pathname = target ? `${target.pathname}${target.search}` : path;
    const headers: Record<string, string> = { ...options.headers };
    let body: string | undefined;
    if (options.form) {
      body = new URLSearchParams(options.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const cookie = options.cookies?.header(pathname);
    if (cookie) headers.cookie = cookie;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.#host,
          port: this.#port,
          path: pathname,
          method: options.method ?? (body !== undefined ? 'POST' : 'GET'),
          headers,
          agent: this.#agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const setCookie = res.headers['set-cookie'];
            if (setCookie && options.cookies) options.cookies.store(setCookie);
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            });
          });
          res.on('error', reject);
        },
      );
      req.on('error', (error) => reject(Object.assign(error, { reusedSocket: req.reusedSocket })));
      req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${pathname}`)));
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** Cookies by name and path, as a browser keeps them for one host. */
export class CookieJar {
  readonly #cookies = new Map<string, { name: string; value: string; path: string }>();

  header(pathname: string): string {
    const parts: string[] = [];
    for (const cookie of this.#cookies.values())
      if (pathname.startsWith(cookie.path)) parts.push(`${cookie.name}=${cookie.value}`);
    return parts.join('; ');
  }

  store(setCookies: string[]): void {
    for (const header of setCookies) {
      const [pair, ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = value === '';
      for (const attribute of attributes) {
        const [key, raw = ''] = attribute.trim().split('=', 2);
        const lower = key.toLowerCase();
        if (lower === 'path') path = raw || '/';
        else if (lower === 'expires' && Date.parse(raw) <= Date.now()) expired = true;
        else if (lower === 'max-age' && Number(raw) <= 0) expired = true;
      }
      const id = `${name};${path}`;
      if (expired) this.#cookies.delete(id);
      else this.#cookies.set(id, { name, value, path });
    }
  }
}

export function basicAuth(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}
