/** Zod issues as Gatehouse reports configuration problems: one line each, starting with the exact path. */
import type { z } from 'zod';

/** One message per zod issue, each starting with its path (under `prefix`, e.g. `GATEHOUSE_USERS[1]`). */
export function formatIssues(issues: z.core.$ZodIssue[], prefix = ''): string[] {
  const join = (path: string) =>
    prefix && path ? `${prefix}${path.startsWith('[') ? '' : '.'}${path}` : prefix || path;
  return issues.map((issue) => {
    const path = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => `${join(path ? `${path}.${key}` : key)}: unknown key`).join('\n  ');
    }
    return `${join(path) || '(root)'}: ${issue.message}`;
  });
}

export function formatPath(path: PropertyKey[]): string {
  return path.reduce<string>(
    (out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part)),
    '',
  );
}
