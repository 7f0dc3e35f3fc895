/**
 * A short, human description of a User-Agent header for session lists ("Chrome 126 on Windows"). Deliberately tiny:
 * the common browsers and systems by their well-known tokens, else the first product token, else "Unknown browser".
 * It is a hint for people recognising their devices, never a security decision.
 */

/** Browser tokens, most specific first (Edge and Opera also say Chrome; Chrome also says Safari). */
const BROWSERS: [name: string, pattern: RegExp][] = [
  ['Edge', /\bEdg(?:e|A|iOS)?\/(\d+)/],
  ['Opera', /\b(?:OPR|Opera)\/(\d+)/],
  ['Samsung Internet', /\bSamsungBrowser\/(\d+)/],
  ['Firefox', /\b(?:Firefox|FxiOS)\/(\d+)/],
  ['Headless Chrome', /\bHeadlessChrome\/(\d+)/],
  ['Chrome', /\b(?:Chrome|CriOS)\/(\d+)/],
  ['Safari', /\bVersion\/(\d+)(?:[.\d]*)? (?:Mobile\/\S+ )?Safari\//],
];

const SYSTEMS: [name: string, pattern: RegExp][] = [
  ['Windows', /\bWindows\b/],
  ['iOS', /\b(?:iPhone|iPad|iPod)\b/],
  ['Android', /\bAndroid\b/],
  ['ChromeOS', /\bCrOS\b/],
  ['macOS', /\bMac OS X\b|\bMacintosh\b/],
  ['Linux', /\bLinux\b/],
];

export function describeUserAgent(userAgent: string | null | undefined): string {
  const ua = (userAgent ?? '').slice(0, 512);
  if (!ua.trim()) return 'Unknown browser';
  let browser: string | undefined;
  for (const [name, pattern] of BROWSERS) {
    const match = pattern.exec(ua);
    if (match) {
      browser = `${name} ${match[1]}`;
      break;
    }
  }
  if (!browser) {
    const product = /^([^\s/()]{1,40})(?:\/([^\s()]{1,20}))?/.exec(ua.trim());
    browser =
      product && product[1] !== 'Mozilla' ? [product[1], product[2]].filter(Boolean).join(' ') : 'Unknown browser';
  }
  const system = SYSTEMS.find(([, pattern]) => pattern.test(ua))?.[0];
  return system ? `${browser} on ${system}` : browser;
}
