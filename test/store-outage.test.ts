/**
 * A request in flight when Redis dies answers at once, not after every store command of the
 * request (read, lock, write and its retries, release, the request's own write) has waited out its
 * timeout in turn. Private redis-server processes, killed (SIGKILL) or frozen (SIGSTOP) by their
 * pid; the client configured as the README recommends; real HTTP on every adapter.
 */
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth } from '../src/index.js';
import { redisStore } from '../src/stores/redis.js';
import { adapters } from './support/apps.js';
import {
  BASE_URL,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';
import { privateRedis, uniquePrefix } from './support/redis.js';

const SECRET = 'store-outage-secret-0123456789-abcdefgh';
type Outage = 'kill' | 'freeze';
// What "at once" means here. Killed, Redis resets its connections: every command fails in
// milliseconds, but one caught in flight may wait for the client's reconnection (maxRetriesPerRequest).
// Frozen, it answers nothing: one command waits out the store's timeout (2 s by default), the
// others fail at once.
const BOUND_MS: Readonly<Record<Outage, number>> = { kill: 2000, freeze: 3000 };
let op: TestServer;
beforeAll(async () => {
  op = await startAuthorizationServer(['op']);
});
afterAll(async () => {
  await op?.close();
});

/** An app on a private Redis, logged in; the session's access token is due (30 s of life, 60 s of skew) when `due`. */
async function setup(adapter: (typeof adapters)[number], due: boolean) {
  const server = await privateRedis();
  // As the README recommends.
  const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  const app = await adapter.start(
    createOAuth({
      baseUrl: BASE_URL,
      secret: SECRET,
      store: redisStore({ client, prefix: uniquePrefix('outage') }),
      providers: { op: testProvider(op) },
    }),
  );
  const agent = request.agent(app.server);
  op.accessTokenTtl = due ? 30 : 3600;
  const started = await agent.get('/auth/op/login').expect(302);
  const callback = await completeLogin(started.headers.location as string);
  await agent.get(callback.pathname + callback.search).expect(302);
  op.accessTokenTtl = 3600;
  return {
    server,
    agent,
    /** Ends Redis after `afterMs` while `/token/op` is in flight; the answer, and how long after the outage it came. */
    async tokenDuring(outage: Outage, afterMs: number) {
      const pending = agent.get('/token/op').then((r) => r);
      await new Promise((r) => setTimeout(r, afterMs));
      const brokeAt = Date.now();
      if (outage === 'kill') await server.kill();
      else server.freeze();
      const res = await pending;
      return { res, waitedMs: Date.now() - brokeAt };
    },
    async close() {
      op.reset();
      await app.close();
      client.disconnect();
      await server.close();
    },
  };
}

describe.each(adapters)('a request in flight when Redis dies, on $name', (adapter) => {
  it.each<Outage>(['kill', 'freeze'])(
    'answers 503 store_unavailable at once when Redis dies (%s) while the refresh waits on the provider',
    async (outage) => {
      const app = await setup(adapter, true);
      try {
        op.tokenDelayMs = 400; // Redis dies during the refresh: the new tokens cannot be written
        const { res, waitedMs } = await app.tokenDuring(outage, 250);
        expect(res.status).toBe(503);
        expect(res.body.error).toBe('store_unavailable');
        expect(waitedMs).toBeLessThan(BOUND_MS[outage]);
        expect(op.counts.refresh_token).toBe(1);
      } finally {
        await app.close();
      }
    },
  );

  it('answers 503 store_unavailable at once when Redis dies while the request waits on it', async () => {
    const app = await setup(adapter, false);
    // Redis busy for a while with another client's script: the request's read waits in its queue.
    const busy = new Redis(app.server.url, { maxRetriesPerRequest: 0 });
    busy.on('error', () => undefined);
    try {
      void busy.eval('local i = 0 while i < 1e9 do i = i + 1 end return i', 0).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
      const { res, waitedMs } = await app.tokenDuring('kill', 100);
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('store_unavailable');
      expect(waitedMs).toBeLessThan(BOUND_MS.kill);
    } finally {
      busy.disconnect();
      await app.close();
    }
  });
});
