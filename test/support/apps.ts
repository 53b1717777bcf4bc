/**
 * The same small app on Express and on Koa, so one contract suite runs over both adapters, each on
 * both majors its peer range admits (Express 4 and 5, Koa 2 and 3; the older ones installed under
 * the npm aliases `express4` and `koa2`). Each app mounts the middleware, a few routes that use
 * `req.oauth` / `ctx.oauth`, a guarded route, and the adapter's error handler, as a user's app would.
 */
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Koa from 'koa';
import * as expressAdapter from '../../src/express.js';
import * as koaAdapter from '../../src/koa.js';
import type { OAuth } from '../../src/index.js';

export interface RunningApp {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export interface Adapter {
  /** `express` or `koa`, with the major when it is not the newest: `express@4`, `koa@2`. */
  name: string;
  start(oauth: OAuth): Promise<RunningApp>;
}

// The older majors run the very same app. They are typed as the newer ones here: the adapters use
// only what both majors have, and the package test type-checks a user's app against each major's
// own typings (@types/express 4, @types/koa 2).
const require = createRequire(import.meta.url);
const express4 = require('express4') as typeof express;
const Koa2 = require('koa2') as typeof Koa;

function expressApp(oauth: OAuth, framework: typeof express) {
  const { oauthMiddleware, requireToken, oauthErrorHandler } = expressAdapter;
  const app = framework();
  app.use(framework.urlencoded({ extended: false }));
  app.use(oauthMiddleware(oauth));
  app.get('/plain', (_req, res) => {
    res.send('plain');
  });
  app.get(
    '/token/:provider',
    route(async (req, res) => {
      res.json(await req.oauth.getToken(req.params.provider));
    }),
  );
  app.get(
    '/tokens/:provider/:count',
    route(async (req, res) => {
      const calls = Array.from({ length: Number(req.params.count) }, () => req.oauth.getToken(req.params.provider));
      res.json((await Promise.all(calls)).map((t) => t.accessToken));
    }),
  );
  app.get(
    '/fetch/:provider',
    route(async (req, res) => {
      const response = await req.oauth.fetch(req.params.provider, String(req.query.url));
      res.json({ status: response.status, body: await response.json() });
    }),
  );
  app.get(
    '/fetch-stream/:provider',
    route(async (req, res) => {
      // A body that can be read only once: it must never be sent twice.
      const body = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('{"once":true}')), c.close()) });
      const response = await req.oauth.fetch(req.params.provider, String(req.query.url), {
        method: 'POST',
        body,
        duplex: 'half',
      } as RequestInit);
      res.json({ status: response.status });
    }),
  );
  app.get(
    '/connected/:provider',
    route(async (req, res) => {
      res.json({ connected: await req.oauth.isConnected(req.params.provider), connections: await req.oauth.connections() });
    }),
  );
  app.post(
    '/disconnect/:provider',
    route(async (req, res) => {
      await req.oauth.logout(req.params.provider);
      res.status(204).end();
    }),
  );
  app.get('/protected', requireToken('op'), (_req, res) => {
    res.send('protected');
  });
  app.use(oauthErrorHandler());
  return app;
}

/** The test routes' parameters: `/:provider` and `/:provider/:count`. */
type RouteParams = { provider: string; count: string };

/**
 * Hands a rejected route to the error handler. Express 5 does this by itself; Express 4 leaves the
 * request hanging, so apps on Express 4 wrap their async routes (or use express-async-errors).
 */
function route(
  handler: (req: express.Request<RouteParams>, res: express.Response) => Promise<void>,
): express.RequestHandler<RouteParams> {
  return (req, res, next) => {
    handler(req, res).catch(next);
  };
}

function koaApp(oauth: OAuth, Framework: typeof Koa) {
  const { oauthMiddleware, requireToken, oauthErrorHandler } = koaAdapter;
  const app = new Framework();
  app.silent = true;
  app.use(oauthErrorHandler());
  app.use(oauthMiddleware(oauth));
  const guard = requireToken('op');
  // A few routes by hand: the adapter needs no router, and neither does this test app.
  app.use(async (ctx, next) => {
    const [, first, second, third] = ctx.path.split('/');
    if (ctx.method === 'GET' && first === 'plain') ctx.body = 'plain';
    else if (ctx.method === 'GET' && first === 'token' && second) ctx.body = await ctx.oauth.getToken(second);
    else if (ctx.method === 'GET' && first === 'tokens' && second) {
      const calls = Array.from({ length: Number(third) }, () => ctx.oauth.getToken(second));
      ctx.body = (await Promise.all(calls)).map((t) => t.accessToken);
    } else if (ctx.method === 'GET' && first === 'fetch' && second) {
      const response = await ctx.oauth.fetch(second, String(ctx.query.url));
      ctx.body = { status: response.status, body: await response.json() };
    } else if (ctx.method === 'GET' && first === 'fetch-stream' && second) {
      const body = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('{"once":true}')), c.close()) });
      const response = await ctx.oauth.fetch(second, String(ctx.query.url), {
        method: 'POST',
        body,
        duplex: 'half',
      } as RequestInit);
      ctx.body = { status: response.status };
    } else if (ctx.method === 'GET' && first === 'connected' && second) {
      ctx.body = { connected: await ctx.oauth.isConnected(second), connections: await ctx.oauth.connections() };
    } else if (ctx.method === 'POST' && first === 'disconnect' && second) {
      await ctx.oauth.logout(second);
      ctx.status = 204;
    } else if (ctx.method === 'GET' && first === 'protected') {
      await guard(ctx, async () => {
        ctx.body = 'protected';
      });
    } else await next();
  });
  return app;
}

async function listen(handler: Parameters<typeof createServer>[1]): Promise<RunningApp> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const allAdapters: Adapter[] = [
  { name: 'express', start: (oauth) => listen(expressApp(oauth, express)) },
  { name: 'express@4', start: (oauth) => listen(expressApp(oauth, express4)) },
  { name: 'koa', start: (oauth) => listen(koaApp(oauth, Koa).callback()) },
  { name: 'koa@2', start: (oauth) => listen(koaApp(oauth, Koa2).callback()) },
];

/**
 * Every adapter on every supported major, unless OAUTH_TEST_ADAPTERS names some (comma-separated):
 * the mutation run keeps the newest majors only, since a mutant lives in our code, which is the
 * same on both majors, and each adapter dropped halves the cost of every surviving mutant.
 */
export const adapters: Adapter[] = selectAdapters(process.env.OAUTH_TEST_ADAPTERS);

/**
 * The frameworks themselves, for suites whose apps need routes of their own: named as in `adapters`,
 * and selected by OAUTH_TEST_ADAPTERS as they are.
 */
export const frameworks = (
  [
    { name: 'express', kind: 'express', framework: express },
    { name: 'express@4', kind: 'express', framework: express4 },
    { name: 'koa', kind: 'koa', framework: Koa },
    { name: 'koa@2', kind: 'koa', framework: Koa2 },
  ] as const
).filter(({ name }) => adapters.some((adapter) => adapter.name === name));

function selectAdapters(names: string | undefined): Adapter[] {
  if (!names) return allAdapters;
  const wanted = names.split(',').map((name) => name.trim());
  const unknown = wanted.filter((name) => !allAdapters.some((adapter) => adapter.name === name));
  if (unknown.length > 0) throw new Error(`OAUTH_TEST_ADAPTERS: unknown adapter ${unknown.join(', ')}`);
  return allAdapters.filter((adapter) => wanted.includes(adapter.name));
}
