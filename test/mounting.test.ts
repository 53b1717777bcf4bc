/**
 * Mounted as users mount: the middleware below `/api` (Express's `app.use('/api', ...)`, koa-mount,
 * a Fastify plugin prefix, a web-standard app told its mount path) serves the login routes at
 * `/api/auth/...`, sends the provider a redirect URI there, scopes its login cookie there, and
 * sends a guarded route's visitors there. A whole login runs through each, against oidc-provider.
 */
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import mount from 'koa-mount';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as expressAdapter from '../src/express.js';
import * as fastifyAdapter from '../src/fastify.js';
import { fetchOAuth } from '../src/fetch.js';
import { createOAuth, type OAuth } from '../src/index.js';
import * as koaAdapter from '../src/koa.js';
import {
  BASE_URL,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';

let op: TestServer;
beforeAll(async () => {
  op = await startAuthorizationServer(['op'], { mountPaths: ['/api'] });
});
afterAll(async () => {
  await op?.close();
});

/** An app with the middleware mounted below /api, and `GET /api/protected` behind requireToken('op'). */
const apps: Record<string, (oauth: OAuth) => Promise<Server>> = {
  'express, app.use(path)': async (oauth) => {
    const app = express();
    app.use('/api', expressAdapter.oauthMiddleware(oauth));
    app.get('/api/protected', expressAdapter.requireToken('op'), (_req, res) => {
      res.send('protected');
    });
    app.use(expressAdapter.oauthErrorHandler());
    return listen(createServer(app));
  },
  'koa, koa-mount': async (oauth) => {
    const app = new Koa();
    app.use(koaAdapter.oauthErrorHandler());
    app.use(mount('/api', koaAdapter.oauthMiddleware(oauth)));
    const guard = koaAdapter.requireToken('op');
    app.use(async (ctx, next) => {
      if (ctx.path !== '/api/protected') return next();
      await guard(ctx, async () => {
        ctx.body = 'protected';
      });
    });
    return listen(createServer(app.callback()));
  },
  'fastify, plugin prefix': async (oauth) => {
    const app = Fastify();
    await app.register(fastifyAdapter.oauthPlugin(oauth), { prefix: '/api' });
    app.setErrorHandler(fastifyAdapter.oauthErrorHandler);
    app.get('/api/protected', { preHandler: fastifyAdapter.requireToken('op') }, async () => 'protected');
    await app.ready();
    return listen(createServer((req, res) => app.routing(req, res)));
  },
  'fetch, mountPath': async (oauth) => {
    const web = fetchOAuth(oauth);
    const handle = async (native: Request): Promise<Response> => {
      const scope = web.request(native, { mountPath: '/api' });
      const answer = (await scope.route()) ?? (await scope.requireToken('op')) ?? new Response('protected');
      return scope.respond(answer);
    };
    return listen(createServer(getRequestListener(handle, { overrideGlobalObjects: false })));
  },
};

async function listen(server: Server): Promise<Server> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  expect((server.address() as AddressInfo).port).toBeGreaterThan(0);
  return server;
}

describe('a mount path that is not plain path segments', () => {
  it.each([['api'], ['/api/'], ['/a b'], ['/a!b/api'], ['/api!']])(
    'serves no login route below %j, and serves them below two segments',
    async (mountPath) => {
      const web = fetchOAuth(
        createOAuth({
          baseUrl: BASE_URL,
          secret: 'a-test-secret-that-is-long-enough-0123456789',
          providers: { op: testProvider(op) },
        }),
      );
      const login = (path: string, mount: string) => web.request(new Request(`${BASE_URL}${path}`), { mountPath: mount }).route();
      expect(await login(`${mountPath}/auth/op/login`.replace(/^(?!\/)/, '/'), mountPath)).toBeUndefined();
      expect((await login('/v1/api/auth/op/login', '/v1/api'))?.status).toBe(302);
    },
  );
});

describe.each(Object.entries(apps))('%s', (_name, start) => {
  async function running() {
    const server = await start(
      createOAuth({
        baseUrl: BASE_URL,
        secret: 'a-test-secret-that-is-long-enough-0123456789',
        providers: { op: testProvider(op) },
      }),
    );
    return {
      server,
      agent: request.agent(server),
      close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))),
    };
  }

  it('serves the whole login below the mount path, and the guarded route then answers', async () => {
    const { agent, close } = await running();
    try {
      const login = await agent.get('/api/auth/op/login?returnTo=/api/protected').expect(302);
      const location = new URL(login.headers.location as string);
      expect(location.searchParams.get('redirect_uri')).toBe(`${BASE_URL}/api/auth/op/callback`);
      expect((login.headers['set-cookie'] as unknown as string[])[0]).toMatch(/Path=\/api\/auth\/op\/;/);
      const callback = await completeLogin(location.href);
      expect(callback.pathname).toBe('/api/auth/op/callback');
      await agent
        .get(callback.pathname + callback.search)
        .set('accept', 'text/html')
        .expect(302)
        .expect('location', '/api/protected');
      await agent.get('/api/protected').expect(200, 'protected');
    } finally {
      await close();
    }
  });

  it('sends a visitor of a guarded route to the login below the mount path', async () => {
    const { agent, close } = await running();
    try {
      await agent
        .get('/api/protected')
        .set('accept', 'text/html')
        .expect(302)
        .expect('location', `/api/auth/op/login?returnTo=${encodeURIComponent('/api/protected')}`);
      const api = await agent.get('/api/protected').set('accept', 'application/json').expect(401);
      expect(api.body).toMatchObject({
        error: 'not_connected',
        login: `/api/auth/op/login?returnTo=${encodeURIComponent('/api/protected')}`,
      });
      // Not served outside the mount path.
      expect((await agent.get('/auth/op/login')).status).not.toBe(302);
    } finally {
      await close();
    }
  });
});
