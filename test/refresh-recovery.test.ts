/**
 * What a refresh does when the step after it fails, through real HTTP on every adapter, against the
 * Cal.com platform emulator (managed users, tokens imported for the app's own user):
 * - only a refresh token refused as spent (`invalid_grant`) is recovered through force-refresh: an
 *   outage or a wrong client secret is not, since force-refresh ends every token of the user;
 * - a force-refresh that fails too is reported to `hooks.onError`, its text free of the tokens,
 *   and the refusal stands (`reauth_required`);
 * - the refresh lock holder's write of the new tokens to Redis is retried while its failures are
 *   quick (100 ms, then 200 ms apart, three attempts), not after a store that took a second to
 *   fail; a write that did not land is reported, the tokens still reach the request, which writes
 *   them itself, and the request does not wait for the lock's release once the store failed.
 * The store faults are a wrapper around the real Redis store (the real Redis under a unique
 * prefix): its fenced write (`putIf`) throws as a dropped connection would.
 */
import { inspect } from 'node:util';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createOAuth,
  memoryStore,
  type OAuth,
  type OAuthError,
  type ServerTokenStore,
  type StoreLock,
  type TokenStore,
} from '../src/index.js';
import { calcomPlatform } from '../src/providers/index.js';
import { redisStore } from '../src/stores/redis.js';
import { type Emulator, startCalcomPlatformEmulator } from '../emulators/index.js';
import { adapters, type RunningApp, userHeader } from './support/apps.js';
import { type FaultProxy, startFaultProxy } from './support/fault-proxy.js';
import { ready, redisClient, uniquePrefix } from './support/redis.js';

const BASE_URL = 'http://127.0.0.1:3999';
const SECRET = 'refresh-recovery-secret-0123456789-abcdef';
const USER = 'ada';

let emulator: Emulator;
let proxy: FaultProxy;
let shared: Redis;
beforeAll(async () => {
  emulator = await startCalcomPlatformEmulator({ redirectUri: `${BASE_URL}/auth/cal/callback` });
  // Every call to "Cal.com" goes through the proxy, so that a test can fault one of them.
  proxy = await startFaultProxy({ upstream: emulator.origin });
  shared = redisClient();
  await ready(shared);
});
afterAll(async () => {
  await proxy?.close();
  await emulator?.close();
  shared?.disconnect();
});

/** A managed user created at Cal.com, as a platform customer's backend does: its id and tokens. */
async function createManagedUser(): Promise<{ userId: number; accessToken: string; refreshToken: string }> {
  const response = await fetch(emulator.endpoints.managedUsers as string, {
    method: 'POST',
    headers: { 'x-cal-secret-key': emulator.clientSecret, 'content-type': 'application/json' },
    body: JSON.stringify({ email: `user-${Math.random().toString(36).slice(2)}@example.com` }),
  });
  expect(response.status).toBe(200);
  const { data } = (await response.json()) as { data: { user: { id: number }; accessToken: string; refreshToken: string } };
  return { userId: data.user.id, accessToken: data.accessToken, refreshToken: data.refreshToken };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const via = (url: string | undefined) => (url as string).replace(emulator.origin, proxy.origin);

describe.each(adapters)('refresh recovery on $name', (adapter) => {
  let app: RunningApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
    proxy.heal();
    emulator.reset();
  });

  /** An app keyed by the `x-user` header, Cal.com platform behind the proxy; `reported` is what `hooks.onError` got. */
  async function start(options: { store: TokenStore; forceRefresh?: boolean; clientSecret?: string }) {
    const reported: unknown[] = [];
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: SECRET,
      store: options.store,
      subject: userHeader,
      providers: {
        cal: calcomPlatform({
          clientId: emulator.clientId,
          clientSecret: options.clientSecret ?? emulator.clientSecret,
          endpoints: {
            token: via(emulator.endpoints.token),
            refresh: via(emulator.endpoints.refresh),
            recover: via(emulator.endpoints.recover),
          },
          forceRefresh: options.forceRefresh ?? false,
        }),
      },
      hooks: { onError: (error) => reported.push(error) },
    });
    app = await adapter.start(oauth);
    return { oauth, reported, agent: request(app.server) };
  }

  /** The user's tokens, imported expired (the next use refreshes them, and cannot fall back on them). */
  async function importExpired(oauth: OAuth, tokens: { userId: number; accessToken: string; refreshToken: string }) {
    await oauth.tokens(USER).importTokens('cal', {
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      expiresAt: nowSeconds() - 60,
      extras: { userId: tokens.userId },
    });
  }

  describe('a refresh that fails for another reason than a spent refresh token', () => {
    it('is not force-refreshed when Cal.com is down: 503 provider_unavailable, one refresh sent', async () => {
      const { oauth, reported, agent } = await start({ store: memoryStore(), forceRefresh: true });
      await importExpired(oauth, await createManagedUser());
      emulator.reset();
      emulator.failWith = 503;
      const res = await agent.get('/token/cal').set('x-user', USER).expect(503);
      expect(res.body).toMatchObject({ error: 'provider_unavailable', provider: 'cal' });
      // Force-refresh would have been a second call (the emulator counts it as a refresh).
      expect(emulator.counts.refresh).toBe(1);
      expect(reported).toEqual([]);
    });

    it('is not force-refreshed when the client secret is refused: 502 provider_error invalid_client', async () => {
      // The app still runs with a secret rotated at Cal.com since.
      const { oauth, reported, agent } = await start({
        store: memoryStore(),
        forceRefresh: true,
        clientSecret: 'a-client-secret-rotated-since-0123456789',
      });
      await importExpired(oauth, await createManagedUser());
      emulator.reset();
      const res = await agent.get('/token/cal').set('x-user', USER).expect(502);
      expect(res.body).toMatchObject({ error: 'provider_error', provider: 'cal', provider_error: 'invalid_client' });
      expect(emulator.counts.refresh).toBe(1);
      expect(emulator.rejections).toEqual([{ endpoint: 'refresh', status: 401, reason: 'wrong x-cal-secret-key' }]);
      expect(reported).toEqual([]);
    });
  });

  it('reports a force-refresh that fails too with the tokens taken out of its text, and answers reauth_required', async () => {
    const { oauth, reported, agent } = await start({ store: memoryStore(), forceRefresh: true });
    const { userId } = await createManagedUser();
    // Tokens Cal.com no longer knows (its refresh is refused as spent), with characters that
    // URL-encoding changes, so that both forms of each can be looked for.
    const tokens = { userId, accessToken: 'lost-access/token+=0123456789', refreshToken: 'lost-refresh/token+=0123456789' };
    await importExpired(oauth, tokens);
    const secrets = [tokens.accessToken, tokens.refreshToken];
    const quoted = secrets.flatMap((secret) => [secret, encodeURIComponent(secret)]).join(' ');
    const forceRefresh = new URL(via(emulator.endpoints.recover).replace('{userId}', String(userId))).pathname;
    // Cal.com's error envelope, its message quoting the user's tokens as a careless server might.
    const envelope = { status: 'error', timestamp: new Date().toISOString(), path: forceRefresh };
    const error = { code: 'BadRequestException', message: `Could not force-refresh after ${quoted}` };
    proxy.fail(forceRefresh, { status: 400, contentType: 'application/json', body: JSON.stringify({ ...envelope, error }) });
    emulator.reset();

    const res = await agent.get('/token/cal').set('x-user', USER).expect(401);
    expect(res.body).toMatchObject({ error: 'reauth_required', provider: 'cal', provider_error: 'invalid_grant' });
    expect(emulator.rejections).toEqual([
      { endpoint: 'refresh', status: 400, reason: 'unknown (or already used) refresh token' },
    ]);
    expect(proxy.count(forceRefresh)).toBe(1);
    // The refusal ended the login; the recovery's failure is what the operator reads.
    expect(await oauth.tokens(USER).isConnected('cal')).toBe(false);
    expect(reported).toEqual([expect.objectContaining({ code: 'provider_error', provider: 'cal' })]);
    const [recoveryError] = reported as OAuthError[];
    expect(recoveryError?.errorDescription).toMatch(/^Could not force-refresh after .*\[redacted\]/);
    const seen = inspect(reported, { depth: 8, showHidden: true }) + res.text;
    for (const secret of secrets) {
      expect(seen).not.toContain(secret);
      expect(seen).not.toContain(encodeURIComponent(secret));
    }
  });

  describe("the lock holder's write of refreshed tokens to Redis", () => {
    /**
     * The real Redis store under a fresh prefix, whose fenced write (`putIf`) first fails
     * `failures` times (after `beforeFailing`), and whose lock release waits for `releasing`.
     */
    function faultyRedis(options: { failures: number; beforeFailing?: () => void; releasing?: () => Promise<void> }) {
      const redis = redisStore({ client: shared, prefix: uniquePrefix('refresh-recovery') });
      const state = { failures: options.failures, putIfCalls: 0, released: false, onLock: undefined as (() => void) | undefined };
      const store: ServerTokenStore = {
        kind: 'server',
        get: (key, providers) => redis.get(key, providers),
        put: (key, provider, sealed, ttl) => redis.put(key, provider, sealed, ttl),
        remove: (key, provider) => redis.remove(key, provider),
        removeIf: (key, provider, expected) => redis.removeIf!(key, provider, expected),
        async putIf(key, provider, sealed, ttl, expected) {
          state.putIfCalls++;
          if (state.failures > 0) {
            state.failures--;
            options.beforeFailing?.();
            throw new Error('Connection is closed.'); // ioredis's words for a dropped connection
          }
          return redis.putIf!(key, provider, sealed, ttl, expected);
        },
        async lock(name, ttlMs): Promise<StoreLock | undefined> {
          const held = await redis.lock!(name, ttlMs);
          if (held) state.onLock?.();
          return (
            held && {
              extend: (ms) => held.extend!(ms),
              async release() {
                await options.releasing?.();
                await held.release();
                state.released = true;
              },
            }
          );
        },
      };
      return { store, state };
    }

    /** The pauses `writeRefreshed` takes between attempts: the only timers it sets. */
    function recordPauses() {
      const pauses: number[] = [];
      const realSetTimeout = globalThis.setTimeout;
      const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((
        callback: () => void,
        ms?: number,
        ...args: unknown[]
      ) => {
        if (new Error().stack?.includes('writeRefreshed')) pauses.push(ms ?? 0);
        return realSetTimeout(callback, ms, ...args);
      }) as typeof setTimeout);
      return { pauses, restore: () => spy.mockRestore() };
    }

    /** Tokens due at once (30 s of life, 60 s of skew) imported for the user; the next ones live an hour. */
    async function importDue(oauth: OAuth) {
      emulator.accessTokenTtl = 30;
      const created = await createManagedUser();
      await oauth.tokens(USER).importTokens('cal', {
        accessToken: created.accessToken,
        refreshToken: created.refreshToken,
        expiresAt: nowSeconds() + 30,
        extras: { userId: created.userId },
      });
      emulator.reset();
    }

    /** The user's next request finds the refreshed tokens in Redis: no refresh, no write. */
    async function expectStored(agent: ReturnType<typeof request>, accessToken: string, putIfCalls: () => number) {
      const writes = putIfCalls();
      const again = await agent.get('/token/cal').set('x-user', USER).expect(200);
      expect(again.body.accessToken).toBe(accessToken);
      expect(emulator.counts.refresh).toBe(1);
      expect(putIfCalls()).toBe(writes);
    }

    it('retries a write that failed at once: it lands, nothing is reported, and the answer waits for the lock release', async () => {
      // A release that takes a while: the answer comes after it all the same.
      const { store, state } = faultyRedis({ failures: 1, releasing: () => new Promise((r) => setTimeout(r, 150)) });
      const { oauth, reported, agent } = await start({ store });
      await importDue(oauth);
      const { pauses, restore } = recordPauses();
      try {
        const res = await agent.get('/token/cal').set('x-user', USER).expect(200);
        expect(state.released).toBe(true);
        expect(res.body.accessToken).toBe(emulator.issued.at(-1)?.accessToken);
        expect(emulator.counts.refresh).toBe(1);
        expect(pauses).toEqual([100]);
        expect(state.putIfCalls).toBe(2); // the failed write and its retry; the request wrote nothing more
        expect(reported).toEqual([]);
      } finally {
        restore();
      }
      await expectStored(agent, emulator.issued.at(-1)?.accessToken as string, () => state.putIfCalls);
    });

    it('reports a write that failed three times, hands the tokens out, writes them with the request, and does not wait for the release', async () => {
      // The release waits until the test lets it go (2 s at most): a request that waited for it would answer after.
      let letGo!: () => void;
      const gate = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        letGo = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      const { store, state } = faultyRedis({ failures: 3, releasing: () => gate });
      const { oauth, reported, agent } = await start({ store });
      await importDue(oauth);
      const { pauses, restore } = recordPauses();
      try {
        const res = await agent.get('/token/cal').set('x-user', USER).expect(200);
        expect(state.released).toBe(false);
        expect(res.body.accessToken).toBe(emulator.issued.at(-1)?.accessToken);
        expect(emulator.counts.refresh).toBe(1);
        expect(pauses).toEqual([100, 200]);
        // Three attempts by the lock holder, then the request's own write, fenced on the same value.
        expect(state.putIfCalls).toBe(4);
        expect(reported).toEqual([expect.objectContaining({ code: 'store_unavailable' })]);
        expect(((reported[0] as OAuthError).cause as Error).message).toBe('Connection is closed.');
      } finally {
        restore();
        letGo();
      }
      await vi.waitFor(() => expect(state.released).toBe(true));
      await expectStored(agent, emulator.issued.at(-1)?.accessToken as string, () => state.putIfCalls);
    });

    it('does not retry a write that took a second to fail: reported, and written by the request', async () => {
      // A clock that stands still from the moment the lock is held, and moves on by exactly one
      // second while the write fails: the holder's write then took 1000 ms to fail.
      const realNow = Date.now.bind(Date);
      let frozen: number | undefined;
      const clock = vi.spyOn(Date, 'now').mockImplementation(() => frozen ?? realNow());
      const { store, state } = faultyRedis({ failures: 1, beforeFailing: () => (frozen = (frozen ?? realNow()) + 1000) });
      state.onLock = () => (frozen ??= realNow());
      const { oauth, reported, agent } = await start({ store });
      const { pauses, restore } = recordPauses();
      try {
        await importDue(oauth);
        const res = await agent.get('/token/cal').set('x-user', USER).expect(200);
        expect(res.body.accessToken).toBe(emulator.issued.at(-1)?.accessToken);
        expect(pauses).toEqual([]);
        expect(state.putIfCalls).toBe(2); // the holder's one attempt, then the request's write
        expect(reported).toEqual([expect.objectContaining({ code: 'store_unavailable' })]);
      } finally {
        restore();
        clock.mockRestore();
      }
      await expectStored(agent, emulator.issued.at(-1)?.accessToken as string, () => state.putIfCalls);
    });
  });
});
