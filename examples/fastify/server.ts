/**
 * Fastify starter: sign in with a local demo identity provider, then show the token's claims and
 * call the provider's userinfo endpoint with `request.oauth.getToken`. Run with `npm run start:fastify`.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { oauthErrorHandler, oauthPlugin, requireToken } from 'oauth-middleware/fastify';
import { oidc } from 'oauth-middleware/providers';
import { startDemoIdp } from '../demo-idp/index.js';
import { listen, runFromCommandLine } from '../listen.js';

export async function main({ port = 3000, idpPort = 4000 } = {}) {
  // Listen first: the redirect URI registered at the identity provider needs the real port.
  const app = Fastify({ serverFactory: (handler) => createServer(handler) });
  await listen(app.server, port, 'PORT');
  const baseUrl = `http://localhost:${(app.server.address() as AddressInfo).port}`;

  const idp = await startDemoIdp({
    port: idpPort,
    clients: [{ client_id: 'demo-app', client_secret: 'demo-app-secret', redirect_uris: [`${baseUrl}/auth/demo/callback`] }],
  });

  await app.register(
    oauthPlugin({
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
  app.setErrorHandler(oauthErrorHandler);

  app.get('/', async (request, reply) => {
    const connected = await request.oauth.isConnected('demo');
    return reply
      .type('text/html')
      .send(
        page(
          connected
            ? '<p>You are signed in. <a href="/profile">See your profile</a>.</p>'
            : '<p><a href="/auth/demo/login?returnTo=/profile">Sign in with the demo provider</a> (any user name, any password).</p>',
        ),
      );
  });

  app.get('/profile', { preHandler: requireToken('demo') }, async (request, reply) => {
    const token = await request.oauth.getToken('demo'); // refreshed first when due
    const userinfo = await fetch(idp.userinfo, { headers: { authorization: `${token.tokenType} ${token.accessToken}` } });
    return reply.type('text/html').send(
      page(`<h2>ID token claims</h2><pre>${escapeHtml(JSON.stringify(token.claims, null, 2))}</pre>
<h2>Userinfo, fetched with the access token</h2><pre>${escapeHtml(JSON.stringify(await userinfo.json(), null, 2))}</pre>
<form method="post" action="/auth/demo/logout?returnTo=/"><button>Sign out</button></form>`),
    );
  });
  await app.ready();

  return {
    url: baseUrl,
    idp,
    async close() {
      app.server.closeAllConnections();
      await app.close();
      await idp.close();
    },
  };
}

function page(body: string): string {
  return `<!doctype html><meta charset="utf-8"><title>oauth-middleware: Fastify example</title>
<body style="font-family:system-ui,sans-serif;max-width:48rem;margin:3rem auto"><h1>Fastify example</h1>${body}</body>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>]/g, (c) => `&#${c.charCodeAt(0)};`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runFromCommandLine(async () => {
    const { url } = await main({ port: Number(process.env.PORT ?? 3000), idpPort: Number(process.env.IDP_PORT ?? 4000) });
    return `Fastify example: open ${url}`;
  });
}
