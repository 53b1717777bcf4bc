/**
 * Rotation soak, bounded: 1000 refresh cycles at concurrency 50 against oidc-provider with
 * rotating, single-use refresh tokens and a Redis store. Tokens live 30 s and the clock moves
 * 16 s before each cycle (past half their life), so every cycle refreshes; two requests race in
 * each cycle of each session.
 * Nothing may be lost: no reauth_required, exactly one refresh per cycle, and every session's
 * stored refresh token still accepted by the provider at the end.
 */
import { unsealData } from 'iron-session';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOAuth } from '../src/index.js';
import { redisStore } from '../src/stores/redis.js';
import { adapters, type RunningApp } from './support/apps.js';
import {
  BASE_URL,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';
import { ready, redisClient, uniquePrefix } from './support/redis.js';

const SESSIONS = 25;
const RACERS = 2; // concurrent requests per session: 25 x 2 = 50 in flight
const CYCLES = 40; // per session: 25 x 40 = 1000 refreshes
const SECRET = 'soak-secret-0123456789-abcdefghijklmnop';

let op: TestServer;
let app: RunningApp;
const redis = redisClient();
const prefix = uniquePrefix('soak');

beforeAll(async () => {
  await ready(redis);
  op = await startAuthorizationServer(['op']);
  op.accessTokenTtl = 30; // due at half its life: 15 s
  const oauth = createOAuth({
    baseUrl: BASE_URL,
    secret: SECRET,
    store: redisStore({ client: redis, prefix }),
    providers: {
      op: testProvider(op),
    },
  });
  app = await adapters[0]!.start(oauth);
});
afterAll(async () => {
  await app?.close();
  await op?.close();
  redis.disconnect();
});

describe('rotation soak', () => {
  it(`runs ${SESSIONS * CYCLES} refresh cycles at concurrency ${SESSIONS * RACERS} without losing a refresh token`, async () => {
    const cookies: string[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const agent = request.agent(app.server);
      const started = await agent.get('/auth/op/login').expect(302);
      const callback = await completeLogin(started.headers.location as string, { user: `user-${i}` });
      const landed = await agent.get(callback.pathname + callback.search).expect(302);
      cookies.push((landed.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; '));
    }
    op.counts.refresh_token = 0;
    const statuses = new Map<number, number>();
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    await Promise.all(
      cookies.map(async (cookie) => {
        for (let cycle = 0; cycle < CYCLES; cycle++) {
          vi.setSystemTime(Date.now() + 16_000);
          const racers = await Promise.all(
            Array.from({ length: RACERS }, () => request(app.server).get('/token/op').set('cookie', cookie)),
          );
          for (const r of racers) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          expect(new Set(racers.map((r) => r.body.accessToken)).size).toBe(1);
        }
      }),
    ).finally(() => vi.useRealTimers());
    expect(Object.fromEntries(statuses)).toEqual({ 200: SESSIONS * CYCLES * RACERS });
    expect(op.counts.refresh_token).toBe(SESSIONS * CYCLES);

    const keys = await redis.keys(`${prefix}tokens:*`);
    expect(keys).toHaveLength(SESSIONS);
    for (const key of keys) {
      const sealed = (await redis.get(key)) as string;
      const { data } = await unsealData<{ data: { refreshToken: string } }>(sealed, { password: SECRET, ttl: 0 });
      const stored = await op.provider.RefreshToken.find(data.refreshToken);
      expect(stored?.consumed).toBeFalsy(); // not lost: the provider still accepts it
    }
  }, 120_000);
});
