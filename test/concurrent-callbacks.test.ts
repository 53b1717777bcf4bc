/**
 * Two logins of one browser, to two providers, whose callbacks arrive at the same instant: each
 * provider's session lives in a cookie of its own, so both connections are kept, whichever store
 * holds the tokens (one session cookie for all would keep only the one written last).
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth, memoryStore, type TokenStore } from '../src/index.js';
import { redisStore } from '../src/stores/redis.js';
import { adapters } from './support/apps.js';
import {
  BASE_URL,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';
import { ready, redisClient, uniquePrefix } from './support/redis.js';

let op: TestServer;
const redis = redisClient();
beforeAll(async () => {
  await ready(redis);
  op = await startAuthorizationServer(['one', 'two']);
});
afterAll(async () => {
  await op?.close();
  redis.disconnect();
});

const stores: Array<{ name: string; make: () => TokenStore | undefined }> = [
  { name: 'cookie', make: () => undefined },
  { name: 'memory', make: () => memoryStore() },
  { name: 'redis', make: () => redisStore({ client: redis, prefix: uniquePrefix('concurrent-callbacks') }) },
];

describe.each(adapters)('$name adapter', (adapter) => {
  it.each(stores)('keeps both connections when two callbacks land at once ($name store)', async ({ make }) => {
    const store = make();
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: 's'.repeat(40),
      ...(store ? { store } : {}),
      providers: { one: testProvider(op), two: testProvider(op) },
    });
    const app = await adapter.start(oauth);
    try {
      const browser = request.agent(app.server);
      const back: URL[] = [];
      for (const name of ['one', 'two']) {
        const started = await browser.get(`/auth/${name}/login`).expect(302);
        back.push(await completeLogin(started.headers.location as string));
      }
      // Both callbacks leave the browser before either answer comes back.
      const landed = await Promise.all(back.map((url) => browser.get(url.pathname + url.search)));
      expect(landed.map((res) => res.status)).toEqual([302, 302]);
      const connected = await browser.get('/connected/one').expect(200);
      expect(connected.body.connections.sort()).toEqual(['one', 'two']);
      await browser.get('/token/one').expect(200);
      await browser.get('/token/two').expect(200);
    } finally {
      await app.close();
    }
  });
});
