/**
 * A provider's dialect, as a profile describes it, on the wire and back, against a local endpoint
 * that records every request and answers what each test writes (test/support/token-endpoint.ts),
 * on every adapter: where the client credentials and the code go, which fields are left out, how
 * an RFC 7009 revocation authenticates; how a token answer is read (token types openid-client would
 * refuse, empty or mistyped fields, expiries in every unit, fields kept as extras and fields not);
 * how an error is read from each shape seen in the wild; what a token-info request adds, and what a
 * revocation that needs it does when it fails; a refused refresh's recovery request.
 */
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOAuth, memoryStore, type OAuth, OAuthError, type TokenSet, type TokenStore } from '../src/index.js';
import { fromProfile, type PresetOptions, type ProviderProfile } from '../src/providers/index.js';
import { adapters, type RunningApp } from './support/apps.js';
import { freshTokens, startTokenEndpoint, type TokenAnswer, type TokenEndpoint } from './support/token-endpoint.js';

const CLIENT_ID = 'dialect client:1';
const CLIENT_SECRET = 'dialect-client-secret-0123456789';
const USER = 'alice';

let endpoint: TokenEndpoint;
beforeAll(async () => {
  endpoint = await startTokenEndpoint();
});
afterAll(async () => {
  await endpoint?.close();
});
beforeEach(() => {
  endpoint.requests = [];
  endpoint.revocations = [];
  endpoint.infoRequests = [];
  endpoint.answer = () => ({ status: 200, body: freshTokens() });
  endpoint.revokeAnswer = () => ({ status: 200, body: '', contentType: 'text/plain' });
  endpoint.infoAnswer = () => ({ status: 404, body: { error: 'not_found' } });
  endpoint.apiRequests = [];
  endpoint.apiAnswer = () => ({ status: 200, body: { ok: true } });
});

type Profile = Omit<ProviderProfile, 'name' | 'authorization' | 'token'> & {
  authorization?: Partial<ProviderProfile['authorization']>;
  token?: Partial<ProviderProfile['token']>;
};

/** The endpoint's standard OAuth 2.0, changed where `profile` says. */
function dialect(profile: Profile = {}, options: Partial<PresetOptions> = {}) {
  const { authorization, token, ...rest } = profile;
  return fromProfile(
    {
      name: 'dialect',
      authorization: { url: `${endpoint.origin}/authorize`, ...authorization },
      token: { url: `${endpoint.origin}/token`, ...token },
      ...rest,
    },
    { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, ...options },
  );
}

const body = (answer: unknown): TokenAnswer => ({ status: 200, body: answer });
const tokensWith = (fields: Record<string, unknown>) => ({ access_token: 'at-1', token_type: 'Bearer', ...fields });
const now = () => Math.floor(Date.now() / 1000);

describe.each(adapters)('$name adapter', (adapter) => {
  let app: RunningApp | undefined;
  let oauth: OAuth;
  let reported: OAuthError[];
  let browser: request.Agent;

  async function start(
    profile?: Profile,
    options?: Partial<PresetOptions>,
    store: 'memory' | 'cookie' | 'memory by browser' | TokenStore = 'memory',
  ) {
    reported = [];
    oauth = createOAuth({
      baseUrl: 'http://127.0.0.1:3999',
      secret: 's'.repeat(40),
      // Memory: one app user, so that the test reads the tokens outside a request too.
      ...(store === 'memory' ? { store: memoryStore(), subject: () => USER } : {}),
      ...(store === 'memory by browser' ? { store: memoryStore() } : {}),
      ...(typeof store === 'object' ? { store, subject: () => USER } : {}),
      // `op` as well: the test app's guarded route (`/protected`) asks for it.
      providers: { p: dialect(profile, options), op: dialect(profile, options) },
      hooks: { onError: (err) => reported.push(err as OAuthError) },
    });
    app = await adapter.start(oauth);
    browser = request.agent(app.server);
  }
  afterAll(async () => {
    await app?.close();
  });
  beforeEach(async () => {
    await app?.close();
    app = undefined;
  });

  /** The callback's answer to a login the endpoint answers with `answer`. */
  async function logIn(answer?: TokenAnswer, provider = 'p') {
    if (answer) endpoint.answer = () => answer;
    const started = await browser.get(`/auth/${provider}/login`).expect(302);
    const state = new URL(started.headers.location as string).searchParams.get('state') as string;
    return browser.get(`/auth/${provider}/callback?code=the-code&state=${state}`);
  }
  const tokens = async () => (await browser.get('/token/p').expect(200)).body as TokenSet;
  const inProcess = () => oauth.tokens(USER).getToken('p');
  const lastRequest = () => endpoint.requests.at(-1);

  describe('the requests', () => {
    it('sends the client credentials in named body fields, and no client_id when the profile says none', async () => {
      await start({ token: { clientAuth: { in: 'body', id: 'appId', secret: 'appSecret' } } });
      await logIn().then((r) => expect(r.status).toBe(302));
      expect(lastRequest()?.authorization).toBeUndefined();
      expect(Object.fromEntries(lastRequest()?.params ?? [])).toEqual({
        grant_type: 'authorization_code',
        code: 'the-code',
        redirect_uri: 'http://127.0.0.1:3999/auth/p/callback',
        code_verifier: expect.any(String),
        appId: CLIENT_ID,
        appSecret: CLIENT_SECRET,
      });

      await start({ token: { clientAuth: { in: 'body', id: null, secret: 'client_secret' } } });
      await logIn().then((r) => expect(r.status).toBe(302));
      expect(lastRequest()?.params.has('client_id')).toBe(false);
      expect(lastRequest()?.params.get('client_secret')).toBe(CLIENT_SECRET);
    });

    it('sends a public client’s id in the body and no secret anywhere, at a refresh URL of its own too', async () => {
      await start(
        { token: { clientAuth: { in: 'none' } }, refresh: { url: `${endpoint.origin}/token/refresh` } },
        { clientSecret: undefined },
      );
      await logIn().then((r) => expect(r.status).toBe(302));
      expect(lastRequest()?.authorization).toBeUndefined();
      expect(lastRequest()?.params.get('client_id')).toBe(CLIENT_ID);
      expect(lastRequest()?.params.has('client_secret')).toBe(false);
    });

    it('sends the code as a bearer token, and the refresh with the client credentials as usual', async () => {
      await start({ token: { code: 'bearer' } });
      await logIn(body(tokensWith({ expires_in: 0, refresh_token: 'rt-1' }))).then((r) => expect(r.status).toBe(302));
      expect(lastRequest()?.authorization).toBe('Bearer the-code');
      expect(lastRequest()?.params.has('code')).toBe(false);
      endpoint.answer = () => body(tokensWith({ access_token: 'at-2', expires_in: 600 }));
      expect((await tokens()).accessToken).toBe('at-2');
      expect(lastRequest()?.params.get('grant_type')).toBe('refresh_token');
      expect(lastRequest()?.authorization).toMatch(/^Basic /);
    });

    it('asks for no scope when none is configured, and for scopes joined and named as the profile says', async () => {
      await start();
      const plain = new URL((await browser.get('/auth/p/login').expect(302)).headers.location as string);
      expect(plain.searchParams.has('scope')).toBe(false);
      await start({ authorization: { scopeParam: 'user_scope', scopeSeparator: ',' } }, { scopes: ['read', 'write'] });
      const scoped = new URL((await browser.get('/auth/p/login').expect(302)).headers.location as string);
      expect(scoped.searchParams.get('user_scope')).toBe('read,write');
      expect(scoped.searchParams.has('scope')).toBe(false);
    });

    it('sends no nonce for an openid scope when the profile names no OpenID issuer (no ID token it could check)', async () => {
      await start({}, { scopes: ['openid'] });
      const location = new URL((await browser.get('/auth/p/login').expect(302)).headers.location as string);
      expect(location.searchParams.get('scope')).toBe('openid');
      expect(location.searchParams.has('nonce')).toBe(false);
      await start({ oidc: { issuer: endpoint.origin } }, { scopes: ['openid'] });
      const openid = new URL((await browser.get('/auth/p/login').expect(302)).headers.location as string);
      expect(openid.searchParams.get('nonce')).toMatch(/^[\w-]{43}$/);
    });

    it('never refreshes at a provider without refresh: a due token asks for a new login', async () => {
      await start({ refresh: false });
      await logIn(body(tokensWith({ expires_in: 0, refresh_token: 'rt-1' })));
      expect((await browser.get('/token/p').expect(401)).body).toMatchObject({ error: 'reauth_required' });
      expect(endpoint.requests).toHaveLength(1);
    });

    it('leaves out the fields the profile omits', async () => {
      await start({ token: { omit: ['redirect_uri', 'code_verifier'] } });
      await logIn().then((r) => expect(r.status).toBe(302));
      expect([...(lastRequest()?.params.keys() ?? [])].sort()).toEqual(['code', 'grant_type']);
    });

    it('reports a refused revocation with the tokens it quotes taken out', async () => {
      await start({ revoke: { kind: 'rfc7009', url: `${endpoint.origin}/revoke` } });
      await logIn(body(tokensWith({ refresh_token: 'rt-quoted' })));
      endpoint.revokeAnswer = (req) => ({
        status: 400,
        body: { error: 'invalid_request', error_description: `cannot revoke ${req.params.get('token')} for at-1` },
      });
      await browser.post('/disconnect/p').expect(204);
      expect(reported).toEqual([
        expect.objectContaining({ code: 'provider_error', errorDescription: 'cannot revoke [redacted] for [redacted]' }),
      ]);
    });

    it('revokes at logout with the credentials where the profile’s revocation wants them', async () => {
      await start({
        revoke: { kind: 'rfc7009', url: `${endpoint.origin}/revoke`, clientAuth: { in: 'body', secret: 'client_secret' } },
      });
      await logIn(body(tokensWith({ refresh_token: 'rt-1' })));
      await browser.post('/disconnect/p').expect(204);
      const [revocation] = endpoint.revocations;
      expect(revocation?.authorization).toBeUndefined();
      expect(revocation?.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(Object.fromEntries(revocation?.params ?? [])).toEqual({
        token: 'rt-1',
        token_type_hint: 'refresh_token',
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
      });
    });
  });

  describe('a token answer', () => {
    it.each(['user', 'xbearer', 'bearerx', 'mac'])(
      'reads a token type openid-client does not know (%s) as Bearer',
      async (type) => {
        await start();
        await logIn(body(tokensWith({ token_type: type }))).then((r) => expect(r.status).toBe(302));
        expect((await tokens()).tokenType).toBe('Bearer');
      },
    );

    it('keeps a DPoP token type', async () => {
      await start();
      await logIn(body(tokensWith({ token_type: 'DPoP' }))).then((r) => expect(r.status).toBe(302));
      expect((await tokens()).tokenType).toMatch(/^dpop$/i);
    });

    it.each([
      ['empty', ''],
      ['a number', 42],
    ])('keeps no refresh token that is %s: a due token then asks for a new login', async (_name, refreshToken) => {
      await start();
      await logIn(body(tokensWith({ refresh_token: refreshToken, expires_in: 0 }))).then((r) => expect(r.status).toBe(302));
      expect((await browser.get('/token/p').expect(401)).body).toMatchObject({
        error: 'reauth_required',
        message: 'The access token expired and cannot be refreshed.',
      });
      expect(endpoint.requests).toHaveLength(1);
      await browser.get('/token/p').expect(401); // and it is gone
      await logIn(body(tokensWith({ refresh_token: refreshToken, expires_in: 0 })));
      await expect(inProcess()).rejects.toMatchObject({ code: 'reauth_required', provider: 'p' });
    });

    it('serves a token that is due but not expired while there is nothing to refresh it with', async () => {
      await start();
      await logIn(body(tokensWith({ expires_in: 30 }))); // due at once: the refresh skew is 60 s
      expect((await tokens()).accessToken).toBe('at-1');
      expect(endpoint.requests).toHaveLength(1);
    });

    it('keeps no scope that is not text', async () => {
      await start();
      await logIn(body(tokensWith({ scope: ['read', 'write'] }))).then((r) => expect(r.status).toBe(302));
      expect((await tokens()).scope).toBeUndefined();
    });

    it('keeps no ID token that is not text (a plain OAuth 2.0 profile asks for none)', async () => {
      await start();
      await logIn(body(tokensWith({ id_token: 42 }))).then((r) => expect(r.status).toBe(302));
      expect((await tokens()).idToken).toBeUndefined();
      expect(reported).toEqual([]);
    });

    it.each([
      ['seconds', {}, { refresh_token_expires_in: 600 }, 660],
      ['epoch seconds', { kind: 'epoch-seconds', path: 'refresh_expires_at' }, { refresh_expires_at: 'epoch+600' }, 660],
      // No time: left out (the tokens are kept as long as an app user's are), not a refused login.
      ['text that is no number', {}, { refresh_token_expires_in: 'soon' }, 400 * 24 * 3600],
    ] as const)(
      "keeps the tokens as long as the refresh token's lifetime given in %s says",
      async (_name, refreshExpiry, fields, ttl) => {
        const inner = memoryStore();
        const ttls: Array<number | undefined> = [];
        const store: TokenStore = {
          ...inner,
          put: (key, provider, sealed, seconds) => {
            ttls.push(seconds);
            return inner.put(key, provider, sealed, seconds);
          },
        };
        await start('kind' in refreshExpiry ? { response: { refreshExpiry } } : {}, {}, store);
        const given = Object.fromEntries(
          Object.entries(fields).map(([name, value]) => [name, value === 'epoch+600' ? now() + 600 : value]),
        );
        await logIn(body(tokensWith({ refresh_token: 'rt-1', expires_in: 3600, ...given }))).then((r) =>
          expect(r.status).toBe(302),
        );
        expect(ttls).toHaveLength(1);
        expect(ttls[0]).toBeGreaterThanOrEqual(ttl - 2);
        expect(ttls[0]).toBeLessThanOrEqual(ttl);
      },
    );

    it.each([
      ['text that is no number', 'soon'],
      ['empty text', ''],
      ['blank text', '  '],
      ['a negative number', -5],
      ['an object', {}],
    ])('refuses a login whose expiry is %s (invalid_response)', async (_name, expiresIn) => {
      await start();
      const refused = await logIn(body(tokensWith({ expires_in: expiresIn })));
      expect(refused.status).toBe(502);
      expect(reported).toEqual([
        expect.objectContaining({
          code: 'invalid_response',
          message: "The provider's token answer gives an access token expiry that is not a time.",
        }),
      ]);
    });

    it.each([
      ['absent', {}],
      ['null', { expires_in: null }],
    ])('reads an expiry that is %s as none', async (_name, fields) => {
      await start();
      await logIn(body(tokensWith(fields))).then((r) => expect(r.status).toBe(302));
      expect((await tokens()).expiresAt).toBeUndefined();
    });

    it.each([
      ['seconds, as text', { kind: 'seconds', path: 'expires_in' }, '3600', 3600],
      // Seconds beyond ten years are no lifetime (see openid.ts): read as epochs, these would be one.
      ['seconds, above 1e9', { kind: 'seconds', path: 'expires_in' }, 2e9, undefined],
      ['seconds or epoch: 1e9 is seconds', { kind: 'seconds-or-epoch', path: 'expires_in' }, 1e9, undefined],
      ['seconds or epoch: above 1e9 is an epoch', { kind: 'seconds-or-epoch', path: 'expires_in' }, 'epoch+3600', 3600],
      ['epoch milliseconds', { kind: 'epoch-ms', path: 'expires_at' }, 'epoch-ms+3600', 3600],
      ['epoch seconds in the past', { kind: 'epoch-seconds', path: 'expires_at' }, 1000, 0],
    ] as const)('reads an expiry in %s', async (_name, expiry, given, seconds) => {
      await start({ response: { expiry } });
      const value = given === 'epoch+3600' ? now() + 3600 : given === 'epoch-ms+3600' ? (now() + 3600) * 1000 : given;
      const before = now();
      await logIn(body(tokensWith({ [expiry.path]: value }))).then((r) => expect(r.status).toBe(302));
      const { expiresAt } = await inProcess().catch(() => ({ expiresAt: -1 }));
      // A token already due (0 s left) is refreshed at once and this endpoint has no refresh token to give.
      if (seconds === 0) return expect(expiresAt).toBe(-1);
      if (seconds === undefined) return expect(expiresAt).toBeUndefined();
      // An epoch goes to openid-client as seconds left and comes back as an epoch: whole seconds, twice.
      expect(expiresAt).toBeGreaterThanOrEqual(before + seconds - 2);
      expect(expiresAt).toBeLessThanOrEqual(now() + seconds + 1);
    });

    it('keeps every field it did not read as an extra, and none it read under another name or a standard one', async () => {
      await start({ response: { refreshToken: 'renew', accessToken: 'token', expiry: { kind: 'seconds', path: 'ttl' } } });
      await logIn(
        body({ token: 'at-1', renew: 'rt-1', ttl: 600, token_type: 'Bearer', workspace: 'w-1', access_token: 'decoy' }),
      );
      const set = await inProcess();
      expect(set.accessToken).toBe('at-1');
      expect(set.extras).toEqual({ workspace: 'w-1' });
    });

    it('keeps only the extras the profile names, and none that is absent', async () => {
      await start({ response: { extras: ['account.id', 'account.missing', 'region', 'team.id'] } });
      await logIn(body(tokensWith({ account: { id: 'acc-1' }, region: 'eu', other: 'x', team: null })));
      expect((await inProcess()).extras).toEqual({ id: 'acc-1', region: 'eu' });
    });

    it('signs in when an answer with an access token also holds an error field', async () => {
      await start();
      await logIn(body(tokensWith({ error: 'superfluous' }))).then((r) => expect(r.status).toBe(302));
      expect((await tokens()).accessToken).toBe('at-1');
    });
  });

  describe('an error answer', () => {
    it.each([
      ['RFC 6749', 400, { error: 'invalid_grant', error_description: 'spent' }, 'invalid_grant', 'spent'],
      ['with a message', 400, { error: 'invalid_grant', message: 'spent' }, 'invalid_grant', 'spent'],
      ['with an empty error code', 400, { error: '', message: 'spent' }, 'invalid_request', undefined],
      ['nested (error_name)', 400, { error: { error_name: 'bad_code', error_msg: 'spent' } }, 'bad_code', 'spent'],
      ['nested (code)', 400, { error: { code: 'bad_code', message: 'spent' } }, 'bad_code', 'spent'],
      ['nested (error)', 400, { error: { error: 'bad_code', error_description: 'spent' } }, 'bad_code', 'spent'],
      ['nested, without a code', 400, { error: { message: 'spent' } }, 'error', 'spent'],
      ['a list', 400, { errors: [{ code: 'bad_code', title: 'spent' }] }, 'bad_code', 'spent'],
      ['a list with a detail', 400, { errors: [{ detail: 'spent' }] }, 'error', 'spent'],
      ['a status', 400, { status: 'error', message: 'spent' }, 'error', 'spent'],
      ['ok: false', 400, { ok: false, message: 'spent' }, 'error', 'spent'],
      ['a status, with 200', 200, { status: 'error', message: 'spent' }, 'error', 'spent'],
      ['ok: false, with 200', 200, { ok: false }, 'error', undefined],
      ['no error at all, 400', 400, { nothing: true }, 'invalid_request', undefined],
      ['no error at all, 500', 500, { nothing: true }, 'server_error', undefined],
    ])('reads an error %s', async (_name, status, answer, error, description) => {
      await start();
      const refused = await logIn({ status, body: answer });
      expect(refused.status).toBe(status >= 500 ? 503 : 502);
      expect(reported).toEqual([expect.objectContaining({ code: status >= 500 ? 'provider_unavailable' : 'provider_error' })]);
      if (status < 500) expect(reported[0]).toMatchObject({ error, errorDescription: description });
    });

    it('reads an error where the profile says first, a numeric code as text', async () => {
      await start({ errors: { read: [{ error: 'fault.id' }, { error: 'fault.code', description: 'fault.text' }] } });
      await logIn({ status: 400, body: { fault: { id: '', code: 1001, text: 'spent' }, error: 'ignored' } });
      expect(reported[0]).toMatchObject({ code: 'provider_error', error: '1001', errorDescription: 'spent' });
      await start({ errors: { read: [{ error: 'faults.1.id', description: 'faults.1.text' }] } });
      await logIn({ status: 400, body: { faults: [{ id: 'first' }, { id: 'second', text: 'spent' }] } });
      expect(reported[0]).toMatchObject({ error: 'second', errorDescription: 'spent' });
      await start({ errors: { read: [{ error: 'faults.10.id' }] } });
      const faults = Array.from({ length: 11 }, (_, index) => ({ id: `fault-${index}` }));
      await logIn({ status: 400, body: { faults } });
      expect(reported[0]).toMatchObject({ error: 'fault-10' });
    });

    it.each([
      [503, 'text/html', 'provider_unavailable'],
      [400, 'text/plain', 'invalid_response'],
    ])('reads an answer that is no JSON (%i) by its status', async (status, contentType, code) => {
      await start();
      const refused = await logIn({ status, body: '<html>down</html>', contentType });
      expect(refused.status).toBe(status >= 500 ? 503 : 502);
      expect(reported).toEqual([expect.objectContaining({ code })]);
    });
  });

  describe('token info', () => {
    const info = {
      url: `${endpoint?.origin}/info`,
      extras: { account: 'account.id', site: 'account.site' },
      dnsLabels: ['site'],
    };
    const withInfo = (): Profile => ({
      tokenInfo: { ...info, url: `${endpoint.origin}/info` },
      revoke: { kind: 'request', url: `${endpoint.origin}/revoke/{site}`, method: 'DELETE', auth: 'bearer' },
    });

    it('adds what the token-info answer tells, a host label only when it is one', async () => {
      await start(withInfo(), { headers: { 'x-app': 'demo' } });
      endpoint.infoAnswer = () => body({ account: { id: 7, site: 'a' } });
      await logIn(body(tokensWith({})));
      expect(endpoint.infoRequests[0]?.headers).toMatchObject({
        authorization: 'Bearer at-1',
        accept: 'application/json',
        'x-app': 'demo',
      });
      expect((await inProcess()).extras).toEqual({ account: 7, site: 'a' });

      endpoint.infoAnswer = () => body({ account: { site: 'evil.example/x' } });
      await logIn(body(tokensWith({})));
      expect((await inProcess()).extras).toEqual({});
    });

    it('revokes at the host the token info names, with the token as a bearer', async () => {
      await start(withInfo());
      endpoint.infoAnswer = () => body({ account: { site: 'site-1' } });
      await logIn(body(tokensWith({})));
      await browser.post('/disconnect/p').expect(204);
      expect(endpoint.revocations).toMatchObject([
        { method: 'DELETE', url: '/revoke/site-1', authorization: 'Bearer at-1', body: '' },
      ]);
      expect(reported).toEqual([]);
    });

    it.each([
      [500, 'provider_unavailable'],
      [429, 'provider_unavailable'],
      [401, 'provider_error'],
    ])('reports a revocation it cannot address when token info fails (%i) at login and at logout', async (status, code) => {
      await start(withInfo());
      endpoint.infoAnswer = () => ({ status, body: { error: 'nope' } });
      await logIn(body(tokensWith({}))).then((r) => expect(r.status).toBe(302));
      await browser.post('/disconnect/p').expect(204);
      expect(endpoint.infoRequests).toHaveLength(2);
      expect(endpoint.revocations).toEqual([]);
      expect(reported).toEqual([
        expect.objectContaining({ code, message: `The provider refused the token-info request (${status}).` }),
      ]);
    });

    it('reports a token-info answer that is no JSON object', async () => {
      await start(withInfo());
      endpoint.infoAnswer = () => body(['site-1']);
      await logIn(body(tokensWith({})));
      await browser.post('/disconnect/p').expect(204);
      expect(reported).toEqual([
        expect.objectContaining({ code: 'invalid_response', message: 'The token-info answer is not a JSON object.' }),
      ]);
    });

    it('reports a host label the token info does not give', async () => {
      await start(withInfo());
      endpoint.infoAnswer = () => body({ account: { id: 1 } });
      await logIn(body(tokensWith({})));
      await browser.post('/disconnect/p').expect(204);
      expect(reported).toEqual([
        expect.objectContaining({
          code: 'invalid_response',
          message: 'Not revoked: the revocation URL needs {site}, which the provider did not tell as a DNS label for this login.',
        }),
      ]);
    });
  });

  describe('a revocation request of the provider’s own', () => {
    it('sends the client credentials, or the token in a JSON body, as the profile says', async () => {
      await start({
        revoke: { kind: 'request', url: `${endpoint.origin}/revoke/grant`, method: 'POST', auth: 'basic', tokenInBody: true },
      });
      await logIn(body(tokensWith({})));
      await browser.post('/disconnect/p').expect(204);
      const [revocation] = endpoint.revocations;
      expect(revocation).toMatchObject({ method: 'POST', body: JSON.stringify({ access_token: 'at-1' }) });
      expect(revocation?.headers['content-type']).toBe('application/json');
      const [id, secret] = Buffer.from((revocation?.authorization ?? '').replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':');
      // Form-encoded before base64 (RFC 6749 §2.3.1): the space is a `+`.
      expect([id, secret]).toEqual(['dialect+client%3A1', CLIENT_SECRET]);
    });

    it.each([
      [503, 'provider_unavailable'],
      [500, 'provider_unavailable'],
      [404, 'provider_error'],
    ])('reports a refused revocation (%i), and logs out all the same', async (status, code) => {
      await start({ revoke: { kind: 'request', url: `${endpoint.origin}/revoke/grant`, method: 'DELETE', auth: 'bearer' } });
      endpoint.revokeAnswer = () => ({ status, body: { error: 'nope' } });
      await logIn(body(tokensWith({})));
      await browser.post('/disconnect/p').expect(204);
      expect(endpoint.revocations[0]?.body).toBe('');
      expect(reported).toEqual([expect.objectContaining({ code, message: `The provider refused the revocation (${status}).` })]);
      expect((await browser.get('/connected/p').expect(200)).body.connected).toBe(false);
    });
  });

  describe('a logout', () => {
    const sessionCookies = (res: request.Response) =>
      ((res.headers['set-cookie'] as unknown as string[] | undefined) ?? []).filter((c) => c.startsWith('oauth_session'));

    it('clears the session id cookie of a server-side session, and sets none when there is nothing to end', async () => {
      await start({}, {}, 'memory by browser');
      const landed = await logIn();
      expect(sessionCookies(landed)).toEqual([expect.stringMatching(/^oauth_session-p=[^;]+;/)]);
      const ended = await browser.post('/auth/p/logout').set('accept', 'application/json').expect(204);
      expect(sessionCookies(ended)).toEqual([expect.stringMatching(/^oauth_session-p=;.*Max-Age=0/)]);
      const again = await browser.post('/auth/p/logout').set('accept', 'application/json').expect(204);
      expect(sessionCookies(again)).toEqual([]);
    });

    it('sets no session cookie for tokens kept by app user', async () => {
      await start();
      expect(sessionCookies(await logIn())).toEqual([]);
      const ended = await browser.post('/auth/p/logout').set('accept', 'application/json').expect(204);
      expect(sessionCookies(ended)).toEqual([]);
      expect(await oauth.tokens(USER).isConnected('p')).toBe(false);
    });
  });

  describe('a store that fails', () => {
    /** A memory store whose reads throw `failure` once `failing` is set. */
    function failingStore(failure: () => Error) {
      const inner = memoryStore();
      const control = { failing: false };
      const store: TokenStore = {
        ...inner,
        get: (key, providers) => (control.failing ? Promise.reject(failure()) : inner.get(key, providers)),
      };
      return { store, control };
    }

    it('answers 503 store_unavailable, naming no host the store’s own error names', async () => {
      const { store, control } = failingStore(() => new Error('connect ECONNREFUSED 10.0.0.5:6379'));
      await start({}, {}, store);
      await logIn();
      control.failing = true;
      const answer = await browser.get('/token/p').expect(503);
      expect(answer.body).toEqual({ error: 'store_unavailable', message: 'The token store is unavailable.' });
      expect(answer.text).not.toContain('10.0.0.5');
      await expect(inProcess()).rejects.toMatchObject({
        cause: expect.objectContaining({ message: expect.stringContaining('10.0.0.5') }),
      });
    });

    it('passes on an OAuthError the store throws itself', async () => {
      const { store, control } = failingStore(
        () => new OAuthError('store_unavailable', 'The session database is in maintenance.'),
      );
      await start({}, {}, store);
      await logIn();
      control.failing = true;
      expect((await browser.get('/token/p').expect(503)).body.message).toBe('The session database is in maintenance.');
    });
  });

  describe('a refused refresh', () => {
    const dueLogin = () => logIn(body(tokensWith({ expires_in: 30, refresh_token: 'rt-1' }))); // due, not expired

    it.each(['memory', 'cookie'] as const)(
      'ends a grant the provider no longer accepts (%s store), leaving a cookie to its next request',
      async (store) => {
        await start({}, {}, store);
        await dueLogin();
        endpoint.answer = () => ({ status: 400, body: { error: 'invalid_grant', error_description: 'revoked' } });
        const refused = await browser.get('/token/p').expect(401);
        expect(refused.body).toMatchObject({
          error: 'reauth_required',
          message: 'The provider no longer accepts this login. Please sign in again.',
          provider_error: 'invalid_grant',
        });
        // Another instance may be setting this browser's refreshed cookie right now: not deleted here.
        const cleared = ((refused.headers['set-cookie'] as unknown as string[] | undefined) ?? []).filter((c) =>
          /Max-Age=0/.test(c),
        );
        expect(cleared).toEqual(store === 'cookie' ? [] : expect.any(Array));
        // The next request finds the grant ended; on the cookie store, it clears the stale copy now.
        const next = await browser.get('/token/p').expect(401);
        expect(next.body).toMatchObject({ error: 'not_connected', provider: 'p' });
        if (store === 'cookie') {
          const setCookies = (next.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
          expect(setCookies.filter((c) => /Max-Age=0/.test(c))).not.toEqual([]);
        }
        expect(endpoint.requests).toHaveLength(2);
      },
    );

    it('sends a browser to log in again at a guarded route, and tells an API client where', async () => {
      await start();
      await logIn(body(tokensWith({ expires_in: 30, refresh_token: 'rt-1' })), 'op');
      endpoint.answer = () => ({ status: 400, body: { error: 'invalid_grant' } });
      const api = await browser.get('/protected').set('accept', 'application/json').expect(401);
      expect(api.body).toEqual({ error: 'reauth_required', provider: 'op', login: '/auth/op/login?returnTo=%2Fprotected' });
      const page = await browser.get('/protected').set('accept', 'text/html').expect(302);
      expect(page.headers.location).toBe('/auth/op/login?returnTo=%2Fprotected');
    });

    it('ends the grant when the refused tokens are the successor of those a request read', async () => {
      await start();
      await logIn(body(tokensWith({ expires_in: 0, refresh_token: 'rt-1' })));
      const holder = oauth.tokens(USER);
      expect(await holder.isConnected('p')).toBe(true); // the holder has read at-1
      endpoint.answer = () => body(tokensWith({ access_token: 'at-2', expires_in: 0, refresh_token: 'rt-2' }));
      expect((await inProcess()).accessToken).toBe('at-2'); // another request refreshes: at-2, due at once
      endpoint.answer = () => ({ status: 400, body: { error: 'invalid_grant' } });
      await expect(holder.getToken('p')).rejects.toMatchObject({ code: 'reauth_required' });
      expect(endpoint.requests.at(-1)?.params.get('refresh_token')).toBe('rt-2');
      // The store held the refused successor, not newer tokens: removed.
      expect(await oauth.tokens(USER).isConnected('p')).toBe(false);
    });

    it.each([
      ['a new access token', { accessToken: 'at-2', refreshToken: 'rt-1' }],
      ['a new refresh token', { accessToken: 'at-1', refreshToken: 'rt-2' }],
    ])('keeps tokens written between the refused refresh and their removal (%s), and hands them out', async (_name, newer) => {
      // A memory store that writes `newer` (sealed by the app itself) just before the read that
      // decides the removal: the refused refresh's own read of the store comes first, untouched.
      const inner = memoryStore();
      const puts: string[] = [];
      let writeBeforeGet: number | undefined; // how many reads to let through first
      let newerSealed = '';
      const store: TokenStore = {
        ...inner,
        get: async (key, providers) => {
          if (writeBeforeGet !== undefined && writeBeforeGet-- === 0) await inner.put(key, 'p', newerSealed, undefined);
          return inner.get(key, providers);
        },
        put: async (key, provider, sealed, ttl) => {
          puts.push(sealed);
          await inner.put(key, provider, sealed, ttl);
        },
      };
      await start({}, {}, store);
      await dueLogin();
      const refused = puts.at(-1) as string;
      await oauth.tokens(USER).importTokens('p', { ...newer, scope: 'newer', expiresAt: now() + 3600 });
      newerSealed = puts.at(-1) as string;
      await inner.put(`user:${USER}`, 'p', refused, undefined);

      endpoint.answer = () => {
        writeBeforeGet = 1;
        return { status: 400, body: { error: 'invalid_grant' } };
      };
      const session = oauth.tokens(USER);
      await expect(session.getToken('p')).rejects.toMatchObject({ code: 'reauth_required' });
      expect(writeBeforeGet).toBe(-1); // the newer tokens went in before the second read
      // The same session goes on with the newer tokens, and so does the next one.
      const kept = { accessToken: newer.accessToken, scope: 'newer' };
      expect(await session.getToken('p')).toMatchObject(kept);
      expect(await oauth.tokens(USER).getToken('p')).toMatchObject(kept);
      expect(endpoint.requests).toHaveLength(2);
    });

    it('keeps the tokens when a failing provider (5xx) names invalid_grant: it is down, the grant may live', async () => {
      await start();
      await dueLogin();
      endpoint.answer = () => ({ status: 503, body: { error: 'invalid_grant' } });
      expect((await tokens()).accessToken).toBe('at-1'); // the old token, while it works
      expect(await oauth.tokens(USER).isConnected('p')).toBe(true);
      expect(reported).toEqual([expect.objectContaining({ code: 'provider_unavailable' })]);
    });

    it('takes the tokens a sibling stored when it spent the refresh token first, the access token unchanged', async () => {
      await start();
      await dueLogin();
      // The refresh is refused as spent: meanwhile a sibling's refresh rotated the refresh token alone.
      endpoint.answer = async () => {
        await oauth.tokens(USER).importTokens('p', { accessToken: 'at-1', refreshToken: 'rt-2', scope: 'sibling' });
        return { status: 400, body: { error: 'invalid_grant' } };
      };
      expect(await inProcess()).toMatchObject({ accessToken: 'at-1', scope: 'sibling' });
      expect(endpoint.requests).toHaveLength(2);
    });

    it('answers any other refusal as it is and keeps the tokens, even while the old one works', async () => {
      await start();
      await dueLogin();
      endpoint.answer = () => ({ status: 401, body: { error: 'invalid_client' } });
      expect((await browser.get('/token/p').expect(502)).body).toMatchObject({
        error: 'provider_error',
        provider_error: 'invalid_client',
      });
      endpoint.answer = () => body(tokensWith({ access_token: 'at-2', expires_in: 600 }));
      expect((await tokens()).accessToken).toBe('at-2');
    });
  });

  describe("req.oauth.fetch, against an API (the endpoint's /info)", () => {
    const api = () => `/fetch/p?url=${encodeURIComponent(`${endpoint.origin}/info`)}`;

    it('sends an API refusal back as it is when the refresh it made gives the same token', async () => {
      await start();
      await logIn(body(tokensWith({ expires_in: 600, refresh_token: 'rt-1' })));
      endpoint.infoAnswer = () => ({ status: 401, body: { error: 'expired' } });
      endpoint.answer = () => body(tokensWith({ expires_in: 600 })); // the same access token, at-1
      expect((await browser.get(api()).expect(200)).body).toEqual({ status: 401, body: { error: 'expired' } });
      expect(endpoint.infoRequests.map((r) => r.authorization)).toEqual(['Bearer at-1']);
      expect(endpoint.requests.map((r) => r.params.get('grant_type'))).toEqual(['authorization_code', 'refresh_token']);
    });

    it('retries with the refreshed token after a status the profile says means expired', async () => {
      await start({ expiredStatuses: [403] });
      await logIn(body(tokensWith({ expires_in: 600, refresh_token: 'rt-1' })));
      endpoint.infoAnswer = (req) =>
        req.authorization === 'Bearer at-2' ? body({ ok: true }) : { status: 403, body: { error: 'expired' } };
      endpoint.answer = () => body(tokensWith({ access_token: 'at-2', expires_in: 600 }));
      expect((await browser.get(api()).expect(200)).body).toEqual({ status: 200, body: { ok: true } });
      expect(endpoint.infoRequests.map((r) => r.authorization)).toEqual(['Bearer at-1', 'Bearer at-2']);
    });
  });

  describe('oauth.fetch, against an API (the endpoint’s /api)', () => {
    const bodies: Array<[string, () => RequestInit['body'], string]> = [
      ['no body (null)', () => null, ''],
      ['text', () => 'name=deal', 'name=deal'],
      ['URLSearchParams', () => new URLSearchParams({ name: 'deal' }), 'name=deal'],
      ['a Blob', () => new Blob(['name=deal']), 'name=deal'],
      ['an ArrayBuffer', () => new TextEncoder().encode('name=deal').buffer as ArrayBuffer, 'name=deal'],
      ['a Uint8Array', () => new TextEncoder().encode('name=deal'), 'name=deal'],
    ];
    it.each(bodies)('sends %s again with the refreshed token after a 401', async (_name, make, sent) => {
      await start();
      await logIn(body(tokensWith({ expires_in: 600, refresh_token: 'rt-1' })));
      endpoint.apiAnswer = (req) => (req.authorization === 'Bearer at-2' ? body({ ok: true }) : { status: 401, body: {} });
      endpoint.answer = () => body(tokensWith({ access_token: 'at-2', expires_in: 600 }));
      const answer = await oauth.tokens(USER).fetch('p', `${endpoint.origin}/api/deals`, { method: 'POST', body: make() });
      expect(answer.status).toBe(200);
      expect(endpoint.apiRequests.map((r) => [r.authorization, r.body])).toEqual([
        ['Bearer at-1', sent],
        ['Bearer at-2', sent],
      ]);
    });

    it('takes the token another request refreshed meanwhile, instead of refreshing again', async () => {
      await start();
      await logIn(body(tokensWith({ expires_in: 600, refresh_token: 'rt-1' })));
      let refused = 0;
      endpoint.apiAnswer = async (req) => {
        if (req.authorization === 'Bearer at-2') return body({ ok: true });
        // The second refusal comes late: by then the first request has refreshed.
        if (++refused === 2) await new Promise((resolve) => setTimeout(resolve, 300));
        return { status: 401, body: {} };
      };
      endpoint.answer = () => body(tokensWith({ access_token: 'at-2', expires_in: 600, refresh_token: 'rt-2' }));
      const api = `${endpoint.origin}/api/deals`;
      const answers = await Promise.all([oauth.tokens(USER).fetch('p', api), oauth.tokens(USER).fetch('p', api)]);
      expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
      expect(endpoint.requests.map((r) => r.params.get('grant_type'))).toEqual(['authorization_code', 'refresh_token']);
    });

    it('sends a form body again too', async () => {
      await start();
      await logIn(body(tokensWith({ expires_in: 600, refresh_token: 'rt-1' })));
      endpoint.apiAnswer = (req) => (req.authorization === 'Bearer at-2' ? body({ ok: true }) : { status: 401, body: {} });
      endpoint.answer = () => body(tokensWith({ access_token: 'at-2', expires_in: 600 }));
      const form = new FormData();
      form.set('name', 'deal');
      const answer = await oauth.tokens(USER).fetch('p', `${endpoint.origin}/api/deals`, { method: 'POST', body: form });
      expect(answer.status).toBe(200);
      expect(endpoint.apiRequests.map((r) => r.authorization)).toEqual(['Bearer at-1', 'Bearer at-2']);
      for (const request of endpoint.apiRequests) expect(request.body).toContain('name="name"\r\n\r\ndeal');
    });
  });

  describe('recovery after a refused refresh', () => {
    const recovering = (): Profile => ({ recover: { url: `${endpoint.origin}/token/recover/{user}` } });

    async function refusedRefresh(recovery: TokenAnswer) {
      await logIn(body(tokensWith({ expires_in: 0, refresh_token: 'rt-1', user: 'u-1' })));
      endpoint.answer = (req) =>
        req.url.startsWith('/token/recover') ? recovery : { status: 400, body: { error: 'invalid_grant' } };
      return browser.get('/token/p');
    }

    it('mints new tokens with the refresh request’s credentials', async () => {
      await start(recovering());
      const recovered = await refusedRefresh(body(tokensWith({ access_token: 'at-2', expires_in: 600 })));
      expect(recovered.status).toBe(200);
      expect(recovered.body.accessToken).toBe('at-2');
      expect(lastRequest()).toMatchObject({
        method: 'POST',
        url: '/token/recover/u-1',
        authorization: expect.stringMatching(/^Basic /),
      });
    });

    it.each([
      [500, 'provider_unavailable', undefined],
      [429, 'provider_unavailable', undefined],
      [400, 'provider_error', 'gone'],
    ])('reports a refused recovery (%i) and asks for a new login', async (status, code, error) => {
      await start(recovering());
      const refused = await refusedRefresh({ status, body: { error: 'gone', error_description: 'no such grant' } });
      expect(refused.status).toBe(401);
      expect(reported).toEqual([expect.objectContaining({ code, error })]);
      if (code === 'provider_error') expect(reported[0]?.message).toBe('The provider refused the request.');
      else expect(reported[0]?.message).toBe('The provider did not answer in time or failed.');
    });

    it('recovers nothing for a login without what the URL needs', async () => {
      await start(recovering());
      await logIn(body(tokensWith({ expires_in: 0, refresh_token: 'rt-1' })));
      endpoint.answer = () => ({ status: 400, body: { error: 'invalid_grant' } });
      await browser.get('/token/p').expect(401);
      expect(endpoint.requests.map((r) => r.url)).toEqual(['/token', '/token']);
      expect(reported).toEqual([
        expect.objectContaining({
          code: 'provider_error',
          error: 'invalid_grant',
          message: 'This login cannot be recovered: it was not imported with what recovery needs.',
        }),
      ]);
    });
  });
});
