/**
 * The errors the login routes answer before any provider is called, exactly as a client and the
 * app see them, on every adapter: the JSON body (code, fixed message, provider) and the error
 * `hooks.onError` receives. The provider named is the one of the route, cut to 100 characters when
 * it is not configured (a name from the URL, of any length, must not grow logs or answers).
 *
 * And which cookie a login takes when the browser already has five logins of the provider in
 * flight (all its slots taken): the oldest login's, so that one is the login dropped.
 */
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createOAuth, OAuthError } from '../src/index.js';
import { calcomPlatform, oauth2 } from '../src/providers/index.js';
import { adapters, type RunningApp } from './support/apps.js';
import { BASE_URL } from './support/authorization-server.js';

const LONG_NAME = 'p'.repeat(300);
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
