/**
 * What each preset sends in its authorization request, read off the URL it builds (no network:
 * presets with known endpoints need no discovery). The seed providers' token side is proven end to
 * end against the emulators; the other presets' token handling against a tiny server per case.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createOAuth, OAuthError } from '../src/index.js';
import {
  calcom,
  calcomPlatform,
  calcomPlatformProfile,
  dropboxSign,
  github,
  google,
  hellosign,
  microsoft,
  oauth2,
  pipedrive,
  type ProviderDefinition,
  slack,
  sunshineConversations,
} from '../src/providers/index.js';

const credentials = { clientId: 'the-client', clientSecret: 'the-secret' };
const redirect = 'https://app.example.com/auth/p/callback';

async function authorizationUrl(provider: ProviderDefinition): Promise<URL> {
  const ready = await provider.connect();
  return ready.authorizationUrl(redirect, { state: 'the-state' }, provider.pkce ? 'the-challenge' : undefined);
}

describe('presets', () => {
  // Each provider is made inside its test, as an app makes it at start-up: the mutation run runs the
  // tests that cover a mutant, and what runs while a table is built is covered by no test.
  it.each<[string, () => ProviderDefinition, string, Record<string, string | null>]>([
    [
      'pipedrive',
      () => pipedrive(credentials),
      'https://oauth.pipedrive.com/oauth/authorize',
      {
        client_id: 'the-client',
        redirect_uri: redirect,
        state: 'the-state',
        scope: null,
        response_type: null,
        code_challenge: null,
      },
    ],
    [
      'dropboxSign',
      () => dropboxSign(credentials),
      'https://app.hellosign.com/oauth/authorize',
      {
        client_id: 'the-client',
        response_type: 'code',
        state: 'the-state',
        scope: null,
        redirect_uri: null,
        code_challenge: null,
      },
    ],
    [
      'calcomPlatform, with a first-party authorization page',
      () => calcomPlatform({ ...credentials, endpoints: { authorization: 'https://app.example/cal/authorize' } }),
      'https://app.example/cal/authorize',
      { client_id: 'the-client', redirect_uri: redirect, state: 'the-state', response_type: null, code_challenge: null },
    ],
    [
      'calcom',
      () => calcom({ ...credentials, scopes: ['BOOKING_READ', 'SCHEDULE_READ'] }),
      'https://app.cal.com/auth/oauth2/authorize',
      {
        client_id: 'the-client',
        response_type: 'code',
        scope: 'BOOKING_READ,SCHEDULE_READ', // the authorize page splits on commas
        code_challenge: 'the-challenge',
        code_challenge_method: 'S256',
      },
    ],
    [
      'sunshineConversations',
      () => sunshineConversations(credentials),
      'https://oauth-bridge.zendesk.com/sc/oauth/authorize',
      { client_id: 'the-client', response_type: 'code', redirect_uri: redirect, scope: null, code_challenge: null },
    ],
    [
      'google',
      () => google(credentials),
      'https://accounts.google.com/o/oauth2/v2/auth',
      { scope: 'openid email profile', access_type: 'offline', prompt: 'consent', code_challenge_method: 'S256' },
    ],
    [
      'github',
      () => github(credentials),
      'https://github.com/login/oauth/authorize',
      { scope: 'read:user', code_challenge_method: 'S256' },
    ],
    [
      'microsoft',
      () => microsoft({ ...credentials, tenant: 'contoso.example' }),
      'https://login.microsoftonline.com/contoso.example/oauth2/v2.0/authorize',
      { scope: 'openid profile email offline_access User.Read' },
    ],
    [
      'oauth2, with PKCE by default',
      () => oauth2({ ...credentials, authorization: 'https://as.example/authorize', token: 'https://as.example/token' }),
      'https://as.example/authorize',
      { client_id: 'the-client', response_type: 'code', redirect_uri: redirect, code_challenge_method: 'S256' },
    ],
    [
      'oauth2 without PKCE',
      () =>
        oauth2({ ...credentials, authorization: 'https://as.example/authorize', token: 'https://as.example/token', pkce: false }),
      'https://as.example/authorize',
      { code_challenge: null, code_challenge_method: null },
    ],
    [
      'slack',
      () => slack({ ...credentials, scopes: ['users:read', 'chat:write'] }),
      'https://slack.com/oauth/v2/authorize',
      { user_scope: 'users:read,chat:write', scope: null, code_challenge: null },
    ],
  ])('%s sends what its provider expects, and nothing it refuses', async (_name, make, endpoint, expected) => {
    const url = await authorizationUrl(make());
    expect(url.origin + url.pathname).toBe(endpoint);
    for (const [param, value] of Object.entries(expected)) expect([param, url.searchParams.get(param)]).toEqual([param, value]);
  });

  it('hellosign is dropboxSign', () => {
    expect(hellosign).toBe(dropboxSign);
  });

  it('sends a nonce only to OpenID Connect presets', () => {
    expect(google(credentials).nonce).toBe(true);
    expect(microsoft({ ...credentials, tenant: 'contoso.example' }).nonce).toBe(true);
    expect(microsoft(credentials).nonce).toBe(true); // multi-tenant: each ID token checked against its own tenant
    expect(github(credentials).nonce).toBe(false);
    // No `openid` scope, no ID token: a nonce would make openid-client demand one.
    expect(google({ ...credentials, scopes: ['https://www.googleapis.com/auth/calendar.readonly'] }).nonce).toBe(false);
  });

  it('lets endpoints replace any URL, and validates them at start-up', () => {
    const local = pipedrive({
      ...credentials,
      endpoints: { authorization: 'http://127.0.0.1:1/a', token: 'http://127.0.0.1:1/t', revoke: 'http://127.0.0.1:1/r' },
    });
    expect(() => createOAuth({ baseUrl: redirect, secret: 's'.repeat(32), providers: { p: local } })).not.toThrow();
    const bad = pipedrive({ ...credentials, endpoints: { token: 'http://evil.example/token' } });
    expect(() => createOAuth({ baseUrl: redirect, secret: 's'.repeat(32), providers: { p: bad } })).toThrow(
      expect.objectContaining({ code: 'config_invalid', field: 'providers.p.endpoints.token' }),
    );
    const scoped = dropboxSign({ ...credentials, scopes: ['signature_request_access'] });
    expect(() => createOAuth({ baseUrl: redirect, secret: 's'.repeat(32), providers: { d: scoped } })).toThrow(
      expect.objectContaining({ code: 'config_invalid', field: 'providers.d.scopes' }),
    );
    const noSecret = calcomPlatform({ clientId: 'id' });
    expect(() => createOAuth({ baseUrl: redirect, secret: 's'.repeat(32), providers: { c: noSecret } })).toThrow(
      expect.objectContaining({ code: 'config_invalid', field: 'providers.c.clientSecret' }),
    );
  });

  it.each<[string, () => ProviderDefinition, string]>([
    ['calcomPlatform', () => calcomPlatform({ ...credentials, endpoints: { token: 'http://127.0.0.1:1/t' } }), 'refresh'],
    ['dropboxSign', () => dropboxSign({ ...credentials, endpoints: { token: 'http://127.0.0.1:1/t' } }), 'refresh'],
    ['pipedrive', () => pipedrive({ ...credentials, endpoints: { token: 'http://127.0.0.1:1/t' } }), 'revoke'],
    [
      'sunshineConversations',
      () => sunshineConversations({ ...credentials, endpoints: { token: 'http://127.0.0.1:1/t' } }),
      'revoke',
    ],
    [
      'github',
      () => github({ ...credentials, endpoints: { authorization: 'https://ghe.example/login/oauth/authorize' } }),
      'revoke',
    ],
  ])(
    '%s refuses a token or authorization URL moved alone: its %s URL would still reach the production host',
    (_name, make, field) => {
      const attempt = () => createOAuth({ baseUrl: redirect, secret: 's'.repeat(32), providers: { p: make() } });
      expect(attempt).toThrow(expect.objectContaining({ code: 'config_invalid', field: `providers.p.endpoints.${field}` }));
      expect(attempt).toThrow(/set too/);
      expect(attempt).not.toThrow(/the-secret/);
    },
  );

  it('accepts a partial override that moves nothing off the provider, or that sets every URL it must', () => {
    const create = (provider: ProviderDefinition) =>
      createOAuth({ baseUrl: redirect, secret: 's'.repeat(32), providers: { p: provider } });
    // Same origin, another path (a self-hosted mount): the refresh URL stays on that host, as it should.
    expect(() =>
      create(calcomPlatform({ ...credentials, endpoints: { token: 'https://api.cal.com/api/v2/oauth/{clientId}/exchange' } })),
    ).not.toThrow();
    // Only revoke moved (Sunshine's regional host): nothing else carries credentials elsewhere.
    expect(() =>
      create(sunshineConversations({ ...credentials, endpoints: { revoke: 'https://acme.zendesk.com/sc/oauth/authorization' } })),
    ).not.toThrow();
    // The refresh URL follows an overridden token URL where the preset has no refresh URL of its own.
    expect(() =>
      create(google({ ...credentials, endpoints: { token: 'http://127.0.0.1:1/t', revoke: 'http://127.0.0.1:1/r' } })),
    ).not.toThrow();
    expect(() =>
      create(
        dropboxSign({ ...credentials, endpoints: { token: 'http://127.0.0.1:1/t', refresh: 'http://127.0.0.1:1/t?refresh' } }),
      ),
    ).not.toThrow();
  });

  it("fills the client id into Cal.com's platform URLs", async () => {
    const authorization = 'https://app.example/cal/{clientId}/authorize';
    const provider = calcomPlatform({ clientId: 'abc/1', clientSecret: 's', endpoints: { authorization } });
    expect(provider.withoutState).toBe('newest-login');
    expect(provider.expiredStatuses).toEqual([401, 498]);
    const url = await authorizationUrl(provider);
    expect(url.pathname).toBe('/cal/abc%2F1/authorize');
    expect(url.searchParams.get('client_id')).toBe('abc/1');
  });

  it("sends no browser to Cal.com's mock platform page: without a first-party page there is no login route", () => {
    expect(calcomPlatform(credentials).browserLogin).toBe(false);
    expect(calcomPlatform({ ...credentials, endpoints: { authorization: 'https://app.example/a' } }).browserLogin).toBe(true);
    expect(JSON.stringify(calcomPlatformProfile)).not.toContain('auth/platform/authorize');
  });

  it('refuses at start-up a preset its provider refuses without scopes', () => {
    const scopes = (provider: ProviderDefinition) => provider.problems().filter(([field]) => field === 'scopes');
    expect(scopes(calcom(credentials))).toEqual([['scopes', expect.stringContaining('required')]]);
    expect(scopes(slack(credentials))).toEqual([['scopes', expect.stringContaining('required')]]);
    expect(scopes(calcom({ ...credentials, scopes: ['BOOKING_READ'] }))).toEqual([]);
    expect(scopes(slack({ ...credentials, scopes: ['users:read'] }))).toEqual([]);
  });
});

interface Seen {
  method: string;
  /** The request target as sent, query untouched. */
  target: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Answer {
  status?: number;
  type?: string;
  body: string | Record<string, unknown>;
}

/**
 * Runs `use` against a token server on 127.0.0.1 (port 0) that answers every request with
 * `answer(request)` and records what came; closed afterwards.
 */
async function withServer<T>(answer: (seen: Seen) => Answer, use: (origin: string, seen: Seen[]) => Promise<T>): Promise<T> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const request = { method: req.method ?? '', target: req.url ?? '', headers: req.headers, body };
      seen.push(request);
      const reply = answer(request);
      res.writeHead(reply.status ?? 200, { 'content-type': reply.type ?? 'application/json' });
      res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

/** Every URL of a preset on the local server, so that none of them reaches the real provider. */
const local = (origin: string) => ({
  authorization: `${origin}/authorize`,
  token: `${origin}/token`,
  refresh: `${origin}/token?refresh`,
  revoke: `${origin}/revoke`,
});

/** The code exchange after a callback whose state was already checked. */
async function exchange(provider: ProviderDefinition) {
  const client = await provider.connect();
  const checks = { state: 'the-state', codeVerifier: provider.pkce ? 'v'.repeat(43) : undefined };
  return client.exchangeCode(new URL(`${redirect}?code=the-code&state=the-state`), redirect, checks);
}

const now = () => Math.floor(Date.now() / 1000);

describe('token handling of the presets without an emulator', () => {
  it("uses Slack's user token nested in authed_user, not the bot token beside it", async () => {
    const answer = {
      body: {
        ok: true,
        app_id: 'A1',
        access_token: 'xoxb-bot',
        token_type: 'bot',
        scope: 'commands',
        team: { id: 'T1', name: 'Team' },
        enterprise: null,
        authed_user: {
          id: 'U1',
          scope: 'users:read',
          access_token: 'xoxp-user',
          token_type: 'user',
          refresh_token: 'xoxe-1',
          expires_in: 43200,
        },
      },
    };
    const tokens = await withServer(
      () => answer,
      (origin) => exchange(slack({ ...credentials, scopes: ['users:read'], endpoints: local(origin) })),
    );
    expect(tokens).toMatchObject({
      accessToken: 'xoxp-user',
      tokenType: 'Bearer', // Slack's `user` is a bearer token
      refreshToken: 'xoxe-1',
      scope: 'users:read',
      extras: { id: 'U1', team: { id: 'T1', name: 'Team' }, enterprise: null },
    });
    expect(tokens.expiresAt).toBeGreaterThanOrEqual(now() + 43200 - 5);
    expect(JSON.stringify(tokens)).not.toContain('xoxb-bot');
  });

  it.each([1e17, 1e308])('reads an absurd expires_in (%d) as no lifetime, never an overflowing expiry', async (expiresIn) => {
    const tokens = await withServer(
      () => ({ body: { access_token: 'at', token_type: 'bearer', expires_in: expiresIn, refresh_token_expires_in: expiresIn } }),
      (origin) => exchange(github({ ...credentials, endpoints: local(origin) })),
    );
    expect(tokens.expiresAt).toBeUndefined();
    expect(tokens.refreshExpiresAt).toBeUndefined();
  });

  it("asks GitHub's token endpoint for JSON (it answers form-encoded otherwise)", async () => {
    const tokens = await withServer(
      ({ headers }) =>
        headers.accept === 'application/json'
          ? { body: { access_token: 'gho_1', token_type: 'bearer', scope: 'read:user' } }
          : { type: 'application/x-www-form-urlencoded', body: 'access_token=gho_1&scope=read%3Auser&token_type=bearer' },
      async (origin, seen) => {
        const result = await exchange(github({ ...credentials, endpoints: local(origin) }));
        expect(seen.map((s) => [s.method, s.target, s.headers.accept])).toEqual([['POST', '/token', 'application/json']]);
        return result;
      },
    );
    expect(tokens).toMatchObject({ accessToken: 'gho_1', tokenType: 'Bearer', scope: 'read:user', extras: {} });
  });

  it.each<[string, (origin: string) => Promise<unknown>, Answer, { error: string; errorDescription: string | undefined }]>([
    [
      "Slack's {ok: false} on the code exchange",
      (origin) => exchange(slack({ ...credentials, endpoints: local(origin) })),
      { body: { ok: false, error: 'bad_client_secret' } },
      { error: 'bad_client_secret', errorDescription: undefined },
    ],
    [
      "Slack's {ok: false} on a refresh, its code read as invalid_grant",
      async (origin) => (await slack({ ...credentials, endpoints: local(origin) }).connect()).refresh('xoxe-1'),
      { body: { ok: false, error: 'invalid_refresh_token' } },
      { error: 'invalid_grant', errorDescription: undefined },
    ],
    [
      "GitHub's HTTP 200 {error} for a bad code, read as invalid_grant",
      (origin) => exchange(github({ ...credentials, endpoints: local(origin) })),
      {
        body: {
          error: 'bad_verification_code',
          error_description: 'The code passed is incorrect or expired.',
          error_uri:
            'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code',
        },
      },
      { error: 'invalid_grant', errorDescription: 'The code passed is incorrect or expired.' },
    ],
    [
      "GitHub's HTTP 200 {error} for wrong client credentials",
      (origin) => exchange(github({ ...credentials, endpoints: local(origin) })),
      {
        body: {
          error: 'incorrect_client_credentials',
          error_description: 'The client_id and/or client_secret passed are incorrect.',
        },
      },
      { error: 'incorrect_client_credentials', errorDescription: 'The client_id and/or client_secret passed are incorrect.' },
    ],
  ])('turns %s into provider_error', async (_name, run, answer, expected) => {
    const failure = await withServer(
      () => answer,
      (origin) =>
        run(origin).then(
          () => undefined,
          (err: unknown) => err,
        ),
    );
    expect(failure).toBeInstanceOf(OAuthError);
    expect(failure).toMatchObject({ code: 'provider_error', status: 502, ...expected });
    expect(JSON.stringify(failure) + String(failure)).not.toContain(credentials.clientSecret);
  });

  it('form-encodes Basic client credentials (RFC 6749 §2.3.1) alike on token requests and both kinds of revocation', async () => {
    const special = { clientId: 'id:1', clientSecret: 'a+b/c%d é' };
    const answer = ({ target }: Seen): Answer =>
      target === '/token' ? { body: { access_token: 'v1u:1', token_type: 'Bearer', refresh_token: 'r1' } } : { body: '' };
    await withServer(answer, async (origin, seen) => {
      const pd = pipedrive({ ...special, endpoints: local(origin) });
      await exchange(pd);
      await (await pd.connect()).revoke?.({ accessToken: 'v1u:1', refreshToken: 'r1' }); // RFC 7009
      await (await github({ ...special, endpoints: local(origin) }).connect()).revoke?.({ accessToken: 'gho_1' }); // a DELETE
      expect(seen.map((s) => `${s.method} ${s.target}`)).toEqual(['POST /token', 'POST /revoke', 'DELETE /revoke']);
      const decoded = seen.map((s) => Buffer.from((s.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString());
      expect(decoded).toEqual(Array(3).fill('id%3A1:a%2Bb%2Fc%25d+%C3%A9'));
    });
  });

  it.each([
    ['seconds from now', false, 86400],
    ['an epoch in seconds (over 1e9)', true, 7200],
  ])("reads Dropbox Sign's expires_in as %s", async (_name, epoch, lifetime) => {
    const expiresIn = epoch ? now() + lifetime : lifetime;
    const answer = { body: { access_token: 'NWNi=', token_type: 'Bearer', refresh_token: 'hNTI2', expires_in: expiresIn } };
    await withServer(
      () => answer,
      async (origin, seen) => {
        const provider = dropboxSign({ ...credentials, endpoints: local(origin) });
        for (const tokens of [await exchange(provider), await (await provider.connect()).refresh('hNTI2')]) {
          expect(tokens.expiresAt).toBeGreaterThanOrEqual(now() + lifetime - 5);
          expect(tokens.expiresAt).toBeLessThanOrEqual(now() + lifetime + 1);
        }
        // The refresh went to the valueless `?refresh` flag, kept literally.
        expect(seen.map((s) => s.target)).toEqual(['/token', '/token?refresh']);
      },
    );
  });
});
