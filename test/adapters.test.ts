/**
 * What each adapter does at its edges, in apps built for each case rather than the shared test app:
 * a guard mounted without the middleware, errors that are not ours or that come after the response
 * head, a cookie the app set before ours, a route answer without a body, and a core built once and
 * handed to the middleware.
 */
import { createServer, type Server } from 'node:http';
import express from 'express';
import Koa from 'koa';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as expressAdapter from '../src/express.js';
import * as koaAdapter from '../src/koa.js';
import { createOAuth, type OAuth, type OAuthConfig, OAuthError } from '../src/index.js';
import { oauth2 } from '../src/providers/index.js';
import { frameworks } from './support/apps.js';
import { startTokenEndpoint, type TokenEndpoint } from './support/token-endpoint.js';

let endpoint: TokenEndpoint;
beforeAll(async () => {
  endpoint = await startTokenEndpoint();
});
afterAll(async () => {
  await endpoint?.close();
});

const config = (): OAuthConfig => ({
  baseUrl: 'http://127.0.0.1:3999',
  secret: 's'.repeat(40),
  providers: {
    p: oauth2({
      authorization: `${endpoint.origin}/authorize`,
      token: `${endpoint.origin}/token`,
      clientId: 'adapter-client',
      clientSecret: 'adapter-client-secret-0123456789',
    }),
  },
});

/** Each case's app, on each framework. */
interface Edges {
  /** The guard alone, with no middleware before it. */
  unmountedGuard(): express.Application | Koa;
  /** The middleware, then a route that throws `thrown` after sending `sent` (when given) first. */
  throwing(thrown: unknown, sendFirst: boolean): express.Application | Koa;
  /** An app that sets a cookie of its own before the middleware answers a login. */
  cookieFirst(): express.Application | Koa;
  /** The middleware alone, given a core built beforehand. */
  middlewareOnly(oauth: OAuth): express.Application | Koa;
}

function expressEdges(framework: typeof express): Edges {
  return {
    unmountedGuard() {
      const app = framework();
      app.get('/guarded', expressAdapter.requireToken('p'), (_req, res) => {
        res.send('let through');
      });
      app.use(expressAdapter.oauthErrorHandler());
      return app;
    },
    throwing(thrown, sendFirst) {
      const app = framework();
      app.use(expressAdapter.oauthMiddleware(config()));
      app.get('/throws', (_req, res, next) => {
        if (sendFirst) res.status(200).write('partial');
        next(thrown);
      });
      app.use(expressAdapter.oauthErrorHandler());
      // The app's own last handler: what the adapter's handler passes on arrives here.
      app.use(((err, _req, res, _next) => {
        if (res.headersSent) res.end(` (passed on: ${(err as Error).message})`);
        else res.status(418).send(`app handler: ${(err as Error).message}`);
      }) as express.ErrorRequestHandler);
      return app;
    },
    cookieFirst() {
      const app = framework();
      app.use((_req, res, next) => {
        res.setHeader('set-cookie', 'app=1; Path=/');
        next();
      });
      app.use(expressAdapter.oauthMiddleware(config()));
      return app;
    },
    middlewareOnly: (oauth) => framework().use(expressAdapter.oauthMiddleware(oauth)),
  };
}

function koaEdges(Framework: typeof Koa): Edges {
  return {
    unmountedGuard() {
      const app = new Framework();
      app.silent = true;
      app.use(koaAdapter.oauthErrorHandler());
      app.use(koaAdapter.requireToken('p'));
      app.use((ctx) => {
        ctx.body = 'let through';
      });
      return app;
    },
    throwing(thrown, sendFirst) {
      const app = new Framework();
      app.silent = true;
      // The app's own outer handler: what the adapter's handler rethrows arrives here.
      app.use(async (ctx, next) => {
        try {
          await next();
        } catch (err) {
          if (ctx.headerSent) ctx.res.end(` (passed on: ${(err as Error).message})`);
          else {
            ctx.status = 418;
            ctx.body = `app handler: ${(err as Error).message}`;
          }
        }
      });
      app.use(koaAdapter.oauthErrorHandler());
      app.use(koaAdapter.oauthMiddleware(config()));
      app.use((ctx) => {
        if (sendFirst) {
          ctx.respond = false;
          ctx.res.writeHead(200).write('partial');
        }
        throw thrown;
      });
      return app;
    },
    cookieFirst() {
      const app = new Framework();
      app.use(async (ctx, next) => {
        ctx.set('set-cookie', 'app=1; Path=/');
        await next();
      });
      app.use(koaAdapter.oauthMiddleware(config()));
      return app;
    },
    middlewareOnly: (oauth) => new Framework().use(koaAdapter.oauthMiddleware(oauth)),
  };
}

describe.each(frameworks)('$name adapter', ({ kind, framework }) => {
  // The older majors are typed as the newer ones (see support/apps.ts).
  const edge = kind === 'express' ? expressEdges(framework as typeof express) : koaEdges(framework as typeof Koa);
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
  });
  async function serve(app: express.Application | Koa): Promise<Server> {
    const handler = 'callback' in app ? app.callback() : app;
    server = createServer(handler);
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    return server;
  }

  it('refuses a guard mounted without the middleware as a configuration error, never letting the request through', async () => {
    const answer = await request(await serve(edge.unmountedGuard()))
      .get('/guarded')
      .set('accept', 'application/json')
      .expect(500);
    expect(answer.body).toEqual({
      error: 'config_invalid',
      message: 'requireToken() needs oauthMiddleware() mounted before it.',
    });
  });

  it('passes an error that is not an OAuthError on to the app', async () => {
    const answer = await request(await serve(edge.throwing(new Error('the app’s own'), false))).get('/throws');
    expect(answer.status).toBe(418);
    expect(answer.text).toBe('app handler: the app’s own');
  });

  it('passes an OAuthError on when the response head is already sent, instead of writing a second one', async () => {
    const thrown = new OAuthError('not_connected', 'Not connected to this provider.');
    // Bounded: a second head written after the first can leave the response hanging.
    const answer = await request(await serve(edge.throwing(thrown, true)))
      .get('/throws')
      .timeout(3000);
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('partial (passed on: Not connected to this provider.)');
  });

  it('keeps a cookie the app set before the login route answers', async () => {
    const answer = await request(await serve(edge.cookieFirst()))
      .get('/auth/p/login')
      .expect(302);
    const names = (answer.headers['set-cookie'] as unknown as string[]).map((line) => line.split('=')[0]);
    expect(names[0]).toBe('app');
    expect(names.slice(1)).toEqual([expect.stringMatching(/^oauth_tx\./)]); // the login's transaction
  });

  it('answers a logout with no body as 204 and one with a location as a redirect', async () => {
    const agent = request(await serve(edge.middlewareOnly(createOAuth(config()))));
    const api = await agent.post('/auth/p/logout').set('accept', 'application/json');
    const page = await agent.post('/auth/p/logout').set('accept', 'text/html');
    expect([api.status, api.text, api.headers['content-type']]).toEqual([204, '', undefined]);
    expect([page.status, page.headers.location, page.text]).toEqual([302, '/', '']);
  });
});
