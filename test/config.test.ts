/** Start-up validation: every bad configuration fails fast with config_invalid, naming the field. */
import { describe, expect, it } from 'vitest';
import { createOAuth, memoryStore, type OAuthConfig, OAuthError } from '../src/index.js';
import {
  fromProfile,
  oauth2,
  oidc,
  type PresetOptions,
  type ProviderProfile,
  sunshineConversations,
} from '../src/providers/index.js';

const good: OAuthConfig = {
  baseUrl: 'https://app.example.com',
  secret: 'x'.repeat(32),
  providers: { google: oidc({ issuer: 'https://accounts.google.com', clientId: 'id', clientSecret: 'secret' }) },
};

function fieldOf(change: (c: OAuthConfig) => OAuthConfig): string | undefined {
  try {
    createOAuth(change({ ...good }));
  } catch (err) {
    expect(err).toBeInstanceOf(OAuthError);
    expect((err as OAuthError).code).toBe('config_invalid');
    expect((err as OAuthError).status).toBe(500);
    return (err as OAuthError).field;
  }
  return undefined;
}

describe('createOAuth configuration', () => {
  it('accepts a good configuration and freezes it', () => {
    const oauth = createOAuth(good);
    expect(Object.isFrozen(oauth.config)).toBe(true);
    expect(oauth.config.prefix).toBe('/auth');
    expect(oauth.config.secureCookies).toBe(true);
    expect(oauth.config.store.kind).toBe('cookie');
    expect(oauth.config.cookieName).toBe('__Host-oauth_session'); // https: no subdomain can plant it
  });

  it.each<[string, (c: OAuthConfig) => OAuthConfig, string]>([
    ['missing secret', (c) => ({ ...c, secret: undefined as never }), 'secret'],
    ['short secret', (c) => ({ ...c, secret: 'short' }), 'secret'],
    ['short rotated secret', (c) => ({ ...c, secret: { 1: 'x'.repeat(32), 2: 'short' } }), 'secret.2'],
    ['non-numeric secret id', (c) => ({ ...c, secret: { new: 'x'.repeat(32) } }), 'secret.new'],
    ['missing baseUrl', (c) => ({ ...c, baseUrl: '' }), 'baseUrl'],
    ['relative baseUrl', (c) => ({ ...c, baseUrl: '/app' }), 'baseUrl'],
    ['http baseUrl on a public host', (c) => ({ ...c, baseUrl: 'http://app.example.com' }), 'baseUrl'],
    ['baseUrl with a query', (c) => ({ ...c, baseUrl: 'https://app.example.com/?x=1' }), 'baseUrl'],
    ['prefix without slash', (c) => ({ ...c, prefix: 'auth' }), 'prefix'],
    ['prefix with trailing slash', (c) => ({ ...c, prefix: '/auth/' }), 'prefix'],
    ['absolute afterLogin', (c) => ({ ...c, afterLogin: 'https://evil.example' }), 'afterLogin'],
    ['no providers', (c) => ({ ...c, providers: {} }), 'providers'],
    ['provider name with a slash', (c) => ({ ...c, providers: { 'a/b': good.providers.google as never } }), 'providers.a/b'],
    ['provider not from a factory', (c) => ({ ...c, providers: { x: { clientId: 'id' } as never } }), 'providers.x'],
    [
      'provider without clientId',
      (c) => ({ ...c, providers: { g: oidc({ issuer: 'https://a.example', clientId: '', clientSecret: 's' }) } }),
      'providers.g.clientId',
    ],
    [
      'provider without clientSecret',
      (c) => ({ ...c, providers: { g: oidc({ issuer: 'https://a.example', clientId: 'id' }) } }),
      'providers.g.clientSecret',
    ],
    [
      'http issuer on a public host',
      (c) => ({ ...c, providers: { g: oidc({ issuer: 'http://a.example', clientId: 'id', clientSecret: 's' }) } }),
      'providers.g.issuer',
    ],
    [
      'authorizationParams overriding state',
      (c) => ({
        ...c,
        providers: {
          g: oidc({ issuer: 'https://a.example', clientId: 'id', clientSecret: 's', authorizationParams: { state: 'x' } }),
        },
      }),
      'providers.g.authorizationParams.state',
    ],
    [
      'oauth2 without token endpoint',
      (c) => ({
        ...c,
        providers: { p: oauth2({ authorization: 'https://a.example/auth', token: '', clientId: 'id', clientSecret: 's' }) },
      }),
      'providers.p.token',
    ],
    ['bad store', (c) => ({ ...c, store: {} as never }), 'store'],
    ['negative skew', (c) => ({ ...c, refreshSkewSeconds: -1 }), 'refreshSkewSeconds'],
  ])('rejects %s', (_name, change, field) => {
    expect(fieldOf(change)).toBe(field);
  });

  const HTTPS = 'must use https: (http: only for localhost, 127.0.0.1 or ::1)';
  it.each<[string, Parameters<typeof oidc>[0], string]>([
    ['no issuer', { issuer: '', clientId: 'id', clientSecret: 's' }, 'issuer is required'],
    ['a relative issuer', { issuer: '/op', clientId: 'id', clientSecret: 's' }, 'issuer is not an absolute URL'],
    ['an http issuer on a public host', { issuer: 'http://a.example', clientId: 'id', clientSecret: 's' }, `issuer ${HTTPS}`],
    [
      'an issuer of another scheme on a loopback host',
      { issuer: 'ftp://127.0.0.1', clientId: 'id', clientSecret: 's' },
      `issuer ${HTTPS}`,
    ],
    ['no clientId', { issuer: 'https://a.example', clientId: '', clientSecret: 's' }, 'clientId is required'],
    [
      'a clientId that is no text',
      { issuer: 'https://a.example', clientId: 7 as never, clientSecret: 's' },
      'clientId is required',
    ],
    [
      'an empty clientSecret',
      { issuer: 'https://a.example', clientId: 'id', clientSecret: '' },
      'clientSecret is required for client_secret_basic',
    ],
    [
      'no clientSecret for client_secret_post',
      { issuer: 'https://a.example', clientId: 'id', tokenEndpointAuthMethod: 'client_secret_post' },
      'clientSecret is required for client_secret_post',
    ],
    [
      'authorizationParams overriding redirect_uri',
      {
        issuer: 'https://a.example',
        clientId: 'id',
        clientSecret: 's',
        authorizationParams: { redirect_uri: 'https://evil.example' },
      },
      'authorizationParams.redirect_uri is set by the library and cannot be overridden',
    ],
  ])('says what is wrong with an oidc() provider with %s', (_name, options, problem) => {
    expect(() => createOAuth({ ...good, providers: { g: oidc(options) } })).toThrow(
      expect.objectContaining({ message: `Invalid configuration: providers.g.${problem}.` }),
    );
  });

  const profile = (changes: Partial<ProviderProfile> = {}): ProviderProfile => ({
    name: 'acme',
    authorization: { url: 'https://acme.example/authorize' },
    token: { url: 'https://acme.example/token' },
    ...changes,
  });
  it.each<[string, ProviderProfile, Partial<PresetOptions>, string]>([
    [
      'an http authorization URL',
      profile(),
      { endpoints: { authorization: 'http://acme.example/a' } },
      `endpoints.authorization ${HTTPS}`,
    ],
    ['an http refresh URL', profile(), { endpoints: { refresh: 'http://acme.example/r' } }, `endpoints.refresh ${HTTPS}`],
    [
      'an http revocation URL',
      profile({ revoke: { kind: 'rfc7009', url: 'https://acme.example/revoke' } }),
      { endpoints: { revoke: 'http://acme.example/v' } },
      `endpoints.revoke ${HTTPS}`,
    ],
    [
      'an http token-info URL',
      profile({ tokenInfo: { url: 'https://acme.example/info', extras: {} } }),
      { endpoints: { tokenInfo: 'http://acme.example/i' } },
      `endpoints.tokenInfo ${HTTPS}`,
    ],
    [
      'an RFC 7009 revocation URL with a placeholder',
      profile({ revoke: { kind: 'rfc7009', url: 'https://acme.example/{tenant}/revoke' } }),
      {},
      'endpoints.revoke holds {tenant}, which nothing fills in',
    ],
    [
      'headers that are no object',
      profile(),
      { headers: 'x-app: 1' as never },
      'headers must be an object of header names and values',
    ],
    ['headers that are null', profile(), { headers: null as never }, 'headers must be an object of header names and values'],
    [
      'a header the profile sets, in another case',
      profile({ token: { url: 'https://acme.example/token', headers: { 'X-Api-Version': '2' } } }),
      { headers: { 'x-api-version': '3' } },
      'headers.x-api-version is set by the library and cannot be overridden',
    ],
    [
      'a header named as the client secret is sent, in another case',
      profile({ token: { url: 'https://acme.example/token', clientAuth: { in: 'header', name: 'X-Secret' } } }),
      { headers: { 'x-secret': 'mine' } },
      'headers.x-secret is set by the library and cannot be overridden',
    ],
    [
      'a header value that is no text',
      profile(),
      { headers: { 'x-app': 1 as never } },
      'headers.x-app must be a string without line breaks',
    ],
  ])('says what is wrong with a profile’s provider with %s', (_name, described, options, problem) => {
    const provider = fromProfile(described, { clientId: 'id', clientSecret: 's', ...options });
    expect(() => createOAuth({ ...good, providers: { g: provider } })).toThrow(
      expect.objectContaining({ message: `Invalid configuration: providers.g.${problem}.` }),
    );
  });

  it('says a Sunshine subdomain must be a host label', () => {
    const provider = sunshineConversations({ clientId: 'id', clientSecret: 's', subdomain: 'a.b' });
    expect(() => createOAuth({ ...good, providers: { g: provider } })).toThrow(
      expect.objectContaining({
        message:
          'Invalid configuration: providers.g.subdomain must be a DNS label: letters, digits and inner hyphens, 63 at most.',
      }),
    );
  });

  it('allows http: for loopback hosts only, and a public client without a secret', () => {
    expect(() =>
      createOAuth({
        ...good,
        baseUrl: 'http://localhost:3000',
        store: memoryStore(),
        providers: {
          local: oidc({ issuer: 'http://127.0.0.1:4000', clientId: 'id', tokenEndpointAuthMethod: 'none' }),
          v6: oauth2({
            authorization: 'http://[::1]:4000/auth',
            token: 'http://[::1]:4000/token',
            clientId: 'id',
            clientSecret: 's',
          }),
        },
      }),
    ).not.toThrow();
  });

  it('never puts the secret in an error message', () => {
    const secret = 'a-secret-value-that-must-not-leak';
    let thrown: unknown;
    try {
      createOAuth({ ...good, secret: { 1: secret, 2: secret.slice(0, 10) } });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: 'config_invalid', field: 'secret.2' });
    expect(String((thrown as Error).message)).not.toContain(secret.slice(0, 10));
    expect(JSON.stringify(thrown)).not.toContain(secret.slice(0, 10));
  });
  const message = (change: (c: OAuthConfig) => OAuthConfig) => {
    try {
      createOAuth(change({ ...good }));
    } catch (err) {
      return (err as OAuthError).message;
    }
    return 'accepted';
  };
  it.each<[string, (c: OAuthConfig) => OAuthConfig, string]>([
    ['no configuration', () => undefined as never, 'config must be an object'],
    ['a baseUrl that is no text', (c) => ({ ...c, baseUrl: 7 as never }), 'baseUrl is required'],
    ['an empty baseUrl', (c) => ({ ...c, baseUrl: '' }), 'baseUrl is required'],
    ['a relative baseUrl', (c) => ({ ...c, baseUrl: '/app' }), 'baseUrl is not an absolute URL'],
    ['an http baseUrl on a public host', (c) => ({ ...c, baseUrl: 'http://app.example.com' }), `baseUrl ${HTTPS}`],
    ['a baseUrl of another scheme on a loopback host', (c) => ({ ...c, baseUrl: 'ws://localhost' }), `baseUrl ${HTTPS}`],
    ...(['https://app.example.com/#top', 'https://me@app.example.com', 'https://:pw@app.example.com'] as const).map(
      (baseUrl): [string, (c: OAuthConfig) => OAuthConfig, string] => [
        `the baseUrl ${baseUrl}`,
        (c) => ({ ...c, baseUrl }),
        'baseUrl must not carry a query, fragment or credentials',
      ],
    ),
    ['a secret that is a number', (c) => ({ ...c, secret: 7 as never }), 'secret is required (at least 32 characters)'],
    ['a secret of 31 characters', (c) => ({ ...c, secret: 'x'.repeat(31) }), 'secret must be at least 32 characters'],
    ['no secret in a rotation', (c) => ({ ...c, secret: {} }), 'secret must hold at least one password'],
    [
      'a rotation keyed by a name',
      (c) => ({ ...c, secret: { '1a': 'x'.repeat(32) } }),
      'secret.1a must be keyed by a number (the newest, highest id seals)',
    ],
    [
      'a rotation keyed by a name ending in a digit',
      (c) => ({ ...c, secret: { v2: 'x'.repeat(32) } }),
      'secret.v2 must be keyed by a number (the newest, highest id seals)',
    ],
    ['a rotated secret that is no text', (c) => ({ ...c, secret: { 1: 7 as never } }), 'secret.1 must be at least 32 characters'],
    [
      'a prefix that is no text',
      (c) => ({ ...c, prefix: 7 as never }),
      "prefix must be a path such as '/auth' (leading slash, no trailing slash)",
    ],
    [
      'an afterLogin to another host',
      (c) => ({ ...c, afterLogin: '//evil.example' }),
      "afterLogin must be a local path starting with a single '/'",
    ],
    [
      'providers that are no object',
      (c) => ({ ...c, providers: 'google' as never }),
      'providers must name at least one provider',
    ],
    [
      'a provider name of 65 characters',
      (c) => ({ ...c, providers: { ['a'.repeat(65)]: good.providers.google as never } }),
      `providers.${'a'.repeat(65)} must be named with letters, digits, - and _ only`,
    ],
    [
      'a provider name starting with a hyphen',
      (c) => ({ ...c, providers: { '-a': good.providers.google as never } }),
      'providers.-a must be named with letters, digits, - and _ only',
    ],
    [
      'a provider without problems()',
      (c) => ({ ...c, providers: { x: { connect: () => undefined } as never } }),
      'providers.x must be made by a provider factory such as oidc() or oauth2()',
    ],
    [
      'a cookie store of no chunks',
      (c) => ({ ...c, store: { kind: 'cookie', maxChunks: 0 } as never }),
      'store must be made by cookieStore(), memoryStore() or another store factory',
    ],
    [
      'a store of another kind',
      (c) => ({ ...c, store: { kind: 'disk' } as never }),
      'store must be made by cookieStore(), memoryStore() or another store factory',
    ],
    [
      'a subject that is no function',
      (c) => ({ ...c, store: memoryStore(), subject: 'alice' as never }),
      'subject must be a function of the request',
    ],
    [
      'a subject with the cookie store',
      (c) => ({ ...c, subject: () => 'alice' }),
      'subject needs a server-side store (memoryStore() or redisStore()): cookies cannot be shared between browsers',
    ],
    ['an endless skew', (c) => ({ ...c, refreshSkewSeconds: Infinity }), 'refreshSkewSeconds must be a number >= 0'],
    [
      'a cookie name with a dot',
      (c) => ({ ...c, cookieName: 'my.session' }),
      'cookieName must use letters, digits, - and _ only',
    ],
    ['a session of no seconds', (c) => ({ ...c, sessionMaxAgeSeconds: 0 }), 'sessionMaxAgeSeconds must be a positive integer'],
    ['a session of 1.5 seconds', (c) => ({ ...c, sessionMaxAgeSeconds: 1.5 }), 'sessionMaxAgeSeconds must be a positive integer'],
  ])('says what is wrong with %s', (_name, change, problem) => {
    expect(message(change)).toBe(`Invalid configuration: ${problem}.`);
  });

  it('accepts the edges of each range, and reads the defaults as documented', () => {
    const edges = createOAuth({
      ...good,
      baseUrl: 'http://[::1]:3000/app/',
      secret: 'x'.repeat(32),
      providers: { ['a'.repeat(64)]: good.providers.google as never, 'b_-9': good.providers.google as never },
      prefix: '/my.app/auth~1',
      afterLogin: '/home?tab=1',
      store: memoryStore(),
      subject: () => 'alice',
      refreshSkewSeconds: 0,
      cookieName: 'A-z_0',
      sessionMaxAgeSeconds: 1,
    }).config;
    expect(edges).toMatchObject({
      baseUrl: 'http://[::1]:3000/app',
      prefix: '/my.app/auth~1',
      afterLogin: '/home?tab=1',
      refreshSkewSeconds: 0,
      cookieName: 'A-z_0',
      sessionMaxAgeSeconds: 1,
      secureCookies: false,
    });
    expect(Object.isFrozen(edges.providers)).toBe(true);
    // Every trailing slash goes: the routes are appended with one of their own.
    expect(createOAuth({ ...good, baseUrl: 'https://app.example.com/app//' }).config.baseUrl).toBe('https://app.example.com/app');
    expect(Object.isFrozen(edges.hooks)).toBe(true);
    // Names under localhost are loopback (RFC 6761), as for a provider's URLs; a look-alike is not.
    expect(createOAuth({ ...good, baseUrl: 'http://app.localhost:3000' }).config.baseUrl).toBe('http://app.localhost:3000');
    expect(() => createOAuth({ ...good, baseUrl: 'http://app.localhost.example.com' })).toThrow(/baseUrl must use https/);

    const defaults = createOAuth({
      ...good,
      baseUrl: 'http://localhost',
      secret: { 1: 'x'.repeat(32), 20: 'y'.repeat(40) },
    }).config;
    expect(defaults).toMatchObject({
      baseUrl: 'http://localhost',
      prefix: '/auth',
      afterLogin: '/',
      refreshSkewSeconds: 60,
      cookieName: 'oauth_session', // no __Host- prefix without https
      sessionMaxAgeSeconds: 30 * 24 * 3600,
      secureCookies: false,
      subject: undefined,
    });
    // The secret seals every cookie: the public object does not hand it out.
    expect(defaults).not.toHaveProperty('secret');
    expect(JSON.stringify(defaults)).not.toContain('x'.repeat(32));
  });

  it('calls each hook with its event and swallows what a hook throws or rejects', async () => {
    const seen: string[] = [];
    const { hooks } = createOAuth({
      ...good,
      hooks: {
        onLogin: (event) => void seen.push(`login ${event.provider}`),
        onRefresh: (event) => {
          seen.push(`refresh ${event.provider}`);
          throw new Error('a failing audit');
        },
        onLogout: async (event) => {
          seen.push(`logout ${event.provider}`);
          throw new Error('a failing audit, async');
        },
        onError: (error) => void seen.push(`error ${(error as Error).message}`),
      },
    }).config;
    hooks.onLogin({ provider: 'a' });
    hooks.onRefresh({ provider: 'b' });
    hooks.onLogout({ provider: 'c' });
    hooks.onError(new Error('d'));
    await new Promise((resolve) => setImmediate(resolve)); // an unhandled rejection would fail the run here
    expect(seen).toEqual(['login a', 'refresh b', 'logout c', 'error d']);
  });
});
