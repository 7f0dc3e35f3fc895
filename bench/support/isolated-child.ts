/** The entry of a process started by runIsolated (isolated.ts): calls the function, sends its result, exits. */
import type { Call } from './isolated.js';

const call = JSON.parse(process.env.BENCH_ISOLATED_CALL ?? 'null') as Call | null;
if (!call || !process.send) throw new Error('isolated-child.ts runs only as a child of runIsolated');
let message: { value?: unknown; error?: string };
try {
  const module = (await import(call.module)) as Record<string, (...args: unknown[]) => Promise<unknown>>;
  message = { value: await module[call.name](...call.args) };
} catch (error) {
  message = { error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}
// Pools and timers of the call must not keep the process alive once the result is sent.
process.send(message, () => process.exit(message.error ? 1 : 0));
