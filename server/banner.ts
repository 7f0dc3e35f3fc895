/**
 * What `gatehouse start` prints for a person at a terminal (logging.format pretty, or auto on a TTY): where everything
 * is, in words. Never a secret: client secrets and database passwords are left out, and users' demo passwords appear
 * only where the home page shows them too (`pages.showDemoAccounts`, the demo configuration).
 */
import type { GatehouseConfig } from '../config/schema.js';
import { describeClient } from './client-summary.js';

export interface BannerFacts {
  config: GatehouseConfig;
  /** The port the metrics listener got, when it runs. */
  metricsPort?: number;
  /** The session store in use, as the start-up log names it. */
  storeName?: string;
}

export function startBanner({ config, metricsPort, storeName }: BannerFacts): string {
  const issuer = config.issuer;
  const rows: [string, string][] = [
    ['Issuer', issuer],
    ['Discovery', `${issuer}/.well-known/openid-configuration`],
    ['Pages', `${issuer}/  ·  ${issuer}/account/sessions  ·  ${issuer}/admin/sessions (role admin)`],
    ['Admin API', `${issuer}/admin/api/v1  (OpenAPI: ${issuer}/admin/api/openapi.json)`],
    ['Health', `${issuer}/healthz  ·  ${issuer}/readyz`],
    ['Metrics', metricsLine(config, metricsPort)],
    ['Database', redactedDatabaseUrl(config.database.url)],
    [
      'Sessions',
      config.serverSideSessions.enabled
        ? `server-side (${storeName ?? 'built-in store'})`
        : 'in the provider (server-side sessions off)',
    ],
  ];
  const lines = [`Gatehouse is running (${config.mode} mode)`, '', ...table(rows)];
  lines.push('', 'Users');
  if (config.accounts.length) {
    lines.push(
      ...config.accounts.slice(0, 10).map((account) => `  ${userLine(account, config.pages.showDemoAccounts)}`),
    );
    if (config.accounts.length > 10) lines.push(`  … and ${config.accounts.length - 10} more`);
  } else {
    lines.push(
      '  none in the configuration: add them with `gatehouse users add` or GATEHOUSE_USERS (docs/users-and-clients.md)',
    );
  }
  lines.push('', 'Clients');
  if (config.clients.length) {
    lines.push(...config.clients.slice(0, 10).map((client) => `  ${clientLine(client)}`));
    if (config.clients.length > 10) lines.push(`  … and ${config.clients.length - 10} more`);
  } else {
    lines.push(
      '  none in the configuration: add them with `gatehouse clients add` or GATEHOUSE_CLIENTS (docs/users-and-clients.md)',
    );
  }
  lines.push('', 'Ctrl+C stops it (requests in flight are finished first).', '');
  return lines.join('\n');
}

function table(rows: [string, string][]): string[] {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`);
}

function metricsLine(config: GatehouseConfig, metricsPort: number | undefined): string {
  if (!config.metrics.enabled) return 'off';
  const where: string[] = [];
  if (metricsPort) where.push(`http://${config.metrics.host}:${metricsPort}/metrics`);
  if (config.metrics.token) where.push(`${config.issuer}/metrics (bearer token)`);
  return where.length ? where.join('  ·  ') : 'off';
}

/** The database URL without its password (`postgres://app:***@db/gatehouse`). */
export function redactedDatabaseUrl(url: string): string {
  if (url.startsWith('sqlite:')) return url;
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const key of [...parsed.searchParams.keys()])
      if (/pass|secret|key/i.test(key)) parsed.searchParams.set(key, '***');
    return parsed.toString();
  } catch {
    return '(not a valid URL)';
  }
}

function userLine(account: GatehouseConfig['accounts'][number], showPasswords: boolean): string {
  const parts = [account.username ?? account.subject];
  if (showPasswords && account.demoPassword) parts.push(`password ${account.demoPassword}`);
  if (account.roles.length) parts.push(`roles ${account.roles.join(', ')}`);
  return parts.join(' — ');
}

function clientLine(client: GatehouseConfig['clients'][number]): string {
  const redirect = client.redirect_uris[0] ? ` → ${client.redirect_uris[0]}` : '';
  return `${client.client_id} (${describeClient(client)})${redirect}`;
}
