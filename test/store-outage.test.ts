/**
 * A request in flight when Redis dies answers at once, not after every store command of the
 * request (read, lock, write and its retries, release, the request's own write) has waited out its
 * timeout in turn. Private redis-server processes, killed (SIGKILL) or frozen (SIGSTOP) by their
 * pid; the client configured as the README recommends; real HTTP on every adapter.
 */
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth, isOAuthError } from '../src/index.js';
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

/**
 * An app on a private Redis, logged in; the session's access token is due (30 s of life, 60 s of
 * skew) when `due`. `onError` is the app's hook.
 */
async function setup(adapter: (typeof adapters)[number], due: boolean, onError?: (error: unknown) => void) {
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
      ...(onError ? { hooks: { onError } } : {}),
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
    client,
    agent,
    /** A new browser's login, done at the provider; makes its callback when called. */
    async loginUpToCallback() {
      const browser = request.agent(app.server);
      const begun = await browser.get('/auth/op/login').expect(302);
      const back = await completeLogin(begun.headers.location as string);
      return () => browser.get(back.pathname + back.search);
    },
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

describe('an operator, when Redis fails', () => {
  // The store's words, the same on every framework: one adapter is enough.
  const [adapter] = adapters;

  it('reads in hooks.onError why the store is unavailable: Redis silent, then not waited for again, then gone', async () => {
    // What the operator reads is the `cause` of the store_unavailable error (its own message names
    // no host): the one place that tells a Redis that does not answer from one that is gone.
    const causes: string[] = [];
    const app = await setup(adapter!, false, (error) => {
      if (isOAuthError(error) && error.code === 'store_unavailable') causes.push((error.cause as Error).message);
    });
    try {
      // Logins whose callbacks, each a token write, come once Redis fails.
      const callbacks = [await app.loginUpToCallback(), await app.loginUpToCallback(), await app.loginUpToCallback()];
      app.server.freeze();
      expect((await callbacks[0]!()).status).toBe(503); // waits out the store's timeout (2 s by default)
      expect((await callbacks[1]!()).status).toBe(503); // at once: within that timeout again
      await app.server.kill();
      // Until the client has seen the connection close, a command would still be sent to it.
      const deadline = Date.now() + 2000;
      while (app.client.status !== 'reconnecting' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect((await callbacks[2]!()).status).toBe(503);
      expect(causes).toEqual([
        'Redis did not answer within 2000 ms',
        'Redis did not answer within 2000 ms a moment ago.',
        'Redis is not connected (the client is reconnecting).',
      ]);
    } finally {
      await app.close();
    }
  });
});
