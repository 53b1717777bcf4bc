/**
 * The refresh lock and the writes around it, on the real Redis, through real HTTP on every adapter,
 * with two app instances sharing one Redis (each its own createOAuth: its own single flight, as
 * two processes would have):
 * - a refresh slower than its lock's lease keeps its lock (renewed), so it runs once;
 * - the lock holder's write is fenced on the value it read under the lock: a logout that came in
 *   meanwhile is not undone;
 * - tokens refused with `invalid_grant` are removed only while they are still the stored ones: a
 *   sibling's fresh tokens written just after the refusal are kept.
 */
import type { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth, type OAuthConfig, type ServerTokenStore } from '../src/index.js';
import { oidc } from '../src/providers/index.js';
import { type RedisClient, redisStore } from '../src/stores/redis.js';
import { adapters, type RunningApp } from './support/apps.js';
import {
  BASE_URL,
  CLIENT_ID,
  CLIENT_SECRET,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
} from './support/authorization-server.js';
import { redisClient, uniquePrefix } from './support/redis.js';

const SECRET = 'store-fencing-secret-0123456789-abcdefgh';
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

/** The provider as the app sees it; `timeoutSeconds` also sets the refresh lock's lease (half of it). */
function provider(timeoutSeconds = 10) {
  return oidc({
    issuer: op.issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    scopes: ['openid', 'offline_access'],
    authorizationParams: { prompt: 'consent' },
    timeoutSeconds,
  });
}

function config(client: RedisClient, prefix: string, extra: Partial<OAuthConfig> = {}): OAuthConfig {
  return { baseUrl: BASE_URL, secret: SECRET, store: redisStore({ client, prefix }), providers: { op: provider() }, ...extra };
}

/**
 * Logs in through `app`, by default with tokens due at once (30 s of life, 60 s of skew); returns
 * the session's Cookie header.
 */
async function login(app: RunningApp, user?: string, accessTokenTtl = 30): Promise<string> {
  const agent = request.agent(app.server);
  op.accessTokenTtl = accessTokenTtl;
  const started = await agent
    .get('/auth/op/login')
    .set('x-user', user ?? '')
    .expect(302);
  const callback = await completeLogin(started.headers.location as string);
  const landed = await agent
    .get(callback.pathname + callback.search)
    .set('x-user', user ?? '')
    .expect(302);
  op.accessTokenTtl = 3600;
  return ((landed.headers['set-cookie'] as unknown as string[] | undefined) ?? []).map((c) => c.split(';')[0]).join('; ');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(adapters)('refresh lock on $name', (adapter) => {
  it('keeps its lock through a refresh slower than the lock lease: one refresh, every request gets its result', async () => {
    const prefix = uniquePrefix('lease');
    // A 2 s provider timeout: a 1 s lease, renewed every 333 ms. The provider answers in 1.5 s.
    const make = () => createOAuth(config(shared, prefix, { providers: { op: provider(2) } }));
    const instances = [await adapter.start(make()), await adapter.start(make())];
    try {
      const cookie = await login(instances[0]!);
      op.tokenDelayMs = 1500;
      const first = request(instances[0]!.server)
        .get('/token/op')
        .set('cookie', cookie)
        .then((r) => r); // sent now
      await sleep(150); // the first holds the lock and waits on the provider
      // Taken for the slowest refresh (2 s + 12 s), cut down at once to the lease: a crash would free it within 1 s.
      const [lockKey] = await shared.keys(`${prefix}lock:*`);
      const lockTtl = await shared.pttl(lockKey as string);
      expect(lockTtl).toBeGreaterThan(0);
      expect(lockTtl).toBeLessThanOrEqual(1000);
      const second = await request(instances[1]!.server).get('/token/op').set('cookie', cookie);
      const answered = await first;
      expect([answered.status, second.status]).toEqual([200, 200]);
      expect(second.body.accessToken).toBe(answered.body.accessToken);
      expect(op.counts.refresh_token).toBe(1);
      // The stored refresh token is the newest: the provider still honours it.
      const [key] = await shared.keys(`${prefix}tokens:*`);
      expect(key).toBeDefined();
      const latest = op.issued.refreshTokens.at(-1) as string;
      expect((await op.provider.RefreshToken.find(latest))?.consumed).toBeFalsy();
    } finally {
      op.reset();
      await Promise.all(instances.map((i) => i.close()));
    }
  });

  it('holds the lock of a store that cannot extend it for the slowest refresh: the provider timeout plus 12 s', async () => {
    const prefix = uniquePrefix('unextended');
    // A custom store whose lock has no `extend` (as custom stores written before it): the lock
    // must then outlive the provider's timeout and the store commands after it, from the start.
    const redis = redisStore({ client: shared, prefix });
    const store: ServerTokenStore = {
      kind: 'server',
      get: (key, providers) => redis.get(key, providers),
      put: (key, provider, sealed, ttl) => redis.put(key, provider, sealed, ttl),
      remove: (key, provider) => redis.remove(key, provider),
      async lock(name, ttlMs) {
        const held = await redis.lock?.(name, ttlMs);
        return held && { release: () => held.release() };
      },
    };
    const app = await adapter.start(createOAuth(config(shared, prefix, { store, providers: { op: provider(2) } })));
    try {
      const cookie = await login(app);
      op.tokenDelayMs = 500;
      const refreshing = request(app.server)
        .get('/token/op')
        .set('cookie', cookie)
        .then((r) => r);
      await sleep(150); // the lock is held, the provider not yet answered
      const [lockKey] = await shared.keys(`${prefix}lock:*`);
      const lockTtl = await shared.pttl(lockKey as string);
      expect(lockTtl).toBeGreaterThan(13_000); // 2 s + 12 s, less the 150 ms since
      expect(lockTtl).toBeLessThanOrEqual(14_000);
      expect((await refreshing).status).toBe(200);
      expect(op.counts.refresh_token).toBe(1);
    } finally {
      op.reset();
      await app.close();
    }
  });

  it('does not write a refresh over a logout that came in while it ran (fenced write)', async () => {
    const prefix = uniquePrefix('fence');
    const make = () => createOAuth(config(shared, prefix));
    const instances = [await adapter.start(make()), await adapter.start(make())];
    try {
      const cookie = await login(instances[0]!);
      op.tokenDelayMs = 800;
      op.failRevocation = 503; // the grant outlives the logout at the provider: the refresh succeeds
      const refreshing = request(instances[0]!.server)
        .get('/token/op')
        .set('cookie', cookie)
        .then((r) => r);
      await sleep(300);
      await request(instances[1]!.server).post('/disconnect/op').set('cookie', cookie).expect(204);
      expect(await shared.keys(`${prefix}tokens:*`)).toEqual([]);
      // The provider spent the old refresh token: this request still gets the new access token...
      const refreshed = await refreshing;
      expect(refreshed.status).toBe(200);
      expect(op.counts.refresh_token).toBe(1);
      // ...but the session stays logged out, on every instance.
      expect(await shared.keys(`${prefix}tokens:*`)).toEqual([]);
      for (const instance of instances) {
        const connected = await request(instance.server).get('/connected/op').set('cookie', cookie).expect(200);
        expect(connected.body.connected).toBe(false);
      }
    } finally {
      op.reset();
      op.failRevocation = undefined;
      await Promise.all(instances.map((i) => i.close()));
    }
  });

  it("keeps a sibling's fresh tokens written just after a refresh was refused (invalid_grant)", async () => {
    const prefix = uniquePrefix('refused');
    // Tokens keyed by app user: two browsers of one user share them.
    const subject = (native: unknown) =>
      (native as { headers: Record<string, string | undefined> }).headers['x-user'] || undefined;
    // The real Redis, where the sibling's write lands right after this request's last read
    // before the refusal's removal (the read that looks for a sibling's result).
    const race = { refusals: -1, sibling: undefined as string | undefined, key: '' };
    const client = {
      mget: async (keys: string[]) => {
        const values = await shared.mget(keys);
        if (race.sibling !== undefined && keys.includes(race.key) && op.counts.refresh_token > race.refusals) {
          await shared.set(race.key, race.sibling, 'EX', 3600);
          race.sibling = undefined;
        }
        return values;
      },
      set: (...args: unknown[]) => (shared.set as (...a: unknown[]) => Promise<unknown>)(...args),
      del: (...keys: string[]) => shared.del(...keys),
      eval: (script: string, count: number, ...args: string[]) => shared.eval(script, count, ...args),
    } as unknown as RedisClient;
    const app = await adapter.start(createOAuth(config(client, prefix, { subject })));
    try {
      const firstBrowser = await login(app, 'u-1');
      const key = `${prefix}tokens:{user:u-1}:op`;
      const refused = (await shared.get(key)) as string;
      await op.revokeGrant(op.issued.accessTokens.at(-1) as string); // the first login's grant ends at the provider
      // The user logs in again in another browser: the sibling's fresh tokens (not due).
      await login(app, 'u-1', 3600);
      const fresh = (await shared.get(key)) as string;
      const freshAccessToken = op.issued.accessTokens.at(-1);
      // Back to the moment before: the refused tokens stored, the fresh ones about to be written.
      await shared.set(key, refused, 'EX', 3600);
      Object.assign(race, { refusals: op.counts.refresh_token, sibling: fresh, key });

      const denied = await request(app.server).get('/token/op').set('cookie', firstBrowser).set('x-user', 'u-1');
      expect(denied.status).toBe(401);
      expect(denied.body.error).toBe('reauth_required');
      expect(race.sibling).toBeUndefined(); // the sibling's write did land in between
      expect(await shared.get(key)).toBe(fresh);
      const sibling = await request(app.server).get('/token/op').set('x-user', 'u-1').expect(200);
      expect(sibling.body.accessToken).toBe(freshAccessToken);
    } finally {
      op.reset();
      await app.close();
    }
  });

  it('removes tokens the provider refused while they are still the stored ones', async () => {
    const prefix = uniquePrefix('refused-alone');
    const app = await adapter.start(createOAuth(config(shared, prefix)));
    try {
      const cookie = await login(app);
      await op.revokeGrant(op.issued.accessTokens.at(-1) as string);
      const denied = await request(app.server).get('/token/op').set('cookie', cookie);
      expect(denied.status).toBe(401);
      expect(denied.body.error).toBe('reauth_required');
      expect(await shared.keys(`${prefix}tokens:*`)).toEqual([]);
    } finally {
      op.reset();
      await app.close();
    }
  });
});
