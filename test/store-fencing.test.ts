/**
 * The refresh lock and the writes around it, on the real Redis, through real HTTP on every adapter,
 * with two app instances sharing one Redis (each its own createOAuth: its own single flight, as
 * two processes would have):
 * - a refresh slower than its lock's lease keeps its lock (renewed), so it runs once;
 * - the lease is renewed only while its holder works: a failed renewal is tried again, but none
 *   follows a lost lock, the holder's end (even with a renewal still out), or its waiters'
 *   deadline, so a crashed or hung holder's lock frees after one lease;
 * - waiters poll at a modest pace until the lock frees (and take over), the login ends
 *   (reauth_required) or their deadline passes (the old token while it still works);
 * - the release is waited for while the store answers (the lock is free when the request
 *   answers), not once the store failed; a failed release is reported;
 * - the lock holder's write is fenced on the value it read under the lock: a logout that came in
 *   meanwhile is not undone;
 * - tokens refused with `invalid_grant` are removed only while they are still the stored ones: a
 *   sibling's fresh tokens written just after the refusal are kept.
 */
import type { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOAuth, type OAuthConfig, OAuthError, type ServerTokenStore } from '../src/index.js';
import { oidc } from '../src/providers/index.js';
import { type RedisClient, redisStore } from '../src/stores/redis.js';
import { adapters, type RunningApp, userHeader } from './support/apps.js';
import {
  BASE_URL,
  CLIENT_ID,
  CLIENT_SECRET,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
} from './support/authorization-server.js';
import { ready, redisClient, uniquePrefix } from './support/redis.js';

const SECRET = 'store-fencing-secret-0123456789-abcdefgh';
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

/** Waits (on the monotonic clock: some tests fake `Date`) until `done` holds; fails after `ms`. */
async function until(done: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!(await done())) {
    if (performance.now() > end) throw new Error(`still waiting after ${ms} ms for ${what}`);
    await sleep(20);
  }
}

/** `promise`, or a failure after `ms`: no test waits unbounded on a request. */
async function within<T>(promise: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

function deferred() {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The key of the refresh lock of the one session stored under `prefix`. */
async function refreshLockKey(prefix: string): Promise<string> {
  const [tokensKey] = await shared.keys(`${prefix}tokens:*`);
  const session = /tokens:\{(.+)\}:op$/.exec(tokensKey ?? '')?.[1];
  if (session === undefined) throw new Error('no session stored');
  return `${prefix}lock:refresh:op:${session}`;
}

/** What a test changes around the real Redis store's refresh lock (each step gets the real one to call). */
interface LockBehaviour {
  /** Before each attempt to take the lock. */
  beforeLock?(): Promise<void>;
  /** Each renewal: `call` 1 is the one that cuts the lock down to its lease. */
  extend?(real: () => Promise<boolean>, call: number): Promise<boolean>;
  release?(real: () => Promise<void>): Promise<void>;
  /** Reads of the tokens while this instance holds the lock. */
  readLocked?(real: () => Promise<Readonly<Record<string, string>>>): Promise<Readonly<Record<string, string>>>;
}

/**
 * The real Redis store of `prefix` with its refresh lock observed: the attempts to take it, and each
 * renewal's lease and answer (`kept`: undefined for one that failed). Redis itself is never faked.
 */
function observedStore(prefix: string, behaviour: LockBehaviour = {}) {
  const redis = redisStore({ client: shared, prefix });
  const seen = { attempts: 0, renewals: [] as Array<{ ms: number; kept?: boolean }> };
  let holding = false;
  const store: ServerTokenStore = {
    ...redis,
    get: (key, providers) =>
      holding && behaviour.readLocked ? behaviour.readLocked(() => redis.get(key, providers)) : redis.get(key, providers),
    async lock(name, ttlMs) {
      seen.attempts++;
      await behaviour.beforeLock?.();
      const held = await redis.lock!(name, ttlMs);
      if (!held) return undefined;
      holding = true;
      return {
        release() {
          holding = false;
          const real = () => held.release();
          return behaviour.release ? behaviour.release(real) : real();
        },
        async extend(ms) {
          const renewal: { ms: number; kept?: boolean } = { ms };
          seen.renewals.push(renewal);
          const real = () => held.extend!(ms);
          renewal.kept = await (behaviour.extend ? behaviour.extend(real, seen.renewals.length) : real());
          return renewal.kept;
        },
      };
    },
  };
  return { store, seen };
}

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
    const subject = (native: unknown) => userHeader(native) || undefined;
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

  it('tries a failed renewal again: the lock is cut down to its lease once Redis answers, and kept while the refresh runs', async () => {
    const prefix = uniquePrefix('renewal-failed');
    // A 4 s provider timeout: a 2 s lease (half of it), renewed every 667 ms. The provider answers in 1.5 s.
    let leaseLeft: number | undefined;
    const { store, seen } = observedStore(prefix, {
      async extend(real, call) {
        if (call === 1) throw new Error('Redis did not answer'); // the cut: the lock still runs for 4 s + 12 s
        const kept = await real();
        if (call === 2) leaseLeft = await shared.pttl(await refreshLockKey(prefix));
        return kept;
      },
    });
    const app = await adapter.start(createOAuth(config(shared, prefix, { store, providers: { op: provider(4) } })));
    try {
      const cookie = await login(app);
      op.tokenDelayMs = 1500;
      const refreshed = await within(request(app.server).get('/token/op').set('cookie', cookie), 8000, 'the refresh');
      expect(refreshed.status).toBe(200);
      expect(op.counts.refresh_token).toBe(1);
      // The failed cut was tried again, and then renewed while the provider worked...
      expect(seen.renewals.length).toBeGreaterThanOrEqual(2);
      expect(seen.renewals.slice(1).every((renewal) => renewal.kept === true)).toBe(true);
      // ...each time to the lease, half the provider's timeout (above the 1 s floor)...
      expect(seen.renewals.map((renewal) => renewal.ms)).toEqual(seen.renewals.map(() => 2000));
      // ...which the retry did cut the lock down to.
      expect(leaseLeft).toBeGreaterThan(0);
      expect(leaseLeft).toBeLessThanOrEqual(2000);
    } finally {
      op.reset();
      await app.close();
    }
  });

  it('stops renewing a lock it lost (a sibling took it over): the sibling keeps it', async () => {
    const prefix = uniquePrefix('renewal-lost');
    // A 1 s lease renewed every 333 ms; the provider answers in 1.5 s. At the first renewal the
    // lock is another instance's (this holder's lease ran out, a sibling took it over).
    let lockKey = '';
    const { store, seen } = observedStore(prefix, {
      async extend(real, call) {
        if (call === 2) await shared.set(lockKey, 'sibling', 'PX', 5000);
        return real();
      },
    });
    const app = await adapter.start(createOAuth(config(shared, prefix, { store, providers: { op: provider(2) } })));
    try {
      const cookie = await login(app);
      lockKey = await refreshLockKey(prefix);
      op.tokenDelayMs = 1500;
      const refreshed = await within(request(app.server).get('/token/op').set('cookie', cookie), 8000, 'the refresh');
      expect(refreshed.status).toBe(200);
      expect(op.counts.refresh_token).toBe(1);
      // Not renewed again after the answer that it is lost, though the provider took another second.
      expect(seen.renewals.map((renewal) => renewal.kept)).toEqual([true, false]);
      expect(await shared.get(lockKey)).toBe('sibling'); // nor released: it is not this one's
    } finally {
      op.reset();
      if (lockKey) await shared.del(lockKey);
      await app.close();
    }
  });

  it('stops renewing once the holder is done, even with a renewal still out: a lock whose release failed frees after one lease', async () => {
    const prefix = uniquePrefix('renewal-late');
    const errors: unknown[] = [];
    const lost = new Error('Redis did not answer the release');
    // The first renewal after the cut (at 333 ms) is still out when the holder finishes: the
    // holder reads its tokens only once that renewal went out, and the renewal answers (kept) only
    // at the release, which fails: the lock stays this holder's, to expire by itself. The renewal
    // extends the lock as it goes out and again as it answers, so the lease is fresh as the holder
    // ends: one more renewal would keep it.
    const renewing = deferred();
    const finished = deferred();
    const { store, seen } = observedStore(prefix, {
      async readLocked(real) {
        await renewing.promise;
        return real();
      },
      async extend(real, call) {
        if (call !== 2) return real();
        await real();
        renewing.resolve();
        await finished.promise;
        return real();
      },
      async release() {
        finished.resolve();
        throw lost;
      },
    });
    const app = await adapter.start(
      createOAuth(
        config(shared, prefix, { store, providers: { op: provider(2) }, hooks: { onError: (err) => errors.push(err) } }),
      ),
    );
    try {
      const cookie = await login(app);
      const lockKey = await refreshLockKey(prefix);
      const refreshed = await within(request(app.server).get('/token/op').set('cookie', cookie), 8000, 'the refresh');
      expect(refreshed.status).toBe(200);
      expect(op.counts.refresh_token).toBe(1);
      expect(errors).toContain(lost); // the failed release is reported
      // Nobody renews the lock any more: it expires within its 1 s lease, and other instances can refresh.
      await until(async () => (await shared.exists(lockKey)) === 0, 3000, 'the lock to expire');
      expect(seen.renewals).toHaveLength(2);
    } finally {
      op.reset();
      await app.close();
    }
  });

  it('stops renewing when its waiters would give up: a hung holder loses its lock after one lease', async () => {
    const prefix = uniquePrefix('renewal-deadline');
    // Waiters give up 2 s + 12 s + 5 s after the refresh began (their deadline, as the holder's):
    // the clock reaches it just as the lock is cut down to its 1 s lease. The provider answers in 1.5 s.
    const realNow = Date.now.bind(Date);
    let frozen: number | undefined;
    let deadline = 0;
    const { store, seen } = observedStore(prefix, {
      async extend(real) {
        const kept = await real();
        frozen = deadline;
        return kept;
      },
    });
    const app = await adapter.start(createOAuth(config(shared, prefix, { store, providers: { op: provider(2) } })));
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => frozen ?? realNow());
    try {
      const cookie = await login(app);
      const lockKey = await refreshLockKey(prefix);
      frozen = realNow();
      deadline = frozen + 19_000;
      op.tokenDelayMs = 1500;
      let answered = false;
      const refreshing = request(app.server)
        .get('/token/op')
        .set('cookie', cookie)
        .then((r) => ((answered = true), r));
      await until(() => seen.renewals[0]?.kept === true, 3000, 'the lock to be cut down to its lease');
      // Not renewed since: the lock frees while the holder still waits on the provider.
      await until(async () => (await shared.exists(lockKey)) === 0, 3000, 'the lock to expire');
      expect(answered).toBe(false);
      expect((await within(refreshing, 5000, 'the refresh')).status).toBe(200);
      expect(seen.renewals).toHaveLength(1);
    } finally {
      clock.mockRestore();
      op.reset();
      await app.close();
    }
  });

  it('waits for a holder on another instance until its lock frees, then takes over: one refresh, at a modest polling pace', async () => {
    const prefix = uniquePrefix('takeover');
    const { store, seen } = observedStore(prefix);
    const app = await adapter.start(createOAuth(config(shared, prefix, { store, providers: { op: provider(2) } })));
    try {
      const cookie = await login(app);
      const stale = op.issued.accessTokens.at(-1);
      // An instance took the lock, cut it down to its 1.5 s lease, and crashed.
      await shared.set(await refreshLockKey(prefix), 'crashed-instance', 'PX', 1500);
      const started = performance.now();
      const refreshed = await within(request(app.server).get('/token/op').set('cookie', cookie), 8000, 'the refresh');
      const waited = performance.now() - started;
      expect(refreshed.status).toBe(200);
      expect(refreshed.body.accessToken).not.toBe(stale);
      expect(refreshed.body.accessToken).toBe(op.issued.accessTokens.at(-1));
      expect(op.counts.refresh_token).toBe(1);
      // Polled with a backoff: waits from 5 ms up, doubling, at least 125 ms each from the sixth
      // on (250 ms, less up to half for jitter). However slow the machine, that many attempts at
      // most fit in the wait; a waiter that hammered the store would make dozens more.
      expect(seen.attempts).toBeGreaterThanOrEqual(2);
      expect(seen.attempts).toBeLessThanOrEqual(8 + waited / 100);
    } finally {
      op.reset();
      await app.close();
    }
  });

  it('gives up on a holder that never finishes once its deadline passes, and hands out the old token while it works', async () => {
    const prefix = uniquePrefix('waiter-deadline');
    const errors: unknown[] = [];
    const { store, seen } = observedStore(prefix);
    const app = await adapter.start(
      createOAuth(
        config(shared, prefix, { store, providers: { op: provider(2) }, hooks: { onError: (err) => errors.push(err) } }),
      ),
    );
    const realNow = Date.now.bind(Date);
    let frozen: number | undefined;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => frozen ?? realNow());
    let lockKey = '';
    try {
      const cookie = await login(app); // tokens due at once (30 s of life, 60 s of skew), still valid
      const stale = op.issued.accessTokens.at(-1);
      lockKey = await refreshLockKey(prefix);
      // Another instance holds the lock and renews it, but never finishes (hung).
      await shared.set(lockKey, 'hung-instance', 'PX', 30_000);
      frozen = realNow();
      const deadline = frozen + 2000 + 12_000 + 5000; // the provider's timeout, the lock's margin, 5 s more
      let answered = false;
      const waiting = request(app.server)
        .get('/token/op')
        .set('cookie', cookie)
        .then((r) => ((answered = true), r));
      await until(() => seen.attempts >= 1, 3000, 'the first attempt at the lock');
      // At the deadline itself the waiter still waits: it polls again, twice.
      frozen = deadline;
      const attempts = seen.attempts;
      await until(() => seen.attempts >= attempts + 2, 3000, 'two more attempts at the lock');
      expect(answered).toBe(false);
      // Past it, it gives up: provider trouble, reported; the old access token still works, so it is handed out.
      frozen = deadline + 1;
      const answer = await within(waiting, 3000, 'the waiter');
      expect(answer.status).toBe(200);
      expect(answer.body.accessToken).toBe(stale);
      expect(op.counts.refresh_token).toBe(0);
      const reported = errors.find((err) => err instanceof OAuthError && err.code === 'provider_unavailable');
      expect(reported).toMatchObject({
        code: 'provider_unavailable',
        message: 'Another instance is still refreshing this token.',
        provider: 'op',
      });
    } finally {
      clock.mockRestore();
      op.reset();
      if (lockKey) await shared.del(lockKey);
      await app.close();
    }
  });

  it('answers reauth_required to a waiter whose login ended (logged out on another instance) while it waited', async () => {
    const prefix = uniquePrefix('waiter-ended');
    const { store, seen } = observedStore(prefix);
    const waiter = await adapter.start(createOAuth(config(shared, prefix, { store })));
    const other = await adapter.start(createOAuth(config(shared, prefix)));
    let lockKey = '';
    try {
      const cookie = await login(waiter);
      lockKey = await refreshLockKey(prefix);
      await shared.set(lockKey, 'busy-instance', 'PX', 30_000); // a refresh under way elsewhere
      const waiting = request(waiter.server)
        .get('/token/op')
        .set('cookie', cookie)
        .then((r) => r);
      await until(() => seen.attempts >= 2, 3000, 'the waiter to poll');
      await request(other.server).post('/disconnect/op').set('cookie', cookie).expect(204);
      const answer = await within(waiting, 3000, 'the waiter');
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ error: 'reauth_required', provider: 'op', provider_error: 'invalid_grant' });
      expect(op.counts.refresh_token).toBe(0);
      expect(await shared.keys(`${prefix}tokens:*`)).toEqual([]); // nothing brought back
    } finally {
      op.reset();
      if (lockKey) await shared.del(lockKey);
      await Promise.all([waiter, other].map((i) => i.close()));
    }
  });

  it('answers reauth_required when the login ended just before it took the lock, and frees the lock before answering', async () => {
    const prefix = uniquePrefix('holder-ended');
    let other: RunningApp | undefined;
    let cookie = '';
    let loggedOut = false;
    const { store } = observedStore(prefix, {
      // A logout on another instance lands between this request's read and its lock.
      async beforeLock() {
        if (loggedOut || !other) return;
        loggedOut = true;
        await request(other.server).post('/disconnect/op').set('cookie', cookie).expect(204);
      },
      // Redis is slow to answer the release: the answer waits for it, so the lock is free by then.
      async release(real) {
        await sleep(500);
        await real();
      },
    });
    const holder = await adapter.start(createOAuth(config(shared, prefix, { store })));
    try {
      cookie = await login(holder);
      const lockKey = await refreshLockKey(prefix);
      other = await adapter.start(createOAuth(config(shared, prefix)));
      const answer = await within(request(holder.server).get('/token/op').set('cookie', cookie), 5000, 'the refresh');
      expect(loggedOut).toBe(true);
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ error: 'reauth_required', provider: 'op', provider_error: 'invalid_grant' });
      expect(await shared.exists(lockKey)).toBe(0);
      expect(op.counts.refresh_token).toBe(0); // never refreshed, never brought back
      expect(await shared.keys(`${prefix}tokens:*`)).toEqual([]);
    } finally {
      op.reset();
      await Promise.all([holder, other].map((i) => i?.close()));
    }
  });

  it('answers at once when the store fails under the lock, without waiting for the release (reported when it fails)', async () => {
    const prefix = uniquePrefix('store-fails');
    const errors: unknown[] = [];
    const lost = new Error('Redis did not answer the release');
    const answered = deferred();
    let releaseSettled = false;
    const { store } = observedStore(prefix, {
      readLocked: async () => {
        throw new Error('Redis did not answer');
      },
      // The release hangs until the request has answered (3 s at most), then fails.
      async release() {
        await Promise.race([answered.promise, sleep(3000)]);
        releaseSettled = true;
        throw lost;
      },
    });
    const app = await adapter.start(
      createOAuth(config(shared, prefix, { store, hooks: { onError: (err) => errors.push(err) } })),
    );
    try {
      const cookie = await login(app);
      const answer = await within(request(app.server).get('/token/op').set('cookie', cookie), 5000, 'the refresh');
      const releasedFirst = releaseSettled;
      answered.resolve();
      expect(releasedFirst).toBe(false);
      expect(answer.status).toBe(503);
      expect(answer.body.error).toBe('store_unavailable');
      await until(() => errors.includes(lost), 2000, 'the failed release to be reported');
    } finally {
      op.reset();
      await app.close();
    }
  });
});
