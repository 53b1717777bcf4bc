/**
 * One instance of the app. Every instance shares the same secret and the same Redis, so a user
 * signed in through one is signed in on all, and a token is refreshed once whichever serves.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Redis } from 'ioredis';
import { oauthErrorHandler, oauthMiddleware, requireToken } from 'oauth-middleware/express';
import { oidc } from 'oauth-middleware/providers';
import { redisStore } from 'oauth-middleware/redis';

export interface InstanceOptions {
  name: string;
  baseUrl: string;
  secret: string;
  issuer: string;
  userinfo: string;
  redisUrl: string;
  redisPrefix?: string | undefined;
}

export async function startInstance(options: InstanceOptions) {
  // Fail fast while Redis is down (503 store_unavailable) instead of queueing requests.
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', (err) => console.error(`[${options.name}] redis: ${err.message}`));

  const app = express();
  app.use(
    oauthMiddleware({
      baseUrl: options.baseUrl,
      secret: options.secret,
      store: redisStore({ client: redis, prefix: options.redisPrefix }),
      providers: {
        demo: oidc({
          issuer: options.issuer,
          clientId: 'demo-app',
          clientSecret: 'demo-app-secret',
          scopes: ['openid', 'profile', 'email', 'offline_access'],
          authorizationParams: { prompt: 'consent' },
        }),
      },
    }),
  );
  app.get('/', async (req, res) => {
    const signedIn = await req.oauth.isConnected('demo');
    res
      .type('html')
      .send(
        page(
          options.name,
          signedIn
            ? '<p>Signed in. <a href="/profile">Profile</a> (reload it: each request may be served by another instance).</p>'
            : '<p><a href="/auth/demo/login?returnTo=/profile">Sign in with the demo provider</a> (any user name, any password).</p>',
        ),
      );
  });
  app.get('/profile', requireToken('demo'), async (req, res) => {
    const token = await req.oauth.getToken('demo');
    const userinfo = await fetch(options.userinfo, { headers: { authorization: `${token.tokenType} ${token.accessToken}` } });
    const { sub, email } = (await userinfo.json()) as { sub: string; email: string };
    res.type('html').send(
      page(
        options.name,
        `<p>Hello <b>${escapeHtml(sub)}</b> (${escapeHtml(email)}).</p>
<form method="post" action="/auth/demo/logout?returnTo=/"><button>Sign out</button></form>`,
      ),
    );
  });
  app.use(oauthErrorHandler());

  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      redis.disconnect();
    },
  };
}

function page(instance: string, body: string): string {
  return `<!doctype html><meta charset="utf-8"><title>oauth-middleware: Redis example</title>
<body style="font-family:system-ui,sans-serif;max-width:48rem;margin:3rem auto"><h1>Served by instance ${instance}</h1>${body}</body>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Started as a child process by server.ts: options arrive in the environment, the port goes back.
if (process.env.INSTANCE_OPTIONS && process.send) {
  const instance = await startInstance(JSON.parse(process.env.INSTANCE_OPTIONS) as InstanceOptions);
  process.send({ port: instance.port });
  process.on('disconnect', () => void instance.close().then(() => process.exit(0)));
}
