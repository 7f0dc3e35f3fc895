/** Writes docs/configuration.md from the options table (config/schema.ts). `npm run docs:config`. */
import { writeFileSync } from 'node:fs';
import { renderConfigurationReference } from '../config/reference.js';

const target = new URL('../docs/configuration.md', import.meta.url);
writeFileSync(target, renderConfigurationReference());
console.log(`wrote ${target.pathname}`);
