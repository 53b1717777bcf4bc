/**
 * The emulators themselves, driven over HTTP with fetch: each serves the correct request and
 * refuses each wrong one the way its provider does (shared/providers/CONTRACTS.md).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  startCalcomPlatformEmulator,
  startDropboxSignEmulator,
  startPipedriveEmulator,
  startSunshineConversationsEmulator,
  type Emulator,
} from './index.js';
import type { SunshineConversationsEmulator } from './sunshine-conversations.js';
import { resolveLocalhostNames } from '../test/support/localhost-names.js';

const CALLBACK = 'http://127.0.0.1:9/auth/test/callback';

/** `base` with `params` set; a null value removes the parameter. */
function withQuery(base: string, params: Record<string, string | null>): string {
  const url = new URL(base);
  for (const [key, value] of Object.entries(params)) {
    if (value === null) url.searchParams.delete(key);
    else url.searchParams.set(key, value);
  }
  return url.href;
}

function postForm(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  const body = new URLSearchParams(fields).toString();
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
}

function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

function basic(id: string, secret: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` };
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

function api(emulator: Emulator, token: string): Promise<Response> {
  return fetch(emulator.endpoints.api, { headers: bearer(token) });
}

/** Checks a refusal: its status, its record in `rejections`, and that no secret leaks into the body. */
async function expectRefused(emulator: Emulator, response: Response, status: number, endpoint: string): Promise<unknown> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(text).not.toContain(emulator.clientSecret);
  expect(emulator.rejections.at(-1)).toMatchObject({ endpoint, status });
  const type = response.headers.get('content-type') ?? '';
  return type.includes('json') ? JSON.parse(text) : text;
}

/** Authorization URLs the emulator must refuse with a 400 page and no redirect. */
async function expectAuthorizeRefused(emulator: Emulator, url: string): Promise<void> {
  const before = emulator.counts.authorize;
  const response = await fetch(url, { redirect: 'manual' });
  expect(response.headers.get('location')).toBeNull();
  await expectRefused(emulator, response, 400, 'authorize');
  expect(emulator.counts.authorize).toBe(before + 1);
  await expect(emulator.authorize(url)).rejects.toThrow(/not redirected back \(HTTP 400\)/);
}

describe('Pipedrive emulator', () => {
  let e: Emulator;
  beforeAll(async () => {
    e = await startPipedriveEmulator({ redirectUri: CALLBACK });
  });
  afterEach(() => e.reset());
  afterAll(() => e.close());

  const authUrl = (extra: Record<string, string | null> = {}) =>
    withQuery(e.endpoints.authorization, { client_id: e.clientId, redirect_uri: CALLBACK, state: 's1', ...extra });
  const code = async () => (await e.authorize(authUrl())).searchParams.get('code') ?? '';
  const exchange = async (fields: Record<string, string> = {}, headers = basic(e.clientId, e.clientSecret)) =>
    postForm(
      e.endpoints.token,
      { grant_type: 'authorization_code', code: await code(), redirect_uri: CALLBACK, ...fields },
      headers,
    );
  const tokens = async () => (await (await exchange()).json()) as { access_token: string; refresh_token: string };

  it('accepts client credentials in the body too, as the docs allow', async () => {
    const res = await exchange({ client_id: e.clientId, client_secret: e.clientSecret }, {});
    expect(res.status).toBe(200);
    expect(e.rejections).toEqual([]);
  });

  it('serves the whole flow: authorize, exchange, API, refresh without rotation', async () => {
    const callback = await e.authorize(authUrl({ response_type: 'code' }));
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    expect(callback.searchParams.get('state')).toBe('s1');
    const response = await postForm(
      e.endpoints.token,
      { grant_type: 'authorization_code', code: callback.searchParams.get('code') ?? '', redirect_uri: CALLBACK },
      basic(e.clientId, e.clientSecret),
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: 'Bearer', scope: 'base', expires_in: 3600, api_domain: e.origin });
    expect(Object.keys(body).sort()).toEqual([
      'access_token',
      'api_domain',
      'expires_in',
      'refresh_token',
      'scope',
      'token_type',
    ]);
    const me = await fetch(`${String(body.api_domain)}/api/v1/users/me`, { headers: bearer(String(body.access_token)) });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ success: true, data: { id: 1 } });

    const refreshed = await postForm(
      e.endpoints.refresh ?? '',
      { grant_type: 'refresh_token', refresh_token: String(body.refresh_token) },
      basic(e.clientId, e.clientSecret),
    );
    const next = (await refreshed.json()) as Record<string, unknown>;
    expect(refreshed.status).toBe(200);
    expect(next.refresh_token).toBe(body.refresh_token);
    expect(next.access_token).not.toBe(body.access_token);
    expect(e.counts).toEqual({ authorize: 1, token: 1, refresh: 1, revoke: 0, api: 1 });
    expect(e.rejections).toEqual([]);
  });

  it('accepts an authorization without state and echoes none', async () => {
    const callback = await e.authorize(withQuery(e.endpoints.authorization, { client_id: e.clientId, redirect_uri: CALLBACK }));
    expect(callback.searchParams.has('code')).toBe(true);
    expect(callback.searchParams.has('state')).toBe(false);
  });

  it.each([
    ['an unknown client_id', { client_id: 'other' }],
    ['another redirect_uri', { redirect_uri: 'http://127.0.0.1:9/other' }],
    ['no redirect_uri', { redirect_uri: null }],
    ['an empty scope', { scope: '' }],
    ['a scope', { scope: 'base' }],
    ['a PKCE challenge', { code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }],
    ['only a challenge method', { code_challenge_method: 'S256' }],
    ['response_type=token', { response_type: 'token' }],
  ])('refuses an authorization with %s', async (_name, extra) => {
    await expectAuthorizeRefused(e, authUrl(extra));
  });

  it('declines once with error=user_denied when declineNext is set', async () => {
    e.declineNext = true;
    const denied = await e.authorize(authUrl());
    expect(Object.fromEntries(denied.searchParams)).toEqual({ error: 'user_denied', state: 's1' });
    expect(e.declineNext).toBe(false);
    expect((await e.authorize(authUrl())).searchParams.has('code')).toBe(true);
  });

  it.each<[string, () => Promise<Response>, number, string]>([
    [
      'a JSON body',
      async () =>
        postJson(
          e.endpoints.token,
          { grant_type: 'authorization_code', code: await code(), redirect_uri: CALLBACK },
          basic(e.clientId, e.clientSecret),
        ),
      400,
      'invalid_request',
    ],
    [
      'a wrong secret in the body',
      async () => exchange({ client_id: e.clientId, client_secret: 'wrong' }, {}),
      401,
      'invalid_client',
    ],
    ['no credentials', async () => exchange({}, {}), 401, 'invalid_client'],
    ['a wrong Basic secret', async () => exchange({}, basic(e.clientId, 'wrong')), 401, 'invalid_client'],
    ['a wrong Basic client id', async () => exchange({}, basic('other', e.clientSecret)), 401, 'invalid_client'],
    [
      'no redirect_uri',
      async () =>
        postForm(e.endpoints.token, { grant_type: 'authorization_code', code: await code() }, basic(e.clientId, e.clientSecret)),
      400,
      'invalid_request',
    ],
    ['another redirect_uri', async () => exchange({ redirect_uri: 'http://127.0.0.1:9/other' }), 400, 'invalid_request'],
    ['an unknown code', async () => exchange({ code: 'nope' }), 400, 'invalid_grant'],
    [
      'no grant_type',
      async () => postForm(e.endpoints.token, { code: await code(), redirect_uri: CALLBACK }, basic(e.clientId, e.clientSecret)),
      400,
      'invalid_request',
    ],
    ['grant_type=password', async () => exchange({ grant_type: 'password' }), 400, 'unsupported_grant_type'],
  ])('refuses a code exchange with %s', async (_name, send, status, error) => {
    const body = await expectRefused(e, await send(), status, 'token');
    expect(body).toMatchObject({ success: false, error });
    expect(typeof (body as { message: unknown }).message).toBe('string');
  });

  it('takes a code once, and not after 5 minutes', async () => {
    const first = await code();
    const exchangeCode = (value: string) =>
      postForm(
        e.endpoints.token,
        { grant_type: 'authorization_code', code: value, redirect_uri: CALLBACK },
        basic(e.clientId, e.clientSecret),
      );
    expect((await exchangeCode(first)).status).toBe(200);
    expect(await expectRefused(e, await exchangeCode(first), 400, 'token')).toMatchObject({ error: 'invalid_grant' });
    const late = await code();
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 301_000);
      expect(await expectRefused(e, await exchangeCode(late), 400, 'token')).toMatchObject({ error: 'invalid_grant' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a bad refresh with the SDK-mocked body, and a refresh to /oauth/token/', async () => {
    const { refresh_token } = await tokens();
    const bad = await postForm(
      e.endpoints.token,
      { grant_type: 'refresh_token', refresh_token: 'nope' },
      basic(e.clientId, e.clientSecret),
    );
    expect(await expectRefused(e, bad, 400, 'refresh')).toEqual({
      success: false,
      message: 'Invalid grant: refresh token is invalid',
      error: 'invalid_grant',
    });
    const slash = await postForm(
      `${e.endpoints.token}/`,
      { grant_type: 'refresh_token', refresh_token },
      basic(e.clientId, e.clientSecret),
    );
    await expectRefused(e, slash, 404, 'POST /oauth/token/');
    expect(e.counts.refresh).toBe(1);
  });

  it('expires access tokens after accessTokenTtl', async () => {
    e.accessTokenTtl = 0;
    const { access_token, refresh_token } = await tokens();
    await expectRefused(e, await api(e, access_token), 401, 'api');
    e.accessTokenTtl = 3600;
    const refreshed = await postForm(
      e.endpoints.token,
      { grant_type: 'refresh_token', refresh_token },
      basic(e.clientId, e.clientSecret),
    );
    const next = (await refreshed.json()) as { access_token: string };
    expect((await api(e, next.access_token)).status).toBe(200);
  });

  it('accepts HTTP Basic credentials raw or form-encoded (RFC 6749 §2.3.1)', async () => {
    const special = await startPipedriveEmulator({ redirectUri: CALLBACK, clientId: 'id:1', clientSecret: 'a+b/c%d e' });
    try {
      const refresh = (authorization: string) =>
        postForm(special.endpoints.token, { grant_type: 'refresh_token', refresh_token: 'nope' }, { authorization });
      const raw = `Basic ${Buffer.from('id:1:a+b/c%d e').toString('base64')}`;
      const encoded = `Basic ${Buffer.from('id%3A1:a%2Bb%2Fc%25d+e').toString('base64')}`;
      // invalid_grant, not invalid_client: the client authenticated.
      expect((await refresh(raw)).status).toBe(400);
      expect((await refresh(encoded)).status).toBe(400);
      expect((await refresh(`Basic ${Buffer.from('id:1:other').toString('base64')}`)).status).toBe(401);
    } finally {
      await special.close();
    }
  });

  it('revokes per RFC 7009: an access token alone, or the whole grant with its refresh token', async () => {
    const { access_token, refresh_token } = await tokens();
    const revoke = (fields: Record<string, string>, headers = basic(e.clientId, e.clientSecret)) =>
      postForm(e.endpoints.revoke ?? '', fields, headers);
    expect((await revoke({ token: access_token, token_type_hint: 'access_token' })).status).toBe(200);
    expect((await api(e, access_token)).status).toBe(401);
    const refresh = () =>
      postForm(e.endpoints.token, { grant_type: 'refresh_token', refresh_token }, basic(e.clientId, e.clientSecret));
    const again = (await (await refresh()).json()) as { access_token: string };
    expect((await api(e, again.access_token)).status).toBe(200);
    expect((await revoke({ token: refresh_token })).status).toBe(200);
    expect((await api(e, again.access_token)).status).toBe(401);
    expect((await refresh()).status).toBe(400);
    expect((await revoke({ token: 'unknown' })).status).toBe(200);
    await expectRefused(e, await revoke({ token: 'x' }, {}), 401, 'revoke');
    await expectRefused(e, await revoke({}), 400, 'revoke');
    expect(e.counts.revoke).toBe(5);
  });
});

describe('Dropbox Sign emulator', () => {
  let e: Emulator;
  beforeAll(async () => {
    e = await startDropboxSignEmulator({ redirectUri: CALLBACK });
  });
  afterEach(() => e.reset());
  afterAll(() => e.close());

  const authUrl = (extra: Record<string, string | null> = {}) =>
    withQuery(e.endpoints.authorization, { response_type: 'code', client_id: e.clientId, state: 's1', ...extra });
  const code = async () => (await e.authorize(authUrl())).searchParams.get('code') ?? '';
  const creds = () => ({ client_id: e.clientId, client_secret: e.clientSecret });
  const exchange = async (fields: Record<string, string> = {}) =>
    postForm(e.endpoints.token, { grant_type: 'authorization_code', code: await code(), ...creds(), state: 's1', ...fields });
  const tokens = async () => (await (await exchange()).json()) as { access_token: string; refresh_token: string };
  const refreshUrl = () => e.endpoints.refresh ?? '';

  it('accepts what the official examples send: a multipart exchange, a refresh without client credentials', async () => {
    const multipart = new FormData();
    for (const [key, value] of Object.entries({
      grant_type: 'authorization_code',
      code: await code(),
      ...creds(),
      state: 's1',
    })) {
      multipart.append(key, value);
    }
    const exchanged = await fetch(e.endpoints.token, { method: 'POST', body: multipart });
    expect(exchanged.status).toBe(200);
    const { refresh_token } = (await exchanged.json()) as { refresh_token: string };
    const bare = await postForm(refreshUrl(), { grant_type: 'refresh_token', refresh_token });
    expect(bare.status).toBe(200);
    // Credentials given are still checked.
    const wrong = await postForm(refreshUrl(), {
      grant_type: 'refresh_token',
      refresh_token,
      client_id: e.clientId,
      client_secret: 'no',
    });
    expect(wrong.status).toBe(401);
    expect(e.rejections.map((r) => r.reason)).toEqual(['wrong client credentials']);
  });

  it('serves the whole flow: authorize, exchange (form and JSON), API, refresh at ?refresh', async () => {
    expect(refreshUrl()).toBe(`${e.origin}/oauth/token?refresh`);
    // redirect_uri and PKCE are ignored: the user returns to the registered callback.
    const callback = await e.authorize(authUrl({ redirect_uri: 'http://127.0.0.1:9/elsewhere', code_challenge: 'x'.repeat(43) }));
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    expect(callback.searchParams.get('state')).toBe('s1');
    const response = await postForm(e.endpoints.token, {
      grant_type: 'authorization_code',
      code: callback.searchParams.get('code') ?? '',
      ...creds(),
      state: 's1',
    });
    const body = (await response.json()) as Record<string, unknown>;
    expect(response.status).toBe(200);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, state: 's1' });
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'state', 'token_type']);
    expect((await api(e, String(body.access_token))).status).toBe(200);

    const viaJson = await postJson(e.endpoints.token, { grant_type: 'authorization_code', code: await code(), ...creds() });
    expect(viaJson.status).toBe(200);
    expect(((await viaJson.json()) as { state: unknown }).state).toBeNull();

    const refreshed = await postForm(refreshUrl(), {
      grant_type: 'refresh_token',
      refresh_token: String(body.refresh_token),
      ...creds(),
    });
    const next = (await refreshed.json()) as Record<string, unknown>;
    expect(refreshed.status).toBe(200);
    expect(next.refresh_token).toBe(body.refresh_token);
    expect('state' in next).toBe(false);
    expect(e.counts).toEqual({ authorize: 2, token: 2, refresh: 1, revoke: 0, api: 1 });
    expect(e.rejections).toEqual([]);
  });

  it.each([
    ['no response_type', { response_type: null }],
    ['response_type=token', { response_type: 'token' }],
    ['an unknown client_id', { client_id: 'other' }],
    ['an empty scope', { scope: '' }],
    ['a scope', { scope: 'basic_account_info' }],
  ])('refuses an authorization with %s', async (_name, extra) => {
    await expectAuthorizeRefused(e, authUrl(extra));
  });

  it('declines once with error=access_denied', async () => {
    e.declineNext = true;
    expect(Object.fromEntries((await e.authorize(authUrl())).searchParams)).toEqual({ error: 'access_denied', state: 's1' });
  });

  it.each<[string, () => Promise<Response>, number, string, 'token' | 'refresh']>([
    [
      'credentials only in a Basic header',
      async () =>
        postForm(e.endpoints.token, { grant_type: 'authorization_code', code: await code() }, basic(e.clientId, e.clientSecret)),
      401,
      'unauthorized',
      'token',
    ],
    ['a wrong client_secret', () => exchange({ client_secret: 'wrong' }), 401, 'unauthorized', 'token'],
    [
      'no client_secret',
      async () => postForm(e.endpoints.token, { grant_type: 'authorization_code', code: await code(), client_id: e.clientId }),
      401,
      'unauthorized',
      'token',
    ],
    [
      'no grant_type',
      async () => postForm(e.endpoints.token, { code: await code(), ...creds() }),
      400,
      'invalid_request',
      'token',
    ],
    ['an unknown code', () => exchange({ code: 'nope' }), 400, 'invalid_request', 'token'],
    [
      'a text body',
      () => fetch(e.endpoints.token, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }),
      400,
      'invalid_request',
      'token',
    ],
    [
      'a refresh grant without ?refresh',
      async () =>
        postForm(e.endpoints.token, { grant_type: 'refresh_token', refresh_token: (await tokens()).refresh_token, ...creds() }),
      400,
      'invalid_request',
      'refresh',
    ],
    [
      'a refresh at ?refresh=',
      async () =>
        postForm(`${e.endpoints.token}?refresh=`, {
          grant_type: 'refresh_token',
          refresh_token: (await tokens()).refresh_token,
          ...creds(),
        }),
      400,
      'invalid_request',
      'refresh',
    ],
    [
      'a refresh at ?refresh=true',
      async () =>
        postForm(`${e.endpoints.token}?refresh=true`, {
          grant_type: 'refresh_token',
          refresh_token: (await tokens()).refresh_token,
          ...creds(),
        }),
      400,
      'invalid_request',
      'refresh',
    ],
    [
      'a refresh without client_secret',
      async () =>
        postForm(refreshUrl(), {
          grant_type: 'refresh_token',
          refresh_token: (await tokens()).refresh_token,
          client_id: e.clientId,
        }),
      401,
      'unauthorized',
      'refresh',
    ],
    [
      'a refresh with grant_type=authorization_code',
      async () =>
        postForm(refreshUrl(), { grant_type: 'authorization_code', refresh_token: (await tokens()).refresh_token, ...creds() }),
      400,
      'invalid_request',
      'refresh',
    ],
    [
      'an unknown refresh token',
      () => postForm(refreshUrl(), { grant_type: 'refresh_token', refresh_token: 'nope', ...creds() }),
      400,
      'invalid_grant',
      'refresh',
    ],
  ])('refuses %s', async (_name, send, status, errorName, endpoint) => {
    const body = await expectRefused(e, await send(), status, endpoint);
    expect(body).toMatchObject({ error: { error_name: errorName, error_msg: expect.any(String) } });
  });

  it('takes a code once, and not after an hour', async () => {
    const value = await code();
    const send = (c: string) => postForm(e.endpoints.token, { grant_type: 'authorization_code', code: c, ...creds() });
    expect((await send(value)).status).toBe(200);
    await expectRefused(e, await send(value), 400, 'token');
    const late = await code();
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 3_601_000);
      await expectRefused(e, await send(late), 400, 'token');
    } finally {
      vi.useRealTimers();
    }
  });

  it('expires access tokens after accessTokenTtl; has no revocation endpoint', async () => {
    e.accessTokenTtl = 0;
    const { access_token } = await tokens();
    await expectRefused(e, await api(e, access_token), 401, 'api');
    expect(e.endpoints.revoke).toBeUndefined();
  });

  it('rotates refresh tokens when asked to', async () => {
    const rotating = await startDropboxSignEmulator({ redirectUri: CALLBACK, rotateRefreshTokens: true });
    try {
      const url = withQuery(rotating.endpoints.authorization, { response_type: 'code', client_id: rotating.clientId });
      const c = (await rotating.authorize(url)).searchParams.get('code') ?? '';
      const creds = { client_id: rotating.clientId, client_secret: rotating.clientSecret };
      const first = (await (
        await postForm(rotating.endpoints.token, { grant_type: 'authorization_code', code: c, ...creds })
      ).json()) as {
        refresh_token: string;
      };
      const refresh = (token: string) =>
        postForm(rotating.endpoints.refresh ?? '', { grant_type: 'refresh_token', refresh_token: token, ...creds });
      const second = (await (await refresh(first.refresh_token)).json()) as { refresh_token: string };
      expect(second.refresh_token).not.toBe(first.refresh_token);
      expect((await refresh(first.refresh_token)).status).toBe(400);
      expect((await refresh(second.refresh_token)).status).toBe(200);
    } finally {
      await rotating.close();
    }
  });
});

describe('Cal.com platform emulator', () => {
  let e: Emulator;
  beforeAll(async () => {
    e = await startCalcomPlatformEmulator({ redirectUri: CALLBACK });
  });
  afterEach(() => e.reset());
  afterAll(() => e.close());

  interface Keys {
    accessToken: string;
    refreshToken: string;
    accessTokenExpiresAt: number;
    refreshTokenExpiresAt: number;
  }
  const authUrl = (extra: Record<string, string | null> = {}) =>
    withQuery(e.endpoints.authorization, { client_id: e.clientId, redirect_uri: CALLBACK, state: 's1', ...extra });
  const code = async () => (await e.authorize(authUrl())).searchParams.get('code') ?? '';
  const exchange = async (c?: string) =>
    postJson(e.endpoints.token, { clientSecret: e.clientSecret }, bearer(c ?? (await code())));
  const keys = async () => ((await (await exchange()).json()) as { data: Keys }).data;
  const refresh = (refreshToken: string, headers: Record<string, string> = { 'x-cal-secret-key': e.clientSecret }) =>
    postJson(e.endpoints.refresh ?? '', { refreshToken }, headers);

  it('serves the whole flow: authorize page, exchange, API, rotating refresh', async () => {
    expect(e.endpoints.token).toBe(`${e.origin}/v2/oauth/${e.clientId}/exchange`);
    const callback = await e.authorize(authUrl({ scope: 'x', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }));
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    // No state comes back unless echoState is set.
    expect([...callback.searchParams.keys()]).toEqual(['code']);
    const before = Date.now();
    const response = await exchange(callback.searchParams.get('code') ?? '');
    expect(response.status).toBe(200);
    const body = (await response.json()) as { status: string; data: Keys };
    expect(body.status).toBe('success');
    expect(Object.keys(body.data).sort()).toEqual([
      'accessToken',
      'accessTokenExpiresAt',
      'refreshToken',
      'refreshTokenExpiresAt',
    ]);
    expect(body.data.accessToken.split('.')).toHaveLength(3);
    expect(body.data.accessTokenExpiresAt).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(body.data.refreshTokenExpiresAt).toBeGreaterThan(body.data.accessTokenExpiresAt);
    expect(await (await api(e, body.data.accessToken)).json()).toMatchObject({ status: 'success', data: { id: 1 } });

    const refreshed = await refresh(body.data.refreshToken);
    expect(refreshed.status).toBe(200);
    const next = ((await refreshed.json()) as { data: Keys }).data;
    expect(next.refreshToken).not.toBe(body.data.refreshToken);
    expect((await api(e, next.accessToken)).status).toBe(200);
    expect(e.counts).toEqual({ authorize: 1, token: 1, refresh: 1, revoke: 0, api: 2 });
    expect(e.rejections).toEqual([]);

    // Single use: the old refresh token is gone.
    const reused = await expectRefused(e, await refresh(body.data.refreshToken), 400, 'refresh');
    expect(reused).toMatchObject({ status: 'error', error: { code: 'BadRequestException', message: 'Invalid refresh token' } });
  });

  it('echoes state when echoState is set', async () => {
    const echoing = await startCalcomPlatformEmulator({ redirectUri: CALLBACK, echoState: true });
    try {
      const url = withQuery(echoing.endpoints.authorization, {
        client_id: echoing.clientId,
        redirect_uri: CALLBACK,
        state: 'a b',
      });
      const callback = await echoing.authorize(url);
      expect(callback.searchParams.get('state')).toBe('a b');
      expect(callback.searchParams.has('code')).toBe(true);
    } finally {
      await echoing.close();
    }
  });

  it.each([
    ['an unknown client_id', { client_id: 'other' }],
    ['another redirect_uri', { redirect_uri: 'http://127.0.0.1:9/other' }],
    ['no redirect_uri', { redirect_uri: null }],
  ])('refuses an authorization with %s', async (_name, extra) => {
    await expectAuthorizeRefused(e, authUrl(extra));
  });

  it('declines once with error=access_denied', async () => {
    e.declineNext = true;
    expect(Object.fromEntries((await e.authorize(authUrl())).searchParams)).toEqual({ error: 'access_denied' });
  });

  it.each<[string, () => Promise<Response>, string]>([
    [
      'the code in the body',
      async () => postJson(e.endpoints.token, { clientSecret: e.clientSecret, code: await code() }),
      "Missing 'Bearer' Authorization header.",
    ],
    [
      'a form body',
      async () => postForm(e.endpoints.token, { clientSecret: e.clientSecret }, bearer(await code())),
      'Body must be application/json',
    ],
    [
      'a wrong clientSecret',
      async () => postJson(e.endpoints.token, { clientSecret: 'wrong' }, bearer(await code())),
      'Invalid OAuth Client.',
    ],
    [
      'client_secret in snake_case',
      async () => postJson(e.endpoints.token, { client_secret: e.clientSecret }, bearer(await code())),
      'Invalid OAuth Client.',
    ],
    [
      'an unknown client id in the path',
      async () => postJson(`${e.origin}/v2/oauth/other/exchange`, { clientSecret: e.clientSecret }, bearer(await code())),
      'Invalid OAuth Client.',
    ],
    ['an unknown code', () => exchange('nope'), 'Invalid Authorization Token.'],
  ])('refuses an exchange with %s', async (_name, send, message) => {
    const response = await send();
    const body = await expectRefused(e, response, 400, 'token');
    expect(body).toMatchObject({
      status: 'error',
      path: new URL(response.url).pathname,
      error: { code: 'BadRequestException', message },
    });
    expect(Number.isNaN(Date.parse((body as { timestamp: string }).timestamp))).toBe(false);
  });

  // The authorization token's lifetime is undocumented (CONTRACTS.md §3a), so no expiry is asserted.
  it('takes a code once', async () => {
    const c = await code();
    expect((await exchange(c)).status).toBe(200);
    await expectRefused(e, await exchange(c), 400, 'token');
  });

  it.each<[string, () => Promise<Response>, number, string]>([
    ['no x-cal-secret-key', async () => refresh((await keys()).refreshToken, {}), 401, 'Invalid client secret'],
    [
      'a wrong x-cal-secret-key',
      async () => refresh((await keys()).refreshToken, { 'x-cal-secret-key': 'wrong' }),
      401,
      'Invalid client secret',
    ],
    [
      'the secret in the body',
      async () =>
        postJson(e.endpoints.refresh ?? '', { refreshToken: (await keys()).refreshToken, clientSecret: e.clientSecret }),
      401,
      'Invalid client secret',
    ],
    [
      'a form body',
      async () =>
        postForm(
          e.endpoints.refresh ?? '',
          { refreshToken: (await keys()).refreshToken },
          { 'x-cal-secret-key': e.clientSecret },
        ),
      400,
      'Body must be application/json',
    ],
    [
      'refresh_token in snake_case',
      async () =>
        postJson(
          e.endpoints.refresh ?? '',
          { refresh_token: (await keys()).refreshToken },
          { 'x-cal-secret-key': e.clientSecret },
        ),
      400,
      'refreshToken must be a string',
    ],
    ['an unknown refresh token', () => refresh('nope'), 400, 'Invalid refresh token'],
  ])('refuses a refresh with %s', async (_name, send, status, message) => {
    const code = status === 401 ? 'UnauthorizedException' : 'BadRequestException';
    expect(await expectRefused(e, await send(), status, 'refresh')).toMatchObject({ status: 'error', error: { code, message } });
  });

  it('refuses a refresh token once its refreshTokenExpiresAt has passed', async () => {
    const [early, late] = [await keys(), await keys()];
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(early.refreshTokenExpiresAt - 1000);
      expect((await refresh(early.refreshToken)).status).toBe(200);
      vi.setSystemTime(late.refreshTokenExpiresAt);
      const body = await expectRefused(e, await refresh(late.refreshToken), 400, 'refresh');
      expect(body).toMatchObject({ status: 'error', error: { code: 'BadRequestException', message: 'Invalid refresh token' } });
      expect(e.rejections.at(-1)?.reason).toMatch(/^expired/);
    } finally {
      vi.useRealTimers();
    }
  });

  it('answers 498 for an expired access token, 401 for an unknown or revoked one', async () => {
    e.accessTokenTtl = 0;
    const expired = await keys();
    expect(await expectRefused(e, await api(e, expired.accessToken), 498, 'api')).toMatchObject({ status: 'error' });
    await expectRefused(e, await api(e, 'nope'), 401, 'api');
    await expectRefused(e, await fetch(e.endpoints.api), 401, 'api');
    e.accessTokenTtl = 3600;
    const fresh = await keys();
    e.revokeAll();
    await expectRefused(e, await api(e, fresh.accessToken), 401, 'api');
    await expectRefused(e, await refresh(fresh.refreshToken), 400, 'refresh');
  });
});

describe('Sunshine Conversations emulator', () => {
  let e: Emulator;
  beforeAll(async () => {
    e = await startSunshineConversationsEmulator({ redirectUri: CALLBACK });
  });
  afterEach(() => e.reset());
  afterAll(() => e.close());

  const authUrl = (extra: Record<string, string | null> = {}) =>
    withQuery(e.endpoints.authorization, { response_type: 'code', client_id: e.clientId, state: 's1', ...extra });
  const code = async () => (await e.authorize(authUrl())).searchParams.get('code') ?? '';
  const creds = () => ({ client_id: e.clientId, client_secret: e.clientSecret });
  const exchange = async (fields: Record<string, string> = {}) =>
    postJson(e.endpoints.token, { code: await code(), grant_type: 'authorization_code', ...creds(), ...fields });
  const accessToken = async () => ((await (await exchange()).json()) as { access_token: string }).access_token;
  const revoke = (headers: Record<string, string>) => fetch(e.endpoints.revoke ?? '', { method: 'DELETE', headers });

  it('serves the whole flow: authorize, exchange (JSON and form), tokenInfo, revocation', async () => {
    const callback = await e.authorize(authUrl({ redirect_uri: CALLBACK, scope: 'whatever', code_challenge: 'x'.repeat(43) }));
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    expect(callback.searchParams.get('state')).toBe('s1');
    e.accessTokenTtl = 0; // ignored: Sunshine tokens never expire
    const response = await postJson(e.endpoints.token, {
      code: callback.searchParams.get('code') ?? '',
      grant_type: 'authorization_code',
      ...creds(),
    });
    const body = (await response.json()) as { access_token: string; token_type: string };
    expect(response.status).toBe(200);
    expect(Object.keys(body).sort()).toEqual(['access_token', 'token_type']);
    expect(body.token_type).toBe('Bearer');
    const info = await api(e, body.access_token);
    expect(await info.json()).toMatchObject({ app: { id: expect.any(String), subdomain: expect.any(String) } });

    const viaForm = await postForm(e.endpoints.token, { code: await code(), grant_type: 'authorization_code', ...creds() });
    expect(viaForm.status).toBe(200);

    const revoked = await revoke(bearer(body.access_token));
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toEqual({});
    await expectRefused(e, await api(e, body.access_token), 401, 'api');
    await expectRefused(e, await revoke(bearer(body.access_token)), 401, 'revoke');
    expect(e.counts).toEqual({ authorize: 2, token: 2, refresh: 0, revoke: 2, api: 2 });
  });

  it('uses the registered callback when redirect_uri is omitted, and declines with access_denied', async () => {
    const callback = await e.authorize(authUrl());
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    e.declineNext = true;
    expect(Object.fromEntries((await e.authorize(authUrl())).searchParams)).toEqual({ error: 'access_denied', state: 's1' });
  });

  it.each([
    ['no response_type', { response_type: null }],
    ['response_type=token', { response_type: 'token' }],
    ['an unknown client_id', { client_id: 'other' }],
    ['another redirect_uri', { redirect_uri: 'http://127.0.0.1:9/other' }],
  ])('refuses an authorization with %s', async (_name, extra) => {
    await expectAuthorizeRefused(e, authUrl(extra));
  });

  it.each<[string, () => Promise<Response>, number, 'token' | 'refresh']>([
    [
      'a refresh grant',
      () => postJson(e.endpoints.token, { grant_type: 'refresh_token', refresh_token: 'x', ...creds() }),
      400,
      'refresh',
    ],
    [
      'no client credentials',
      async () => postJson(e.endpoints.token, { code: await code(), grant_type: 'authorization_code' }),
      401,
      'token',
    ],
    [
      'credentials only in a Basic header',
      async () =>
        postJson(e.endpoints.token, { code: await code(), grant_type: 'authorization_code' }, basic(e.clientId, e.clientSecret)),
      401,
      'token',
    ],
    ['a wrong client_secret', () => exchange({ client_secret: 'wrong' }), 401, 'token'],
    ['no grant_type', async () => postJson(e.endpoints.token, { code: await code(), ...creds() }), 400, 'token'],
    ['an unknown code', () => exchange({ code: 'nope' }), 400, 'token'],
    [
      'a text body',
      () => fetch(e.endpoints.token, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }),
      400,
      'token',
    ],
  ])('refuses a token request with %s', async (_name, send, status, endpoint) => {
    const body = await expectRefused(e, await send(), status, endpoint);
    const code = status === 401 ? 'unauthorized' : 'bad_request';
    expect(body).toEqual({ errors: [{ code, title: expect.any(String) }] });
    expect(e.counts[endpoint]).toBe(1);
  });

  // The code's lifetime is undocumented (CONTRACTS.md §4), so no expiry is asserted; single use is.
  it('takes a code once', async () => {
    const value = await code();
    expect((await exchange({ code: value })).status).toBe(200);
    const body = await expectRefused(e, await exchange({ code: value }), 400, 'token');
    expect(body).toEqual({ errors: [{ code: 'bad_request', title: 'Invalid code' }] });
  });

  it('revokes every token on Basic client credentials; refuses a wrong or missing one', async () => {
    const token = await accessToken();
    await expectRefused(e, await revoke(basic(e.clientId, 'wrong')), 401, 'revoke');
    await expectRefused(e, await revoke({}), 401, 'revoke');
    expect((await api(e, token)).status).toBe(200);
    expect((await revoke(basic(e.clientId, e.clientSecret))).status).toBe(200);
    expect((await api(e, token)).status).toBe(401);
  });
});

describe('Sunshine Conversations emulator: the app, its subdomain host, Marketplace headers', () => {
  const marketplace = { name: 'Acme Bot', organizationId: '12345', botId: '42' };
  const headers = {
    'X-Zendesk-Marketplace-Name': marketplace.name,
    'X-Zendesk-Marketplace-Organization-Id': marketplace.organizationId,
    'X-Zendesk-Marketplace-Bot-Id': marketplace.botId,
  };
  let e: SunshineConversationsEmulator;
  let restore: () => void;
  beforeAll(async () => {
    restore = resolveLocalhostNames();
    e = await startSunshineConversationsEmulator({ redirectUri: CALLBACK, app: { subdomain: 'acme' }, marketplace });
  });
  afterEach(() => e.reset());
  afterAll(async () => {
    restore();
    await e.close();
  });

  const login = async (extra: Record<string, string> = {}) => {
    const url = withQuery(e.endpoints.authorization, { response_type: 'code', client_id: e.clientId });
    const code = (await e.authorize(url)).searchParams.get('code') ?? '';
    const body = { code, grant_type: 'authorization_code', client_id: e.clientId, client_secret: e.clientSecret };
    const response = await postJson(e.endpoints.token, body, { ...headers, ...extra });
    return ((await response.json()) as { access_token: string }).access_token;
  };
  const at = (subdomain: string) => e.revokeTemplate.replace('{subdomain}', subdomain);
  const info = (token: string, extra: Record<string, string> = headers) =>
    fetch(e.endpoints.tokenInfo ?? '', { headers: { ...extra, ...bearer(token) } });

  it("tells the app's id and subdomain at tokenInfo, and revokes at that subdomain's host", async () => {
    const token = await login();
    expect(await (await info(token)).json()).toEqual({
      app: { id: '5e4af71a81966c000f2d6b8a', displayName: 'Test App', subdomain: 'acme' },
    });
    expect(new URL(e.revokeTemplate).pathname).toBe(new URL(e.endpoints.revoke ?? '').pathname);
    await expectRefused(
      e,
      await fetch(at('other'), { method: 'DELETE', headers: { ...headers, ...bearer(token) } }),
      401,
      'revoke',
    );
    expect((await info(token)).status).toBe(200); // the wrong subdomain revoked nothing
    const revoked = await fetch(at('acme'), { method: 'DELETE', headers: { ...headers, ...bearer(token) } });
    expect(revoked.status).toBe(200);
    expect(e.revokedAt).toEqual([`acme.localhost:${new URL(e.origin).port}`]);
    await expectRefused(e, await info(token), 401, 'api');
  });

  it('accepts a revocation at the bare origin too, recorded with its host; reset restores the app and clears the record', async () => {
    const token = await login();
    e.app.subdomain = 'elsewhere';
    expect((await fetch(e.endpoints.revoke ?? '', { method: 'DELETE', headers: { ...headers, ...bearer(token) } })).status).toBe(
      200,
    );
    expect(e.revokedAt).toEqual([new URL(e.origin).host]);
    e.reset();
    expect([e.app.subdomain, e.revokedAt]).toEqual(['acme', []]);
  });

  it.each([
    [
      'without any',
      { 'X-Zendesk-Marketplace-Name': '', 'X-Zendesk-Marketplace-Organization-Id': '', 'X-Zendesk-Marketplace-Bot-Id': '' },
    ],
    ['without the bot id', { 'X-Zendesk-Marketplace-Bot-Id': '' }],
    ['with an app id instead of the bot id', { 'X-Zendesk-Marketplace-Bot-Id': '', 'X-Zendesk-Marketplace-App-Id': '42' }],
    ['with another organization', { 'X-Zendesk-Marketplace-Organization-Id': '999' }],
  ])('refuses token, tokenInfo and revocation requests of a Marketplace bot %s of its headers', async (_name, change) => {
    const sent = Object.fromEntries(Object.entries({ ...headers, ...change }).filter(([, value]) => value !== ''));
    const token = await login();
    const body = await expectRefused(e, await info(token, sent), 403, 'api');
    expect(body).toEqual({ errors: [{ code: 'forbidden', title: expect.any(String) }] });
    await expectRefused(e, await fetch(at('acme'), { method: 'DELETE', headers: { ...sent, ...bearer(token) } }), 403, 'revoke');
    const url = withQuery(e.endpoints.authorization, { response_type: 'code', client_id: e.clientId });
    const code = (await e.authorize(url)).searchParams.get('code') ?? '';
    const exchange = { code, grant_type: 'authorization_code', client_id: e.clientId, client_secret: e.clientSecret };
    await expectRefused(e, await postForm(e.endpoints.token, exchange, sent), 403, 'token');
    expect((await info(token)).status).toBe(200); // nothing was revoked
  });
});

/** What every emulator shares, run over all four. */
describe.each([
  {
    name: 'Pipedrive',
    start: () => startPipedriveEmulator({ redirectUri: CALLBACK }),
    authUrl: (e: Emulator) => withQuery(e.endpoints.authorization, { client_id: e.clientId, redirect_uri: CALLBACK }),
    exchange: (e: Emulator, code: string) =>
      postForm(
        e.endpoints.token,
        { grant_type: 'authorization_code', code, redirect_uri: CALLBACK },
        basic(e.clientId, e.clientSecret),
      ),
    accessToken: (body: unknown) => (body as { access_token: string }).access_token,
  },
  {
    name: 'Dropbox Sign',
    start: () => startDropboxSignEmulator({ redirectUri: CALLBACK }),
    authUrl: (e: Emulator) => withQuery(e.endpoints.authorization, { response_type: 'code', client_id: e.clientId }),
    exchange: (e: Emulator, code: string) =>
      postForm(e.endpoints.token, {
        grant_type: 'authorization_code',
        code,
        client_id: e.clientId,
        client_secret: e.clientSecret,
      }),
    accessToken: (body: unknown) => (body as { access_token: string }).access_token,
  },
  {
    name: 'Cal.com platform',
    start: () => startCalcomPlatformEmulator({ redirectUri: CALLBACK }),
    authUrl: (e: Emulator) => withQuery(e.endpoints.authorization, { client_id: e.clientId, redirect_uri: CALLBACK }),
    exchange: (e: Emulator, code: string) => postJson(e.endpoints.token, { clientSecret: e.clientSecret }, bearer(code)),
    accessToken: (body: unknown) => (body as { data: { accessToken: string } }).data.accessToken,
  },
  {
    name: 'Sunshine Conversations',
    start: () => startSunshineConversationsEmulator({ redirectUri: CALLBACK }),
    authUrl: (e: Emulator) => withQuery(e.endpoints.authorization, { response_type: 'code', client_id: e.clientId }),
    exchange: (e: Emulator, code: string) =>
      postJson(e.endpoints.token, {
        code,
        grant_type: 'authorization_code',
        client_id: e.clientId,
        client_secret: e.clientSecret,
      }),
    accessToken: (body: unknown) => (body as { access_token: string }).access_token,
  },
])('$name emulator, common behaviour', ({ start, authUrl, exchange, accessToken }) => {
  let e: Emulator;
  beforeAll(async () => {
    e = await start();
  });
  afterEach(() => e.reset());
  afterAll(() => e.close());

  const login = async () => {
    const code = (await e.authorize(authUrl(e))).searchParams.get('code') ?? '';
    const response = await exchange(e, code);
    expect(response.status).toBe(200);
    const token = accessToken(await response.json());
    expect(e.issued.at(-1)).toMatchObject({ endpoint: 'token', accessToken: token });
    return token;
  };

  it('listens on 127.0.0.1 and uses the default client', () => {
    expect(e.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(e.clientId).toBe('test-client-id');
    expect(e.clientSecret).toBe('test-client-secret-0123456789');
    for (const url of Object.values(e.endpoints)) expect(String(url).startsWith(`${e.origin}/`)).toBe(true);
  });

  it('answers failWith from the token endpoint with a non-JSON body, counted and recorded', async () => {
    const code = (await e.authorize(authUrl(e))).searchParams.get('code') ?? '';
    e.failWith = 503;
    const response = await exchange(e, code);
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(e.counts.token).toBe(1);
    expect(e.rejections).toEqual([{ endpoint: 'token', status: 503, reason: expect.stringContaining('failWith') }]);
    e.failWith = undefined;
    // The outage answered before validation: the code is still good.
    expect((await exchange(e, code)).status).toBe(200);
  });

  it('revokeAll ends every issued token', async () => {
    const token = await login();
    expect((await api(e, token)).status).toBe(200);
    e.revokeAll();
    await expectRefused(e, await api(e, token), 401, 'api');
    expect((await api(e, await login())).status).toBe(200);
  });

  it('refuses a missing bearer token at the API', async () => {
    await expectRefused(e, await fetch(e.endpoints.api), 401, 'api');
  });

  it('reset zeroes counts and rejections and restores the switches, keeping tokens', async () => {
    const token = await login();
    await fetch(e.endpoints.api);
    Object.assign(e, { accessTokenTtl: 5, declineNext: true, failWith: 500 });
    e.reset();
    expect(e.counts).toEqual({ authorize: 0, token: 0, refresh: 0, revoke: 0, api: 0 });
    expect(e.rejections).toEqual([]);
    expect(e.issued).toEqual([]);
    expect([e.accessTokenTtl, e.declineNext, e.failWith]).toEqual([3600, false, undefined]);
    expect((await api(e, token)).status).toBe(200);
  });

  it('authorize() throws a clear error when not redirected; unknown paths get 404', async () => {
    await expect(e.authorize(`${e.origin}/nowhere`)).rejects.toThrow(/not redirected back \(HTTP 404\)/);
    expect(e.rejections.at(-1)).toMatchObject({ endpoint: 'GET /nowhere', status: 404 });
  });
});
