/**
 * The Node.js release Gatehouse needs: package.json `engines.node` (24.16, for node:crypto's argon2, which derives off
 * the main thread since then). npm only warns about `engines`; on an older Node the first import of node:crypto's
 * argon2 would be the error, a link error naming neither Node nor the version. So the package's entry points
 * (`gatehouse-idp`, `gatehouse-idp/testing`) import this module first, and it throws one line naming both versions
 * before anything else runs. server/bin.js makes the same check for the command line.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** `engines.node` of this package (`>=24.16.0`), found by its own name in both the checkout and the installed copy. */
export function requiredNodeRange(): string {
  const file = createRequire(import.meta.url).resolve('gatehouse-idp/package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { engines: { node: string } }).engines.node;
}

/** The sentence explaining why `version` (`v22.23.3`) cannot run Gatehouse, or undefined when it can. */
export function nodeVersionProblem(version: string, range: string = requiredNodeRange()): string | undefined {
  const minimum = /^>=\s*(\d+)\.(\d+)\.(\d+)$/.exec(range);
  if (!minimum) throw new Error(`package.json engines.node must read ">=X.Y.Z", got "${range}"`);
  const actual = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  const need = minimum.slice(1).map(Number);
  const have = actual ? actual.slice(1).map(Number) : [0, 0, 0];
  const older = need.findIndex((part, index) => have[index] !== part);
  if (older === -1 || have[older] > need[older]) return undefined;
  return `gatehouse-idp needs Node.js ${need.join('.')} or later (this is ${version}): it hashes passwords with node:crypto's argon2`;
}

const problem = nodeVersionProblem(process.version);
if (problem) throw new Error(problem);
