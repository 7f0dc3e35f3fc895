/**
 * How errors that escaped every handler are logged, for the provider and the Koa app alike. The provider's own 503
 * (its adapter found the database unavailable) is one warn line per outage, not one per request; other server errors
 * are logged with their stack.
 */
import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '../../stores/sequelize/errors.js';
import type { DatabaseOutage } from '../database-outage.js';
import { loggableMessage } from '../http/errors.js';

export type ServerErrorReporter = (error: Error, path: string | undefined, msg: string) => void;

export function serverErrorReporter(logger: Logger, outage: DatabaseOutage): ServerErrorReporter {
  return (error, path, msg) => {
    if (isDatabaseUnavailable(error)) return outage.failed(error, path ?? 'provider');
    const stack = error.stack?.split('\n').slice(1, 8).join('\n');
    logger.error({ err: { name: error.name, message: loggableMessage(error), stack } }, msg);
  };
}
