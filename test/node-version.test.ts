/**
 * An unsupported Node gets one line naming both versions, from the `gatehouse` command and from the package's import
 * entry points, instead of a link error inside node:crypto. The end-to-end checks need an older Node on the machine
 * (the system Node, when it is older than `engines`); the rules themselves are checked on any machine.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { nodeVersionProblem, requiredNodeRange } from '../server/node-version.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const engines = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }
).engines.node;

test('the required version is package.json engines.node', (t) => {
  t.is(requiredNodeRange(), engines);
  t.regex(engines, /^>=\d+\.\d+\.\d+$/);
});

test('versions below the minimum are refused with both versions named; the minimum and later pass', (t) => {
  t.is(
    nodeVersionProblem('v22.23.3', '>=24.16.0'),
    "gatehouse-idp needs Node.js 24.16.0 or later (this is v22.23.3): it hashes passwords with node:crypto's argon2",
  );
  for (const old of ['v20.20.2', 'v24.15.9', 'v24.7.0', 'v23.99.99'])
    t.truthy(nodeVersionProblem(old, '>=24.16.0'), old);
  for (const fine of ['v24.16.0', 'v24.16.1', 'v24.21.0', 'v25.0.0', 'v26.1.0'])
    t.is(nodeVersionProblem(fine, '>=24.16.0'), undefined, fine);
  t.is(nodeVersionProblem(process.version), undefined, 'the Node running the tests is supported');
});

/** An older Node on this machine (the system's, first on the PATH without node_modules/.bin), or undefined. */
function olderNode(): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    try {
      const version = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim();
      if (nodeVersionProblem(version)) return candidate;
    } catch {
      // not installed there
    }
  }
  return undefined;
}

const older = olderNode();
const onOlderNode = older ? test : test.skip;

function run(node: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('GATEHOUSE_') && !name.startsWith('npm_')),
  );
  return new Promise((resolve) => {
    execFile(node, args, { cwd: ROOT, env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

onOlderNode('on an older Node, the gatehouse command exits 1 with one line naming both versions', async (t) => {
  const { code, stdout, stderr } = await run(older!, ['server/bin.js', 'start', '--config', 'config/demo.yaml']);
  t.is(code, 1);
  t.is(stdout, '');
  const lines = stderr.trim().split('\n');
  t.is(lines.length, 1, stderr);
  t.regex(lines[0], /^gatehouse: Gatehouse needs Node\.js 24\.16\.0 or later \(this is v\d+\.\d+\.\d+\): .*npm start/);
});

onOlderNode(
  'on an older Node, importing gatehouse-idp/testing or gatehouse-idp fails with that sentence',
  async (t) => {
    for (const entry of ['./testing/index.ts', './server/index.ts']) {
      const { code, stderr } = await run(older!, [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `await import(${JSON.stringify(entry)})`,
      ]);
      t.not(code, 0, entry);
      t.regex(stderr, /Error: gatehouse-idp needs Node\.js 24\.16\.0 or later \(this is v\d+\.\d+\.\d+\)/, entry);
      t.notRegex(stderr, /does not provide an export named/, entry);
    }
  },
);
