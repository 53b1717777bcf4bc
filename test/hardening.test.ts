/**
 * Hostile or malformed requests, on both adapters: each gets its typed answer (never a 500), and no
 * login or token is lost on the way.
 */
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth, memoryStore, type OAuth, type OAuthConfig } from '../src/index.js';
import { adapters, type RunningApp } from './support/apps.js';
import { redisStore } from '../src/stores/redis.js';
import { privateRedis, redisClient } from './support/redis.js';
import {
  BASE_URL,
  completeLogin,
  refreshDirectly,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';

let op: TestServer;
beforeAll(async () => {
  op = await startAuthorizationServer(['op']);
});
afterAll(async () => {
  await op?.close();
});

describe.each(adapters)('$name adapter', (adapter) => {
  let app: RunningApp | undefined;
  let oauth: OAuth;

  async function start(overrides: Partial<OAuthConfig> = {}) {
    await app?.close();
    oauth = createOAuth({ baseUrl: BASE_URL, secret: SECRET, providers: { op: testProvider(op) }, ...overrides });
    app = await adapter.start(oauth);
    return app;
  }

  afterEach(async () => {
    op.reset();
    await app?.close();
    app = undefined;
  });

  /** A whole login through the provider, in a browser of its own. */
  async function signIn(server: RunningApp['server']) {
    const login = await request(server).get('/auth/op/login').expect(302);
    const callback = await completeLogin(login.headers.location as string);
    await request(server)
      .get(callback.pathname + callback.search)
      .set('cookie', setCookies(login).join('; '))
      .expect(302);
  }

  const setCookies = (res: request.Response) =>
    ((res.headers['set-cookie'] as unknown as string[] | undefined) ?? []).map((line) => line.split(';')[0] ?? '');

  it.each(['//[', 'http://[', 'https://%', 'http://a b', '/\t/evil.example'])(
    'treats the unparsable returnTo %j as absent, at login and logout',
    async (returnTo) => {
      const { server } = await start();
      const login = await request(server)
        .get(`/auth/op/login?returnTo=${encodeURIComponent(returnTo)}`)
        .expect(302);
      expect(new URL(login.headers.location as string).origin).toBe(op.issuer);
      await request(server)
        .post(`/auth/op/logout?returnTo=${encodeURIComponent(returnTo)}`)
        .set('accept', 'text/html')
        .expect(302)
        .expect('location', '/');
    },
  );

  it('answers a guarded request with an absolute-form target without a 500', async () => {
    const { url } = await start();
    const { port } = new URL(url);
    const answer = await rawRequest(
      Number(port),
      'GET http://1.2.3.4.5/protected HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    // Fastify and the web-standard runtimes refuse a target they cannot make a URL of, before any handler.
    expect(answer).toMatch(['fastify', 'fetch', 'hono'].includes(adapter.name) ? /^HTTP\/1\.1 400/ : /^HTTP\/1\.1 (401|404)/);
  });

  it('completes a login and a refresh despite a cookie whose name no Set-Cookie can carry', async () => {
    const { server } = await start();
    const login = await request(server).get('/auth/op/login').expect(302);
    const callback = await completeLogin(login.headers.location as string);
    const planted = 'oauth_session.a b=1; oauth_tx.x\ty=2';
    const back = await request(server)
      .get(callback.pathname + callback.search)
      .set('cookie', [...setCookies(login), planted].join('; '))
      .expect(302);
    const session = setCookies(back).filter((c) => c.startsWith('oauth_session') && !c.endsWith('='));
    expect(session.length).toBeGreaterThan(0);
    const token = await request(server)
      .get('/token/op')
      .set('cookie', [...session, planted].join('; '))
      .expect(200);
    expect(token.body.accessToken).toEqual(expect.any(String));
  });

  it('keeps at most five logins in flight per browser and provider, dropping the oldest', async () => {
    const { server } = await start();
    const agent = request.agent(server);
    const starts: request.Response[] = [];
    for (let i = 0; i < 8; i++) starts.push(await agent.get(`/auth/op/login?returnTo=/tab${i}`).expect(302));
    const jar = agent.jar.getCookies({ domain: '127.0.0.1', path: '/auth/op/callback', secure: false, script: false });
    expect(jar.filter((c) => c.name.startsWith('oauth_tx.'))).toHaveLength(5);
    const oldest = await completeLogin(starts[0]!.headers.location as string);
    expect((await agent.get(oldest.pathname + oldest.search).expect(400)).body.error).toBe('state_mismatch');
    const newest = await completeLogin(starts[7]!.headers.location as string);
    await agent
      .get(newest.pathname + newest.search)
      .expect(302)
      .expect('location', '/tab7');
    const third = await completeLogin(starts[3]!.headers.location as string);
    await agent
      .get(third.pathname + third.search)
      .expect(302)
      .expect('location', '/tab3');
  });

  it('serves no route for a path that only reaches the prefix through dot segments', async () => {
    const { server } = await start();
    await request(server).get('/auth/../xxxxxop/login').expect(404);
    await request(server).get('/auth/%2e%2e/abcdeop/login').expect(404);
  });

  it('survives hooks that reject', async () => {
    const rejecting = async () => {
      throw new Error('audit sink down');
    };
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record); // what would crash a process without vitest's handler
    try {
      const { server } = await start({ hooks: { onError: rejecting, onLogin: rejecting } });
      await request(server).get('/auth/nope/login').expect(404);
      await signIn(server);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', record);
    }
  });

  it.each(['abc\r\nx-injected: 1', 'c\u00f6de', 'code\u2028', 'tab\there'])(
    'refuses the code %j, which no code can be (nor go in a header), with 400 invalid_callback, unexchanged',
    async (code) => {
      const { server } = await start();
      const login = await request(server).get('/auth/op/login').expect(302);
      const state = new URL(login.headers.location as string).searchParams.get('state') as string;
      const res = await request(server)
        .get(`/auth/op/callback?${new URLSearchParams({ code, state, iss: op.issuer })}`)
        .set('cookie', setCookies(login).join('; '))
        .set('accept', 'application/json')
        .expect(400);
      expect(res.body.error).toBe('invalid_callback');
      expect(op.counts.authorization_code).toBe(0);
    },
  );

  it.each([
    ['text/html;q=0, application/json', 401],
    ['text/html;q=0', 401],
    ['application/json;q=0.9, text/html', 302],
    ['TEXT/HTML', 302],
    ['text/*', 302],
    ['*/*', 401],
  ])('reads the Accept header %j by its q-values: %i from a guarded route', async (accept, status) => {
    const { server } = await start();
    const res = await request(server).get('/protected').set('accept', accept).expect(status);
    if (status === 401) expect(res.body).toMatchObject({ error: 'not_connected', login: '/auth/op/login?returnTo=%2Fprotected' });
    else expect(res.headers.location).toBe('/auth/op/login?returnTo=%2Fprotected');
  });

  it('treats a client that sends no Accept header as an API client: 401 JSON from a guarded route', async () => {
    const { url } = await start();
    const res = await rawRequest(
      Number(new URL(url).port),
      'GET /protected HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
    );
    expect(res).toMatch(/^HTTP\/1\.1 401 /);
    expect(res).toContain('"error":"not_connected"');
  });

  it('answers a logout with 204 only to a client that accepts JSON, read by its q-values', async () => {
    const { server } = await start();
    await request(server).post('/auth/op/logout').set('accept', 'application/json;q=0, text/html').expect(302);
    await request(server).post('/auth/op/logout').set('accept', 'application/problem+json').expect(204);
  });

  it('revokes the tokens of a callback whose store fails after the code exchange, instead of leaving the grant alive', async () => {
    const redis = await privateRedis();
    const client = redisClient(redis.url);
    try {
      const { server } = await start({ store: redisStore({ client, prefix: 'callback-outage:' }) });
      const login = await request(server).get('/auth/op/login').expect(302);
      const callback = await completeLogin(login.headers.location as string);
      await redis.kill();
      const res = await request(server)
        .get(callback.pathname + callback.search)
        .set('cookie', setCookies(login).join('; '))
        .set('accept', 'application/json')
        .expect(503);
      expect(res.body.error).toBe('store_unavailable');
      expect(op.counts.authorization_code).toBe(1);
      expect(op.counts.revocation).toBe(1); // given back: nobody holds these tokens
      const [refreshToken] = op.issued.refreshTokens;
      expect((await refreshDirectly(op, refreshToken as string)).body.error).toBe('invalid_grant');
    } finally {
      client.disconnect();
      await redis.close();
    }
  });

  it('builds the redirect URI and cookies from baseUrl alone, whatever Host and forwarded headers say', async () => {
    const { server } = await start();
    const login = await request(server)
      .get('/auth/op/login')
      .set('host', 'evil.example')
      .set('x-forwarded-host', 'evil.example')
      .set('x-forwarded-proto', 'https')
      .set('forwarded', 'host=evil.example;proto=https')
      .expect(302);
    const location = new URL(login.headers.location as string);
    expect(location.searchParams.get('redirect_uri')).toBe(`${BASE_URL}/auth/op/callback`);
    expect(login.headers['set-cookie']?.[0]).not.toMatch(/Secure|Domain/i); // http baseUrl: no Secure, never a Domain
    const res = await request(server)
      .post('/auth/op/logout')
      .set('host', 'evil.example')
      .set('x-forwarded-host', 'evil.example')
      .set('origin', 'http://evil.example')
      .expect(403);
    expect(res.body.error).toBe('cross_site_request'); // the origin a logout must come from is baseUrl's
  });

  it.each([
    ['an empty string', ''],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['an object', { id: 'ada' }],
  ])('never shares one key between visitors when subject gives %s', async (_, id) => {
    const { server } = await start({ store: memoryStore(), subject: () => id as string });
    await signIn(server);
    // A second browser, with no cookie of the first: not connected.
    await request(server).get('/token/op').expect(401);
  });

  it('takes a finite number from subject as the user id: the same user in any browser', async () => {
    const { server } = await start({ store: memoryStore(), subject: () => 42 as unknown as string });
    await signIn(server);
    await request(server).get('/token/op').expect(200);
    expect(await oauth.tokens('42').isConnected('op')).toBe(true);
  });
});

/** Sends bytes as they are (supertest would normalise the request target). */
async function rawRequest(port: number, raw: string): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(raw));
    let data = '';
    socket.on('data', (chunk) => (data += chunk.toString()));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}
