/**
 * The Redis store under trouble: Redis stopping mid-test (a private redis-server, stopped by its
 * pid), a refresh lock left behind by a crashed holder, and tokens keyed by app user; how long
 * Redis keeps each login's tokens.
 */
import express from 'express';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oauthErrorHandler, oauthMiddleware } from '../src/express.js';
import { createOAuth, type OAuthConfig } from '../src/index.js';
import { type RedisClient, redisStore } from '../src/stores/redis.js';
import { adapters } from './support/apps.js';
import {
  BASE_URL,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';
import { oauth2 } from '../src/providers/index.js';
import { privateRedis, ready, redisClient, uniquePrefix } from './support/redis.js';
import { startTokenEndpoint, type TokenEndpoint } from './support/token-endpoint.js';

const SECRET = 'redis-test-secret-0123456789-abcdefgh';
let op: TestServer;
let shared: Redis;
beforeAll(async () => {
  op = await startAuthorizationServer(['op']);
  shared = redisClient();
  await ready(shared);
});
afterAll(async () => {
  await op?.close();
  shared?.disconnect();
});

function config(client: Redis, prefix: string, extra: Partial<OAuthConfig> = {}): OAuthConfig {
  return {
    baseUrl: BASE_URL,
    secret: SECRET,
    store: redisStore({ client, prefix, commandTimeoutMs: 500 }),
    providers: {
      op: testProvider(op),
    },
    ...extra,
  };
}

async function login(agent: request.Agent, path = '/auth/op/login') {
  const started = await agent.get(path).expect(302);
  const callback = await completeLogin(started.headers.location as string);
  return agent.get(callback.pathname + callback.search).expect(302);
}

describe.each(adapters)('redis store on $name', (adapter) => {
  it('answers 503 store_unavailable while Redis is down, crashes nothing, and keeps the session when it returns', async () => {
    const server = await privateRedis();
    const client = redisClient(server.url);
    const app = await adapter.start(createOAuth(config(client, uniquePrefix('outage'))));
    try {
      const agent = request.agent(app.server);
      await login(agent);
      const before = (await agent.get('/token/op').expect(200)).body.accessToken;
      await server.stop();
      for (let i = 0; i < 3; i++) {
        const down = await agent.get('/token/op').expect(503);
        expect(down.body.error).toBe('store_unavailable');
      }
      await agent.get('/plain').expect(200); // requests that do not use tokens are unaffected
      await server.start();
      const deadline = Date.now() + 5000;
      let back = await agent.get('/token/op');
      while (back.status !== 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        back = await agent.get('/token/op');
      }
      expect(back.status).toBe(200);
      expect(back.body.accessToken).toBe(before);
    } finally {
      await app.close();
      client.disconnect();
      await server.close();
    }
  });

  it('waits out a lock left by a crashed holder, then refreshes once', async () => {
    const prefix = uniquePrefix('crashed');
    const app = await adapter.start(createOAuth(config(shared, prefix)));
    try {
      op.accessTokenTtl = 30;
      const agent = request.agent(app.server);
      await login(agent);
      op.accessTokenTtl = 3600;
      // A holder that took the session's refresh lock and died: its lock expires after 600 ms.
      const [tokenKey] = await shared.keys(`${prefix}tokens:*`);
      const sessionKey = (tokenKey as string).slice(`${prefix}tokens:{`.length, -'}:op'.length);
      await shared.set(`${prefix}lock:refresh:op:${sessionKey}`, 'crashed-holder', 'PX', 600);
      const started = Date.now();
      const res = await agent.get('/token/op').expect(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
      expect(res.body.accessToken).toEqual(expect.any(String));
      expect(op.counts.refresh_token).toBe(1);
    } finally {
      op.reset();
      await app.close();
    }
  });
});

describe('tokens keyed by app user', () => {
  it('survive a new browser, oauth.tokens(userId) reaches them outside any request, and they are kept under oauth: by default', async () => {
    // The one test on the default prefix, outside this run's `test:<run>:` keys that the run
    // removes at its end: its users are its own (no other test or run has them), and it removes
    // their keys itself.
    const tag = uniquePrefix('subject');
    const [first, second] = [`${tag}u-1`, `${tag}u-2`];
    const oauth = createOAuth({
      ...config(shared, tag),
      store: redisStore({ client: shared, commandTimeoutMs: 500 }),
      subject: (req: express.Request) => req.header('x-user') ?? undefined,
    });
    try {
      const app = express();
      app.use(oauthMiddleware(oauth));
      app.get('/token/:provider', async (req, res) => {
        res.json(await req.oauth.getToken(req.params.provider));
      });
      app.use(oauthErrorHandler());
      const firstBrowser = request.agent(app);
      const started = await firstBrowser.get('/auth/op/login').set('x-user', first).expect(302);
      const callback = await completeLogin(started.headers.location as string, { user: 'ada' });
      const landed = await firstBrowser
        .get(callback.pathname + callback.search)
        .set('x-user', first)
        .expect(302);
      expect(landed.headers['set-cookie']?.toString() ?? '').not.toContain('oauth_session='); // nothing to keep in the browser
      // The user's tokens, under the default prefix and nothing else.
      expect(await shared.keys(`*user:${tag}*`)).toEqual([`oauth:tokens:{user:${first}}:op`]);

      const secondBrowser = request(app);
      const token = (await secondBrowser.get('/token/op').set('x-user', first).expect(200)).body;
      expect(token.claims.sub).toBe('ada');
      await request(app).get('/token/op').set('x-user', second).expect(401);

      op.accessTokenTtl = 3600;
      const job = await oauth.tokens(first).getToken('op');
      expect(job.accessToken).toBe(token.accessToken);
      await expect(oauth.tokens(second).getToken('op')).rejects.toMatchObject({ code: 'not_connected' });
      expect(() => createOAuth({ ...config(shared, 'x'), store: undefined, subject: () => 'u' })).toThrow(
        expect.objectContaining({ code: 'config_invalid', field: 'subject' }),
      );
    } finally {
      const keys = await shared.keys(`*user:${tag}*`);
      if (keys.length > 0) await shared.del(...keys);
    }
  });
});

/**
 * The real Redis, seen through a client that counts (and, when asked, fails) token writes: how the
 * library talks to Redis, never what Redis answers.
 */
function watched(client: Redis) {
  const watch = { tokenWrites: 0, failNext: 0 };
  // A token write is a SET of a token key, or a script that may SET one (the fenced write).
  const tokenWrite = () => {
    if (watch.failNext > 0) {
      watch.failNext--;
      throw new Error('injected write failure');
    }
    watch.tokenWrites++;
  };
  const set = async (...args: [string, string, ...unknown[]]) => {
    if (args[0].includes(':tokens:')) tokenWrite();
    return (client.set as (...a: unknown[]) => Promise<unknown>)(...args);
  };
  const evaluate = async (script: string, count: number, ...args: string[]) => {
    if (args[0]?.includes(':tokens:') && script.includes("'set'")) tokenWrite();
    return client.eval(script, count, ...args);
  };
  const wrapped = {
    mget: (keys: string[]) => client.mget(keys),
    set,
    del: (...keys: string[]) => client.del(...keys),
    eval: evaluate,
  } as unknown as RedisClient;
  return { watch, client: wrapped };
}

describe('refreshed tokens in Redis', () => {
  const [adapter] = adapters;
  const setup = async () => {
    const prefix = uniquePrefix('writes');
    const { watch, client } = watched(shared);
    const make = () => createOAuth({ ...config(shared, prefix), store: redisStore({ client, prefix }) });
    const instances = [await adapter!.start(make()), await adapter!.start(make())];
    return { prefix, watch, instances };
  };

  it('are written once, by the lock holder: instances that read its result never write them back', async () => {
    const { watch, instances } = await setup();
    try {
      op.accessTokenTtl = 30; // due at once (skew 60 s)
      const agent = request.agent(instances[0]!.server);
      const landed = await login(agent);
      op.accessTokenTtl = 3600;
      const cookie = ((landed.headers['set-cookie'] as unknown as string[]) ?? []).map((c) => c.split(';')[0]).join('; ');
      watch.tokenWrites = 0;
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          request(instances[i % 2]!.server)
            .get('/token/op')
            .set('cookie', cookie)
            .expect(200),
        ),
      );
      expect(new Set(answers.map((a) => a.body.accessToken)).size).toBe(1);
      expect(op.counts.refresh_token).toBe(1);
      expect(watch.tokenWrites).toBe(1);
    } finally {
      op.reset();
      await Promise.all(instances.map((i) => i.close()));
    }
  });

  it.each([
    ['the first write fails', 1, 200],
    ['every write of the refresh fails', 4, 503],
  ])('keep the login when %s: the new refresh token is written later', async (_case, failures, firstStatus) => {
    const { watch, instances } = await setup();
    try {
      op.accessTokenTtl = 30;
      const agent = request.agent(instances[0]!.server);
      await login(agent);
      op.accessTokenTtl = 3600;
      watch.failNext = failures;
      const first = await agent.get('/token/op').expect(firstStatus);
      const next = await agent.get('/token/op').expect(200);
      if (firstStatus === 200) expect(next.body.accessToken).toBe(first.body.accessToken);
      expect(op.counts.refresh_token).toBe(1);
      // The other instance reads the stored successor: no second refresh, no lost login.
      await request(instances[1]!.server)
        .get('/token/op')
        .set(
          'cookie',
          (await agent.jar.getCookies({ domain: '127.0.0.1', path: '/', secure: false, script: false }))
            .map((c) => c.toValueString())
            .join('; '),
        )
        .expect(200);
      expect(op.counts.refresh_token).toBe(1);
    } finally {
      op.reset();
      await Promise.all(instances.map((i) => i.close()));
    }
  });

  describe('at a provider that keeps the refresh token (its refresh answer has none)', () => {
    let endpoint: TokenEndpoint;
    beforeAll(async () => {
      endpoint = await startTokenEndpoint();
    });
    afterAll(async () => {
      await endpoint?.close();
    });
    /** Two instances on one Redis, with one app user whose imported tokens are due at once (skew 60 s). */
    async function instances() {
      const prefix = uniquePrefix('keeps');
      const make = () =>
        createOAuth({
          baseUrl: BASE_URL,
          secret: SECRET,
          store: redisStore({ client: shared, prefix }),
          subject: () => 'alice',
          providers: {
            p: oauth2({
              authorization: `${endpoint.origin}/authorize`,
              token: `${endpoint.origin}/token`,
              clientId: 'c',
              clientSecret: 's',
            }),
          },
        });
      const [a, b] = [make(), make()];
      const answer = { access_token: 'at-1', token_type: 'Bearer', expires_in: 30, refresh_token: 'rt-1' };
      await a.tokens('alice').importTokens('p', { answer });
      endpoint.requests = [];
      endpoint.answer = () => ({ status: 200, body: { access_token: 'at-2', token_type: 'Bearer', expires_in: 3600 } });
      return [a, b] as const;
    }

    it('an instance that read the old tokens takes the refreshed ones it finds under the lock', async () => {
      const [a, b] = await instances();
      const late = b.tokens('alice');
      expect(await late.isConnected('p')).toBe(true); // read at-1 and rt-1
      expect((await a.tokens('alice').getToken('p')).accessToken).toBe('at-2');
      expect((await late.getToken('p')).accessToken).toBe('at-2'); // a new access token, the same refresh token
      expect(endpoint.requests).toHaveLength(1);
    });

    it('a grant two app users share (imported for both) is refreshed once, and written under each user', async () => {
      const [a, b] = await instances();
      const answer = { access_token: 'at-1', token_type: 'Bearer', expires_in: 30, refresh_token: 'rt-1' };
      await a.tokens('bob').importTokens('p', { answer });
      const both = await Promise.all([a.tokens('alice').getToken('p'), a.tokens('bob').getToken('p')]);
      expect(both.map((set) => set.accessToken)).toEqual(['at-2', 'at-2']);
      expect(endpoint.requests).toHaveLength(1);
      // The other instance finds the refreshed tokens under each user: the spent refresh token is asked for no more.
      expect((await b.tokens('bob').getToken('p')).accessToken).toBe('at-2');
      expect((await b.tokens('alice').getToken('p')).accessToken).toBe('at-2');
      expect(endpoint.requests).toHaveLength(1);
    });

    it('instances waiting on the lock take the holder’s refresh', async () => {
      const [a, b] = await instances();
      const refreshed = endpoint.answer;
      // Slow enough that the other instance finds the lock held and waits.
      endpoint.answer = async (req) => (await new Promise((resolve) => setTimeout(resolve, 300)), refreshed(req));
      const calls = Array.from({ length: 6 }, (_, i) => (i % 2 ? b : a).tokens('alice').getToken('p'));
      expect((await Promise.all(calls)).map((set) => set.accessToken)).toEqual(Array(6).fill('at-2'));
      expect(endpoint.requests).toHaveLength(1);
    });
  });

  it('expire even when the provider gives no refresh token lifetime', async () => {
    const { prefix, instances } = await setup();
    try {
      await login(request.agent(instances[0]!.server));
      const [key] = await shared.keys(`${prefix}tokens:*`);
      const ttl = await shared.ttl(key as string);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(30 * 24 * 3600); // the session cookie's lifetime
    } finally {
      await Promise.all(instances.map((i) => i.close()));
    }
  });
});

describe('how long Redis keeps a login’s tokens', () => {
  const [adapter] = adapters;
  const DAY = 24 * 3600;
  const TEN_YEARS = 10 * 365 * DAY;

  /** Logs a browser in at a local token endpoint answering `answer`, runs `check`, stops everything. */
  async function signedIn(
    options: { byUser: boolean; answer: Record<string, unknown> },
    check: (context: { prefix: string; agent: request.Agent; endpoint: TokenEndpoint }) => Promise<void>,
  ): Promise<void> {
    const endpoint = await startTokenEndpoint();
    const prefix = uniquePrefix('lifetime');
    endpoint.answer = () => ({
      status: 200,
      body: { access_token: 'at', token_type: 'Bearer', expires_in: 3600, ...options.answer },
    });
    const app = await adapter!.start(
      createOAuth({
        baseUrl: BASE_URL,
        secret: SECRET,
        store: redisStore({ client: shared, prefix }),
        sessionMaxAgeSeconds: 5000,
        ...(options.byUser ? { subject: () => 'alice' } : {}),
        providers: {
          p: oauth2({
            authorization: `${endpoint.origin}/authorize`,
            token: `${endpoint.origin}/token`,
            clientId: 'c',
            clientSecret: 's',
          }),
        },
      }),
    );
    try {
      const agent = request.agent(app.server);
      const started = await agent.get('/auth/p/login').expect(302);
      const state = new URL(started.headers.location as string).searchParams.get('state') as string;
      await agent.get(`/auth/p/callback?code=c&state=${state}`).expect(302);
      await check({ prefix, agent, endpoint });
    } finally {
      await app.close();
      await endpoint.close();
    }
  }

  async function expectTtl(key: string, seconds: number): Promise<void> {
    const ttl = await shared.ttl(key);
    expect(ttl).toBeGreaterThanOrEqual(seconds - 5);
    expect(ttl).toBeLessThanOrEqual(seconds);
  }

  it.each([
    // Keyed by the session cookie: as long as the cookie lives, unless the refresh token expires first.
    ['a session cookie, a refresh token of unknown lifetime', false, { refresh_token: 'rt' }, 5000],
    ['a session cookie, a refresh token for 600 s', false, { refresh_token: 'rt', refresh_token_expires_in: 600 }, 660],
    // Ten years is the longest lifetime read as one (then capped at 400 days); beyond, none was said.
    [
      'a session cookie, a refresh token for ten years',
      false,
      { refresh_token: 'rt', refresh_token_expires_in: TEN_YEARS },
      400 * DAY,
    ],
    [
      'a session cookie, a refresh token for a second more than ten years',
      false,
      { refresh_token: 'rt', refresh_token_expires_in: TEN_YEARS + 1 },
      5000,
    ],
    // Keyed by the app's user: 400 days unless the provider says less.
    ['an app user, a refresh token of unknown lifetime', true, { refresh_token: 'rt' }, 400 * DAY],
    ['an app user, a refresh token for 600 s', true, { refresh_token: 'rt', refresh_token_expires_in: 600 }, 660],
    ['an app user, a refresh token for 1 s', true, { refresh_token: 'rt', refresh_token_expires_in: 1 }, 61],
    // 0 s says nothing (as some providers send for "does not expire"): no lifetime, not one already over.
    ['an app user, a refresh token for 0 s', true, { refresh_token: 'rt', refresh_token_expires_in: 0 }, 400 * DAY],
    ['an app user, only an access token for 3000 s', true, { expires_in: 3000 }, 3060],
    ['an app user, only an access token for 2 years', true, { expires_in: 2 * 365 * DAY }, 400 * DAY],
  ] as const)('for %s: a minute past what they are good for', async (_name, byUser, answer, seconds) => {
    await signedIn({ byUser, answer }, async ({ prefix }) => {
      const keys = await shared.keys(`${prefix}tokens:*`);
      expect(keys).toEqual([byUser ? `${prefix}tokens:{user:alice}:p` : expect.stringMatching(/^.+tokens:\{[\w-]{43}\}:p$/)]);
      await expectTtl(keys[0] as string, seconds);
    });
  });

  it("keeps the refresh token's lifetime through a refresh that says nothing of it", async () => {
    // Due at once (skew 60 s); the refresh answer keeps the refresh token and says nothing of its lifetime.
    const answer = { access_token: 'at-1', expires_in: 30, refresh_token: 'rt', refresh_token_expires_in: 600 };
    await signedIn({ byUser: true, answer }, async ({ prefix, agent, endpoint }) => {
      endpoint.answer = () => ({ status: 200, body: { access_token: 'at-2', token_type: 'Bearer', expires_in: 3600 } });
      expect((await agent.get('/token/p').expect(200)).body.accessToken).toBe('at-2');
      await expectTtl(`${prefix}tokens:{user:alice}:p`, 660);
    });
  });
});
