/**
 * Token answers and cookies that the authorization server of the other tests never produces, from a
 * local token endpoint (test/support/token-endpoint.ts), on every adapter:
 * - a refresh answer without `refresh_token`: the previous one stays valid (RFC 6749 §6), so it is
 *   kept and sent again at the next refresh;
 * - an https `baseUrl`: the session cookie a login sets is `__Host-`, `Secure`, `HttpOnly`,
 *   `SameSite=Lax`, `Path=/`, without `Domain` (else browsers refuse it and no login sticks);
 * - which token an RFC 7009 revocation sends: the refresh token (it ends the grant), else the access
 *   token, each with its `token_type_hint`;
 * - what a preset puts in its code exchange where the real server does not check it (Dropbox Sign's
 *   `state`, which its spec requires and its server is not known to enforce).
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOAuth, memoryStore, type OAuthConfig, type TokenStore } from '../src/index.js';
import { dropboxSign, oauth2 } from '../src/providers/index.js';
import { adapters } from './support/apps.js';
import { freshTokens, startTokenEndpoint, type TokenEndpoint } from './support/token-endpoint.js';

let endpoint: TokenEndpoint;
beforeAll(async () => {
  endpoint = await startTokenEndpoint();
});
afterAll(async () => {
  await endpoint?.close();
});

function config(baseUrl: string, store?: TokenStore, revoke = false): OAuthConfig {
  return {
    baseUrl,
    secret: 's'.repeat(40),
    ...(store ? { store } : {}),
    providers: {
      p: oauth2({
        authorization: `${endpoint.origin}/authorize`,
        token: `${endpoint.origin}/token`,
        ...(revoke ? { revoke: `${endpoint.origin}/revoke` } : {}),
        clientId: 'client',
        clientSecret: 'client-secret-0123456789',
      }),
    },
  };
}

const cookiesOf = (res: request.Response) => (res.headers['set-cookie'] as unknown as string[] | undefined) ?? [];

describe.each(adapters)('$name adapter', (adapter) => {
  it.each([
    ['cookie', undefined],
    ['memory', memoryStore()],
  ] as const)(
    'keeps the refresh token when a refresh answer has none, and refreshes with it again (%s store)',
    async (_name, store) => {
      const app = await adapter.start(createOAuth(config('http://127.0.0.1:3999', store)));
      try {
        endpoint.requests = [];
        endpoint.answer = (req) => ({
          status: 200,
          body: freshTokens({ refreshToken: req.params.get('grant_type') === 'refresh_token' ? false : 'rt-original' }),
        });
        const browser = request.agent(app.server);
        const started = await browser.get('/auth/p/login').expect(302);
        const state = new URL(started.headers.location as string).searchParams.get('state') as string;
        await browser.get(`/auth/p/callback?code=c&state=${state}`).expect(302);
        const first = (await browser.get('/token/p').expect(200)).body; // the login's 30 s token: refreshed at first use
        vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 16_000, shouldAdvanceTime: true });
        const second = (await browser.get('/token/p').expect(200)).body; // past half its life: refreshed again
        vi.useRealTimers();
        expect(second.accessToken).not.toBe(first.accessToken);
        const refreshes = endpoint.requests.filter((r) => r.params.get('grant_type') === 'refresh_token');
        expect(refreshes.map((r) => r.params.get('refresh_token'))).toEqual(['rt-original', 'rt-original']);
      } finally {
        vi.useRealTimers();
        await app.close();
      }
    },
  );

  it.each([
    ['a refresh token', 'rt-kept', 'refresh_token'],
    ['only an access token', false, 'access_token'],
  ] as const)('revokes %s at logout (RFC 7009), with its hint', async (_case, refreshToken, hint) => {
    const app = await adapter.start(createOAuth(config('http://127.0.0.1:3999', undefined, true)));
    try {
      endpoint.revocations = [];
      endpoint.answer = () => ({ status: 200, body: { ...freshTokens({ refreshToken }), expires_in: 3600 } });
      const browser = request.agent(app.server);
      const started = await browser.get('/auth/p/login').expect(302);
      const state = new URL(started.headers.location as string).searchParams.get('state') as string;
      await browser.get(`/auth/p/callback?code=c&state=${state}`).expect(302);
      const { accessToken } = (await browser.get('/token/p').expect(200)).body;
      await browser.post('/auth/p/logout').set('accept', 'application/json').expect(204);
      const sent = endpoint.revocations.map((r) => [r.params.get('token'), r.params.get('token_type_hint')]);
      expect(sent).toEqual([[refreshToken || accessToken, hint]]);
      await browser.get('/token/p').expect(401);
    } finally {
      await app.close();
    }
  });

  it('sends the login’s state with Dropbox Sign’s code exchange, as its spec requires', async () => {
    const app = await adapter.start(
      createOAuth({
        ...config('http://127.0.0.1:3999'),
        providers: {
          p: dropboxSign({
            clientId: 'client',
            clientSecret: 'client-secret-0123456789',
            endpoints: {
              authorization: `${endpoint.origin}/oauth/authorize`,
              token: `${endpoint.origin}/token`,
              refresh: `${endpoint.origin}/token?refresh`,
            },
          }),
        },
      }),
    );
    try {
      endpoint.requests = [];
      endpoint.answer = () => ({ status: 200, body: freshTokens() });
      const browser = request.agent(app.server);
      const started = await browser.get('/auth/p/login').expect(302);
      const state = new URL(started.headers.location as string).searchParams.get('state') as string;
      await browser.get(`/auth/p/callback?code=c&state=${state}`).expect(302);
      expect(endpoint.requests.map((r) => [r.params.get('grant_type'), r.params.get('state')])).toEqual([
        ['authorization_code', state],
      ]);
    } finally {
      await app.close();
    }
  });

  it.each([
    ['cookie', undefined],
    ['memory', memoryStore()],
  ] as const)(
    'sets __Host- session cookies, Secure, HttpOnly, SameSite=Lax, Path=/, over https (%s store)',
    async (_name, store) => {
      const app = await adapter.start(createOAuth(config('https://app.example.test', store)));
      try {
        endpoint.answer = () => ({ status: 200, body: freshTokens() });
        const started = await request(app.server).get('/auth/p/login').expect(302);
        const [transaction] = cookiesOf(started);
        expect(transaction).toMatch(/^__Secure-oauth_tx\.[0-4]=[^;]+; Max-Age=600; Path=\/auth\/p\/; .*Secure/);
        const state = new URL(started.headers.location as string).searchParams.get('state') as string;
        const landed = await request(app.server)
          .get(`/auth/p/callback?code=c&state=${state}`)
          .set('cookie', (transaction as string).split(';')[0] as string)
          .expect(302);
        const session = cookiesOf(landed).find((line) => line.startsWith('__Host-oauth_session-p='));
        const attributes = (session as string).split(';').map((part) => part.trim().toLowerCase());
        expect(attributes).toEqual(expect.arrayContaining(['secure', 'httponly', 'samesite=lax', 'path=/']));
        expect(attributes.some((a) => a.startsWith('domain='))).toBe(false);
      } finally {
        await app.close();
      }
    },
  );
});
