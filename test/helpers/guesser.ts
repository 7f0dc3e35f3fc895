/**
 * A password guesser for sign-in protection tests: it opens one login page, then posts that page's form again and
 * again, each time from the address it is told: a real source address on the loopback network (127.0.0.0/8 is all
 * loopback on Linux, so `from: { localAddress: '127.0.0.7' }` is another client as the server sees it), or an
 * `X-Forwarded-For` header (what an attacker sends to a server with `proxy: true`). No cookie jar of its own beyond
 * the interaction cookies: a stranger has no device cookie.
 */
import { request } from 'node:http';
import type * as oidc from 'openid-client';
import { Browser, formWithAction } from './browser.js';
import { startAuthorization } from './relying-party.js';

export interface From {
  /** Connect from this loopback address. */
  localAddress?: string;
  /** Send `X-Forwarded-For: <value>`. */
  forwardedFor?: string;
}

export interface Answer {
  status: number;
  retryAfter: number | undefined;
  body: string;
  setCookies: string[];
}

export class Guesser {
  private constructor(
    private readonly target: URL,
    private readonly fields: Record<string, string>,
    private readonly cookie: string,
  ) {}

  /** A login page of `config`'s client (its authorization request made from 127.0.0.1). */
  static async open(config: oidc.Configuration): Promise<Guesser> {
    const browser = new Browser('Guesser/1.0');
    const page = await startAuthorization(browser, config);
    const form = formWithAction(page.body, '/login');
    // Requests go to 127.0.0.1 itself (the issuer's `localhost` may resolve to ::1, which a 127.x source cannot reach).
    const target = new URL(form.action, page.url);
    target.hostname = '127.0.0.1';
    return new Guesser(target, form.fields, browser.cookieHeader(new URL(form.action, page.url)));
  }

  /** One POST of the login form with this username and password, from `from`, with `cookie` added (a device cookie). */
  guess(username: string, password: string, from: From = {}, cookie?: string): Promise<Answer> {
    const body = new URLSearchParams({ ...this.fields, username, password }).toString();
    const headers: Record<string, string> = {
      host: `localhost:${this.target.port}`,
      'content-type': 'application/x-www-form-urlencoded',
      'content-length': String(Buffer.byteLength(body)),
      accept: 'text/html',
      cookie: [this.cookie, cookie].filter(Boolean).join('; '),
    };
    if (from.forwardedFor) headers['x-forwarded-for'] = from.forwardedFor;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.target.port,
          path: this.target.pathname,
          method: 'POST',
          headers,
          localAddress: from.localAddress,
          agent: false,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => {
            const retryAfter = res.headers['retry-after'];
            resolve({
              status: res.statusCode ?? 0,
              retryAfter: retryAfter === undefined ? undefined : Number(retryAfter),
              body: text,
              setCookies: res.headers['set-cookie'] ?? [],
            });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
}

/** `count` guesses, one after the other or `parallel` at a time; `from(i)` says where the i-th comes from. */
export async function guessMany(
  guesser: Guesser,
  username: string,
  count: number,
  from: (i: number) => From,
  parallel = 1,
): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; i < count; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - i) }, (_, j) =>
      guesser.guess(username, `guess-${i + j}`, from(i + j)),
    );
    answers.push(...(await Promise.all(batch)));
  }
  return answers;
}
