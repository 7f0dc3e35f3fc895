/**
 * A minimal browser for tests: a cookie jar (path-scoped, expiring) over fetch, manual redirects, and form parsing.
 * Enough to drive Gatehouse's real login, consent and logout pages over real HTTP without Chromium.
 */
export interface Cookie {
  name: string;
  value: string;
  path: string;
  expires?: number;
}

export interface Page {
  status: number;
  url: string;
  headers: Headers;
  body: string;
}

export class Browser {
  readonly cookies = new Map<string, Cookie>();
  constructor(readonly userAgent = 'GatehouseTestBrowser/1.0') {}

  cookieHeader(url: URL): string {
    const now = Date.now();
    return [...this.cookies.values()]
      .filter(
        (cookie) => (cookie.expires === undefined || cookie.expires > now) && url.pathname.startsWith(cookie.path),
      )
      .sort((a, b) => b.path.length - a.path.length)
      .map((cookie) => `${cookie.name}=${cookie.value}`)
      .join('; ');
  }

  store(setCookies: string[]) {
    for (const header of setCookies) {
      const [pair, ...attributes] = header.split(';').map((part) => part.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expires: number | undefined;
      for (const attribute of attributes) {
        const [key, ...rest] = attribute.split('=');
        const attributeValue = rest.join('=');
        if (key.toLowerCase() === 'path') path = attributeValue || '/';
        if (key.toLowerCase() === 'expires') expires = Date.parse(attributeValue);
        if (key.toLowerCase() === 'max-age') expires = Date.now() + Number(attributeValue) * 1000;
      }
      const id = `${name};${path}`;
      if (value === '' || (expires !== undefined && expires <= Date.now())) this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path, expires });
    }
  }

  /** One request, no redirect following. */
  async request(
    url: string | URL,
    init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {},
  ): Promise<Page> {
    const target = new URL(url);
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: 'text/html', ...init.headers };
    const cookie = this.cookieHeader(target);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const response = await fetch(target, {
      method: init.method ?? (body ? 'POST' : 'GET'),
      headers,
      body,
      redirect: 'manual',
    });
    this.store(response.headers.getSetCookie());
    return { status: response.status, url: target.href, headers: response.headers, body: await response.text() };
  }

  /**
   * Follows redirects (and auto-submitting form_post pages) until a page is reached, or until a redirect leaves the
   * given origin (e.g. to a relying party's redirect_uri), which is returned unfollowed as a 30x page.
   */
  async navigate(
    url: string | URL,
    init: { method?: string; form?: Record<string, string> } = {},
    stayOn?: string,
  ): Promise<Page> {
    const origin = stayOn ?? new URL(url).origin;
    let page = await this.request(url, init);
    for (let hops = 0; hops < 20; hops++) {
      const location = page.headers.get('location');
      if (page.status >= 300 && page.status < 400 && location) {
        const next = new URL(location, page.url);
        if (next.origin !== origin) return { ...page, url: next.href };
        page = await this.request(next);
        continue;
      }
      if (page.body.includes('document.forms[0].submit()')) {
        const form = parseForm(page.body, 0);
        const target = new URL(form.action, page.url);
        if (target.origin !== origin) return { ...page, url: target.href };
        page = await this.request(target, { form: form.fields });
        continue;
      }
      return page;
    }
    throw new Error('too many redirects');
  }
}

export function decodeHtml(value: string): string {
  return value
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#x2F;/g, '/')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
}

/** The index-th form of a page: its action and its hidden/text inputs. */
export function parseForm(html: string, index = 0): { action: string; fields: Record<string, string> } {
  const forms = [...html.matchAll(/<form([^>]*)>([\s\S]*?)<\/form>/gi)];
  const form = forms[index];
  if (!form) throw new Error(`no form #${index} on page:\n${html.slice(0, 500)}`);
  const action = decodeHtml(/action="([^"]*)"/i.exec(form[1])?.[1] ?? '');
  const fields: Record<string, string> = {};
  for (const input of form[2].matchAll(/<input([^>]*)>/gi)) {
    const name = /name="([^"]*)"/i.exec(input[1])?.[1];
    const value = /value="([^"]*)"/i.exec(input[1])?.[1] ?? '';
    if (name) fields[name] = decodeHtml(value);
  }
  return { action, fields };
}

/** The form whose action contains `needle`. */
export function formWithAction(html: string, needle: string): { action: string; fields: Record<string, string> } {
  const count = [...html.matchAll(/<form/gi)].length;
  for (let index = 0; index < count; index++) {
    const form = parseForm(html, index);
    if (form.action.includes(needle)) return form;
  }
  throw new Error(`no form with action containing ${needle}:\n${html.slice(0, 800)}`);
}
