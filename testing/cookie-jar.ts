/** The few cookie rules a login over HTTP needs: name + path scoping, deletion by empty value or past expiry. */
interface StoredCookie {
  name: string;
  value: string;
  path: string;
  expires?: number;
}

export class CookieJar {
  readonly #cookies = new Map<string, StoredCookie>();

  /** Records every Set-Cookie header of a response. */
  store(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = header.split(';').map((part) => part.trim());
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const cookie: StoredCookie = { name: pair.slice(0, eq), value: pair.slice(eq + 1), path: '/' };
      for (const attribute of attributes) {
        const [key = '', ...rest] = attribute.split('=');
        const value = rest.join('=');
        if (key.toLowerCase() === 'path') cookie.path = value || '/';
        else if (key.toLowerCase() === 'expires') cookie.expires ??= Date.parse(value);
        else if (key.toLowerCase() === 'max-age') cookie.expires = Date.now() + Number(value) * 1000;
      }
      const id = `${cookie.name};${cookie.path}`;
      if (cookie.value === '' || (cookie.expires !== undefined && cookie.expires <= Date.now()))
        this.#cookies.delete(id);
      else this.#cookies.set(id, cookie);
    }
  }

  /** Adds the cookies of a Cookie header (`a=1; b=2`), on path `/`. */
  add(header: string): void {
    for (const pair of header.split(';').map((part) => part.trim())) {
      const eq = pair.indexOf('=');
      if (eq >= 1)
        this.#cookies.set(`${pair.slice(0, eq)};/`, { name: pair.slice(0, eq), value: pair.slice(eq + 1), path: '/' });
    }
  }

  /** The Cookie header for a request to `url` (most specific path first), or undefined. */
  header(url: URL): string | undefined {
    const now = Date.now();
    const matching = [...this.#cookies.values()]
      .filter(
        (cookie) => (cookie.expires === undefined || cookie.expires > now) && url.pathname.startsWith(cookie.path),
      )
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length ? matching.map((cookie) => `${cookie.name}=${cookie.value}`).join('; ') : undefined;
  }

  /** The value of a cookie set on path `/`, or undefined. */
  value(name: string): string | undefined {
    return this.#cookies.get(`${name};/`)?.value;
  }
}
