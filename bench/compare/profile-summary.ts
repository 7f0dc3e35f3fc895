/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`, as written with BENCH_COMPARE_PROFILE): self time by function and
 * by origin (a package under node_modules, a Gatehouse source file, Node internals, GC), largest first.
 *
 *   npx tsx bench/compare/profile-summary.ts <file.cpuprofile> [top=30]
 *   npx tsx bench/compare/profile-summary.ts <file.cpuprofile> --stacks <function name>   (its heaviest call stacks)
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export function origin(url: string): string {
  if (!url) return '(native / V8)';
  if (url.startsWith('node:')) return 'node internals';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const repo = url.indexOf('/work/main/');
  return repo >= 0 ? url.slice(repo + '/work/main/'.length) : url.replace(/^file:\/\//, '');
}

export function summarizeProfile(
  profile: Profile,
  top = 30,
): {
  totalMs: number;
  busyMs: number;
  byOrigin: [string, number][];
  byFunction: [string, number][];
  byInclusiveOrigin: [string, number][];
  byInclusiveFunction: [string, number][];
} {
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++)
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byOrigin = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const inclusiveFunction = new Map<string, number>();
  let totalMs = 0;
  for (const [id, ms] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    totalMs += ms;
    if (functionName === '(idle)' || functionName === '(program)' || functionName === '(garbage collector)') {
      byOrigin.set(functionName, (byOrigin.get(functionName) ?? 0) + ms);
      byFunction.set(functionName, (byFunction.get(functionName) ?? 0) + ms);
      continue;
    }
    const where = origin(url);
    byOrigin.set(where, (byOrigin.get(where) ?? 0) + ms);
    const name = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
    // Inclusive by origin: every distinct origin on the stack gets the sample once.
    const seen = new Set<string>();
    const seenFunctions = new Set<string>();
    for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
      const frame = byId.get(current)!.callFrame;
      if (frame.url) {
        seen.add(origin(frame.url));
        seenFunctions.add(`${frame.functionName || '(anonymous)'} ${origin(frame.url)}:${frame.lineNumber + 1}`);
      }
    }
    for (const o of seen) inclusive.set(o, (inclusive.get(o) ?? 0) + ms);
    for (const f of seenFunctions) inclusiveFunction.set(f, (inclusiveFunction.get(f) ?? 0) + ms);
  }
  const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]).slice(0, top);
  const busyMs = totalMs - (byOrigin.get('(idle)') ?? 0);
  return {
    totalMs,
    busyMs,
    byOrigin: sorted(byOrigin),
    byFunction: sorted(byFunction),
    byInclusiveOrigin: sorted(inclusive),
    byInclusiveFunction: sorted(inclusiveFunction),
  };
}

/** The heaviest distinct call stacks (inclusive time) through frames named `name`. */
export function stacksThrough(profile: Profile, name: string, top = 8): [string, number][] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++)
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  const stacks = new Map<string, number>();
  for (const [id, ms] of self) {
    const frames: string[] = [];
    let hit = false;
    for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
      const frame = byId.get(current)!.callFrame;
      if (frame.functionName === name) hit = true;
      if (hit && frame.url)
        frames.push(`${frame.functionName || '(anonymous)'} ${origin(frame.url)}:${frame.lineNumber + 1}`);
    }
    if (!hit) continue;
    const key = frames.slice(0, 14).join('\n    <- ');
    stacks.set(key, (stacks.get(key) ?? 0) + ms);
  }
  return [...stacks].sort((a, b) => b[1] - a[1]).slice(0, top);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, topArg, stackName] = process.argv.slice(2);
  if (topArg === '--stacks' && file && stackName) {
    for (const [stack, ms] of stacksThrough(JSON.parse(readFileSync(file, 'utf8')) as Profile, stackName))
      console.log(`${ms.toFixed(0)} ms\n    ${stack}\n`);
    process.exit(0);
  }
  if (!file) {
    console.error('usage: profile-summary.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(topArg ?? 30));
  const line = ([name, ms]: [string, number]) =>
    `${ms.toFixed(0).padStart(8)} ms ${((ms / summary.busyMs) * 100).toFixed(1).padStart(5)}%  ${name}`;
  console.log(
    `total ${summary.totalMs.toFixed(0)} ms, busy (not idle) ${summary.busyMs.toFixed(0)} ms; percentages are of busy time\n\nself time by origin`,
  );
  console.log(summary.byOrigin.map(line).join('\n'));
  console.log('\ninclusive time by origin (on the stack)');
  console.log(summary.byInclusiveOrigin.map(line).join('\n'));
  console.log('\nself time by function');
  console.log(summary.byFunction.map(line).join('\n'));
  console.log('\ninclusive time by function (on the stack)');
  console.log(summary.byInclusiveFunction.map(line).join('\n'));
}
