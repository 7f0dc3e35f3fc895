/**
 * Why a listener could not bind, as a configuration problem: the option (and its environment variables) that chose the
 * port, the address, and the cause in words (`metrics.port: cannot listen on 127.0.0.1:9464: the port is in use ...`).
 */
import { environmentOptions } from '../config/environment.js';

const CAUSES: Record<string, string> = {
  EADDRINUSE: 'the port is in use by another process',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'this machine has no such address',
};

export function listenError(
  path: 'port' | 'metrics.port',
  host: string | undefined,
  port: number,
  error: NodeJS.ErrnoException,
): Error {
  const variables = environmentOptions().find((option) => option.path.join('.') === path)?.names ?? [];
  const cause = (error.code && CAUSES[error.code]) ?? error.message;
  const where = host ? `${host.includes(':') ? `[${host}]` : host}:${port}` : `port ${port}`;
  return new Error(
    `${path}: cannot listen on ${where}: ${cause}${error.code ? ` (${error.code})` : ''}; choose another ${path} (${variables.join(', ')})`,
    {
      cause: error,
    },
  );
}
