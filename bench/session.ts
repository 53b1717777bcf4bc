/**
 * What the session costs a request, on Express with the default cookie store:
 * - `/plain`: a route that never touches `req.oauth` (must cost nothing: the session is lazy);
 * - `/token`: `req.oauth.getToken()` on a signed-in session (one unseal per cookie value per process);
 * - `/unseal-always`: the same cookie unsealed on every request, as a session middleware without
 *   the cache would (for comparison only).
 * Run with `npm run bench`. Quote the ratios of one run; the absolute numbers depend on the machine.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import express from 'express';
import { unsealData } from 'iron-session';
import { startDemoIdp } from '../examples/demo-idp/index.js';
import { oauthMiddleware } from '../src/express.js';
import { createOAuth } from '../src/index.js';
import { oidc } from '../src/providers/index.js';
import { completeLogin } from '../test/support/authorization-server.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const SECRET = 'bench-secret-0123456789-abcdefghijklmnop';

const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const idp = await startDemoIdp({
  clients: [{ client_id: 'bench', client_secret: 'bench-secret', redirect_uris: [`${url}/auth/op/callback`] }],
});
const oauth = createOAuth({
  baseUrl: url,
  secret: SECRET,
  providers: {
    op: oidc({
      issuer: idp.issuer,
      clientId: 'bench',
      clientSecret: 'bench-secret',
      scopes: ['openid', 'offline_access'],
      authorizationParams: { prompt: 'consent' },
    }),
  },
});

const app = express();
app.use(oauthMiddleware(oauth));
app.get('/plain', (_req, res) => {
  res.send('ok');
});
app.get('/token', async (req, res) => {
  res.send((await req.oauth.getToken('op')).tokenType);
});
app.get('/unseal-always', async (req, res) => {
  const sealed = /oauth_session=([^;]+)/.exec(req.headers.cookie ?? '')?.[1] ?? '';
  const data = await unsealData<{ exp?: number }>(sealed, { password: SECRET, ttl: 0 });
  res.send(data.exp ? 'ok' : 'no');
});
server.on('request', app);

// Sign in once, as a browser would, and keep the session cookie.
const login = await fetch(`${url}/auth/op/login`, { redirect: 'manual' });
const tx = login.headers.getSetCookie().map((c) => c.split(';')[0]);
const callback = await completeLogin(login.headers.get('location') as string);
const landed = await fetch(callback, { redirect: 'manual', headers: { cookie: tx.join('; ') } });
const cookie = landed.headers
  .getSetCookie()
  .map((c) => c.split(';')[0])
  .filter((c) => c?.startsWith('oauth_session'))
  .join('; ');

async function measure(path: string): Promise<number> {
  const result = await autocannon({ url: url + path, connections: 10, duration: SECONDS, headers: { cookie } });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${path}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return result.requests.average;
}

const before = { ...oauth.stats };
const rows: Array<[string, number]> = [];
for (const path of ['/plain', '/token', '/unseal-always']) rows.push([path, await measure(path)]);
const plain = rows[0]?.[1] ?? 1;
console.log(`\n${SECONDS} s each, 10 connections, server and client on this machine:`);
for (const [path, rps] of rows)
  console.log(`${path.padEnd(16)} ${rps.toFixed(0).padStart(7)} req/s   ${(rps / plain).toFixed(2)}x of /plain`);
console.log(
  `unseals by the library during the run: ${oauth.stats.unseals - before.unseals}, seals: ${oauth.stats.seals - before.seals}`,
);

server.closeAllConnections();
server.close();
await idp.close();
