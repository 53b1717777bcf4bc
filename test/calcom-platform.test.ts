/**
 * Cal.com platform managed users, as platform customers really get them: no browser step. The app
 * creates a managed user at Cal.com (server-side, with its client secret), hands the answer to
 * `importTokens` for its own user, and from then on `getToken` refreshes exactly once through
 * `/v2/oauth/{clientId}/refresh`; a refresh token refused as spent is recovered through
 * force-refresh when the app allows it. On every adapter, against the strict emulator.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth, memoryStore, type OAuth, OAuthError } from '../src/index.js';
import { calcomPlatform } from '../src/providers/index.js';
import { type Emulator, startCalcomPlatformEmulator } from '../emulators/index.js';
import { adapters, type RunningApp, userHeader } from './support/apps.js';
import { BASE_URL } from './support/authorization-server.js';

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startCalcomPlatformEmulator({ redirectUri: `${BASE_URL}/auth/cal/callback` });
});
afterAll(async () => {
  await emulator?.close();
});

/** What a platform customer's backend does: create the managed user; Cal.com answers its tokens. */
async function createManagedUser(email: string): Promise<{ data: { user: { id: number } } }> {
  const response = await fetch(emulator.endpoints.managedUsers as string, {
    method: 'POST',
    headers: { 'x-cal-secret-key': emulator.clientSecret, 'content-type': 'application/json' },
    body: JSON.stringify({ email }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { data: { user: { id: number } } };
}

/** Spends a refresh token behind the app's back, as a lost write or another system would. */
async function spend(refreshToken: string): Promise<void> {
  const response = await fetch(emulator.endpoints.refresh as string, {
    method: 'POST',
    headers: { 'x-cal-secret-key': emulator.clientSecret, 'content-type': 'application/json' },
    body: JSON.stringify({ refreshToken }),
  });
  expect(response.status).toBe(200);
}

describe.each(adapters)('Cal.com platform managed users on $name', (adapter) => {
  let app: RunningApp | undefined;
  afterAll(async () => {
    await app?.close();
  });

  let errors: unknown[] = [];

  async function start(forceRefresh: boolean, mistaken: { clientSecret?: string; refresh?: string } = {}): Promise<OAuth> {
    await app?.close();
    emulator.reset();
    errors = [];
    const credentials = { clientId: emulator.clientId, clientSecret: mistaken.clientSecret ?? emulator.clientSecret };
    const endpoints = {
      token: emulator.endpoints.token,
      refresh: mistaken.refresh ?? emulator.endpoints.refresh,
      recover: emulator.endpoints.recover,
    };
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: 's'.repeat(40),
      store: memoryStore(),
      // The app's own user, as its authentication knows it (here a header, for the test).
      subject: userHeader,
      providers: { cal: calcomPlatform({ ...credentials, endpoints, forceRefresh }) },
      hooks: { onError: (err) => errors.push(err) },
    });
    app = await adapter.start(oauth);
    return oauth;
  }

  it('imports the tokens Cal.com answered at creation, then refreshes them exactly once when due', async () => {
    const oauth = await start(false);
    emulator.accessTokenTtl = 30; // due at once with the default 60 s skew
    const created = await createManagedUser('ada@example.com');
    await oauth.tokens('ada').importTokens('cal', { answer: created, extras: { userId: created.data.user.id } });
    emulator.accessTokenTtl = 3600;

    const agent = request(app!.server);
    const responses = await Promise.all(Array.from({ length: 20 }, () => agent.get('/token/cal').set('x-user', 'ada')));
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(new Set(responses.map((r) => r.body.accessToken)).size).toBe(1);
    expect(emulator.counts.refresh).toBe(1);
    expect(responses[0]!.body.accessToken).toBe(emulator.issued.at(-1)!.accessToken);
    expect(responses[0]!.body.extras).toEqual({ userId: created.data.user.id });
    const api = await agent
      .get(`/fetch/cal?url=${encodeURIComponent(emulator.endpoints.api)}`)
      .set('x-user', 'ada')
      .expect(200);
    expect(api.body.status).toBe(200);
    expect(emulator.rejections).toEqual([]);
    // Another user of the app has no Cal.com tokens, and there is no login to send even a browser to.
    await agent
      .get('/token/cal')
      .set('x-user', 'grace')
      .expect(401, /not_connected/);
    const browser = { method: 'GET', url: '/deals', headers: { accept: 'text/html' }, native: {} };
    expect(await oauth.guard(oauth.tokens('grace'), 'cal', browser)).toEqual({
      status: 401,
      json: { error: 'not_connected', provider: 'cal' },
    });
  });

  it('recovers a refresh token refused as spent through force-refresh, when the app allows it', async () => {
    const oauth = await start(true);
    emulator.accessTokenTtl = 30;
    const created = await createManagedUser('linus@example.com');
    const imported = emulator.issued.at(-1)!;
    await oauth.tokens('linus').importTokens('cal', { answer: created, extras: { userId: created.data.user.id } });
    emulator.accessTokenTtl = 3600;
    await spend(imported.refreshToken as string);

    const res = await request(app!.server).get('/token/cal').set('x-user', 'linus').expect(200);
    expect(emulator.counts.refresh).toBe(3); // our spend, the refused refresh, the force-refresh
    expect(res.body.accessToken).toBe(emulator.issued.at(-1)!.accessToken);
    const api = await fetch(emulator.endpoints.api, { headers: { authorization: `Bearer ${res.body.accessToken}` } });
    expect(api.status).toBe(200);
    // The recovered refresh token is the one kept: the next refresh uses it.
    emulator.expireAccessTokens();
    const again = await request(app!.server)
      .get(`/fetch/cal?url=${encodeURIComponent(emulator.endpoints.api)}`)
      .set('x-user', 'linus')
      .expect(200);
    expect(again.body.status).toBe(200);
    expect(emulator.counts.refresh).toBe(4);
    // Refused: the spent refresh token, and the API call with the expired token (498) before the retry.
    expect(emulator.rejections.map((r) => [r.status, r.reason])).toEqual([
      [400, 'unknown (or already used) refresh token'],
      [498, 'expired access token'],
    ]);
  });

  it('without force-refresh allowed, a spent refresh token ends the login: reauth_required', async () => {
    const oauth = await start(false);
    emulator.accessTokenTtl = 30;
    const created = await createManagedUser('grace@example.com');
    const imported = emulator.issued.at(-1)!;
    await oauth.tokens('grace').importTokens('cal', { answer: created, extras: { userId: created.data.user.id } });
    await spend(imported.refreshToken as string);
    const res = await request(app!.server).get('/token/cal').set('x-user', 'grace').expect(401);
    expect(res.body).toMatchObject({ error: 'reauth_required', provider: 'cal', provider_error: 'invalid_grant' });
    expect(emulator.counts.refresh).toBe(2); // our spend and the refused refresh: no force-refresh
  });

  it.each<[string, () => { clientSecret?: string; refresh?: string }, number, string]>([
    ['a wrong client secret', () => ({ clientSecret: 'not-the-secret' }), 401, 'wrong x-cal-secret-key'],
    [
      'a client id Cal.com does not know',
      () => ({ refresh: (emulator.endpoints.refresh as string).replace(`/${emulator.clientId}/`, '/another-client/') }),
      400,
      'unknown client id in path',
    ],
  ])('a refresh refused for %s is invalid_client, and keeps the login', async (_case, mistaken, status, reason) => {
    const oauth = await start(false, mistaken());
    emulator.accessTokenTtl = 30;
    const created = await createManagedUser('mary@example.com');
    await oauth.tokens('mary').importTokens('cal', { answer: created, extras: { userId: created.data.user.id } });
    const res = await request(app!.server).get('/token/cal').set('x-user', 'mary').expect(502);
    expect(res.body).toMatchObject({ error: 'provider_error', provider: 'cal', provider_error: 'invalid_client' });
    expect(emulator.rejections.map((r) => [r.status, r.reason])).toEqual([[status, reason]]);
    expect(await oauth.tokens('mary').isConnected('cal')).toBe(true);
  });

  it('a force-refresh refused for a user Cal.com does not know is reported as invalid_request; the refusal stands', async () => {
    const oauth = await start(true);
    emulator.accessTokenTtl = 30;
    const created = await createManagedUser('otto@example.com');
    const imported = emulator.issued.at(-1)!;
    await oauth.tokens('otto').importTokens('cal', { answer: created, extras: { userId: 4242 } });
    await spend(imported.refreshToken as string);
    const res = await request(app!.server).get('/token/cal').set('x-user', 'otto').expect(401);
    expect(res.body).toMatchObject({ error: 'reauth_required', provider: 'cal', provider_error: 'invalid_grant' });
    expect(errors).toEqual([expect.objectContaining({ code: 'provider_error', provider: 'cal', error: 'invalid_request' })]);
    expect(emulator.rejections.map((r) => [r.status, r.reason])).toEqual([
      [400, 'unknown (or already used) refresh token'],
      [400, 'unknown managed user'],
    ]);
  });

  it('has no login route, and tells a malformed import at once', async () => {
    const oauth = await start(false);
    const agent = request(app!.server);
    const login = await agent.get('/auth/cal/login').set('accept', 'application/json').expect(404);
    expect(login.body.error).toBe('login_unavailable');
    await agent.get('/auth/cal/callback?code=abc&state=x').expect(404, /login_unavailable/);

    const user = oauth.tokens('someone');
    await expect(user.importTokens('cal', { accessToken: '' })).rejects.toMatchObject({
      code: 'config_invalid',
      field: 'tokens.accessToken',
    });
    await expect(user.importTokens('cal', { accessToken: 'a', expiresAt: Date.now() })).rejects.toMatchObject({
      code: 'config_invalid',
      field: 'tokens.expiresAt',
    });
    // Cal.com's error envelope handed over by mistake: no token in it.
    const error = { status: 'error', error: { code: 'BadRequestException', message: 'email must be an email' } };
    await expect(user.importTokens('cal', { answer: error })).rejects.toMatchObject({
      code: 'invalid_response',
      provider: 'cal',
    });
    await expect(user.importTokens('nope', { accessToken: 'a' })).rejects.toBeInstanceOf(OAuthError);
    expect(await user.isConnected('cal')).toBe(false);
  });
});
