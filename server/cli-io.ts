/** Small input helpers shared by the CLI commands. */
import { loadConfig } from '../config/load.js';
import type { GatehouseConfig } from '../config/schema.js';

/** All of standard input as text, without its final newline (a password piped in with `echo`). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** The command-line options that set configuration, and the option each one sets. */
const CONFIG_FLAGS = { port: 'port', issuer: 'issuer', db: 'database.url' } as const;

/**
 * The configuration a command runs with: the file (--config, or GATEHOUSE_CONFIG), then the environment, then the
 * command's own flags, which win over both (a flag is what was typed for this one run; a message about its value
 * names the flag). A GATEHOUSE_ variable that looks like a misspelt option gets a warning on stderr.
 */
export function commandConfig(values: { config?: string } & { [flag in keyof typeof CONFIG_FLAGS]?: string }): GatehouseConfig {
  const commandLine = (Object.keys(CONFIG_FLAGS) as (keyof typeof CONFIG_FLAGS)[]).flatMap((flag) => {
    const text = values[flag];
    return text === undefined ? [] : [{ flag: `--${flag}`, path: CONFIG_FLAGS[flag], text }];
  });
  return loadConfig({ file: values.config, commandLine, warn: (message) => console.error(`gatehouse: warning: ${message}`) });
}
