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
 *   `state`, which its spec requires and its server is not known to enforce);
 * - a provider that hands out the same tokens at every login: a logout does not end the next login;
 * - an answer without `expires_in`: the token never expires, so it is never refreshed;
 * - a refresh answer without `scope`: the login's scope is kept (RFC 6749 §5.1: unchanged);
 * - the refresh cooldown after a nonsense answer (as after an outage), and none after a refusal;
 * - an OpenID login answered without an ID token: refused, since nothing checked its nonce.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOAuth, memoryStore, type OAuthConfig, type TokenStore } from '../src/index.js';
import { dropboxSign, oauth2, oidc } from '../src/providers/index.js';
import { adapters } from './support/apps.js';
import { freshTokens, startTokenEndpoint, type TokenEndpoint, type TokenRequest } from './support/token-endpoint.js';

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

/** Logs a new browser in at `p`, with whatever the endpoint answers now. */
async function logIn(browser: request.Agent, code = 'c'): Promise<void> {
  const started = await browser.get('/auth/p/login').expect(302);
  const state = new URL(started.headers.location as string).searchParams.get('state') as string;
  await browser.get(`/auth/p/callback?code=${code}&state=${state}`).expect(302);
}

const grantOf = (r: TokenRequest) => r.params.get('grant_type');
const refreshesSoFar = () => endpoint.requests.filter((r) => grantOf(r) === 'refresh_token').length;

/** Moves the clock `seconds` ahead (Date only; real time keeps running), for tokens to expire without waiting. */
function advance(seconds: number): void {
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + seconds * 1000, shouldAdvanceTime: true });
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

  it.each([
    ['cookie', undefined],
    ['memory', memoryStore()],
  ] as const)(
    'lets a login in again after a logout when the provider hands out the same tokens (%s store)',
    async (_name, store) => {
      const app = await adapter.start(createOAuth(config('http://127.0.0.1:3999', store)));
      try {
        const same = {
          access_token: 'at-always-the-same',
          token_type: 'Bearer',
          expires_in: 3600,
          refresh_token: 'rt-always-the-same',
        };
        endpoint.answer = () => ({ status: 200, body: same });
        const browser = request.agent(app.server);
        await logIn(browser);
        expect((await browser.get('/token/p').expect(200)).body.accessToken).toBe(same.access_token);
        await browser.post('/auth/p/logout').set('accept', 'application/json').expect(204);
        await browser.get('/token/p').set('accept', 'application/json').expect(401);
        await logIn(browser);
        expect((await browser.get('/token/p').expect(200)).body.accessToken).toBe(same.access_token);
        await browser.post('/disconnect/p').expect(204);
        await browser.get('/token/p').set('accept', 'application/json').expect(401);
        await logIn(browser);
        expect((await browser.get('/token/p').expect(200)).body.accessToken).toBe(same.access_token);
      } finally {
        await app.close();
      }
    },
  );

  it('refuses an OpenID login whose answer holds no ID token: the nonce it sent is then checked by nothing', async () => {
    const oauth = createOAuth({
      baseUrl: 'http://127.0.0.1:3999',
      secret: 's'.repeat(40),
      providers: { p: oidc({ issuer: endpoint.origin, clientId: 'client', clientSecret: 'client-secret-0123456789' }) },
    });
    const app = await adapter.start(oauth);
    try {
      endpoint.answer = () => ({ status: 200, body: freshTokens() });
      const browser = request.agent(app.server);
      const started = await browser.get('/auth/p/login').expect(302);
      const location = new URL(started.headers.location as string);
      expect(location.searchParams.get('scope')).toBe('openid profile email'); // oidc()'s default scopes
      expect(location.searchParams.get('nonce')).toMatch(/^[\w-]{43}$/);
      const state = location.searchParams.get('state') as string;
      const refused = await browser.get(`/auth/p/callback?code=c&state=${state}`).expect(502);
      expect(refused.body.error).toBe('invalid_response');
      await browser.get('/token/p').expect(401);
    } finally {
      await app.close();
    }
  });

  const clientAuthentications = [
    ['client_secret_basic', { authorization: expect.stringMatching(/^Basic /), client_id: null, client_secret: null }],
    ['client_secret_post', { authorization: undefined, client_id: 'client', client_secret: 'client-secret-0123456789' }],
    ['none', { authorization: undefined, client_id: 'client', client_secret: null }],
  ] as const;
  it.each(
    (['oauth2', 'oidc'] as const).flatMap((factory) =>
      clientAuthentications.map(([method, sent]) => [factory, method, sent] as const),
    ),
  )('authenticates an %s() client at the token endpoint with %s', async (factory, method, sent) => {
    const client = {
      clientId: 'client',
      clientSecret: method === 'none' ? undefined : 'client-secret-0123456789',
      tokenEndpointAuthMethod: method,
    };
    const provider =
      factory === 'oidc'
        ? oidc({ issuer: endpoint.origin, ...client, scopes: ['profile'] }) // no openid: no ID token to verify
        : oauth2({ authorization: `${endpoint.origin}/authorize`, token: `${endpoint.origin}/token`, ...client });
    const app = await adapter.start(
      createOAuth({ baseUrl: 'http://127.0.0.1:3999', secret: 's'.repeat(40), providers: { p: provider } }),
    );
    try {
      endpoint.requests = [];
      endpoint.answer = () => ({ status: 200, body: freshTokens() });
      await logIn(request.agent(app.server));
      const [exchange] = endpoint.requests;
      expect({
        authorization: exchange?.authorization,
        client_id: exchange?.params.get('client_id'),
        client_secret: exchange?.params.get('client_secret'),
      }).toEqual(sent);
    } finally {
      await app.close();
    }
  });

  it.each([
    [
      'an error answer',
      { status: 400, body: { error: 'invalid_grant', error_description: 'spent' } },
      { code: 'provider_error', message: 'The provider refused the request.', error: 'invalid_grant', errorDescription: 'spent' },
    ],
    [
      'a 401 challenge naming the error',
      {
        status: 401,
        body: '',
        contentType: 'text/plain',
        headers: { 'www-authenticate': 'Basic realm="token", error="invalid_client", error_description="unknown client"' },
      },
      {
        code: 'provider_error',
        message: 'The provider refused the client credentials.',
        error: 'invalid_client',
        errorDescription: 'unknown client',
      },
    ],
    [
      'a 401 challenge naming none',
      { status: 401, body: '', contentType: 'text/plain', headers: { 'www-authenticate': 'Basic realm="token"' } },
      { code: 'provider_error', message: 'The provider refused the client credentials.', error: 'invalid_client' },
    ],
    [
      'a failure page',
      { status: 503, body: '<h1>down</h1>', contentType: 'text/html' },
      { code: 'provider_unavailable', message: 'The provider did not answer in time or failed.' },
    ],
  ] as const)('reads %s at an oidc() code exchange, with a summary of what openid-client threw', async (_case, answer, error) => {
    const reported: unknown[] = [];
    const app = await adapter.start(
      createOAuth({
        baseUrl: 'http://127.0.0.1:3999',
        secret: 's'.repeat(40),
        hooks: { onError: (err) => void reported.push(err) },
        providers: {
          p: oidc({ issuer: endpoint.origin, clientId: 'client', clientSecret: 'client-secret-0123456789', scopes: ['profile'] }),
        },
      }),
    );
    try {
      endpoint.answer = () => answer;
      const browser = request.agent(app.server);
      const started = await browser.get('/auth/p/login').expect(302);
      const state = new URL(started.headers.location as string).searchParams.get('state') as string;
      await browser
        .get(`/auth/p/callback?code=the-code-0123&state=${state}`)
        .expect(error.code === 'provider_unavailable' ? 503 : 502);
      expect(reported).toEqual([expect.objectContaining(error)]);
      const { cause } = reported[0] as Error;
      expect(cause).toBeInstanceOf(Error);
      expect((cause as Error).message).toMatch(/^\w+Error: /); // the error's name first
      expect((cause as Error).message).not.toContain('down');
    } finally {
      await app.close();
    }
  });

  it('never refreshes a token the provider gave no lifetime (no expires_in)', async () => {
    const app = await adapter.start(createOAuth(config('http://127.0.0.1:3999', memoryStore())));
    try {
      endpoint.requests = [];
      endpoint.answer = () => ({
        status: 200,
        body: { access_token: 'at-forever', token_type: 'Bearer', refresh_token: 'rt-forever' },
      });
      const browser = request.agent(app.server);
      await logIn(browser);
      for (let i = 0; i < 3; i++) {
        const { body } = await browser.get('/token/p').expect(200);
        expect(body.accessToken).toBe('at-forever');
        expect(body.expiresAt).toBeUndefined();
      }
      advance(120); // past any skew: still nothing due
      expect((await browser.get('/token/p').expect(200)).body.accessToken).toBe('at-forever');
      expect(endpoint.requests.map(grantOf)).toEqual(['authorization_code']);
    } finally {
      vi.useRealTimers();
      await app.close();
    }
  });

  it('keeps the login’s scope when a refresh answer has none, and takes a refresh answer’s own scope', async () => {
    const app = await adapter.start(createOAuth(config('http://127.0.0.1:3999', memoryStore())));
    try {
      // The login's 30 s tokens are due at first use: getToken refreshes at once.
      const refreshScope = new Map([
        ['rt-scope-kept', undefined],
        ['rt-scope-changed', 'read'],
      ]);
      endpoint.answer = (req) => {
        if (grantOf(req) === 'authorization_code') {
          const refreshToken = req.params.get('code') === 'kept' ? 'rt-scope-kept' : 'rt-scope-changed';
          return { status: 200, body: { ...freshTokens({ refreshToken }), scope: 'read write' } };
        }
        const scope = refreshScope.get(req.params.get('refresh_token') ?? '');
        return { status: 200, body: { ...freshTokens({ refreshToken: false }), expires_in: 3600, ...(scope ? { scope } : {}) } };
      };
      const scopes: Record<string, unknown> = {};
      for (const code of ['kept', 'changed']) {
        const browser = request.agent(app.server);
        await logIn(browser, code);
        const before = refreshesSoFar();
        scopes[code] = (await browser.get('/token/p').expect(200)).body.scope;
        expect(refreshesSoFar()).toBe(before + 1);
      }
      expect(scopes).toEqual({ kept: 'read write', changed: 'read' });
    } finally {
      await app.close();
    }
  });
});

// The cooldown lives in the core: the newest Express and Koa suffice.
describe.each(adapters.filter(({ name }) => name === 'express' || name === 'koa'))(
  '$name adapter: refresh cooldown',
  (adapter) => {
    it.each([
      ['503 (an outage)', { status: 503, body: { error: 'temporarily_unavailable' } }, '503 provider_unavailable'],
      [
        '200 without access_token (nonsense)',
        { status: 200, body: { token_type: 'Bearer', expires_in: 3600 } },
        '502 invalid_response',
      ],
    ] as const)(
      'after a failed refresh of an expired token, %s, answers 503 without asking the provider again',
      async (_case, failure, first) => {
        const app = await adapter.start(createOAuth(config('http://127.0.0.1:3999', memoryStore())));
        try {
          endpoint.answer = () => ({ status: 200, body: freshTokens() });
          const browser = request.agent(app.server);
          await logIn(browser);
          advance(60); // the login's 30 s token is expired
          endpoint.answer = () => failure;
          const before = refreshesSoFar();
          const failed = await browser.get('/token/p').set('accept', 'application/json');
          expect(`${failed.status} ${failed.body.error}`).toBe(first);
          expect(refreshesSoFar()).toBe(before + 1);
          const cooling = await browser.get('/token/p').set('accept', 'application/json');
          expect(cooling.status).toBe(503);
          expect(cooling.body).toEqual({
            error: 'provider_unavailable',
            message: 'The provider failed a moment ago; the refresh is retried shortly.',
            provider: 'p',
          });
          expect(refreshesSoFar()).toBe(before + 1);
        } finally {
          vi.useRealTimers();
          await app.close();
        }
      },
    );

    it('starts no cooldown after a refusal: the next login’s refresh asks the provider at once', async () => {
      const app = await adapter.start(createOAuth(config('http://127.0.0.1:3999', memoryStore())));
      try {
        // The same refresh token at both logins: a cooldown of the refused one would hold the next.
        const login = () => ({ status: 200, body: freshTokens({ refreshToken: 'rt-refused-then-again' }) });
        endpoint.answer = login;
        const browser = request.agent(app.server);
        await logIn(browser);
        advance(60);
        endpoint.answer = (req) =>
          grantOf(req) === 'refresh_token' ? { status: 400, body: { error: 'invalid_grant' } } : login();
        const before = refreshesSoFar();
        const refused = await browser.get('/token/p').set('accept', 'application/json');
        expect(`${refused.status} ${refused.body.error}`).toBe('401 reauth_required');
        expect(refreshesSoFar()).toBe(before + 1);

        // Due at first use (30 s, within the 60 s skew), still valid: a cooldown would serve it without asking.
        await logIn(browser);
        endpoint.answer = (req) =>
          grantOf(req) === 'refresh_token' ? { status: 200, body: { ...freshTokens(), expires_in: 3600 } } : login();
        const refreshed = await browser.get('/token/p').set('accept', 'application/json');
        expect(refreshed.status).toBe(200);
        expect(refreshesSoFar()).toBe(before + 2);
      } finally {
        vi.useRealTimers();
        await app.close();
      }
    });
  },
);
