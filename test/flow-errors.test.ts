/**
 * The errors the login routes answer before any provider is called, exactly as a client and the
 * app see them, on every adapter: the JSON body (code, fixed message, provider) and the error
 * `hooks.onError` receives. The provider named is the one of the route, cut to 100 characters when
 * it is not configured (a name from the URL, of any length, must not grow logs or answers).
 *
 * The same for a callback of a login in flight whose parameters are refused before any code is
 * exchanged (RFC 6749 §4.1.2.1's `error`, RFC 9207's `iss`, the code itself): what the hooks get
 * (the provider's `error` cut to 100 characters, its description to 500), and what the answer shows.
 *
 * And which cookie a login takes when the browser already has five logins of the provider in
 * flight (all its slots taken): the oldest login's, so that one is the login dropped.
 */
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createOAuth, OAuthError } from '../src/index.js';
import { calcomPlatform, oauth2 } from '../src/providers/index.js';
import { adapters, type RunningApp } from './support/apps.js';
import { BASE_URL, startAuthorizationServer, type TestServer, testProvider } from './support/authorization-server.js';

const LONG_NAME = 'p'.repeat(300);
const EVIL = 'https://evil.example';
const TX = 'oauth_tx.'; // a login's cookie, one of five slots: oauth_tx.0 to oauth_tx.4 (over http)

/** Each request, and the body it is answered with (`status` is the code's, README's error table). */
const cases: Array<{
  name: string;
  send: (agent: request.Agent) => request.Test;
  status: number;
  body: { error: string; message: string; provider: string };
}> = [
  {
    name: 'a login at a provider that is not configured',
    send: (agent) => agent.get('/auth/nope/login'),
    status: 404,
    body: { error: 'unknown_provider', message: 'No such provider is configured.', provider: 'nope' },
  },
  {
    name: 'a login at a 300-character provider name (named by its first 100 characters)',
    send: (agent) => agent.get(`/auth/${LONG_NAME}/login`),
    status: 404,
    body: { error: 'unknown_provider', message: 'No such provider is configured.', provider: LONG_NAME.slice(0, 100) },
  },
  ...['login', 'callback?code=abc&state=unknownstate0123456789'].map((route) => ({
    name: `/auth/cal/${route} of a provider whose tokens the app imports`,
    send: (agent: request.Agent) => agent.get(`/auth/cal/${route}`),
    status: 404,
    body: {
      error: 'login_unavailable',
      message: 'This provider has no browser login: the app imports its tokens.',
      provider: 'cal',
    },
  })),
  {
    name: 'a callback whose state no login of this browser started',
    send: (agent) => agent.get('/auth/op/callback?code=abc&state=unknownstate0123456789'),
    status: 400,
    body: {
      error: 'state_mismatch',
      message: 'This login is unknown, expired or already used. Please start again.',
      provider: 'op',
    },
  },
  {
    name: 'a logout posted from another origin',
    send: (agent) => agent.post('/auth/op/logout').set('origin', 'https://evil.example'),
    status: 403,
    body: { error: 'cross_site_request', message: 'Logout is accepted only from this site.', provider: 'op' },
  },
];

describe.each(adapters)('$name', (adapter) => {
  let app: RunningApp;
  const reported: unknown[] = [];
  beforeAll(async () => {
    // None of these requests reaches a provider: its endpoints are never called.
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: 'flow-errors-app-secret-0123456789-abcdef',
      hooks: { onError: (err) => reported.push(err) },
      providers: {
        op: oauth2({
          authorization: 'https://op.invalid/authorize',
          token: 'https://op.invalid/token',
          clientId: 'c',
          clientSecret: 's',
        }),
        cal: calcomPlatform({ clientId: 'c', clientSecret: 's' }),
      },
    });
    app = await adapter.start(oauth);
  });
  afterAll(async () => {
    await app?.close();
  });
  beforeEach(() => {
    reported.length = 0;
  });

  it.each(cases)('answers $name with its code, message and provider, and reports the same', async ({ send, status, body }) => {
    const res = await send(request.agent(app.server)).set('accept', 'application/json').expect(status);
    expect(res.body).toEqual(body);
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeInstanceOf(OAuthError);
    expect(reported[0]).toMatchObject({ code: body.error, message: body.message, provider: body.provider });
  });

  describe('a login in a browser whose five slots are all taken', () => {
    afterEach(() => {
      vi.useRealTimers();
      vi.restoreAllMocks();
    });

    /** Starts a login with these cookies; the one transaction cookie it sets, as `name=value`. */
    async function startLogin(cookies: string[]): Promise<string> {
      const res = await request(app.server).get('/auth/op/login').set('cookie', cookies.join('; ')).expect(302);
      const set = (res.headers['set-cookie'] as unknown as string[]).filter((line) => line.startsWith(TX));
      expect(set).toHaveLength(1);
      return set[0]!.split(';')[0]!;
    }
    const nameOf = (cookie: string) => cookie.slice(0, cookie.indexOf('='));

    it('takes the slot of the oldest login, wherever that is', async () => {
      // Each login takes the last free slot, so the oldest ends in the last one, not in the first.
      vi.spyOn(Math, 'random').mockReturnValue(0.99);
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      const cookies: string[] = [];
      for (let i = 0; i < 5; i++) {
        cookies.push(await startLogin(cookies));
        vi.advanceTimersByTime(1000); // the next login starts a second later
      }
      expect(cookies.map(nameOf)).toEqual(['4', '3', '2', '1', '0'].map((slot) => TX + slot));
      expect(nameOf(await startLogin(cookies))).toBe(`${TX}4`);
    });

    it('takes the first slot when no login is older than another (none is readable)', async () => {
      const cookies = ['0', '1', '2', '3', '4'].map((slot) => `${TX + slot}=junk`);
      expect(nameOf(await startLogin(cookies))).toBe(`${TX}0`);
    });
  });
});

/**
 * Callbacks of a login in flight, refused on their parameters alone. `oidc` is oidc-provider, which
 * promises RFC 9207's `iss`; `custom` is a hand-written definition whose client names no issuer (an
 * `iss` is then not checked) and whose own denied errors leave out `access_denied` (RFC 6749's code
 * is a decline whatever a definition says).
 */
const callbackCases: Array<{
  name: string;
  provider: 'oidc' | 'custom';
  params: (state: string, issuer: string) => Array<[string, string]>;
  status: number;
  body: { error: string; message: string; provider: string; provider_error?: string };
  reported?: { error?: string; errorDescription?: string };
}> = [
  ...(['code', 'iss'] as const).map((param) => ({
    name: `a callback repeating ${param}`,
    provider: 'oidc' as const,
    params: (state: string, issuer: string): Array<[string, string]> => [
      ['code', 'abc'],
      ['state', state],
      ['iss', issuer],
      [param, param === 'iss' ? issuer : 'def'],
    ],
    status: 400,
    body: { error: 'invalid_callback', message: `The callback repeats the ${param} parameter.`, provider: 'oidc' },
  })),
  {
    name: 'a callback repeating error',
    provider: 'oidc',
    params: (state, issuer) => [
      ['error', 'access_denied'],
      ['error', 'server_error'],
      ['state', state],
      ['iss', issuer],
    ],
    status: 400,
    body: { error: 'invalid_callback', message: 'The callback repeats the error parameter.', provider: 'oidc' },
  },
  {
    name: 'a callback from another issuer',
    provider: 'oidc',
    params: (state) => [
      ['code', 'abc'],
      ['state', state],
      ['iss', EVIL],
    ],
    status: 400,
    body: {
      error: 'invalid_callback',
      message: 'The callback comes from another issuer than the one this login was sent to.',
      provider: 'oidc',
    },
  },
  {
    name: 'a callback without the iss its issuer promises',
    provider: 'oidc',
    params: (state) => [
      ['code', 'abc'],
      ['state', state],
    ],
    status: 400,
    body: { error: 'invalid_callback', message: 'The callback lacks the iss parameter its issuer promises.', provider: 'oidc' },
  },
  {
    name: 'a callback without a code',
    provider: 'oidc',
    params: (state, issuer) => [
      ['state', state],
      ['iss', issuer],
    ],
    status: 400,
    body: { error: 'invalid_callback', message: 'The callback carries no authorization code.', provider: 'oidc' },
  },
  {
    name: 'a callback whose code has a control character',
    provider: 'oidc',
    params: (state, issuer) => [
      ['code', 'ab\u0001c'],
      ['state', state],
      ['iss', issuer],
    ],
    status: 400,
    body: {
      error: 'invalid_callback',
      message: 'The authorization code has characters no code can have.',
      provider: 'oidc',
    },
  },
  {
    name: 'a declined sign-in',
    provider: 'oidc',
    params: (state, issuer) => [
      ['error', 'access_denied'],
      ['error_description', 'The user said no'],
      ['state', state],
      ['iss', issuer],
    ],
    status: 403,
    body: { error: 'access_denied', message: 'The sign-in was declined.', provider: 'oidc', provider_error: 'access_denied' },
    reported: { error: 'access_denied', errorDescription: 'The user said no' },
  },
  {
    name: 'a sign-in the provider could not complete',
    provider: 'oidc',
    params: (state, issuer) => [
      ['error', 'server_error'],
      ['state', state],
      ['iss', issuer],
    ],
    status: 502,
    body: {
      error: 'provider_error',
      message: 'The provider could not complete the sign-in.',
      provider: 'oidc',
      provider_error: 'server_error',
    },
    reported: { error: 'server_error', errorDescription: undefined },
  },
  {
    name: 'an unknown 300-character error with a 600-character description',
    provider: 'oidc',
    params: (state, issuer) => [
      ['error', 'e'.repeat(300)],
      ['error_description', 'd'.repeat(600)],
      ['state', state],
      ['iss', issuer],
    ],
    status: 502,
    body: { error: 'provider_error', message: 'The provider could not complete the sign-in.', provider: 'oidc' },
    reported: { error: 'e'.repeat(100), errorDescription: 'd'.repeat(500) },
  },
  {
    name: 'access_denied at a provider whose denied errors leave it out, with an iss it cannot check',
    provider: 'custom',
    params: (state) => [
      ['error', 'access_denied'],
      ['state', state],
      ['iss', EVIL],
    ],
    status: 403,
    body: { error: 'access_denied', message: 'The sign-in was declined.', provider: 'custom', provider_error: 'access_denied' },
  },
];

describe.each(adapters)('$name, callback parameters', (adapter) => {
  let op: TestServer;
  let app: RunningApp;
  const reported: unknown[] = [];
  beforeAll(async () => {
    op = await startAuthorizationServer(['oidc']);
    const plain = oauth2({
      authorization: 'https://op.invalid/authorize',
      token: 'https://op.invalid/token',
      clientId: 'c',
      clientSecret: 's',
    });
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: 'flow-errors-app-secret-0123456789-abcdef',
      hooks: { onError: (err) => reported.push(err) },
      providers: {
        oidc: testProvider(op),
        custom: {
          ...plain,
          deniedErrors: [],
          connect: async () => ({ ...(await plain.connect()), issuer: undefined, issRequired: false }),
        },
        // A provider of the app's own making whose client fails with an error of its own (no OAuthError).
        own: {
          ...plain,
          connect: async () => ({
            ...(await plain.connect()),
            issuer: undefined,
            issRequired: false,
            exchangeCode: async () => {
              throw new Error('socket hang up while sending code-123');
            },
          }),
        },
      },
    });
    app = await adapter.start(oauth);
  });
  afterAll(async () => {
    await app?.close();
    await op?.close();
  });
  beforeEach(() => {
    reported.length = 0;
  });

  it("answers a provider client's own failure as invalid_response, naming the provider and nothing of it", async () => {
    const agent = request.agent(app.server);
    const login = await agent.get('/auth/own/login').expect(302);
    const state = new URL(login.headers.location as string).searchParams.get('state') ?? '';
    const res = await agent.get(`/auth/own/callback?code=code-123&state=${state}`).set('accept', 'application/json');
    expect(res.status).toBe(502);
    expect(res.body).toEqual({ error: 'invalid_response', message: 'The provider call failed unexpectedly.', provider: 'own' });
    expect(reported).toEqual([
      expect.objectContaining({
        code: 'invalid_response',
        provider: 'own',
        cause: expect.objectContaining({ message: expect.stringContaining('socket hang up') }),
      }),
    ]);
  });

  it.each(callbackCases)(
    'answers $name with its code and message, and reports it',
    async ({ provider, params, status, body, reported: fields }) => {
      const agent = request.agent(app.server);
      const login = await agent.get(`/auth/${provider}/login`).expect(302);
      const state = new URL(login.headers.location as string).searchParams.get('state') ?? '';
      const query = new URLSearchParams(params(state, op.issuer));
      const res = await agent.get(`/auth/${provider}/callback?${query}`).set('accept', 'application/json').expect(status);
      expect(res.body).toEqual(body);
      expect(op.counts.authorization_code).toBe(0);
      expect(reported).toHaveLength(1);
      expect(reported[0]).toMatchObject({ code: body.error, message: body.message, provider });
      if (fields) expect(reported[0]).toMatchObject(fields);
    },
  );
});
