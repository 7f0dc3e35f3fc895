/**
 * Runs one exported async function of a benchmark module in a fresh Node process (same Node, same loader flags) and
 * resolves to its result, so memory figures start from a clean process, not from what an earlier phase left behind.
 * The result travels back over the IPC channel, so it must be JSON-serializable. The child's entry is
 * isolated-child.ts, a separate file, because the called module usually imports this one.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('./isolated-child.ts', import.meta.url));

export interface Call {
  module: string;
  name: string;
  args: unknown[];
}

export function runIsolated<T>(moduleUrl: string, name: string, args: unknown[]): Promise<T> {
  const call: Call = { module: moduleUrl, name, args };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, entry], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, BENCH_ISOLATED_CALL: JSON.stringify(call) },
    });
    let result: { value?: T; error?: string } | undefined;
    child.on('message', (message) => {
      result = message as typeof result;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (result?.error) reject(new Error(result.error));
      else if (code === 0 && result && 'value' in result) resolve(result.value as T);
      else reject(new Error(`${name} failed in its process (${code ?? signal})`));
    });
  });
}
