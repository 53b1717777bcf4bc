/**
 * The contract of the login routes and of `req.oauth` / `ctx.oauth`, run over both adapters
 * against oidc-provider as the real authorization server.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOAuth, memoryStore, type OAuth, type OAuthConfig, type TokenStore } from '../src/index.js';
import { redisStore } from '../src/stores/redis.js';
import { adapters, type RunningApp } from './support/apps.js';
import {
  BASE_URL,
  CLIENT_ID,
  completeLogin,
  refreshDirectly,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';
import { ready, redisClient, uniquePrefix } from './support/redis.js';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';

let op: TestServer;
const redis = redisClient();
beforeAll(async () => {
  await ready(redis);
  op = await startAuthorizationServer(['op']);
});
afterAll(async () => {
  await op?.close();
  redis.disconnect();
});

function config(overrides: Partial<OAuthConfig> = {}): OAuthConfig {
  return {
    baseUrl: BASE_URL,
    secret: SECRET,
    providers: {
      op: testProvider(op),
    },
    ...overrides,
  };
}

const stores: Array<{ store: string; make: () => TokenStore }> = [
  { store: 'cookie', make: () => undefined as unknown as TokenStore }, // the default
  { store: 'memory', make: memoryStore },
  { store: 'redis', make: () => redisStore({ client: redis, prefix: uniquePrefix('contract') }) },
];
const matrix = adapters.flatMap((adapter) => stores.map((s) => ({ ...s, adapter, name: adapter.name })));

describe.each(matrix)('$name adapter, $store store', ({ adapter, make, store }) => {
  let oauth: OAuth;
  let app: RunningApp;
  let errors: unknown[];
  let others: RunningApp[] = [];

  async function start(overrides: Partial<OAuthConfig> = {}) {
    await app?.close();
    errors = [];
    const tokenStore = make();
    oauth = createOAuth(
      config({ hooks: { onError: (e) => errors.push(e) }, ...(tokenStore ? { store: tokenStore } : {}), ...overrides }),
    );
    app = await adapter.start(oauth);
    return request.agent(app.server);
  }

  /**
   * Another instance of the app (same secret; pass the store to share it), running beside the
   * current one, as a second process would: its seal cache has never seen any cookie.
   */
  async function another(overrides: Partial<OAuthConfig> = {}) {
    const instance = createOAuth(config({ hooks: { onError: (e) => errors.push(e) }, ...overrides }));
    const running = await adapter.start(instance);
    others.push(running);
    return { oauth: instance, server: running.server };
  }

  /** The store to hand to every instance of one test, so that they share tokens. */
  function sharedStore(): Partial<OAuthConfig> {
    const shared = make();
    return shared ? { store: shared } : {};
  }

  afterEach(async () => {
    vi.useRealTimers();
    op.reset();
    await app?.close();
    await Promise.all(others.map((o) => o.close()));
    others = [];
  });

  /** Logs in through the real provider; returns the callback's response. */
  async function login(agent: request.Agent, returnTo?: string, path = '/auth/op/login') {
    const query = returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(returnTo)}`;
    const start = await agent.get(path + query).expect(302);
    const callback = await completeLogin(start.headers.location as string);
    return agent.get(callback.pathname + callback.search).set('accept', 'text/html');
  }

  function cookieHeader(response: request.Response): string[] {
    return (response.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
  }

  /** `name=value` of the first cookie a response sets. */
  function firstCookie(response: request.Response): string {
    return (cookieHeader(response)[0] ?? '').split(';')[0] ?? '';
  }

  describe('login', () => {
    it('redirects to the provider with state, PKCE S256 and nonce, and sets a scoped transaction cookie', async () => {
      const agent = await start();
      const res = await agent.get('/auth/op/login').expect(302);
      const location = new URL(res.headers.location as string);
      expect(location.origin).toBe(op.issuer);
      expect(location.searchParams.get('code_challenge_method')).toBe('S256');
      expect(location.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
      expect(location.searchParams.get('state')).toMatch(/^[\w-]{43}$/);
      expect(location.searchParams.get('nonce')).toMatch(/^[\w-]{43}$/);
      expect(location.searchParams.get('redirect_uri')).toBe(`${BASE_URL}/auth/op/callback`);
      expect(location.searchParams.get('prompt')).toBe('consent');
      const [cookie] = cookieHeader(res);
      expect(cookie).toMatch(/^oauth_tx\.[0-4]=/); // one of five slots: logins in flight never pile up
      expect(cookie).toMatch(/Max-Age=600/);
      expect(cookie).toMatch(/Path=\/auth\/op\/;/); // this provider's routes: the callback reads it, the login prunes it
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/SameSite=Lax/);
      expect(cookie).not.toMatch(/Secure/); // http base URL
    });

    it('completes login, lands on returnTo, and getToken returns the token and validated claims', async () => {
      const agent = await start();
      const callback = await login(agent, '/dashboard?tab=1');
      expect(callback.status).toBe(302);
      expect(callback.headers.location).toBe('/dashboard?tab=1');
      expect(op.counts.authorization_code).toBe(1);
      const token = await agent.get('/token/op').expect(200);
      expect(token.body.accessToken).toEqual(expect.any(String));
      expect(token.body.tokenType).toBe('Bearer');
      expect(token.body.claims).toMatchObject({ sub: 'alice', iss: op.issuer, aud: CLIENT_ID });
      expect(token.body.expiresAt).toBeGreaterThan(Date.now() / 1000 + 3000);
      expect(JSON.stringify(token.body)).not.toMatch(/refresh/i);
      const connected = await agent.get('/connected/op').expect(200);
      expect(connected.body).toEqual({ connected: true, connections: ['op'] });
    });

    it('lets two tabs log in at once', async () => {
      const agent = await start();
      const first = await agent.get('/auth/op/login?returnTo=/one').expect(302);
      const second = await agent.get('/auth/op/login?returnTo=/two').expect(302);
      const secondCallback = await completeLogin(second.headers.location as string);
      const firstCallback = await completeLogin(first.headers.location as string);
      await agent
        .get(secondCallback.pathname + secondCallback.search)
        .expect(302)
        .expect('location', '/two');
      await agent
        .get(firstCallback.pathname + firstCallback.search)
        .expect(302)
        .expect('location', '/one');
    });

    it.each([
      ['//evil.example/path'],
      ['/\\evil.example'],
      ['https://evil.example/'],
      ['javascript:alert(1)'],
      ['/\t/evil.example'],
      ['/..//evil.example/x'],
      ['/.//evil.example'],
      ['/%2e%2e//evil.example'],
      ['/a/../..//evil.example'],
      ['evil'],
      [''],
    ])('ignores the unsafe returnTo %j and lands on afterLogin', async (returnTo) => {
      const agent = await start({ afterLogin: '/home' });
      const callback = await login(agent, returnTo);
      expect(callback.status).toBe(302);
      expect(callback.headers.location).toBe('/home');
    });
  });

  describe('callback attacks and provider errors', () => {
    it('refuses a callback with an unknown, missing or malformed state (400 state_mismatch)', async () => {
      const agent = await start();
      for (const query of ['?code=abc&state=unknownstate0123456789', '?code=abc', '?code=abc&state=%00bad']) {
        const res = await agent.get(`/auth/op/callback${query}`).expect(400);
        expect(res.body.error).toBe('state_mismatch');
      }
    });

    it('refuses a replayed callback, even with the transaction cookie put back', async () => {
      const agent = await start();
      const start1 = await agent.get('/auth/op/login').expect(302);
      const txCookie = firstCookie(start1);
      const callback = await completeLogin(start1.headers.location as string);
      const path = callback.pathname + callback.search;
      await request(app.server).get(path).set('cookie', txCookie).expect(302);
      const replay = await request(app.server).get(path).set('cookie', txCookie).expect(400);
      expect(replay.body.error).toBe('state_mismatch');
      expect(op.counts.authorization_code).toBe(1);
    });

    it('refuses a callback for another provider than the one the login started with', async () => {
      const agent = await start();
      const started = await agent.get('/auth/op/login').expect(302);
      const state = new URL(started.headers.location as string).searchParams.get('state');
      const txCookie = firstCookie(started);
      // The same transaction presented at an unknown provider's callback is a 404, never an exchange.
      const res = await request(app.server).get(`/auth/other/callback?code=x&state=${state}`).set('cookie', txCookie);
      expect(res.status).toBe(404);
      expect(res.body.error).toBe('unknown_provider');
    });

    it('turns a declined login into 403 access_denied', async () => {
      const agent = await start();
      const started = await agent.get('/auth/op/login').expect(302);
      const callback = await completeLogin(started.headers.location as string, { decline: true });
      expect(callback.searchParams.get('error')).toBe('access_denied');
      const res = await agent.get(callback.pathname + callback.search).expect(403);
      expect(res.body.error).toBe('access_denied');
      expect(op.counts.authorization_code).toBe(0);
    });

    it('turns another error= into 502 provider_error, keeping the provider error code', async () => {
      const agent = await start();
      const started = await agent.get('/auth/op/login').expect(302);
      const state = new URL(started.headers.location as string).searchParams.get('state');
      const res = await agent
        .get(`/auth/op/callback?error=temporarily_unavailable&state=${state}&iss=${encodeURIComponent(op.issuer)}`)
        .expect(502);
      expect(res.body).toMatchObject({ error: 'provider_error', provider: 'op', provider_error: 'temporarily_unavailable' });
    });

    it('refuses a callback whose iss is not the issuer (RFC 9207)', async () => {
      const agent = await start();
      const started = await agent.get('/auth/op/login').expect(302);
      const callback = await completeLogin(started.headers.location as string);
      callback.searchParams.set('iss', 'https://attacker.example');
      const res = await agent.get(callback.pathname + callback.search).expect(400);
      expect(res.body.error).toBe('invalid_callback');
      expect(op.counts.authorization_code).toBe(0);
    });

    it('refuses a callback without iss, since the issuer advertises it (RFC 9207)', async () => {
      const agent = await start();
      const started = await agent.get('/auth/op/login').expect(302);
      const callback = await completeLogin(started.headers.location as string);
      callback.searchParams.delete('iss');
      const res = await agent.get(callback.pathname + callback.search).expect(400);
      expect(res.body.error).toBe('invalid_callback');
    });

    it('refuses a transaction older than 10 minutes, even with its cookie', async () => {
      const agent = await start();
      const started = await agent.get('/auth/op/login').expect(302);
      const txCookie = firstCookie(started);
      const callback = await completeLogin(started.headers.location as string);
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 10 * 60 * 1000 + 5000 });
      try {
        const res = await request(app.server)
          .get(callback.pathname + callback.search)
          .set('cookie', txCookie)
          .expect(400);
        expect(res.body.error).toBe('state_mismatch');
      } finally {
        vi.useRealTimers();
      }
      expect(op.counts.authorization_code).toBe(0);
    });

    it('refuses a tampered transaction cookie (400 state_mismatch)', async () => {
      const agent = await start();
      const started = await agent.get('/auth/op/login').expect(302);
      const [name, value] = firstCookie(started).split('=') as [string, string];
      const callback = await completeLogin(started.headers.location as string);
      const tampered = `${name}=${value.slice(0, -5)}AAAAA`;
      const res = await request(app.server)
        .get(callback.pathname + callback.search)
        .set('cookie', tampered)
        .expect(400);
      expect(res.body.error).toBe('state_mismatch');
    });

    it('answers 404 unknown_provider for a provider that is not configured', async () => {
      const agent = await start();
      const res = await agent.get('/auth/nope/login').expect(404);
      expect(res.body).toMatchObject({ error: 'unknown_provider', provider: 'nope' });
      const page = await agent.get('/auth/nope/login').set('accept', 'text/html').expect(404);
      expect(page.headers['content-type']).toMatch(/text\/html/);
      const token = await agent.get('/token/nope').expect(404);
      expect(token.body.error).toBe('unknown_provider');
    });
  });

  describe('session cookie', () => {
    it('reads nothing for a request that does not use oauth, and unseals a cookie value at most once', async () => {
      const agent = await start();
      await login(agent);
      const before = { ...oauth.stats };
      await agent.get('/plain').expect(200);
      expect(oauth.stats.unseals).toBe(before.unseals);
      for (let i = 0; i < 5; i++) {
        const res = await agent.get('/token/op').expect(200);
        expect(res.headers['set-cookie']).toBeUndefined(); // unchanged data is not resealed
      }
      expect(oauth.stats.unseals - before.unseals).toBeLessThanOrEqual(1);
      expect(oauth.stats.seals).toBe(before.seals);
    });

    it('treats a tampered session cookie as no session (401 not_connected), never a 500', async () => {
      const agent = await start();
      const callback = await login(agent);
      const session = cookieHeader(callback).find((c) => c.startsWith('oauth_session-op='));
      const value = session?.split(';')[0]?.slice('oauth_session-op='.length) as string;
      for (const bad of [`${value.slice(0, -4)}AAAA`, 'garbage', 'Fe26.2**x*y*z', '']) {
        const res = await request(app.server).get('/token/op').set('cookie', `oauth_session-op=${bad}`).expect(401);
        expect(res.body.error).toBe('not_connected');
      }
    });

    it('keeps sessions readable across a secret rotation and unreadable without the old secret', async () => {
      const oldSecret = 'the-old-secret-that-is-long-enough-000000';
      const newSecret = 'the-new-secret-that-is-long-enough-111111';
      // The app restarts with each new secret; a server store outlives the restarts, as Redis would.
      const shared = make();
      const kept = shared ? { store: shared } : {};
      const agent = await start({ secret: { 1: oldSecret }, ...kept });
      await login(agent);
      await start({ secret: { 1: oldSecret, 2: newSecret }, ...kept });
      const rotated = request.agent(app.server);
      const cookie = await cookieOf(agent);
      await rotated.get('/token/op').set('cookie', cookie).expect(200);
      await start({ secret: newSecret, ...kept });
      const res = await request(app.server).get('/token/op').set('cookie', cookie).expect(401);
      expect(res.body.error).toBe('not_connected');
    });
    it('never shows a session planted before login the tokens of the login (session fixation)', async () => {
      const attacker = await start();
      await login(attacker); // signs in as alice
      const planted = await cookieOf(attacker);
      const victim = request.agent(app.server);
      await victim.get('/plain').set('cookie', planted).expect(200);
      const started = await victim.get('/auth/op/login').set('cookie', planted).expect(302);
      const callback = await completeLogin(started.headers.location as string, { user: 'bob' });
      await victim
        .get(callback.pathname + callback.search)
        .set('cookie', planted)
        .expect(302);
      expect((await victim.get('/token/op').expect(200)).body.claims.sub).toBe('bob');
      const seen = await request(app.server).get('/token/op').set('cookie', planted);
      expect(seen.body.claims?.sub).not.toBe('bob');
    });
  });

  describe('session cookie, served by an instance that has never seen it', () => {
    // The session cookie (cookie store) or the session id cookie and the tokens sealed in the
    // server store: the sealed values one session's getToken has to open.
    const sealedValuesPerSession = store === 'cookie' ? 1 : 2;

    it('unseals nothing for requests that never touch oauth, even when they carry a session cookie', async () => {
      const kept = sharedStore();
      const issuer = await start(kept);
      await login(issuer);
      const cookie = await cookieOf(issuer);
      expect(cookie).toContain('oauth_session-op=');
      const second = await another(kept);
      expect(second.oauth.stats).toEqual({ seals: 0, unseals: 0 });
      for (let i = 0; i < 10; i++) {
        const res = await request(second.server).get('/plain').set('cookie', cookie).expect(200, 'plain');
        expect(res.headers['set-cookie']).toBeUndefined();
      }
      expect(second.oauth.stats).toEqual({ seals: 0, unseals: 0 });
      // The same cookie is readable there: zero above is laziness, not a session it cannot open.
      await request(second.server).get('/token/op').set('cookie', cookie).expect(200);
      expect(second.oauth.stats.unseals).toBe(sealedValuesPerSession);
    });

    it('unseals a cookie value once for many sequential requests, and never reseals unchanged data', async () => {
      const kept = sharedStore();
      const issuer = await start(kept);
      await login(issuer);
      const cookie = await cookieOf(issuer);
      const expected = (await issuer.get('/token/op').expect(200)).body.accessToken as string;
      const second = await another(kept);
      for (let i = 0; i < 5; i++) {
        const res = await request(second.server).get('/token/op').set('cookie', cookie).expect(200);
        expect(res.body.accessToken).toBe(expected);
        expect(res.headers['set-cookie']).toBeUndefined(); // a token that is not due changes nothing
      }
      expect(second.oauth.stats.unseals).toBe(sealedValuesPerSession);
      expect(second.oauth.stats.seals).toBe(0);
      expect(op.counts.refresh_token).toBe(0);
    });

    it('unseals a cookie value it has not seen once for 50 concurrent requests carrying it', async () => {
      const kept = sharedStore();
      const issuer = await start(kept);
      await login(issuer);
      const firstCookie = await cookieOf(issuer);
      const second = await another(kept);
      const burst = (cookie: string) =>
        Promise.all(Array.from({ length: 50 }, () => request(second.server).get('/token/op').set('cookie', cookie)));
      const responses = await burst(firstCookie);
      expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
      expect(second.oauth.stats.unseals).toBe(sealedValuesPerSession);
      // Another session, new to the second instance: again one unseal per sealed value, not per request.
      const otherBrowser = request.agent(app.server);
      await login(otherBrowser);
      const secondCookie = await cookieOf(otherBrowser);
      expect(secondCookie).not.toBe(firstCookie);
      const more = await burst(secondCookie);
      expect(more.map((r) => r.status)).toEqual(Array(50).fill(200));
      expect(new Set(more.map((r) => r.body.accessToken)).size).toBe(1);
      expect(more[0]?.body.accessToken).not.toBe(responses[0]?.body.accessToken);
      expect(second.oauth.stats.unseals).toBe(2 * sealedValuesPerSession);
      expect(second.oauth.stats.seals).toBe(0);
    });
  });

  describe('refresh', () => {
    it('refreshes a due token once, with rotation, and stores the new refresh token', async () => {
      const agent = await start();
      op.accessTokenTtl = 30; // due at once with the default 60 s skew
      await login(agent);
      const refreshed = await agent.get('/token/op').expect(200);
      const first = refreshed.body;
      expect(op.counts.refresh_token).toBe(1);
      // Every write renews the session cookie's lifetime, whichever store holds the tokens.
      expect(JSON.stringify(refreshed.headers['set-cookie'] ?? [])).toContain('oauth_session');
      // The refreshed token lives 30 s, less than the skew: it is used for half its life, not
      // refreshed again at every call.
      expect((await agent.get('/token/op').expect(200)).body.accessToken).toBe(first.accessToken);
      expect(op.counts.refresh_token).toBe(1);
      // Past half its life it is due: the second refresh must use the rotated refresh token.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 16_000, shouldAdvanceTime: true });
      const second = (await agent.get('/token/op').expect(200)).body;
      vi.useRealTimers();
      expect(op.counts.refresh_token).toBe(2);
      expect(second.accessToken).not.toBe(first.accessToken);
      op.accessTokenTtl = 3600;
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 32_000, shouldAdvanceTime: true }); // half the second one's life
      const third = (await agent.get('/token/op').expect(200)).body;
      vi.useRealTimers();
      expect(op.counts.refresh_token).toBe(3);
      await agent.get('/token/op').expect(200);
      expect(op.counts.refresh_token).toBe(3);
      expect(third.claims.sub).toBe('alice');
    });

    it('gives 50 concurrent requests on a due token exactly one refresh at the provider', async () => {
      const agent = await start();
      op.accessTokenTtl = 30;
      await login(agent);
      op.accessTokenTtl = 3600;
      op.tokenDelayMs = 50;
      const responses = await Promise.all(Array.from({ length: 50 }, () => agent.get('/token/op')));
      expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
      expect(new Set(responses.map((r) => r.body.accessToken)).size).toBe(1);
      expect(op.counts.refresh_token).toBe(1);
    });

    it('gives 50 concurrent getToken calls in one request exactly one refresh', async () => {
      const agent = await start();
      op.accessTokenTtl = 30;
      await login(agent);
      op.accessTokenTtl = 3600;
      const res = await agent.get('/tokens/op/50').expect(200);
      expect(new Set(res.body).size).toBe(1);
      expect(op.counts.refresh_token).toBe(1);
    });

    it('gives a request still carrying the pre-refresh cookie the new tokens, with no second refresh', async () => {
      const kept = sharedStore();
      const agent = await start(kept);
      op.accessTokenTtl = 30;
      await login(agent);
      op.accessTokenTtl = 3600;
      const staleCookie = await cookieOf(agent);
      const fresh = (await agent.get('/token/op').expect(200)).body;
      expect(op.counts.refresh_token).toBe(1);
      const late = await request(app.server).get('/token/op').set('cookie', staleCookie).expect(200);
      expect(late.body.accessToken).toBe(fresh.accessToken);
      expect(op.counts.refresh_token).toBe(1);
      // A cookie store hands the stale browser the new session; a server store never needed to.
      if (store === 'cookie') expect(late.headers['set-cookie']).toBeDefined();
      // And the newest refresh token was kept: the next refresh succeeds.
      op.accessTokenTtl = 30;
      await agent.get('/token/op').expect(200); // not due yet: 3600 s token
      expect(op.counts.refresh_token).toBe(1);
      // The browser now holds what the late response left it. Later, when the new token is due,
      // it refreshes with that cookie, on an instance with no memory of the first refresh: only
      // the newest (rotated) refresh token can succeed; the spent one would be invalid_grant.
      const lateCookie = withSetCookies(staleCookie, late);
      const fresher = await another(kept);
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + (3600 - 60 + 5) * 1000, shouldAdvanceTime: true });
      const next = await request(fresher.server).get('/token/op').set('cookie', lateCookie);
      vi.useRealTimers();
      expect(next.status).toBe(200);
      expect(next.body.accessToken).not.toBe(fresh.accessToken);
      expect(next.body.claims.sub).toBe('alice');
      expect(op.counts.refresh_token).toBe(2);
      expect(errors).toEqual([]);
    });

    it('turns a revoked refresh token into 401 reauth_required and forgets the tokens', async () => {
      const agent = await start();
      // Not due for a minute with the 60 s skew: the first getToken must not refresh, however slow
      // the login was (a 61 s token, due after one wall-clock second, made this test flaky).
      op.accessTokenTtl = 120;
      await login(agent);
      const { accessToken } = (await agent.get('/token/op').expect(200)).body;
      expect(op.counts.refresh_token).toBe(0);
      await op.revokeGrant(accessToken);
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 61_000, shouldAdvanceTime: true }); // now due
      const res = await agent.get('/token/op').expect(401);
      expect(res.body.error).toBe('reauth_required');
      expect(op.counts.refresh_token).toBe(1);
      const again = await agent.get('/token/op').expect(401);
      expect(again.body.error).toBe('not_connected'); // the dead tokens are gone
      expect(op.counts.refresh_token).toBe(1);
    });

    it('keeps the tokens when the provider fails: the old access token while valid, 503 once expired', async () => {
      const agent = await start();
      op.accessTokenTtl = 30;
      await login(agent);
      const before = (await agent.get('/token/op').expect(200)).body; // the login's token, refreshed once at first use
      const later = (seconds: number) =>
        vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + seconds * 1000, shouldAdvanceTime: true });
      try {
        later(16); // half the refreshed token's life: due
        op.failTokenEndpoint = 503;
        const during = await agent.get('/token/op').expect(200);
        expect(during.body.accessToken).toBe(before.accessToken);
        expect(errors.filter((e) => (e as { code?: string }).code === 'provider_unavailable')).toHaveLength(1);
        // The provider just failed: the next request does not ask it again (cooldown), nor reports it again.
        await agent.get('/token/op').expect(200);
        expect(errors).toHaveLength(1);
        vi.useRealTimers();
        later(31); // expired, and the cooldown over
        op.failTokenEndpoint = 500;
        expect((await agent.get('/token/op').expect(503)).body.error).toBe('provider_unavailable');
        op.failTokenEndpoint = undefined;
        await agent.get('/token/op').expect(503); // cooling down: 2 s after a second failure in a row
        vi.useRealTimers();
        later(34);
        const after = await agent.get('/token/op').expect(200); // nothing was lost
        expect(after.body.accessToken).not.toBe(before.accessToken);
      } finally {
        vi.useRealTimers();
      }
    });

    it('replaces an access token the API refuses (401) before its expiry, once, and sends the request again', async () => {
      const agent = await start();
      await login(agent);
      const [accessToken] = op.issued.accessTokens;
      // An API that has stopped accepting the first access token (revoked on its side), not the grant.
      const seen: string[] = [];
      const api = createServer((req, res) => {
        seen.push(req.headers.authorization ?? '');
        res.writeHead(req.headers.authorization === `Bearer ${accessToken}` ? 401 : 200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
      await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
      try {
        const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}/me`;
        const res = await agent.get(`/fetch/op?url=${encodeURIComponent(url)}`).expect(200);
        expect(res.body).toEqual({ status: 200, body: { ok: true } });
        expect(op.counts.refresh_token).toBe(1);
        expect(seen).toEqual([`Bearer ${accessToken}`, `Bearer ${op.issued.accessTokens.at(-1)}`]);
      } finally {
        await new Promise<void>((resolve) => api.close(() => resolve()));
      }
    });
  });

  describe('logout', () => {
    it('revokes at the provider, deletes the tokens and lands on returnTo', async () => {
      const agent = await start();
      await login(agent);
      const [refreshToken] = op.issued.refreshTokens;
      const [accessToken] = op.issued.accessTokens;
      expect(op.issued.refreshTokens).toHaveLength(1);
      const res = await agent.post('/auth/op/logout?returnTo=/bye').set('accept', 'text/html').expect(302);
      expect(res.headers.location).toBe('/bye');
      expect(op.counts.revocation).toBe(1);
      const token = await agent.get('/token/op').expect(401);
      expect(token.body.error).toBe('not_connected');
      // The revocation worked, not merely reached the provider: nothing went to onError, and the
      // provider now refuses the refresh token the app held.
      expect(errors).toEqual([]);
      const refused = await refreshDirectly(op, refreshToken as string);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe('invalid_grant');
      // Revoking the refresh token ended the grant: its access token is dead too.
      const userinfo = await fetch(op.userinfo, { headers: { authorization: `Bearer ${accessToken}` } });
      expect(userinfo.status).toBe(401);
    });

    it('leaves the refresh token usable at the provider when there is no logout (control for the revocation check)', async () => {
      const agent = await start();
      await login(agent);
      const [refreshToken] = op.issued.refreshTokens;
      const accepted = await refreshDirectly(op, refreshToken as string);
      expect(accepted.status).toBe(200);
      expect(accepted.body.refresh_token).toEqual(expect.any(String));
    });

    it('refuses a cross-site logout (403 cross_site_request) and keeps the tokens', async () => {
      const agent = await start();
      await login(agent);
      const foreign = await agent.post('/auth/op/logout').set('origin', 'https://evil.example').expect(403);
      expect(foreign.body.error).toBe('cross_site_request');
      await agent.post('/auth/op/logout').set('sec-fetch-site', 'cross-site').expect(403);
      expect(op.counts.revocation).toBe(0);
      await agent.get('/token/op').expect(200);
      await agent
        .post('/auth/op/logout')
        .set('origin', new URL(BASE_URL).origin)
        .set('sec-fetch-site', 'same-origin')
        .expect(302);
      expect(op.counts.revocation).toBe(1);
    });

    it('does not let a request carrying the pre-logout cookie bring the tokens back', async () => {
      const agent = await start();
      await login(agent);
      const stale = await cookieOf(agent);
      await agent.post('/auth/op/logout').set('accept', 'application/json').expect(204);
      const res = await request(app.server).get('/token/op').set('cookie', stale).expect(401);
      expect(res.body.error).toBe('not_connected');
    });

    it('answers 204 to a client asking for JSON, and reads returnTo from a form body', async () => {
      const agent = await start();
      await login(agent);
      await agent.post('/auth/op/logout').set('accept', 'application/json').expect(204);
      await login(agent);
      const res = await agent.post('/auth/op/logout').type('form').send({ returnTo: '//evil.example' }).expect(302);
      expect(res.headers.location).toBe('/');
      await login(agent);
      const dotted = await agent.post('/auth/op/logout?returnTo=/..//evil.example').set('accept', 'text/html').expect(302);
      expect(dotted.headers.location).toBe('/');
    });

    it('lands on a safe returnTo sent with the logout, and on afterLogin for an unsafe one', async () => {
      const agent = await start({ afterLogin: '/home' });
      await login(agent);
      // Express's test app parses forms. The Koa test app has no body parser (none is among the
      // dev dependencies), so on Koa returnTo travels in the query.
      const logout = (returnTo: string) =>
        adapter.name.startsWith('express')
          ? agent.post('/auth/op/logout').type('form').send({ returnTo })
          : agent.post(`/auth/op/logout?returnTo=${encodeURIComponent(returnTo)}`).set('accept', 'text/html');
      const safe = await logout('/bye?from=logout');
      expect(safe.status).toBe(302);
      expect(safe.headers.location).toBe('/bye?from=logout');
      expect(op.counts.revocation).toBe(1);
      await agent.get('/token/op').expect(401);
      await login(agent);
      const unsafe = await logout('//evil.example');
      expect(unsafe.status).toBe(302);
      expect(unsafe.headers.location).toBe('/home');
      expect(op.counts.revocation).toBe(2);
    });
  });

  describe('requireToken', () => {
    it('redirects browsers to login with returnTo, gives API clients 401 JSON, and lets connected users through', async () => {
      const agent = await start();
      const page = await agent.get('/protected?x=1').set('accept', 'text/html,application/xhtml+xml').expect(302);
      expect(page.headers.location).toBe('/auth/op/login?returnTo=%2Fprotected%3Fx%3D1');
      const api = await agent.get('/protected').set('accept', 'application/json').expect(401);
      expect(api.body).toEqual({ error: 'not_connected', provider: 'op', login: '/auth/op/login?returnTo=%2Fprotected' });
      const callback = await login(agent, undefined, page.headers.location as string);
      expect(callback.headers.location).toBe('/protected?x=1');
      await agent.get('/protected').expect(200, 'protected');
    });
  });
});

/** A `Cookie` header after a response's `Set-Cookie` lines were applied to it, as a browser would. */
function withSetCookies(cookie: string, response: request.Response): string {
  const jar = new Map(
    cookie
      .split('; ')
      .filter(Boolean)
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)] as const),
  );
  for (const line of (response.headers['set-cookie'] as unknown as string[] | undefined) ?? []) {
    const [pair = ''] = line.split(';');
    const name = pair.slice(0, pair.indexOf('='));
    const value = pair.slice(pair.indexOf('=') + 1);
    if (value === '' || /max-age=0(;|$)/i.test(line)) jar.delete(name);
    else jar.set(name, value);
  }
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
}

/** The cookies an agent would send to the app. */
async function cookieOf(agent: request.Agent): Promise<string> {
  const jar = (agent as unknown as { jar: { getCookies(access: unknown): Array<{ name: string; value: string }> } }).jar;
  const { CookieAccessInfo } = await import('cookiejar');
  return jar
    .getCookies(new CookieAccessInfo('127.0.0.1', '/', false, false))
    .map((c) => `${c.name}=${c.value}`)
    .join('; ');
}
