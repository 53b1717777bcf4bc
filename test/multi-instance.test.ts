/**
 * Several app instances (separate processes) sharing one Redis: a due token is refreshed exactly
 * once across all of them, every request gets the new token, and the stored refresh token is the
 * newest (the provider rotates them and refuses a reused one).
 */
import { unsealData } from 'iron-session';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startCalcomPlatformEmulator } from '../emulators/index.js';
import {
  BASE_URL,
  CLIENT_ID,
  CLIENT_SECRET,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
} from './support/authorization-server.js';
import { REDIS_URL, ready, redisClient, uniquePrefix } from './support/redis.js';
import { startWorkers, type Workers } from './support/workers.js';

const SECRET = 'multi-instance-secret-0123456789-abcdef';
const redis = redisClient();
let op: TestServer;
let workers: Workers;
const prefix = uniquePrefix('multi');

beforeAll(async () => {
  await ready(redis);
  op = await startAuthorizationServer(['op']);
  workers = await startWorkers(4, {
    baseUrl: BASE_URL,
    secret: SECRET,
    redisUrl: REDIS_URL,
    prefix,
    provider: { kind: 'oidc', name: 'op', issuer: op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
  });
}, 60_000);
afterAll(async () => {
  await workers?.stop();
  await op?.close();
  redis.disconnect();
});

/** The refresh token Redis holds for the one session, unsealed. */
async function storedRefreshToken(): Promise<string> {
  const keys = await redis.keys(`${prefix}tokens:*`);
  expect(keys).toHaveLength(1);
  const sealed = (await redis.get(keys[0] as string)) as string;
  expect(sealed.startsWith('Fe26.2*')).toBe(true); // sealed at rest
  const envelope = await unsealData<{ data: { refreshToken: string; accessToken: string } }>(sealed, {
    password: SECRET,
    ttl: 0,
  });
  return envelope.data.refreshToken;
}

describe('4 instances sharing Redis, oidc-provider rotating refresh tokens', () => {
  it('refreshes once for 200 concurrent requests spread over the instances', async () => {
    op.accessTokenTtl = 30; // due at once (60 s skew)
    const [first] = workers.urls;
    const agent = request.agent(first as string);
    const started = await agent.get('/auth/op/login').expect(302);
    const callback = await completeLogin(started.headers.location as string);
    const landed = await agent.get(callback.pathname + callback.search).expect(302);
    const cookie = (landed.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ');
    const before = await storedRefreshToken();
    op.accessTokenTtl = 3600;
    op.tokenDelayMs = 100; // widen the race: every instance sees the token as due at once

    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        request(workers.urls[i % 4] as string)
          .get('/token/op')
          .set('cookie', cookie),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(200));
    expect(new Set(responses.map((r) => r.body.accessToken)).size).toBe(1);
    expect(new Set(responses.map((r) => r.body.pid)).size).toBe(4);
    expect(op.counts.refresh_token).toBe(1);

    const after = await storedRefreshToken();
    expect(after).not.toBe(before);
    const current = await op.provider.RefreshToken.find(after);
    expect(current?.consumed).toBeFalsy(); // the newest: the provider still accepts it
    const spent = await op.provider.RefreshToken.find(before);
    expect(spent?.consumed).toBeTruthy();
  });
});

describe('4 instances sharing Redis, the Cal.com platform emulator (single-use refresh tokens)', () => {
  let cal: Emulator;
  let calWorkers: Workers;
  const calPrefix = uniquePrefix('multi-cal');

  beforeAll(async () => {
    cal = await startCalcomPlatformEmulator({ redirectUri: `${BASE_URL}/auth/cal/callback` });
    calWorkers = await startWorkers(4, {
      baseUrl: BASE_URL,
      secret: SECRET,
      redisUrl: REDIS_URL,
      prefix: calPrefix,
      provider: {
        kind: 'calcom-platform',
        name: 'cal',
        clientId: cal.clientId,
        clientSecret: cal.clientSecret,
        endpoints: { ...cal.endpoints },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await calWorkers?.stop();
    await cal?.close();
  });

  it('refreshes once for 200 concurrent requests, keeps the newest refresh token, and expires keys with it', async () => {
    cal.accessTokenTtl = 30;
    const agent = request.agent(calWorkers.urls[0] as string);
    const started = await agent.get('/auth/cal/login').expect(302);
    const callback = await cal.authorize(started.headers.location as string);
    expect(callback.searchParams.has('state')).toBe(false); // bound by the transaction cookie alone
    const landed = await agent.get(callback.pathname + callback.search).expect(302);
    const cookie = (landed.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ');
    cal.accessTokenTtl = 3600;

    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        request(calWorkers.urls[i % 4] as string)
          .get('/token/cal')
          .set('cookie', cookie),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(200));
    expect(new Set(responses.map((r) => r.body.accessToken)).size).toBe(1);
    expect(cal.counts.refresh).toBe(1);
    expect(cal.rejections).toEqual([]);

    // Stored: sealed, and kept as long as Cal.com's refresh token lives (a year), no longer.
    const [key] = await redis.keys(`${calPrefix}tokens:*`);
    const ttl = await redis.ttl(key as string);
    expect(ttl).toBeGreaterThan(364 * 24 * 3600);
    expect(ttl).toBeLessThanOrEqual(366 * 24 * 3600);
    // The stored refresh token is the newest: the next refresh (from another instance) is accepted.
    cal.accessTokenTtl = 30;
    cal.expireAccessTokens();
    const stored = await request(calWorkers.urls[3] as string)
      .get('/token/cal')
      .set('cookie', cookie);
    expect(stored.status).toBe(200);
  });
});
