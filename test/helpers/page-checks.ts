/**
 * Layout and accessibility checks of one rendered page in Chromium, at a phone's width and a desktop's width:
 *
 * - no horizontal overflow of the document (`scrollWidth <= innerWidth`), and no text or control sticking out of the
 *   page's column (`main`) unless it is inside a box that scrolls, and at a desktop's width no such box scrolls;
 * - the buttons of one form sit on one row whenever they fit on one row, and no button label wraps;
 * - the labels, inputs and buttons of a form do not overlap, and no text input is too narrow to show a word;
 * - links inside the page use the page's colours, never the browser's default link blue;
 * - no serious or critical violation reported by axe-core (injected from node_modules through the DevTools protocol,
 *   which the page's nonce CSP does not apply to, so the page is checked under its real policy), in the light and,
 *   at the desktop width, the dark colour scheme.
 *
 * Set GATEHOUSE_SCREENSHOTS=<folder> to also save a full-page screenshot of every page at every width.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Page } from 'playwright-core';

export const PAGE_WIDTHS = [390, 1280] as const;
const HEIGHT = 900;
/** A text input narrower than this many times its font size cannot show a word. */
const MIN_INPUT_EMS = 8;

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * tsx compiles with esbuild's keepNames, which wraps named inner functions in a `__name(fn, "name")` call; a function
 * sent to the page must find that helper there too.
 */
async function allowNamedFunctions(page: Page): Promise<void> {
  await page.evaluate('globalThis.__name ??= (fn) => fn');
}

/** Layout problems of the page as it is laid out now, one sentence each (none: an empty list). */
export async function layoutProblems(page: Page): Promise<string[]> {
  await allowNamedFunctions(page);
  return page.evaluate((minInputEms) => {
    const problems: string[] = [];
    const visible = (element: Element) => {
      const rect = element.getBoundingClientRect();
      return rect.width > 0 && rect.height > 0;
    };
    const describe = (element: Element) => {
      const text = (element.textContent ?? '').trim().replace(/\s+/g, ' ').slice(0, 40);
      return `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}${text ? ` "${text}"` : ''}`;
    };
    const textRects = (element: Element) => {
      const range = document.createRange();
      range.selectNodeContents(element);
      return Array.from(range.getClientRects()).filter((rect) => rect.width > 0 && rect.height > 0);
    };
    const overlap = (a: DOMRect, b: DOMRect) =>
      Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
      Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;

    const { scrollWidth } = document.documentElement;
    if (scrollWidth > window.innerWidth)
      problems.push(`the page is ${scrollWidth} px wide in a ${window.innerWidth} px window`);

    // Text and controls that stick out of the page's column (a scrolling box, like the admin table's, may hold more).
    const main = document.querySelector('main');
    if (main) {
      const column = main.getBoundingClientRect();
      const right = column.right - (Number.parseFloat(getComputedStyle(main).paddingRight) || 0);
      const scrolls = (node: Node) => {
        for (let element = node.parentElement; element && element !== main; element = element.parentElement) {
          if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(element).overflowX)) return true;
        }
        return false;
      };
      const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.textContent?.trim() || scrolls(node)) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        const outside = Array.from(range.getClientRects()).some((rect) => rect.width > 0 && rect.right > right + 1);
        if (outside) problems.push(`${describe(node.parentElement!)} sticks out of the page's column`);
      }
      for (const control of Array.from(main.querySelectorAll('input:not([type=hidden]), button, select, textarea'))) {
        if (visible(control) && !scrolls(control) && control.getBoundingClientRect().right > right + 1)
          problems.push(`${describe(control)} sticks out of the page's column`);
      }
    }

    // On a desktop, a box that may scroll sideways (the admin table's) needs not.
    if (window.innerWidth >= 1024) {
      for (const element of Array.from(document.querySelectorAll('main *'))) {
        if (
          ['auto', 'scroll'].includes(getComputedStyle(element).overflowX) &&
          element.scrollWidth > element.clientWidth
        ) {
          problems.push(
            `${describe(element)} scrolls sideways (${element.scrollWidth} px in ${element.clientWidth} px)`,
          );
        }
      }
    }

    const groups = new Map<Element, HTMLButtonElement[]>();
    for (const button of Array.from(document.querySelectorAll('button'))) {
      if (!visible(button)) continue;
      if (new Set(textRects(button).map((rect) => Math.round(rect.top))).size > 1)
        problems.push(`the label of ${describe(button)} wraps`);
      const owner = button.form ?? button.parentElement!;
      groups.set(owner, [...(groups.get(owner) ?? []), button]);
    }
    for (const [owner, buttons] of groups) {
      if (buttons.length < 2) continue;
      const rects = buttons.map((button) => button.getBoundingClientRect());
      if (rects.every((rect) => Math.abs(rect.top - rects[0]!.top) < 2)) continue;
      const row = buttons[0]!.parentElement!;
      const style = getComputedStyle(row);
      const margins = buttons.map((button) => {
        const s = getComputedStyle(button);
        return (Number.parseFloat(s.marginLeft) || 0) + (Number.parseFloat(s.marginRight) || 0);
      });
      const needed =
        rects.reduce((sum, rect, i) => sum + rect.width + margins[i]!, 0) +
        (Number.parseFloat(style.columnGap) || 0) * (buttons.length - 1);
      const available =
        row.clientWidth - (Number.parseFloat(style.paddingLeft) || 0) - (Number.parseFloat(style.paddingRight) || 0);
      if (needed <= available)
        problems.push(
          `the buttons of ${describe(owner)} fit on one row (${Math.ceil(needed)} of ${available} px) but are split: ${buttons.map(describe).join(', ')}`,
        );
    }

    for (const form of Array.from(document.querySelectorAll('form'))) {
      const boxes: { element: Element; rect: DOMRect }[] = [];
      for (const element of Array.from(
        form.querySelectorAll('label, input:not([type=hidden]), button, select, textarea, a'),
      )) {
        if (!visible(element)) continue;
        const rects =
          element.tagName === 'LABEL' || element.tagName === 'A'
            ? textRects(element)
            : [element.getBoundingClientRect()];
        for (const rect of rects) boxes.push({ element, rect });
        if (element.matches('input[type=text], input[type=password], input:not([type])')) {
          const fontSize = Number.parseFloat(getComputedStyle(element).fontSize);
          const { width } = element.getBoundingClientRect();
          if (width < minInputEms * fontSize)
            problems.push(`${describe(element)} is only ${Math.round(width)} px wide`);
        }
      }
      for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
          const [a, b] = [boxes[i]!, boxes[j]!];
          if (a.element === b.element || a.element.contains(b.element) || b.element.contains(a.element)) continue;
          if (overlap(a.rect, b.rect)) problems.push(`${describe(a.element)} overlaps ${describe(b.element)}`);
        }
      }
    }

    const probe = document.createElement('a');
    probe.href = '#probe';
    probe.style.setProperty('all', 'revert');
    document.body.append(probe);
    const browserLinkColour = getComputedStyle(probe).color;
    probe.remove();
    for (const link of Array.from(document.querySelectorAll('main a'))) {
      if (visible(link) && getComputedStyle(link).color === browserLinkColour)
        problems.push(`${describe(link)} has the browser's default link colour`);
    }
    return [...new Set(problems)];
  }, MIN_INPUT_EMS);
}

/** axe-core's serious and critical violations on the page as it is now, one sentence each. */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  return page.evaluate(async () => {
    type Result = {
      violations: { id: string; impact?: string | null; help: string; nodes: { target: unknown[] }[] }[];
    };
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<Result> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
      .map(
        (violation) =>
          `axe ${violation.impact} ${violation.id}: ${violation.help} (${violation.nodes.map((node) => node.target.join(' ')).join(', ')})`,
      );
  });
}

/**
 * Lays the page out at each width in PAGE_WIDTHS (without reloading it, so a page that answered a POST can be checked
 * too) and asserts that none of the checks above finds a problem; the message lists every problem at every width.
 */
export async function checkPage(t: ExecutionContext, page: Page, name: string): Promise<void> {
  const problems: string[] = [];
  for (const width of PAGE_WIDTHS) {
    await page.setViewportSize({ width, height: HEIGHT });
    for (const problem of [...(await layoutProblems(page)), ...(await accessibilityProblems(page))])
      problems.push(`${width} px: ${problem}`);
    const folder = process.env.GATEHOUSE_SCREENSHOTS;
    if (folder) {
      mkdirSync(folder, { recursive: true });
      await page.screenshot({
        path: join(folder, `${name.replace(/[^a-z0-9]+/gi, '-')}-${width}.png`),
        fullPage: true,
      });
    }
  }
  // The pages follow the system's colour scheme: their colours must also read well on a dark background.
  await page.emulateMedia({ colorScheme: 'dark' });
  for (const problem of await accessibilityProblems(page)) problems.push(`${PAGE_WIDTHS.at(-1)} px, dark: ${problem}`);
  await page.emulateMedia({ colorScheme: 'light' });
  t.deepEqual(problems, [], `the ${name} page at ${PAGE_WIDTHS.join(' and ')} px`);
}
