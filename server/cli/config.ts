/** The configuration a command runs with, from the file, the environment and the command's own flags. */
import { loadConfig } from '../../config/load.js';
import type { GatehouseConfig } from '../../config/schema.js';

/** The command-line options that set configuration, and the option each one sets. */
const CONFIG_FLAGS = { port: 'port', issuer: 'issuer', db: 'database.url' } as const;

/**
 * The file (--config, or GATEHOUSE_CONFIG), then the environment, then the command's own flags, which win over both (a
 * flag is what was typed for this one run; a message about its value names the flag). A GATEHOUSE_ variable that looks
 * like a misspelt option gets a warning on stderr.
 */
export function commandConfig(
  values: { config?: string } & { [flag in keyof typeof CONFIG_FLAGS]?: string },
): GatehouseConfig {
  const commandLine = (Object.keys(CONFIG_FLAGS) as (keyof typeof CONFIG_FLAGS)[]).flatMap((flag) => {
    const text = values[flag];
    return text === undefined ? [] : [{ flag: `--${flag}`, path: CONFIG_FLAGS[flag], text }];
  });
  return loadConfig({
    file: values.config,
    commandLine,
    warn: (message) => console.error(`gatehouse: warning: ${message}`),
  });
}
