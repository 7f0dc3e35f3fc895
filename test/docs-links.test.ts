/** Every relative link in the project's Markdown (README, docs/, SECURITY, testing/, examples/, bench/) points at a file that exists. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import test from 'ava';

const ROOT = new URL('..', import.meta.url).pathname;
const pages = [
  'README.md',
  'SECURITY.md',
  ...['docs', 'testing', 'bench', 'examples'].flatMap((dir) =>
    readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.md') && !file.includes('node_modules'))
      .map((file) => join(dir, file)),
  ),
];

test('relative links in the Markdown pages resolve to files of the repository', (t) => {
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(join(ROOT, page), 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(https?:|mailto:|#)/.test(target)) continue;
      const path = join(ROOT, dirname(page), target.split('#')[0]);
      if (!existsSync(path)) broken.push(`${page}: ${target}`);
    }
  }
  t.deepEqual(broken, []);
});
