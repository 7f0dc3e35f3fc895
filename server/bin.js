#!/usr/bin/env -S node --max-semi-space-size=8
// (Node flags: see server/node-flags.ts.)
// The `gatehouse` command. In a checkout it runs the TypeScript source through tsx; from the installed package
// (which ships compiled JavaScript, see scripts/build.ts) it runs dist/server/cli.js.
import { existsSync } from 'node:fs';

const source = new URL('./cli.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/server/cli.js', import.meta.url).href);
}
