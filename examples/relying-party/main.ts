/**
 * Runs the example relying party: `npx tsx examples/relying-party/main.ts`. Its defaults match the `demo-web` client
 * of config/demo.yaml (start Gatehouse with `npm start`, then open http://localhost:8080).
 *
 *   OIDC_ISSUER         http://localhost:3000
 *   OIDC_CLIENT_ID      demo-web
 *   OIDC_CLIENT_SECRET  demo-web-secret
 *   PORT                8080
 *   APP_URL             http://localhost:<PORT>   (this app's public URL)
 */
import { createServer } from 'node:http';
import { createRelyingParty } from './app.js';

const port = Number(process.env.PORT ?? 8080);
const appUrl = process.env.APP_URL ?? `http://localhost:${port}`;
const app = createRelyingParty({
  issuer: process.env.OIDC_ISSUER ?? 'http://localhost:3000',
  clientId: process.env.OIDC_CLIENT_ID ?? 'demo-web',
  clientSecret: process.env.OIDC_CLIENT_SECRET ?? 'demo-web-secret',
  appUrl,
});
const server = createServer(app.handle).listen(port, () => console.log(`example app on ${appUrl}`));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => server.close(() => process.exit(0)));
