/**
 * The same small app on every adapter, so one contract suite runs over all of them: Express and Koa
 * on both majors their peer ranges admit (Express 4 and 5, Koa 2 and 3; the older ones installed
 * under the npm aliases `express4` and `koa2`), Fastify 5, the web-standard handler
 * (`oauth-middleware/fetch`, served by Node through @hono/node-server's Request/Response bridge) and
 * Hono over it (the middleware of examples/hono). Each app mounts the middleware, a few routes that
 * use the request's `oauth`, a guarded route, and the adapter's error handler, as a user's app would.
 */
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import * as honoAdapter from '../../examples/hono/oauth-hono.js';
import * as expressAdapter from '../../src/express.js';
import * as fastifyAdapter from '../../src/fastify.js';
import { type FetchRequest, fetchOAuth } from '../../src/fetch.js';
import * as koaAdapter from '../../src/koa.js';
import type { OAuth, OAuthContext } from '../../src/index.js';

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

/**
 * The `x-user` header of the framework's own request as the `subject` option gets it: Express's
 * `req`, Koa's `ctx`, Fastify's `request` (headers as an object) or a web-standard `Request`.
 */
export function userHeader(native: unknown): string | undefined {
  const { headers } = native as { headers: Headers | Record<string, string | undefined> };
  return (headers instanceof Headers ? headers.get('x-user') : headers['x-user']) ?? undefined;
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

async function fastifyApp(oauth: OAuth): Promise<RunningApp> {
  const { oauthPlugin, requireToken, oauthErrorHandler } = fastifyAdapter;
  const app = Fastify();
  await app.register(oauthPlugin(oauth));
  app.setErrorHandler(oauthErrorHandler);
  type Params = { Params: RouteParams; Querystring: { url: string } };
  app.get('/plain', async () => 'plain');
  app.get<Params>('/token/:provider', async (request) => request.oauth.getToken(request.params.provider));
  app.get<Params>('/tokens/:provider/:count', async (request) => {
    const calls = Array.from({ length: Number(request.params.count) }, () => request.oauth.getToken(request.params.provider));
    return (await Promise.all(calls)).map((t) => t.accessToken);
  });
  app.get<Params>('/fetch/:provider', async (request) => {
    const response = await request.oauth.fetch(request.params.provider, request.query.url);
    return { status: response.status, body: await response.json() };
  });
  app.get<Params>('/fetch-stream/:provider', async (request) => {
    const response = await request.oauth.fetch(request.params.provider, request.query.url, onceBody());
    return { status: response.status };
  });
  app.get<Params>('/connected/:provider', async (request) => ({
    connected: await request.oauth.isConnected(request.params.provider),
    connections: await request.oauth.connections(),
  }));
  app.post<Params>('/disconnect/:provider', async (request, reply) => {
    await request.oauth.logout(request.params.provider);
    return reply.code(204).send();
  });
  app.get('/protected', { preHandler: requireToken('op') }, async () => 'protected');
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return {
    server: app.server,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      app.server.closeAllConnections();
      await app.close();
    },
  };
}

/** The test routes for a web-standard server: the same answers, from the request's `oauth`. */
async function fetchRoutes(request: Request, oauth: OAuthContext, guard: () => Promise<Response | undefined>): Promise<Response> {
  const url = new URL(request.url);
  const [, first, second, third] = url.pathname.split('/');
  const target = url.searchParams.get('url') ?? '';
  if (request.method === 'GET' && first === 'plain') return new Response('plain');
  if (request.method === 'GET' && first === 'token' && second) return Response.json(await oauth.getToken(second));
  if (request.method === 'GET' && first === 'tokens' && second) {
    const calls = Array.from({ length: Number(third) }, () => oauth.getToken(second));
    return Response.json((await Promise.all(calls)).map((t) => t.accessToken));
  }
  if (request.method === 'GET' && first === 'fetch' && second) {
    const response = await oauth.fetch(second, target);
    return Response.json({ status: response.status, body: await response.json() });
  }
  if (request.method === 'GET' && first === 'fetch-stream' && second) {
    return Response.json({ status: (await oauth.fetch(second, target, onceBody())).status });
  }
  if (request.method === 'GET' && first === 'connected' && second) {
    return Response.json({ connected: await oauth.isConnected(second), connections: await oauth.connections() });
  }
  if (request.method === 'POST' && first === 'disconnect' && second) {
    await oauth.logout(second);
    return new Response(null, { status: 204 });
  }
  if (request.method === 'GET' && first === 'protected') return (await guard()) ?? new Response('protected');
  return new Response('Not Found', { status: 404 });
}

function fetchApp(oauth: OAuth) {
  return fetchOAuth(oauth).handler((request, scope: FetchRequest) =>
    fetchRoutes(request, scope.oauth, () => scope.requireToken('op')),
  );
}

function honoApp(oauth: OAuth) {
  const { oauthMiddleware, requireToken, renderOAuthError } = honoAdapter;
  const app = new Hono<honoAdapter.OAuthEnv>();
  app.use(oauthMiddleware(oauth));
  app.get('/protected', requireToken('op'), (c) => c.text('protected'));
  app.all('*', (c) => fetchRoutes(c.req.raw, c.var.oauth, async () => undefined));
  app.onError((err, c) => renderOAuthError(err, c) ?? c.text('Internal Server Error', 500));
  return app;
}

/**
 * Node's request and response as a web-standard `Request` and `Response`. By default the bridge puts
 * its own `Request`/`Response` classes in the globals, where openid-client no longer recognises
 * the responses fetch() gives it: the README says to turn that off, as here.
 */
function bridge(handler: (request: Request) => Response | Promise<Response>) {
  return getRequestListener(handler, { overrideGlobalObjects: false });
}

/** A request body that can be read only once: it must never be sent twice. */
function onceBody(): RequestInit {
  const body = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('{"once":true}')), c.close()) });
  return { method: 'POST', body, duplex: 'half' } as RequestInit;
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
  { name: 'fastify', start: (oauth) => fastifyApp(oauth) },
  { name: 'fetch', start: (oauth) => listen(bridge(fetchApp(oauth))) },
  { name: 'hono', start: (oauth) => listen(bridge(honoApp(oauth).fetch)) },
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
