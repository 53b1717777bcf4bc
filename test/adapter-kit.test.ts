/**
 * `oauth-middleware/adapter` is enough to write an adapter: this one, for plain `node:http`, is
 * written against that entry alone, as a third party would, and signs in, guards a route, refreshes
 * and renders errors against oidc-provider like the Express and Koa adapters.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  createOAuth,
  type HttpRequest,
  type OAuth,
  type OAuthContext,
  type ResponseCookies,
  type RouteResult,
  renderError,
} from 'oauth-middleware/adapter';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BASE_URL,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';

/** The whole adapter: the request and its cookies translated, the core's answers sent. */
function nodeHttpAdapter(oauth: OAuth, app: (context: OAuthContext, request: HttpRequest) => Promise<unknown>) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const httpRequest: HttpRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, native: req };
    const cookies: ResponseCookies = {
      getSetCookie() {
        const current = res.getHeader('set-cookie');
        return current === undefined ? [] : Array.isArray(current) ? current : [String(current)];
      },
      setSetCookie: (values) => void res.setHeader('set-cookie', values),
      writable: () => !res.headersSent,
    };
    const send = (result: RouteResult) => {
      if (result.location !== undefined) res.setHeader('location', result.location);
      if (result.json === undefined) return void res.writeHead(result.status).end();
      res.writeHead(result.status, { 'content-type': 'application/json' }).end(JSON.stringify(result.json));
    };
    const scope = oauth.request(httpRequest, cookies); // once: its route, its context and its guard share it
    try {
      const routed = await scope.route();
      if (routed) return send(routed);
      const guarded = await scope.guard('op');
      if (guarded) return send(guarded);
      send({ status: 200, json: await app(scope.context, httpRequest) });
    } catch (err) {
      const rendered = renderError(err, httpRequest);
      if (!rendered) return void res.writeHead(500).end();
      res.writeHead(rendered.status, { 'content-type': rendered.contentType }).end(rendered.body);
    }
  };
}

let op: TestServer;
let server: Server;
beforeAll(async () => {
  op = await startAuthorizationServer(['op']);
  const oauth = createOAuth({ baseUrl: BASE_URL, secret: 's'.repeat(32), providers: { op: testProvider(op) } });
  server = createServer(
    nodeHttpAdapter(oauth, async (context) => {
      const token = await context.getToken('op');
      return { accessToken: token.accessToken, sub: token.claims?.sub };
    }),
  );
});
afterAll(async () => {
  await op?.close();
});

describe('an adapter written against oauth-middleware/adapter alone (node:http)', () => {
  it('signs in, guards a route, and renders the core’s errors', async () => {
    const agent = request.agent(server);
    const refused = await agent.get('/me').set('accept', 'application/json').expect(401);
    expect(refused.body).toEqual({ error: 'not_connected', provider: 'op', login: '/auth/op/login?returnTo=%2Fme' });
    await agent.get('/me').set('accept', 'text/html').expect(302).expect('location', '/auth/op/login?returnTo=%2Fme');

    const start = await agent.get('/auth/op/login?returnTo=/me').expect(302);
    const back = await completeLogin(start.headers.location as string);
    await agent
      .get(back.pathname + back.search)
      .expect(302)
      .expect('location', '/me');
    const me = await agent.get('/me').expect(200);
    expect(me.body).toEqual({ accessToken: op.issued.accessTokens.at(-1), sub: expect.any(String) });

    // A forged callback: the core throws a typed error, the adapter renders it.
    const forged = await agent.get('/auth/op/callback?code=x&state=forged').set('accept', 'application/json').expect(400);
    expect(forged.body).toMatchObject({ error: 'state_mismatch' });
    const page = await agent.get('/auth/op/callback?code=x&state=forged').set('accept', 'text/html').expect(400);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
  });

  it('translates a request once: its route, its context and its guard read the Cookie header once', async () => {
    const oauth = createOAuth({ baseUrl: BASE_URL, secret: 's'.repeat(32), providers: { op: testProvider(op) } });
    let cookieReads = 0;
    const headers = new Proxy<Record<string, string>>(
      { accept: 'application/json', cookie: 'oauth_session=not-a-session; other=1' },
      {
        get(target, name: string) {
          if (name === 'cookie') cookieReads++;
          return target[name];
        },
      },
    );
    const written: string[][] = [];
    const scope = oauth.request(
      { method: 'GET', url: '/me', headers },
      { getSetCookie: () => written.at(-1) ?? [], setSetCookie: (values) => void written.push(values), writable: () => true },
    );
    expect(scope.isLoginRoute).toBe(false);
    expect(await scope.route()).toBeUndefined();
    expect(await scope.context.isConnected('op')).toBe(false);
    expect(await scope.guard('op')).toEqual({
      status: 401,
      json: { error: 'not_connected', provider: 'op', login: '/auth/op/login?returnTo=%2Fme' },
    });
    expect(cookieReads).toBe(1);
  });

  it('tells at once which requests are login routes: the three actions, by their methods, under the prefix', () => {
    const oauth = createOAuth({ baseUrl: BASE_URL, secret: 's'.repeat(32), providers: { op: testProvider(op) } });
    const response = { getSetCookie: () => [], setSetCookie: () => undefined, writable: () => true };
    const isLoginRoute = (method: string, url: string) => oauth.request({ method, url, headers: {} }, response).isLoginRoute;
    for (const [method, url] of [
      ['GET', '/auth/op/login'],
      ['GET', '/auth/op/callback?code=x'],
      ['POST', '/auth/op/logout'],
      ['GET', '/auth/unknown/login'],
    ])
      expect(isLoginRoute(method as string, url as string), `${method} ${url}`).toBe(true);
    for (const [method, url] of [
      ['GET', '/me'],
      ['POST', '/auth/op/login'],
      ['GET', '/auth/op/logout'],
      ['GET', '/auth/op/refresh'],
      ['GET', '/auth/../auth/op'],
      ['GET', '/authx/op/login'],
    ])
      expect(isLoginRoute(method as string, url as string), `${method} ${url}`).toBe(false);
  });
});
