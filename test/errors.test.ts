/**
 * What an app sees of an OAuthError, through HTTP on every adapter and major: the error handler
 * renders one thrown by another copy of this package too (an app may bundle two); Koa's own handler
 * shows the message of every OAuthError but a configuration error (`expose`, as http-errors sets it);
 * an error's own properties are its documented fields, with no `cause` unless there is one.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Koa from 'koa';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as expressAdapter from '../src/express.js';
import * as koaAdapter from '../src/koa.js';
import { createOAuth, type OAuth, OAuthError } from '../src/index.js';
import { oauth2 } from '../src/providers/index.js';
import { frameworks } from './support/apps.js';

/** This package's errors module loaded a second time: what an app holding two copies has. */
type ErrorsModule = typeof import('../src/errors.js');
let otherCopy: ErrorsModule;
beforeAll(async () => {
  // A module id of its own (the query) gives a second instance; a variable keeps tsc from resolving it.
  const secondCopy = '../src/errors.ts?another-copy';
  otherCopy = (await import(/* @vite-ignore */ secondCopy)) as ErrorsModule;
});

const oauth: OAuth = createOAuth({
  baseUrl: 'http://127.0.0.1:3999',
  secret: 'a-test-secret-that-is-long-enough-0123456789',
  providers: {
    p: oauth2({
      authorization: 'https://p.example/authorize',
      token: 'https://p.example/token',
      clientId: 'c',
      clientSecret: 's',
    }),
  },
});

/** The thrown value each route stands for. */
const thrown: Record<string, () => unknown> = {
  foreign: () => new otherCopy.OAuthError('not_connected', 'Connect the provider first.', { provider: 'p' }),
  // Thrown by another copy too, so that its message can be one no error of ours has: it is escaped.
  'foreign-markup': () => new otherCopy.OAuthError('access_denied', 'A <b>"bold"</b> & \'quoted\' refusal.'),
  unavailable: () => new OAuthError('provider_unavailable', 'The provider could not be reached.'),
  misconfigured: () => new OAuthError('config_invalid', 'Invalid configuration: providers.p.clientId is missing.'),
  // Not OAuthErrors, though each looks like one in a way: the app's own handler gets them.
  'named-only': () => Object.assign(new Error('Not ours.'), { name: 'OAuthError' }),
  'app-error': () => Object.assign(new Error('Slow down.'), { code: 'rate_limited', status: 429 }),
  'plain-object': () => ({ name: 'OAuthError', code: 'not_connected', status: 401, message: 'Not an Error.' }),
};

/** The app's own error handler, after the adapter's: what the adapter leaves alone ends here. */
const APP_HANDLER_STATUS = 418;

/** Express: the routes, then the adapter's error handler unless `bare`. */
function expressApp(framework: typeof express, bare: boolean) {
  const app = framework();
  app.use(expressAdapter.oauthMiddleware(oauth));
  app.get('/throw/:what', (req, _res, next) => next(thrown[req.params.what]?.()));
  app.get('/own-properties', (req, res, next) => {
    req.oauth.getToken('p').then(
      () => next(new Error('connected?')),
      (err: OAuthError) => res.json({ keys: Object.keys(err).sort(), hasCause: 'cause' in err, name: err.name }),
    );
  });
  if (!bare) app.use(expressAdapter.oauthErrorHandler());
  app.use((_err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(APP_HANDLER_STATUS).json({ handledBy: 'app' });
  });
  return app;
}

/** Koa: the adapter's error handler unless `bare` (Koa's own then answers), then the routes. */
function koaApp(Framework: typeof Koa, bare: boolean) {
  const app = new Framework();
  app.silent = true;
  if (!bare) {
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch {
        ctx.status = APP_HANDLER_STATUS;
        ctx.body = { handledBy: 'app' };
      }
    });
    app.use(koaAdapter.oauthErrorHandler());
  }
  app.use(async (ctx, next) => {
    if (ctx.path === '/guard-without-middleware') return koaAdapter.requireToken('p')(ctx, next);
    return next();
  });
  app.use(koaAdapter.oauthMiddleware(oauth));
  app.use(async (ctx) => {
    const [, first, second] = ctx.path.split('/');
    if (first === 'throw' && second) throw thrown[second]?.();
    if (first === 'token') ctx.body = await ctx.oauth.getToken('p');
  });
  return app.callback();
}

describe.each(frameworks)('$name', ({ kind, framework }) => {
  const servers: ReturnType<typeof createServer>[] = [];
  const start = async (bare: boolean) => {
    const handler = kind === 'express' ? expressApp(framework as typeof express, bare) : koaApp(framework as typeof Koa, bare);
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    expect((server.address() as AddressInfo).port).toBeGreaterThan(0);
    return server;
  };
  let app: ReturnType<typeof createServer>;
  beforeAll(async () => {
    app = await start(false);
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  it('renders an OAuthError from another copy of the package as its own, by its code', async () => {
    expect(otherCopy.OAuthError).not.toBe(OAuthError);
    const res = await request(app).get('/throw/foreign').set('accept', 'application/json').expect(401);
    expect(res.body).toEqual({ error: 'not_connected', message: 'Connect the provider first.', provider: 'p' });
    const page = await request(app).get('/throw/foreign').set('accept', 'text/html').expect(401);
    expect(page.text).toContain('not_connected');
  });

  it.each(['named-only', 'app-error', 'plain-object'])(
    'leaves what only looks like an OAuthError (%s) to the app’s own handler',
    async (what) => {
      const res = await request(app).get(`/throw/${what}`).set('accept', 'application/json').expect(APP_HANDLER_STATUS);
      expect(res.body).toEqual({ handledBy: 'app' });
    },
  );

  it('titles a browser’s error page by the kind of failure, and escapes the message', async () => {
    const refused = await request(app).get('/throw/foreign-markup').set('accept', 'text/html').expect(403);
    expect(refused.text).toContain('<title>Sign-in failed</title>');
    expect(refused.text).toContain('<p>A &#60;b&#62;&#34;bold&#34;&#60;/b&#62; &#38; &#39;quoted&#39; refusal.</p>');
    const unavailable = await request(app).get('/throw/unavailable').set('accept', 'text/html').expect(503);
    expect(unavailable.text).toContain('<title>Sign-in is unavailable</title>');
    expect(unavailable.text).toContain('<h1>Sign-in is unavailable</h1>');
    // Exactly 500 is the provider's side too: the page does not blame the user.
    const misconfigured = await request(app).get('/throw/misconfigured').set('accept', 'text/html').expect(500);
    expect(misconfigured.text).toContain('<title>Sign-in is unavailable</title>');
  });

  if (kind === 'express') {
    it('hands the app an error whose own properties are its documented fields, with no cause when there is none', async () => {
      const res = await request(app).get('/own-properties').expect(200);
      expect(res.body).toEqual({
        keys: ['code', 'error', 'errorDescription', 'expose', 'field', 'name', 'provider', 'status'],
        hasCause: false,
        name: 'OAuthError',
      });
    });
  } else {
    it('without the adapter’s error handler, Koa shows an OAuthError’s message but not a configuration error’s', async () => {
      const bare = await start(true);
      const notConnected = await request(bare).get('/token').expect(401);
      expect(notConnected.text).toBe('Not connected to this provider.');
      const misconfigured = await request(bare).get('/guard-without-middleware').expect(500);
      expect(misconfigured.text).toBe('Internal Server Error');
      expect(misconfigured.text).not.toContain('requireToken');
    });
  }
});
