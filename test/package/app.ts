/**
 * A user's app, installed from the packed tarball and run by test/package.test.ts in each consumer
 * setup (ESM with `nodenext`, ESM through a bundler, CommonJS `require()`): the same source compiled
 * each way. An Express app and a Koa app, each against its own Pipedrive emulator from
 * `oauth-middleware/testing`, go through a real login, a refresh and an API call, then print what
 * they saw as one JSON line. `req.oauth` and `ctx.oauth` are used without a cast: they type-check
 * by declaration merging or not at all.
 *
 * No top-level await and no `import.meta`: the CommonJS build must compile it too.
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Koa from 'koa';
import { OAuthError, type OAuthConfig, type TokenSet } from 'oauth-middleware';
import * as forExpress from 'oauth-middleware/express';
import * as forKoa from 'oauth-middleware/koa';
import { pipedrive } from 'oauth-middleware/providers';
import { startPipedriveEmulator } from 'oauth-middleware/testing';

const SECRET = 'a-consumer-secret-that-is-long-enough-0123';

type Framework = 'express' | 'koa';

function expressApp(config: OAuthConfig): RequestListener {
  const { oauthErrorHandler, oauthMiddleware, requireToken } = forExpress;
  const app = express();
  app.use(oauthMiddleware(config));
  app.get('/me', requireToken('pipedrive'), (req, res, next) => {
    // Express 4 does not catch a rejected route: hand errors to next() on both majors.
    me(req.oauth.getToken('pipedrive'), (url) => req.oauth.fetch('pipedrive', url))
      .then((body) => res.json(body))
      .catch(next);
  });
  app.use(oauthErrorHandler());
  return app;
}

function koaApp(config: OAuthConfig): RequestListener {
  const { oauthErrorHandler, oauthMiddleware, requireToken } = forKoa;
  const app = new Koa();
  app.use(oauthErrorHandler());
  app.use(oauthMiddleware(config));
  app.use(requireToken('pipedrive'));
  app.use(async (ctx) => {
    if (ctx.path !== '/me') return;
    ctx.body = await me(ctx.oauth.getToken('pipedrive'), (url) => ctx.oauth.fetch('pipedrive', url));
  });
  return app.callback();
}

async function me(pending: Promise<TokenSet>, call: (url: string) => Promise<Response>) {
  const token = await pending;
  const response = await call(`${String(token.extras.api_domain)}/api/v1/users/me`);
  return { expiresAt: token.expiresAt, api: response.status, user: ((await response.json()) as { data: unknown }).data };
}

async function signInAndCall(framework: Framework) {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const emulator = await startPipedriveEmulator({ redirectUri: `${baseUrl}/auth/pipedrive/callback` });
  const config: OAuthConfig = {
    baseUrl,
    secret: SECRET,
    providers: {
      pipedrive: pipedrive({ clientId: emulator.clientId, clientSecret: emulator.clientSecret, endpoints: emulator.endpoints }),
    },
  };
  server.on('request', framework === 'express' ? expressApp(config) : koaApp(config));
  try {
    const anonymous = await fetch(`${baseUrl}/me`, { headers: { accept: 'application/json' } });
    const login = await fetch(`${baseUrl}/auth/pipedrive/login?returnTo=/me`, { redirect: 'manual' });
    emulator.accessTokenTtl = 0; // the tokens of this login are due at once: the first getToken refreshes
    const callbackUrl = await emulator.authorize(login.headers.get('location') ?? '');
    const callback = await fetch(callbackUrl, { redirect: 'manual', headers: { cookie: cookies(login) } });
    emulator.accessTokenTtl = 3600;
    const signedIn = await fetch(`${baseUrl}/me`, { headers: { accept: 'application/json', cookie: cookies(callback) } });
    return {
      anonymous: { status: anonymous.status, body: (await anonymous.json()) as unknown },
      callback: { status: callback.status, location: callback.headers.get('location') },
      me: { status: signedIn.status, body: (await signedIn.json()) as unknown },
      counts: emulator.counts,
      rejections: emulator.rejections,
    };
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await emulator.close();
  }
}

/** The cookies a response set, as the next request's Cookie header. */
function cookies(response: Response): string {
  return response.headers
    .getSetCookie()
    .map((line) => line.split(';')[0])
    .join('; ');
}

async function main() {
  const results = { express: await signInAndCall('express'), koa: await signInAndCall('koa') };
  const error = new OAuthError('not_connected', 'the public error class is usable', { provider: 'pipedrive' });
  console.log(JSON.stringify({ ...results, errorStatus: error.status }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
