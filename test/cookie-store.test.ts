/**
 * The default cookie store: each provider's tokens in a cookie of their own, split into chunks when
 * too big for one. No cookie may exceed 4096 bytes, and shrinking must delete stale chunks.
 */
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { cookieStore, createOAuth } from '../src/index.js';
import { oauth2 } from '../src/providers/index.js';
import { adapters, type RunningApp } from './support/apps.js';
import { freshTokens, startTokenEndpoint } from './support/token-endpoint.js';
import {
  BASE_URL,
  completeLogin,
  startAuthorizationServer,
  type TestServer,
  testProvider,
} from './support/authorization-server.js';

let op: TestServer;
beforeAll(async () => {
  op = await startAuthorizationServer(['one', 'two'], { jwtAccessTokens: true });
});
afterAll(async () => {
  await op?.close();
});

function provider() {
  return testProvider(op, ['api']);
}

describe.each(adapters)('cookie store on $name', (adapter) => {
  let app: RunningApp;
  afterEach(async () => {
    op.reset();
    await app?.close();
  });

  /** Two providers sharing a budget of one cookie. */
  const startOneCookieApp = () =>
    adapter.start(
      createOAuth({
        baseUrl: BASE_URL,
        secret: 's'.repeat(40),
        store: cookieStore({ maxChunks: 1 }),
        providers: { one: provider(), two: provider() },
      }),
    );

  it('keeps each provider’s sealed JWTs in a cookie of its own under 4096 bytes, reads and refreshes them, and deletes them at logout', async () => {
    const oauth = createOAuth({ baseUrl: BASE_URL, secret: 's'.repeat(40), providers: { one: provider(), two: provider() } });
    app = await adapter.start(oauth);
    const agent = request.agent(app.server);
    const sessionCookies: string[] = [];
    op.accessTokenTtl = 30; // both logins' tokens are due at once: each first getToken refreshes
    for (const name of ['one', 'two']) {
      const started = await agent.get(`/auth/${name}/login`).expect(302);
      const callback = await completeLogin(started.headers.location as string);
      const landed = await agent.get(callback.pathname + callback.search).expect(302);
      sessionCookies.push(...((landed.headers['set-cookie'] as unknown as string[]) ?? []));
    }
    op.accessTokenTtl = 3600;
    for (const line of sessionCookies) expect(Buffer.byteLength(line)).toBeLessThan(4096);
    expect(sessionCookies.filter((line) => /^oauth_session-(one|two)=[^;]/.test(line))).toHaveLength(2);

    const one = (await agent.get('/token/one').expect(200)).body;
    const two = (await agent.get('/token/two').expect(200)).body;
    expect(op.counts.refresh_token).toBe(2);
    expect(one.accessToken.split('.')).toHaveLength(3); // JWT access tokens
    expect(one.accessToken.length).toBeGreaterThan(500);
    expect(two.idToken.split('.')).toHaveLength(3);
    expect(one.accessToken).not.toBe(two.accessToken);
    // Each refresh rewrote its provider's cookie without losing the other provider's tokens.
    expect((await agent.get('/token/one').expect(200)).body.accessToken).toBe(one.accessToken);
    expect((await agent.get('/token/two').expect(200)).body.accessToken).toBe(two.accessToken);
    expect(op.counts.refresh_token).toBe(2);

    // Drop one provider, then the other: stale chunks are deleted, never left behind.
    await agent.post('/disconnect/two').expect(204);
    const after = await agent.get('/connected/one').expect(200);
    expect(after.body.connections).toEqual(['one']);
    const shrunk = await agent.post('/disconnect/one').expect(204);
    const cleared = (shrunk.headers['set-cookie'] as unknown as string[]).filter((l) => /Max-Age=0/.test(l));
    expect(cleared.length).toBeGreaterThanOrEqual(1);
    await agent.get('/token/one').expect(401);
  });

  it('refuses tokens needing more cookies than allowed with session_too_large, never dropping a cookie', async () => {
    app = await startOneCookieApp();
    const agent = request.agent(app.server);
    const login = async (name: string) => {
      const started = await agent.get(`/auth/${name}/login`).expect(302);
      const callback = await completeLogin(started.headers.location as string);
      return agent.get(callback.pathname + callback.search);
    };
    expect((await login('one')).status).toBe(302);
    const refused = await login('two');
    expect(refused.status).toBe(502);
    expect(refused.body.error).toBe('session_too_large');
    expect(op.counts.revocation).toBe(1); // tokens it cannot keep are given back
    expect(JSON.stringify(refused.headers['set-cookie'] ?? [])).not.toContain('oauth_session');
    const still = await agent.get('/connected/one').expect(200);
    expect(still.body.connections).toEqual(['one']); // the first login is intact
  });

  it('does not count a cookie that no longer unseals (an old secret) against the budget of another login', async () => {
    app = await startOneCookieApp();
    const browser = request(app.server);
    const started = await browser.get('/auth/two/login').expect(302);
    const transaction = (started.headers['set-cookie'] as unknown as string[]).map((line) => line.split(';')[0]);
    const callback = await completeLogin(started.headers.location as string);
    const stale = `oauth_session-one=${'Fe26.2*1*unreadable'.padEnd(200, 'x')}`;
    const landed = await browser
      .get(callback.pathname + callback.search)
      .set('Cookie', [...transaction, stale].join('; '))
      .expect(302);
    expect(JSON.stringify(landed.headers['set-cookie'])).toContain('oauth_session-two=');
  });

  it('counts every chunk of one login against the budget: tokens needing three cookies out of two are refused', async () => {
    const bulky = await startTokenEndpoint();
    try {
      const oauth = createOAuth({
        baseUrl: BASE_URL,
        secret: 's'.repeat(40),
        store: cookieStore({ maxChunks: 2 }),
        providers: {
          bulky: oauth2({
            authorization: `${bulky.origin}/authorize`,
            token: `${bulky.origin}/token`,
            clientId: 'c',
            clientSecret: 's',
          }),
        },
      });
      app = await adapter.start(oauth);
      const login = async (length: number) => {
        bulky.answer = () => ({ status: 200, body: freshTokens({ length }) });
        const agent = request.agent(app?.server);
        const started = await agent.get('/auth/bulky/login').expect(302);
        const state = new URL(started.headers.location as string).searchParams.get('state') as string;
        return agent.get(`/auth/bulky/callback?code=c&state=${state}`);
      };
      expect((await login(4000)).status).toBe(302); // two cookies
      const refused = await login(8000); // three
      expect(refused.status).toBe(502);
      expect(refused.body).toMatchObject({
        error: 'session_too_large',
        message: 'These tokens need more than 2 cookies. Keep tokens server-side instead (memoryStore() or redisStore()).',
      });
    } finally {
      await bulky.close();
    }
  });

  it('splits tokens too big for one cookie into chunks under 4096 bytes, and deletes stale chunks when they shrink', async () => {
    const bulky = await startTokenEndpoint();
    const tokensOf = (length: number) => () => ({ status: 200, body: freshTokens({ length, refreshToken: 'bulky-refresh' }) });
    try {
      const oauth = createOAuth({
        baseUrl: BASE_URL,
        secret: 's'.repeat(40),
        providers: {
          bulky: oauth2({
            authorization: `${bulky.origin}/authorize`,
            token: `${bulky.origin}/token`,
            clientId: 'bulky',
            clientSecret: 'bulky-secret-0123456789',
          }),
        },
      });
      app = await adapter.start(oauth);
      const agent = request.agent(app.server);
      const started = await agent.get('/auth/bulky/login').expect(302);
      const state = new URL(started.headers.location as string).searchParams.get('state') as string;
      bulky.answer = tokensOf(6000); // sealed, some 8 KB: three chunks
      const landed = await agent.get(`/auth/bulky/callback?code=c&state=${state}`).expect(302);
      const lines = (landed.headers['set-cookie'] as unknown as string[]).filter((l) => l.startsWith('oauth_session-bulky'));
      expect(lines.map((l) => l.split('=')[0])).toEqual([
        'oauth_session-bulky.0',
        'oauth_session-bulky.1',
        'oauth_session-bulky.2',
      ]);
      for (const line of lines) expect(Buffer.byteLength(line)).toBeLessThan(4096);
      const big = (await agent.get('/token/bulky').expect(200)).body; // the 30 s token is refreshed at first use
      expect(big.accessToken).toHaveLength(6000);

      bulky.answer = tokensOf(100); // the next refresh fits one cookie: every chunk goes
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 16_000, shouldAdvanceTime: true });
      const shrunk = await agent.get('/token/bulky').expect(200);
      vi.useRealTimers();
      expect(shrunk.body.accessToken).toHaveLength(100);
      const written = shrunk.headers['set-cookie'] as unknown as string[];
      expect(written.filter((l) => /^oauth_session-bulky=[^;]/.test(l))).toHaveLength(1);
      expect(written.filter((l) => /^oauth_session-bulky\.\d=;/.test(l) && /Max-Age=0/.test(l))).toHaveLength(3);
      expect((await agent.get('/token/bulky').expect(200)).body.accessToken).toBe(shrunk.body.accessToken);
    } finally {
      vi.useRealTimers();
      await bulky.close();
    }
  });
});
