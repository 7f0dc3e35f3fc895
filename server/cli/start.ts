/**
 * `gatehouse start`: runs the identity server until SIGINT or SIGTERM. The first signal drains (at most
 * shutdown.timeout), a second one exits at once.
 */
import type { GatehouseConfigInput } from '../../config/schema.js';
import { startBanner } from '../banner.js';
import { isPretty } from '../logging.js';
import { KEEP_RUNNING, type Command } from './command.js';
import { commandConfig } from './config.js';
import { UsageError } from './errors.js';

export const START_USAGE = `Usage: gatehouse start [--config FILE] [--port N] [--issuer URL] [--db URL]

Runs the identity server: migrates the database, applies the configured users and clients (config file,
GATEHOUSE_USERS, GATEHOUSE_CLIENTS), then listens until SIGINT or SIGTERM. The first signal drains: /readyz answers
503, no new connections, requests in flight finish (at most shutdown.timeout, 10 s); exit code 0, or 1 when the
deadline cut work in flight. A second signal exits at once (1).

  --config FILE   configuration file, JSON or YAML (env GATEHOUSE_CONFIG)
  --port N        port to listen on (env GATEHOUSE_PORT or PORT)
  --issuer URL    public issuer URL (env GATEHOUSE_ISSUER)
  --db URL        database URL (env GATEHOUSE_DATABASE__URL)

Every option can be set from the environment: GATEHOUSE_ + its path in upper snake case, __ between levels
(GATEHOUSE_METRICS__PORT=9465); <VARIABLE>_FILE reads a value from a file. The environment wins over the file, and
the flags above over both. The reference: docs/configuration.md.`;

export const start: Command = {
  name: 'start',
  usage: START_USAGE,
  async run(args, values) {
    if (args.length) throw new UsageError(`start: unexpected argument "${args[0]}"`);
    const config = commandConfig(values);
    // Loaded here, not at the top: the other commands (and --help) start faster without the provider.
    const { createServer } = await import('../create-server.js');
    const server = await createServer(config as GatehouseConfigInput);
    let listening: Awaited<ReturnType<typeof server.listen>>;
    try {
      listening = await server.listen();
    } catch (error) {
      // Nothing half-started: close the database and background work too, so the process exits (code 1).
      await server.close({ timeoutMs: 1000 });
      throw error;
    }
    const { url, metricsPort } = listening;
    server.logger.info(
      { issuer: config.issuer, url, serverSideSessions: config.serverSideSessions.enabled },
      `Gatehouse listening on ${url}`,
    );
    if (isPretty(config.logging)) {
      process.stdout.write(
        `\n${startBanner({ config: server.config, metricsPort, storeName: server.sessionStore?.constructor.name })}\n`,
      );
    }
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal: the operator (or the orchestrator) wants it over now.
        server.logger.warn({ event: 'shutdown', signal }, 'second signal: exiting at once');
        process.exit(1);
      }
      stopping = true;
      const timeoutMs = config.shutdown.timeout * 1000;
      // (Message and its last field kept as they were: test/package.test.ts and log searches look for them.)
      server.logger.info({ event: 'shutdown.start', timeoutMs, signal }, 'shutting down');
      // Whatever happens inside the drain, the process ends shortly after its deadline (before a SIGKILL would come).
      setTimeout(() => process.exit(1), timeoutMs + 5000).unref();
      server.close({ timeoutMs }).then(
        // Exit code 0 for a clean drain, 1 when the deadline cut requests or background work.
        (result) => process.exit(result.cut || result.backgroundCut ? 1 : 0),
        (error) => {
          server.logger.error({ err: { message: (error as Error).message } }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    return KEEP_RUNNING;
  },
};
