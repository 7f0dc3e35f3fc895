/**
 * Runs both example APIs against the demo configuration (`npm start` first):
 *
 *   npx tsx examples/apis/main.ts
 *
 * The JWT API on http://localhost:4000 (identifier http://localhost:4000/ in config/demo.yaml) and the introspecting
 * API on http://localhost:4001 (identifier http://localhost:4001/, introspecting as demo-ledger-api).
 *
 *   OIDC_ISSUER          http://localhost:3000
 *   JWT_API_PORT         4000
 *   LEDGER_API_PORT      4001
 *   LEDGER_CLIENT_ID     demo-ledger-api
 *   LEDGER_CLIENT_SECRET demo-ledger-api-secret
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createIntrospectingApi } from './introspecting-api.js';
import { createJwtApi } from './jwt-api.js';

const issuer = process.env.OIDC_ISSUER ?? 'http://localhost:3000';
const jwtPort = Number(process.env.JWT_API_PORT ?? 4000);
const ledgerPort = Number(process.env.LEDGER_API_PORT ?? 4001);

const serve = (port: number, handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>, what: string) =>
  createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      console.error(error);
      if (!res.headersSent) res.writeHead(502).end();
    });
  }).listen(port, () => console.log(`${what} on http://localhost:${port}`));

const servers = [
  serve(
    jwtPort,
    createJwtApi({ issuer, audience: `http://localhost:${jwtPort}/`, publicUrl: `http://localhost:${jwtPort}` }).handle,
    'JWT API (GET /orders, orders:read)',
  ),
  serve(
    ledgerPort,
    createIntrospectingApi({
      issuer,
      audience: `http://localhost:${ledgerPort}/`,
      clientId: process.env.LEDGER_CLIENT_ID ?? 'demo-ledger-api',
      clientSecret: process.env.LEDGER_CLIENT_SECRET ?? 'demo-ledger-api-secret',
      publicUrl: `http://localhost:${ledgerPort}`,
    }).handle,
    'introspecting API (GET /ledger, ledger:read)',
  ),
];
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const server of servers) server.close(() => process.exit(0));
  });
}
