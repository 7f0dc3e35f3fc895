/**
 * The server's logger. JSON lines (pino) wherever logs are collected; readable lines (pino-pretty) when a person
 * watches: `logging.format: auto` (the default) is pretty when standard output is a terminal and JSON when it is
 * piped or redirected. Either way the same redactions apply, because the same records are written.
 *
 * Both write synchronously: a line is on standard output when the log call returns, so an audit line is not lost when
 * the process dies right after it, and no line waits in a buffer. pino's default destination is asynchronous (a write
 * on libuv's thread pool per line); the synchronous write is also the cheaper one, by several µs of CPU a request
 * (docs/benchmarks.md, "Gatehouse's own middleware").
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { GatehouseConfig } from '../config/schema.js';

/** Whether logs (and the start-up banner) are for a person: pretty, not JSON. */
export function isPretty(logging: GatehouseConfig['logging'], stdout: { isTTY?: boolean } = process.stdout): boolean {
  return logging.format === 'pretty' || (logging.format === 'auto' && stdout.isTTY === true);
}

export function createLogger(logging: GatehouseConfig['logging']): Logger {
  const options = { level: logging.level, base: { service: 'gatehouse' } };
  if (!isPretty(logging)) return pino(options, pino.destination({ dest: 1, sync: true }));
  // Synchronous, in-process prettifying (no worker thread): start-up and shutdown lines are never lost. Request lines
  // (server/http/request-log.ts) read as `GET /token 200 3.1 ms`; other fields follow on the same line.
  const stream = pretty({
    colorize: process.stdout.isTTY === true,
    singleLine: true,
    translateTime: 'HH:MM:ss.l',
    ignore: 'pid,hostname,service,method,path,status,ms',
    messageFormat: (log, messageKey) =>
      log[messageKey] === 'request'
        ? `${log.method} ${log.path} ${log.status} ${log.ms} ms`
        : String(log[messageKey] ?? ''),
    sync: true,
  });
  return pino(options, stream);
}
