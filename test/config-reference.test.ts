/** docs/configuration.md is generated from the options table; a change to one without the other fails here. */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { renderConfigurationReference } from '../config/reference.js';
import { environmentOptions } from '../config/environment.js';

test('docs/configuration.md is what `npm run docs:config` generates from config/schema.ts', (t) => {
  const committed = readFileSync('docs/configuration.md', 'utf8');
  t.true(
    committed === renderConfigurationReference(),
    'docs/configuration.md is out of date: run `npm run docs:config` and commit it',
  );
});

test('the reference lists every option and its variable', (t) => {
  const committed = readFileSync('docs/configuration.md', 'utf8');
  for (const option of environmentOptions()) {
    t.true(committed.includes(`\`${option.path.join('.')}\``), option.path.join('.'));
    t.true(committed.includes(`\`${option.name}\``), option.name);
  }
});
