/**
 * The default cookie store with tokens too big for one cookie: two providers whose access and
 * ID tokens are JWTs. No cookie may exceed 4096 bytes, and shrinking must delete stale chunks.
 */
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cookieStore, createOAuth } from '../src/index.js';
import { adapters, type RunningApp } from './support/apps.js';
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

  it('splits sealed JWTs over cookies under 4096 bytes, reads and refreshes them, and deletes stale chunks', async () => {
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
    expect(sessionCookies.some((line) => line.startsWith('oauth_session.1='))).toBe(true);

    const one = (await agent.get('/token/one').expect(200)).body;
    const two = (await agent.get('/token/two').expect(200)).body;
    expect(op.counts.refresh_token).toBe(2);
    expect(one.accessToken.split('.')).toHaveLength(3); // JWT access tokens
    expect(one.accessToken.length).toBeGreaterThan(500);
    expect(two.idToken.split('.')).toHaveLength(3);
    expect(one.accessToken).not.toBe(two.accessToken);
    // Each refresh rewrote the chunked session without losing the other provider's tokens.
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
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: 's'.repeat(40),
      store: cookieStore({ maxChunks: 1 }),
      providers: { one: provider(), two: provider() },
    });
    app = await adapter.start(oauth);
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
});
