/**
 * Reading Gatehouse's own pages (login, consent): their forms, hidden fields and error message. Gatehouse's views
 * escape every value with Eta's HTML escaping, which `unescapeHtml` reverses.
 */
export interface HtmlForm {
  action: string;
  fields: Record<string, string>;
  /** `name=value` of each submit button that has both (the one-click buttons). */
  buttons: { name: string; value: string }[];
}

function unescapeHtml(value: string): string {
  return value
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}="([^"]*)"`, 'i').exec(tag);
  return match ? unescapeHtml(match[1]!) : undefined;
}

export function parseForms(html: string): HtmlForm[] {
  return [...html.matchAll(/<form(\s[^>]*)?>([\s\S]*?)<\/form>/gi)].map(([, tag = '', inner = '']) => {
    const fields: Record<string, string> = {};
    for (const [input] of inner.matchAll(/<input\s[^>]*>/gi)) {
      const name = attribute(input, 'name');
      if (name) fields[name] = attribute(input, 'value') ?? '';
    }
    const buttons = [...inner.matchAll(/<button\s[^>]*>/gi)]
      .map(([button]) => ({ name: attribute(button, 'name'), value: attribute(button, 'value') }))
      .filter(
        (button): button is { name: string; value: string } => button.name !== undefined && button.value !== undefined,
      );
    return { action: attribute(tag, 'action') ?? '', fields, buttons };
  });
}

/** The first form whose action ends with `suffix` (e.g. `/login`), or undefined. */
export function formEndingWith(html: string, suffix: string): HtmlForm | undefined {
  return parseForms(html).find((form) => new URL(form.action, 'http://page.invalid').pathname.endsWith(suffix));
}

/** The text of the page's `role="alert"` element (Gatehouse's form errors), or undefined. */
export function alertText(html: string): string | undefined {
  const match = /<[^>]*role="alert"[^>]*>([\s\S]*?)<\//i.exec(html);
  return match ? unescapeHtml(match[1]!).trim() : undefined;
}
