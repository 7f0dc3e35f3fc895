/**
 * The comparison's targets against the durable peers (issue #18), evaluated from one run's figures. None of them is a
 * test: the bench prints PASS or MISS with the measured value, and the bench docs say why each MISS misses.
 *
 * - throughput: every operation ≥ 2× the Sequelize-adapter peer on SQLite and ≥ 1.5× on PostgreSQL (Gatehouse on the
 *   same database), and, as a stretch, ≥ 0.8× the Redis-adapter peer (each Gatehouse server);
 * - work per operation: login flow ≤ 12 statements and ≤ 8 commits; userinfo and introspection ≤ 1 read and no write;
 *   client credentials (opaque) 1 write;
 * - Gatehouse's own middleware ≤ 15 µs of CPU a request: the discovery document costs the provider the same work in
 *   Gatehouse and in plain oidc-provider with its in-memory adapter (no storage on either side), so the difference in
 *   server CPU per request is what Gatehouse adds around the provider (metrics, request log, headers, input checks,
 *   the routers a provider request passes). Gatehouse's document is somewhat larger (more features on), so the
 *   figure errs against Gatehouse.
 */
import type { TargetResult } from '../support/report.js';

export interface RatioFigure {
  operation: string;
  server: string;
  peer: string;
  throughput: number;
}

export interface WorkFigure {
  operation: string;
  server: string;
  statements: number;
  reads: number;
  writes: number;
  commits: number;
}

export interface CpuFigure {
  operation: string;
  server: string;
  /** Server process CPU seconds per 1,000 operations. */
  cpuSecondsPer1k: number;
}

const THROUGHPUT: { server: string; peer: string; atLeast: number; label: string }[] = [
  {
    server: 'gatehouse-sqlite',
    peer: 'sequelize-sqlite',
    atLeast: 2,
    label: 'Gatehouse SQLite ≥ 2× the Sequelize adapter on SQLite',
  },
  {
    server: 'gatehouse-postgres',
    peer: 'sequelize-postgres',
    atLeast: 1.5,
    label: 'Gatehouse PostgreSQL ≥ 1.5× the Sequelize adapter on PostgreSQL',
  },
  {
    server: 'gatehouse-sqlite',
    peer: 'redis-adapter',
    atLeast: 0.8,
    label: 'stretch: Gatehouse SQLite ≥ 0.8× the Redis adapter',
  },
  {
    server: 'gatehouse-postgres',
    peer: 'redis-adapter',
    atLeast: 0.8,
    label: 'stretch: Gatehouse PostgreSQL ≥ 0.8× the Redis adapter',
  },
];

export const MIDDLEWARE_TARGET_US = 15;

function status(met: boolean): 'PASS' | 'MISS' {
  return met ? 'PASS' : 'MISS';
}

/** Throughput ratio targets: one line per pair, listing each operation's ratio (the lowest decides). */
export function throughputTargets(ratios: RatioFigure[], operations: string[]): TargetResult[] {
  return THROUGHPUT.map(({ server, peer, atLeast, label }) => {
    const found = operations
      .map((operation) => ratios.find((r) => r.operation === operation && r.server === server && r.peer === peer))
      .filter((r): r is RatioFigure => r !== undefined);
    const target = `${label}, every operation (ops/s)`;
    if (found.length === 0) return { target, value: 'not measured', status: 'NOT RUN' };
    const value = found.map((r) => `${r.operation} ${r.throughput.toFixed(2)}×`).join(', ');
    return { target, value, status: status(found.every((r) => r.throughput >= atLeast)) };
  });
}

/** Statement and commit targets, per Gatehouse server whose work was counted. */
export function workTargets(work: WorkFigure[]): TargetResult[] {
  const counted = (n: number) => Math.round(n * 100) / 100;
  /** Each target: the flow it counts, what it asks, the figures shown and whether they meet it. */
  const TARGETS: {
    operation: string;
    what: string;
    value: (w: WorkFigure) => string;
    met: (w: WorkFigure) => boolean;
  }[] = [
    {
      operation: 'login',
      what: 'login flow ≤ 12 statements and ≤ 8 commits',
      value: (w) => `${counted(w.statements)} statements, ${counted(w.commits)} commits`,
      met: (w) => w.statements <= 12 && w.commits <= 8,
    },
    ...['userinfo', 'introspection'].map((operation) => ({
      operation,
      what: `${operation} ≤ 1 read and no write`,
      value: (w: WorkFigure) => `${counted(w.reads)} reads, ${counted(w.writes)} writes`,
      met: (w: WorkFigure) => w.reads <= 1 && w.writes === 0,
    })),
    {
      operation: 'client_credentials',
      what: 'client_credentials 1 write',
      value: (w) => `${counted(w.writes)} writes, ${counted(w.reads)} reads`,
      met: (w) => w.writes <= 1,
    },
  ];
  const servers = [...new Set(work.map((row) => row.server))];
  return servers.flatMap((server) =>
    TARGETS.map(({ operation, what, value, met }): TargetResult => {
      const found = work.find((w) => w.operation === operation && w.server === server);
      const target = `${server}: ${what}`;
      return found
        ? { target, value: value(found), status: status(met(found)) }
        : { target, value: 'not counted', status: 'NOT RUN' };
    }),
  );
}

/** Gatehouse's own middleware: CPU per discovery request, Gatehouse minus plain oidc-provider in memory. */
export function middlewareTarget(cpu: CpuFigure[]): TargetResult {
  const target = `Gatehouse's own middleware ≤ ${MIDDLEWARE_TARGET_US} µs of CPU a request (discovery, Gatehouse − oidc-provider in memory)`;
  const baseline = cpu.find((m) => m.operation === 'discovery' && m.server === 'memory');
  const gatehouse = cpu.filter((m) => m.operation === 'discovery' && m.server.startsWith('gatehouse-'));
  if (!baseline || gatehouse.length === 0) return { target, value: 'not measured', status: 'NOT RUN' };
  // CPU seconds per 1,000 requests = milliseconds per request; × 1000 = µs.
  const extra = gatehouse.map((m) => ({ server: m.server, us: (m.cpuSecondsPer1k - baseline.cpuSecondsPer1k) * 1000 }));
  const value =
    extra.map(({ server, us }) => `${server} ${us.toFixed(1)} µs`).join(', ') +
    ` (baseline ${(baseline.cpuSecondsPer1k * 1000).toFixed(1)} µs a request)`;
  return { target, value, status: status(extra.every(({ us }) => us <= MIDDLEWARE_TARGET_US)) };
}
