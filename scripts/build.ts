/**
 * Builds the publishable package into dist/: compiled JavaScript and type declarations of server/, stores/, config/
 * and testing/ (tsconfig.build.json), and a copy of views/ at dist/views, where server/http/render.ts looks for them
 * from dist/server/http (`../../views/`). Migrations compile to dist/stores/sequelize/migrations/*.js, which
 * stores/sequelize/migrate.ts loads next to itself.
 *
 *   npx tsx scripts/build.ts [--out-dir DIR]     (default: dist)
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { 'out-dir': { type: 'string' } } });
const dist = resolve(root, values['out-dir'] ?? 'dist');

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', dist], {
  cwd: root,
  stdio: 'inherit',
});
cpSync(join(root, 'views'), join(dist, 'views'), { recursive: true });

const expected = [
  'server/cli.js',
  'server/index.js',
  'server/index.d.ts',
  'testing/index.js',
  'testing/index.d.ts',
  'stores/conformance/index.js',
  'views/login.eta',
];
const missing = expected.filter((file) => !existsSync(join(dist, file)));
const migrations = readdirSync(join(dist, 'stores/sequelize/migrations')).filter((file) => /^\d{4}-.*\.js$/.test(file));
if (missing.length || migrations.length === 0) {
  console.error(
    `build: missing from dist/: ${[...missing, ...(migrations.length ? [] : ['stores/sequelize/migrations/*.js'])].join(', ')}`,
  );
  process.exit(1);
}
console.log(`build: ${dist} ready (${migrations.length} migrations, views copied)`);
