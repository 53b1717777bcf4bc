/**
 * Hono starter, on Node through @hono/node-server: sign in with a local demo identity provider,
 * then show the token's claims and call the provider's userinfo endpoint with
 * `c.var.oauth.getToken`. Run with `npm run start:hono`.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { oidc } from 'oauth-middleware/providers';
import { startDemoIdp } from '../demo-idp/index.js';
import { listen, runFromCommandLine } from '../listen.js';
import { type OAuthEnv, oauthMiddleware, renderOAuthError, requireToken } from './oauth-hono.js';

export async function main({ port = 3000, idpPort = 4000 } = {}) {
  // Listen first: the redirect URI registered at the identity provider needs the real port.
  const server = createServer();
  await listen(server, port, 'PORT');
  const baseUrl = `http://localhost:${(server.address() as AddressInfo).port}`;

  const idp = await startDemoIdp({
    port: idpPort,
    clients: [{ client_id: 'demo-app', client_secret: 'demo-app-secret', redirect_uris: [`${baseUrl}/auth/demo/callback`] }],
  });

  const app = new Hono<OAuthEnv>();
  app.use(
    oauthMiddleware({
      baseUrl,
      // A real app reads this from its environment; a random one logs everybody out on restart.
      secret: process.env.OAUTH_SECRET ?? randomBytes(32).toString('base64url'),
      providers: {
        demo: oidc({
          issuer: idp.issuer,
          clientId: 'demo-app',
          clientSecret: 'demo-app-secret',
          scopes: ['openid', 'profile', 'email', 'offline_access'],
          authorizationParams: { prompt: 'consent' }, // the demo provider issues refresh tokens only on consent
        }),
      },
    }),
  );
  app.onError((err, c) => renderOAuthError(err, c) ?? c.text('Internal Server Error', 500));

  app.get('/', async (c) =>
    c.html(
      page(
        (await c.var.oauth.isConnected('demo'))
          ? '<p>You are signed in. <a href="/profile">See your profile</a>.</p>'
          : '<p><a href="/auth/demo/login?returnTo=/profile">Sign in with the demo provider</a> (any user name, any password).</p>',
      ),
    ),
  );

  app.get('/profile', requireToken('demo'), async (c) => {
    const token = await c.var.oauth.getToken('demo'); // refreshed first when due
    const userinfo = await fetch(idp.userinfo, { headers: { authorization: `${token.tokenType} ${token.accessToken}` } });
    return c.html(
      page(`<h2>ID token claims</h2><pre>${escapeHtml(JSON.stringify(token.claims, null, 2))}</pre>
<h2>Userinfo, fetched with the access token</h2><pre>${escapeHtml(JSON.stringify(await userinfo.json(), null, 2))}</pre>
<form method="post" action="/auth/demo/logout?returnTo=/"><button>Sign out</button></form>`),
    );
  });

  // @hono/node-server's own Request/Response classes stay out of the globals: openid-client must
  // recognise the responses fetch() gives it (see README, Hono).
  server.on('request', getRequestListener(app.fetch, { overrideGlobalObjects: false }));

  return {
    url: baseUrl,
    idp,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await idp.close();
    },
  };
}

function page(body: string): string {
  return `<!doctype html><meta charset="utf-8"><title>oauth-middleware: Hono example</title>
<body style="font-family:system-ui,sans-serif;max-width:48rem;margin:3rem auto"><h1>Hono example</h1>${body}</body>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>]/g, (c) => `&#${c.charCodeAt(0)};`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runFromCommandLine(async () => {
    const { url } = await main({ port: Number(process.env.PORT ?? 3000), idpPort: Number(process.env.IDP_PORT ?? 4000) });
    return `Hono example: open ${url}`;
  });
}
