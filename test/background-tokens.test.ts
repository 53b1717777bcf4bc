/**
 * `oauth.tokens(subject)`: one app user's tokens outside any request (background jobs, queues).
 * It needs the `subject` option (which itself needs a server-side store), and a subject that names
 * a user; a job and that user's own requests then share one set of tokens, refreshed once. Against
 * the Cal.com platform emulator (managed users' tokens are imported by the app, as jobs do), on
 * the real Redis, through real HTTP on every adapter.
 */
import type { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookieStore, createOAuth, memoryStore, type OAuthConfig, type TokenStore } from '../src/index.js';
import { calcomPlatform } from '../src/providers/index.js';
import { redisStore } from '../src/stores/redis.js';
import { type Emulator, startCalcomPlatformEmulator } from '../emulators/index.js';
import { adapters, userHeader } from './support/apps.js';
import { ready, redisClient, uniquePrefix } from './support/redis.js';

const BASE_URL = 'http://127.0.0.1:3999';
const SECRET = 'background-tokens-secret-0123456789-abcdef';

let emulator: Emulator;
let shared: Redis;
beforeAll(async () => {
  emulator = await startCalcomPlatformEmulator({ redirectUri: `${BASE_URL}/auth/cal/callback` });
  shared = redisClient();
  await ready(shared);
});
afterAll(async () => {
  await emulator?.close();
  shared?.disconnect();
});

/** The app's own user, as its authentication knows it (here a header, for the test). */
const byHeader = userHeader;

function config(store: TokenStore, extra: Partial<OAuthConfig> = {}): OAuthConfig {
  const credentials = { clientId: emulator.clientId, clientSecret: emulator.clientSecret };
  const endpoints = { token: emulator.endpoints.token, refresh: emulator.endpoints.refresh };
  return {
    baseUrl: BASE_URL,
    secret: SECRET,
    store,
    providers: { cal: calcomPlatform({ ...credentials, endpoints }) },
    ...extra,
  };
}

/** What `fn` threw. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('nothing was thrown');
}

describe('oauth.tokens(subject)', () => {
  it.each([
    { name: 'Redis', store: () => redisStore({ client: shared, prefix: uniquePrefix('background') }) },
    { name: 'memory', store: () => memoryStore() },
    { name: 'cookie', store: () => cookieStore() },
  ])('needs the subject option, with the $name store too: config_invalid naming it', ({ store }) => {
    const oauth = createOAuth(config(store()));
    expect(thrown(() => oauth.tokens('ada'))).toMatchObject({
      code: 'config_invalid',
      field: 'subject',
      message: 'oauth.tokens() needs the subject option and a server-side store.',
    });
  });

  it('never sees a subject without a server-side store: createOAuth refuses that configuration', () => {
    expect(thrown(() => createOAuth(config(cookieStore(), { subject: byHeader })))).toMatchObject({
      code: 'config_invalid',
      field: 'subject',
    });
  });

  it.each<[string, unknown]>([
    ['an empty string', ''],
    ['a number', 42],
    ['undefined', undefined],
    ['an object', { id: 'ada' }],
  ])('refuses %s as the subject: not_connected, no such user', (_, subject) => {
    const oauth = createOAuth(config(memoryStore(), { subject: byHeader }));
    expect(thrown(() => oauth.tokens(subject as string))).toMatchObject({ code: 'not_connected', message: 'No such user.' });
  });
});

describe.each(adapters)('a background job and the user it acts for, on $name', (adapter) => {
  it("share the user's tokens: the job's refresh is the one the user's requests get", async () => {
    const oauth = createOAuth(config(redisStore({ client: shared, prefix: uniquePrefix('background') }), { subject: byHeader }));
    const app = await adapter.start(oauth);
    try {
      emulator.reset();
      emulator.accessTokenTtl = 30; // due at once with the default 60 s skew
      const response = await fetch(emulator.endpoints.managedUsers as string, {
        method: 'POST',
        headers: { 'x-cal-secret-key': emulator.clientSecret, 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'ada@example.com' }),
      });
      const created = (await response.json()) as { data: { user: { id: number } } };
      emulator.accessTokenTtl = 3600;
      await oauth.tokens('ada').importTokens('cal', { answer: created, extras: { userId: created.data.user.id } });

      const job = oauth.tokens('ada');
      expect(await job.connections()).toEqual(['cal']);
      const refreshed = await job.getToken('cal');
      expect(emulator.counts.refresh).toBe(1);
      expect(refreshed.accessToken).toBe(emulator.issued.at(-1)?.accessToken);
      const res = await request(app.server).get('/token/cal').set('x-user', 'ada').expect(200);
      expect(res.body.accessToken).toBe(refreshed.accessToken);
      expect(emulator.counts.refresh).toBe(1);
      // Another user of the app has none.
      expect(await oauth.tokens('grace').isConnected('cal')).toBe(false);
      await expect(oauth.tokens('grace').getToken('cal')).rejects.toMatchObject({ code: 'not_connected' });
    } finally {
      emulator.reset();
      await app.close();
    }
  });
});
