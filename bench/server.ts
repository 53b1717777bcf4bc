/**
 * The server side of `npm run bench`, in a process of its own so that the load generator does not
 * share its event loop: every app the bench compares, each on its own port, plus what they need
 * (a token endpoint answering after `BENCH_PROVIDER_LATENCY_MS`, the demo identity provider for
 * express-openid-connect's login). Started by bench/run.ts with an IPC channel: it sends
 * `{ ready, urls }`, and answers `memory` (resident bytes, after a garbage collection),
 * `tokenRequests` (how many the token endpoint saw), `profile` and `profiled` (start a CPU profile,
 * and stop it into `file`) and `close`.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import express, { type Express } from 'express';
import eoc from 'express-openid-connect';
import session from 'express-session';
import { Redis } from 'ioredis';
import Koa from 'koa';
import passport from 'passport';
import { startDemoIdp } from '../examples/demo-idp/index.js';
import type * as ExpressAdapter from '../src/express.js';
import type * as Core from '../src/index.js';
import type { OAuth, TokenStore } from '../src/index.js';
import type * as KoaAdapter from '../src/koa.js';
import type * as Providers from '../src/providers/index.js';
import type * as RedisEntry from '../src/redis.js';
import { startTokenEndpoint } from '../test/support/token-endpoint.js';

// The library as its users run it: tsc's output, which bench/run.ts builds into BENCH_LIB. The
// sources through tsx would measure esbuild's transform too (it names every closure at run time).
const LIB = process.env.BENCH_LIB ?? '../src';
const expressAdapter = (await import(`${LIB}/express.js`)) as typeof ExpressAdapter;
const koaAdapter = (await import(`${LIB}/koa.js`)) as typeof KoaAdapter;
const { createOAuth, memoryStore } = (await import(`${LIB}/index.js`)) as typeof Core;
const { oauth2 } = (await import(`${LIB}/providers/index.js`)) as typeof Providers;
const { redisStore } = (await import(`${LIB}/redis.js`)) as typeof RedisEntry;

const SECRET = 'bench-secret-0123456789-abcdefghijklmnop';
const LATENCY_MS = Number(process.env.BENCH_PROVIDER_LATENCY_MS ?? 50);
const REDIS_PREFIX = `oauth-bench:${process.pid}:`;

const servers: Server[] = [];
async function serve(listener?: RequestListener): Promise<{ server: Server; url: string }> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

// The provider: every refresh answers after the latency a real one over the network would add.
const provider = await startTokenEndpoint();
let issued = 0;
provider.answer = async () => {
  await new Promise((resolve) => setTimeout(resolve, LATENCY_MS));
  issued += 1;
  return {
    status: 200,
    body: { access_token: `at-${issued}`, token_type: 'Bearer', expires_in: 3600, refresh_token: `rt-${issued}` },
  };
};

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1, lazyConnect: true });
await redis.connect();
const stores: Record<string, () => TokenStore | undefined> = {
  cookie: () => undefined,
  memory: () => memoryStore(),
  redis: () => redisStore({ client: redis, prefix: REDIS_PREFIX }),
};

function oauthWith(store: TokenStore | undefined): OAuth {
  return createOAuth({
    baseUrl: 'http://127.0.0.1:3000',
    secret: SECRET,
    ...(store ? { store } : {}),
    providers: {
      p: oauth2({
        authorization: `${provider.origin}/authorize`,
        token: `${provider.origin}/token`,
        clientId: 'bench',
        clientSecret: 'bench-client-secret-0123456789',
      }),
    },
  });
}

/**
 * What `/bench/login` imports: a fresh token (an hour left), or with `?expired` one past its expiry
 * that the next `getToken` must refresh. Bench-only: a real app gets tokens from a login.
 */
function benchTokens(expired: boolean) {
  const now = Math.floor(Date.now() / 1000);
  return { accessToken: `at-${Math.random()}`, refreshToken: `rt-${Math.random()}`, expiresAt: expired ? now - 60 : now + 3600 };
}

function bareExpress(): Express {
  const app = express();
  app.get('/plain', (_req, res) => {
    res.send('ok');
  });
  return app;
}

/** Bare Express 5 with one middleware that does nothing: what any middleware costs, the floor for ours. */
function emptyMiddleware(): Express {
  const app = express();
  app.use((_req, _res, next) => next());
  app.get('/plain', (_req, res) => {
    res.send('ok');
  });
  return app;
}

/**
 * Bare Express 5 with the shape of a token-reading route and no library: an async guard before an
 * async handler, each awaiting an answer that is ready. What awaiting costs in Express, the floor
 * for `requireToken` + `getToken`.
 */
function asyncRoute(): Express {
  const app = express();
  const ready = async () => true;
  app.get(
    '/plain',
    async (_req, _res, next) => {
      if (await ready()) next();
    },
    async (_req, res) => {
      res.send((await ready()) ? 'ok' : 'no');
    },
  );
  return app;
}

function ourExpress(oauth: OAuth): Express {
  const app = express();
  app.use(expressAdapter.oauthMiddleware(oauth));
  app.get('/plain', (_req, res) => {
    res.send('ok');
  });
  app.get('/token', expressAdapter.requireToken('p'), async (req, res) => {
    res.send((await req.oauth.getToken('p')).accessToken ? 'ok' : 'no');
  });
  app.get('/bench/login', async (req, res) => {
    await req.oauth.importTokens('p', benchTokens('expired' in req.query));
    res.send('ok');
  });
  return app;
}

function bareKoa(): Koa {
  const app = new Koa();
  const router = new Router();
  router.get('/plain', (ctx) => {
    ctx.body = 'ok';
  });
  app.use(router.routes());
  return app;
}

function ourKoa(oauth: OAuth): Koa {
  const app = new Koa();
  const router = new Router();
  router.get('/plain', (ctx) => {
    ctx.body = 'ok';
  });
  router.get('/token', koaAdapter.requireToken('p'), async (ctx) => {
    ctx.body = (await ctx.oauth.getToken('p')).accessToken ? 'ok' : 'no';
  });
  router.get('/bench/login', async (ctx) => {
    await ctx.oauth.importTokens('p', benchTokens('expired' in ctx.query));
    ctx.body = 'ok';
  });
  app.use(koaAdapter.oauthMiddleware(oauth));
  app.use(router.routes());
  return app;
}

/** express-openid-connect on the same demo provider, its logged-in route reading the access token. */
async function expressOpenidConnect(): Promise<string> {
  const { server, url } = await serve();
  const idp = await startDemoIdp({
    clients: [{ client_id: 'eoc', client_secret: 'eoc-client-secret-0123456789', redirect_uris: [`${url}/callback`] }],
  });
  closers.push(() => idp.close());
  const app = express();
  app.use(
    eoc.auth({
      issuerBaseURL: idp.issuer,
      baseURL: url,
      clientID: 'eoc',
      clientSecret: 'eoc-client-secret-0123456789',
      secret: SECRET,
      authRequired: false,
      authorizationParams: { response_type: 'code', response_mode: 'query', scope: 'openid offline_access', prompt: 'consent' },
    }),
  );
  app.get('/token', eoc.requiresAuth(), (req, res) => {
    res.send(req.oidc.accessToken?.access_token ? 'ok' : 'no');
  });
  server.on('request', app);
  return url;
}

/** express-session (its memory store) + passport, the user and their access token kept in the session. */
function sessionPassport(): Express {
  const users = new passport.Passport();
  users.serializeUser((user, done) => done(null, user));
  users.deserializeUser((user: Express.User, done) => done(null, user));
  const app = express();
  app.use(session({ secret: SECRET, resave: false, saveUninitialized: false }));
  app.use(users.session());
  app.get('/bench/login', (req, res, next) => {
    req.login({ id: String(Math.random()), accessToken: `at-${Math.random()}` }, (err) => (err ? next(err) : res.send('ok')));
  });
  app.get('/token', (req, res) => {
    const user = req.user as { accessToken?: string } | undefined;
    if (!user) res.status(401).send('no');
    else res.send(user.accessToken ? 'ok' : 'no');
  });
  return app;
}

const closers: Array<() => Promise<unknown>> = [];
const urls: Record<string, string> = {};
urls['express'] = (await serve(bareExpress())).url;
urls['koa'] = (await serve(bareKoa().callback())).url;
urls['express-empty'] = (await serve(emptyMiddleware())).url;
urls['express-async'] = (await serve(asyncRoute())).url;
for (const [name, store] of Object.entries(stores)) {
  const oauth = oauthWith(store());
  urls[`express-${name}`] = (await serve(ourExpress(oauth))).url;
  urls[`koa-${name}`] = (await serve(ourKoa(oauth).callback())).url;
}
urls['express-openid-connect'] = await expressOpenidConnect();
urls['passport'] = (await serve(sessionPassport())).url;

// CPU profiling of the measured rounds only (not of the sessions signed in before them).
const profiler = new Session();
process.on('message', async (message: { type: string; file?: string }) => {
  if (message.type === 'profile' && message.file) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
    process.send?.({ type: 'profile' });
  } else if (message.type === 'profiled' && message.file) {
    const { profile } = await profiler.post('Profiler.stop');
    writeFileSync(message.file, JSON.stringify(profile));
    profiler.disconnect();
    process.send?.({ type: 'profiled' });
  } else if (message.type === 'memory') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send?.({ type: 'memory', rss: process.memoryUsage().rss });
  } else if (message.type === 'tokenRequests') {
    process.send?.({ type: 'tokenRequests', count: provider.requests.length });
  } else if (message.type === 'close') {
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    await Promise.all(closers.map((close) => close()));
    await provider.close();
    const keys = await redis.keys(`${REDIS_PREFIX}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    process.disconnect();
  }
});
process.send?.({ type: 'ready', urls });
