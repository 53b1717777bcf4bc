/**
 * The Redis store under trouble: Redis stopping mid-test (a private redis-server, stopped by its
 * pid), a refresh lock left behind by a crashed holder, and tokens keyed by app user.
 */
import express from 'express';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oauthErrorHandler, oauthMiddleware } from '../adapters/express/index.js';
import { createOAuth, type OAuthConfig } from '../src/index.js';
import { redisStore } from '../src/stores/redis.js';
import { adapters } from './support/apps.js';
import {
  BASE_URL,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';
import { privateRedis, redisClient, uniquePrefix } from './support/redis.js';

const SECRET = 'redis-test-secret-0123456789-abcdefgh';
let op: TestServer;
let shared: Redis;
beforeAll(async () => {
  op = await startAuthorizationServer(['op']);
  shared = redisClient();
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
  it('survive a new browser, and oauth.tokens(userId) reaches them outside any request', async () => {
    const oauth = createOAuth(
      config(shared, uniquePrefix('subject'), { subject: (req: express.Request) => req.header('x-user') ?? undefined }),
    );
    const app = express();
    app.use(oauthMiddleware(oauth));
    app.get('/token/:provider', async (req, res) => {
      res.json(await req.oauth.getToken(req.params.provider));
    });
    app.use(oauthErrorHandler());
    const firstBrowser = request.agent(app);
    const started = await firstBrowser.get('/auth/op/login').set('x-user', 'u-1').expect(302);
    const callback = await completeLogin(started.headers.location as string, { user: 'ada' });
    const landed = await firstBrowser
      .get(callback.pathname + callback.search)
      .set('x-user', 'u-1')
      .expect(302);
    expect(landed.headers['set-cookie']?.toString() ?? '').not.toContain('oauth_session='); // nothing to keep in the browser

    const secondBrowser = request(app);
    const token = (await secondBrowser.get('/token/op').set('x-user', 'u-1').expect(200)).body;
    expect(token.claims.sub).toBe('ada');
    await request(app).get('/token/op').set('x-user', 'u-2').expect(401);

    op.accessTokenTtl = 3600;
    const job = await oauth.tokens('u-1').getToken('op');
    expect(job.accessToken).toBe(token.accessToken);
    await expect(oauth.tokens('u-2').getToken('op')).rejects.toMatchObject({ code: 'not_connected' });
    expect(() => createOAuth({ ...config(shared, 'x'), store: undefined, subject: () => 'u' })).toThrow(
      expect.objectContaining({ code: 'config_invalid', field: 'subject' }),
    );
  });
});
