/**
 * Prometheus metrics (prom-client), one registry per server so several servers in one process never collide.
 * Counters follow the audit events; the active-session gauge is counted from the store when scraped; the database
 * counters are the gateway's own totals (stores/sequelize/database.ts), read when scraped.
 *
 * Exposed at `/metrics` either on a separate port (`metrics.port`, bound to `metrics.host`) or on the main port
 * behind `Authorization: Bearer <metrics.token>`.
 */
import type { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Middleware } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { timingSafeEqual } from 'node:crypto';
import type { SessionService } from './sessions/session-service.js';
import type { DatabaseActivity } from '../stores/sequelize/database.js';
import { routeLabel } from './http/route-label.js';

export class GatehouseMetrics {
  readonly registry = new Registry();
  readonly #requestDuration: Histogram<'method' | 'route' | 'status'>;
  #sidecar: Server | undefined;

  constructor(events: EventEmitter, sessions: SessionService, database: { activity(): DatabaseActivity }) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' });
    const counter = (name: string, help: string, labelNames: string[] = []) =>
      new Counter({ name, help, labelNames, registers: [registry] });
    const logins = counter('gatehouse_logins_total', 'Sign-ins that created or refreshed a server-side session');
    const logouts = counter('gatehouse_logouts_total', 'RP-initiated logouts');
    const revocations = counter(
      'gatehouse_session_revocations_total',
      'Sessions ended by an administrator, a user or a session limit',
    );
    const expiries = counter('gatehouse_session_expiries_total', 'Sessions ended on expiry');
    const deliveries = counter(
      'gatehouse_backchannel_deliveries_total',
      'Back-channel logout delivery attempts by outcome',
      ['outcome'],
    );
    const sweeps = counter('gatehouse_sweeper_runs_total', 'Expiry sweeps');
    const loginFailures = counter(
      'gatehouse_login_failures_total',
      'Failed password sign-ins, by client (trusted: a device cookie for the name)',
      ['client'],
    );
    const lockouts = counter(
      'gatehouse_login_lockouts_total',
      'Sign-in locks started, by scope (device, username-untrusted, username-ip, ip)',
      ['scope'],
    );
    const sweepDuration = new Histogram({
      name: 'gatehouse_sweeper_duration_seconds',
      help: 'Duration of expiry sweeps',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers: [registry],
    });
    this.#requestDuration = new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    new Gauge({
      name: 'gatehouse_active_sessions',
      help: 'Signed-in sessions in the server-side session store (absent when the feature is off)',
      registers: [registry],
      async collect() {
        if (!sessions.enabled) return;
        const { totalCount } = await sessions.querySessions({ pageSize: 1, countTotal: true });
        this.set(totalCount ?? 0);
      },
    });
    // What the database gateway sent (statements, commits, round trips: docs/database-gateway.md), as totals.
    const totals = (
      name: string,
      help: string,
      labelNames: string[],
      read: (activity: DatabaseActivity) => [Record<string, string>, number][],
    ) =>
      new Counter({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset();
          for (const [labels, value] of read(database.activity())) this.inc(labels, value);
        },
      });
    totals(
      'gatehouse_database_statements_total',
      'SQL statements sent to the database, by kind (read or write)',
      ['kind'],
      (a) => [
        [{ kind: 'read' }, a.reads],
        [{ kind: 'write' }, a.writes],
      ],
    );
    totals('gatehouse_database_commits_total', 'Commits: COMMITs and writes outside a transaction', [], (a) => [
      [{}, a.commits],
    ]);
    totals(
      'gatehouse_database_round_trips_total',
      'Round trips to the database: statements plus transaction control (BEGIN, COMMIT, SET, PRAGMA)',
      [],
      (a) => [[{}, a.roundTrips]],
    );
    events.on('session.created', () => logins.inc());
    events.on('session.logged_out', () => logouts.inc());
    events.on('session.revoked', () => revocations.inc());
    events.on('session.expired', () => expiries.inc());
    events.on('backchannel.delivered', () => deliveries.inc({ outcome: 'delivered' }));
    events.on('backchannel.retrying', () => deliveries.inc({ outcome: 'retrying' }));
    events.on('backchannel.failed', () => deliveries.inc({ outcome: 'failed' }));
    events.on('login.failed', (detail: { client: string }) => loginFailures.inc({ client: detail.client }));
    events.on('login.locked', (detail: { scope: string }) => lockouts.inc({ scope: detail.scope }));
    events.on('sweep', (result: { ms: number }) => {
      sweeps.inc();
      sweepDuration.observe(result.ms / 1000);
    });
  }

  /** Koa middleware timing every request. */
  middleware(): Middleware {
    return async (ctx, next) => {
      const end = this.#requestDuration.startTimer();
      try {
        await next();
      } finally {
        const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
        end({
          method: ctx.method,
          route: routeLabel(ctx.path, (ctx as { _matchedRoute?: string })._matchedRoute),
          status: String(status),
        });
      }
    };
  }

  /** `/metrics` on the main port, behind a bearer token. */
  protectedEndpoint(token: string): Middleware {
    const expected = Buffer.from(`Bearer ${token}`);
    return async (ctx, next) => {
      if (ctx.path !== '/metrics' || ctx.method !== 'GET') return next();
      const given = Buffer.from(ctx.get('authorization'));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        ctx.status = 401;
        ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
        ctx.body = { error: 'unauthorized', message: 'metrics need Authorization: Bearer <metrics.token>' };
        return;
      }
      ctx.type = this.registry.contentType;
      ctx.body = await this.registry.metrics();
    };
  }

  /** `/metrics` on its own port (no auth: bind it to a private interface). Resolves to the bound port. */
  async listenSidecar(port: number, host: string): Promise<number> {
    this.#sidecar = createServer(async (req, res) => {
      if (req.url !== '/metrics' || req.method !== 'GET') {
        res.statusCode = 404;
        res.end();
        return;
      }
      res.setHeader('Content-Type', this.registry.contentType);
      res.end(await this.registry.metrics());
    });
    await new Promise<void>((resolve, reject) => {
      this.#sidecar!.once('error', reject);
      this.#sidecar!.listen(port, host, () => resolve());
    });
    return (this.#sidecar.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    if (this.#sidecar?.listening) await new Promise<void>((resolve) => this.#sidecar!.close(() => resolve()));
  }
}
