/**
 * ID tokens are verified, not only read: every preset that validates ID tokens (`oidc()`,
 * `google()`, `microsoft()` for one tenant and for many) refuses a forged one, at login and at
 * refresh, as `502 invalid_response` with no tokens kept and nothing secret in the answer.
 *
 * The issuers are real HTTP servers: a minimal strict OpenID provider (test/support/oidc-issuer.ts)
 * whose ID tokens a test can forge (foreign keys, unknown `kid`, `alg: none`, HS256 with the client
 * secret, broken signatures, wrong claims), and the local Entra ID (test/support/entra.ts).
 */
import { generateKeyPairSync } from 'node:crypto';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOAuth, type OAuthError } from '../src/index.js';
import { google, microsoft, oidc, type ProviderDefinition } from '../src/providers/index.js';
import { adapters, type RunningApp } from './support/apps.js';
import { BASE_URL } from './support/authorization-server.js';
import {
  CONTOSO,
  ENTRA_CLIENT_ID,
  ENTRA_CLIENT_SECRET,
  type EntraServer,
  type EntraUser,
  startEntra,
  USERS,
} from './support/entra.js';
import { type Forge, type ForgeKit, jws, startTestIssuer, type TestIssuer } from './support/oidc-issuer.js';

const SECRET = 's'.repeat(40);
const ADAPTERS = adapters.filter((adapter) => adapter.name === 'express' || adapter.name === 'koa');
const GOOGLE_JWKS = 'https://www.googleapis.com/oauth2/v3/certs';
/** A key no issuer publishes, for forging the local Entra ID's tokens. */
const foreign = generateKeyPairSync('rsa', { modulusLength: 2048 });

const now = () => Math.floor(Date.now() / 1000);
const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const header = (kit: ForgeKit, extra: Record<string, unknown> = {}) => ({ alg: 'RS256', typ: 'JWT', kid: kit.kid, ...extra });
/** A token the issuer would sign, with these claims. */
const genuine = (claims: Record<string, unknown>, kit: ForgeKit) => jws(header(kit), claims, kit.key);
/** The same JWS with one bit of its signature flipped. */
function corrupted(token: string): string {
  const [head, payload, signature = ''] = token.split('.');
  const bytes = Buffer.from(signature, 'base64url');
  bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 1;
  return `${head}.${payload}.${bytes.toString('base64url')}`;
}
/** A genuine JWS whose payload was replaced after signing. */
function swappedPayload(token: string, claims: Record<string, unknown>): string {
  const [head, , signature] = token.split('.');
  return `${head}.${part(claims)}.${signature}`;
}
function without(claims: Record<string, unknown>, name: string): Record<string, unknown> {
  const { [name]: _dropped, ...rest } = claims;
  return rest;
}

/** Each forgery of an ID token the issuer would have signed with `claims`. */
const FORGERIES: Array<[string, Forge]> = [
  ['signed with a foreign key under the issuer’s kid', (c, k) => jws(header(k), c, k.foreignKey)],
  ['signed with a foreign key under a new kid', (c, k) => jws(header(k, { kid: 'kid-attacker' }), c, k.foreignKey)],
  ['signed with the issuer’s key under an unknown kid', (c, k) => jws(header(k, { kid: 'kid-unknown' }), c, k.key)],
  ['a corrupted signature', (c, k) => corrupted(genuine(c, k))],
  ['the signature stripped', (c, k) => genuine(c, k).replace(/[^.]+$/, '')],
  ['alg none', (c) => jws({ alg: 'none', typ: 'JWT' }, c, null)],
  ['HS256 signed with the client secret', (c, k) => jws({ alg: 'HS256', typ: 'JWT' }, c, k.clientSecret)],
  ['an RS256 header over the published EC key', (c, k) => jws(header(k, { kid: 'kid-ec' }), c, k.ecKey)],
  ['a valid token whose payload was changed after signing', (c, k) => swappedPayload(genuine(c, k), { ...c, sub: 'admin' })],
  ['another iss', (c, k) => genuine({ ...c, iss: 'https://evil.example' }, k)],
  ['another aud', (c, k) => genuine({ ...c, aud: 'another-app' }, k)],
  ['an aud array without the client, azp naming it', (c, k) => genuine({ ...c, aud: ['another-app'], azp: k.clientId }, k)],
  ['several aud without azp', (c, k) => genuine({ ...c, aud: [k.clientId, 'another-app'] }, k)],
  ['several aud with another azp', (c, k) => genuine({ ...c, aud: [k.clientId, 'another-app'], azp: 'another-app' }, k)],
  ['expired (exp two minutes ago)', (c, k) => genuine({ ...c, iat: now() - 3600, exp: now() - 120 }, k)],
  ['issued an hour in the future (iat)', (c, k) => genuine({ ...c, iat: now() + 3600, exp: now() + 7200 }, k)],
  ['no nonce', (c, k) => genuine(without(c, 'nonce'), k)],
  ['another nonce', (c, k) => genuine({ ...c, nonce: 'not-the-one-sent' }, k)],
  ['no sub', (c, k) => genuine(without(c, 'sub'), k)],
];

/** The session cookies a response sets with a value (a failed login must set none). */
function sessionCookies(response: request.Response): string[] {
  const lines = (response.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
  return lines.filter((line) => /^oauth_session[^=]*=[^;]/.test(line));
}

/** The app under test, on one adapter, with one provider; restarted by each test that needs to. */
function appHarness(adapter: (typeof adapters)[number], name: string) {
  let app: RunningApp | undefined;
  /** What the app's `onError` hook was told: each error's code. */
  const errors: string[] = [];
  /** What the app's `onLogin` hook was told. */
  const logins: Array<{ provider: string; claims?: Record<string, unknown> | undefined }> = [];
  return {
    errors,
    logins,
    async start(provider: ProviderDefinition, refreshSkewSeconds = 60): Promise<void> {
      await app?.close();
      errors.length = 0;
      logins.length = 0;
      const oauth = createOAuth({
        baseUrl: BASE_URL,
        secret: SECRET,
        refreshSkewSeconds,
        providers: { [name]: provider },
        hooks: {
          onError: (error) => void errors.push((error as OAuthError).code),
          onLogin: (event) => void logins.push(event),
        },
      });
      app = await adapter.start(oauth);
    },
    /** Starts a login, has the provider sign the user in, and comes back: the callback's answer. */
    async login(
      authorize: (authorizationUrl: string) => Promise<URL>,
      accept = 'text/html',
    ): Promise<{ browser: request.Agent; callback: request.Response; authorizationUrl: URL }> {
      const browser = request.agent(app?.server);
      const started = await browser.get(`/auth/${name}/login`).set('accept', 'text/html').expect(302);
      const authorizationUrl = new URL(started.headers.location as string);
      const back = await authorize(authorizationUrl.href);
      const callback = await browser.get(back.pathname + back.search).set('accept', accept);
      return { browser, callback, authorizationUrl };
    },
    close: () => app?.close(),
  };
}

/** A refused login: 502 invalid_response, as a page or as JSON, no session cookie, no secret, not connected. */
async function expectRefused(
  { browser, callback }: { browser: request.Agent; callback: request.Response },
  accept: string,
  provider: string,
  secrets: string[],
): Promise<void> {
  expect(callback.status).toBe(502);
  if (accept === 'text/html') {
    expect(callback.type).toBe('text/html');
    expect(callback.text).toContain('invalid_response');
  } else {
    expect(callback.type).toBe('application/json');
    expect(callback.body).toMatchObject({ error: 'invalid_response', provider });
  }
  expect(sessionCookies(callback)).toEqual([]);
  const answer = JSON.stringify(callback.headers) + callback.text;
  for (const secret of secrets) expect(answer).not.toContain(secret);
  await browser
    .get(`/token/${provider}`)
    .set('accept', 'application/json')
    .expect(401, /not_connected/);
}

afterEach(() => {
  vi.restoreAllMocks();
});

/** Moves this process's clock (Date.now, which openid-client and the issuers read) `seconds` ahead. */
function later(seconds: number): void {
  const realNow = Date.now.bind(Date);
  vi.spyOn(Date, 'now').mockImplementation(() => realNow() + seconds * 1000);
}

describe.each(ADAPTERS)('oidc() ID tokens on $name', (adapter) => {
  const NAME = 'op';
  let issuer: TestIssuer;
  const harness = appHarness(adapter, NAME);
  const provider = (server: TestIssuer = issuer) =>
    oidc({
      issuer: server.issuer,
      clientId: server.clientId,
      clientSecret: server.clientSecret,
      scopes: ['openid', 'email', 'offline_access'],
    });
  const secrets = (server: TestIssuer = issuer) => [
    server.clientSecret,
    ...server.issued.codes,
    ...server.issued.accessTokens,
    ...server.issued.refreshTokens,
    ...server.issued.idTokens,
  ];

  beforeAll(async () => {
    issuer = await startTestIssuer({ redirectUris: [`${BASE_URL}/auth/${NAME}/callback`] });
  });
  afterAll(async () => {
    await harness.close();
    await issuer?.close();
  });

  async function start(): Promise<void> {
    issuer.reset();
    await harness.start(provider());
  }

  /** A login that must succeed: the validated claims. */
  async function signedIn(server: TestIssuer = issuer): Promise<Record<string, unknown>> {
    const { browser, callback, authorizationUrl } = await harness.login((url) => server.authorize(url));
    expect([callback.status, callback.headers.location]).toEqual([302, '/']);
    expect(sessionCookies(callback)).not.toEqual([]); // what a refused login must not set
    const token = (await browser.get(`/token/${NAME}`).expect(200)).body;
    expect(token.claims).toMatchObject({ iss: server.issuer, sub: 'user-1', nonce: authorizationUrl.searchParams.get('nonce') });
    return token.claims;
  }

  it('accepts a genuine ID token, fetching the JWK Set once', async () => {
    await start();
    const claims = await signedIn();
    await signedIn();
    // The app's onLogin hears who signed in: the validated claims.
    expect(harness.logins).toEqual([
      { provider: NAME, claims },
      { provider: NAME, claims: expect.objectContaining({ sub: 'user-1' }) },
    ]);
    expect(issuer.counts).toMatchObject({ discovery: 1, jwks: 1, authorizationCode: 2 });
  });

  it.each(FORGERIES)(
    'refuses an ID token %s: 502 invalid_response, no tokens, then a genuine login works',
    async (_name, forge) => {
      await start();
      issuer.forge = forge;
      for (const accept of ['text/html', 'application/json']) {
        await expectRefused(await harness.login((url) => issuer.authorize(url), accept), accept, NAME, secrets());
      }
      expect(issuer.counts.authorizationCode).toBe(2);
      expect(harness.errors).toEqual(['invalid_response', 'invalid_response']);
      issuer.forge = undefined;
      await signedIn();
    },
  );

  it('says why it refuses an ID token issued in the future', async () => {
    await start();
    issuer.forge = FORGERIES.find(([name]) => /future \(iat\)/.test(name))?.[1];
    const { callback } = await harness.login((url) => issuer.authorize(url), 'application/json');
    expect(callback.body).toMatchObject({
      error: 'invalid_response',
      message: 'The ID token claims to be issued in the future (iat).',
    });
  });

  it.each<[string, Forge]>([
    ['HS256 signed with the client secret', (c, k) => jws({ alg: 'HS256', typ: 'JWT' }, c, k.clientSecret)],
    ['alg none', (c) => jws({ alg: 'none', typ: 'JWT' }, c, null)],
  ])('refuses %s even when the discovery document lists HS256 and none', async (_name, forge) => {
    const lax = await startTestIssuer({
      redirectUris: [`${BASE_URL}/auth/${NAME}/callback`],
      algorithms: ['RS256', 'HS256', 'none'],
    });
    try {
      await harness.start(provider(lax));
      lax.forge = forge;
      await expectRefused(
        await harness.login((url) => lax.authorize(url), 'application/json'),
        'application/json',
        NAME,
        secrets(lax),
      );
      lax.forge = undefined;
      await signedIn(lax);
    } finally {
      await lax.close();
    }
  });

  it('refuses every ID token of a provider that publishes no keys (no jwks_uri)', async () => {
    const keyless = await startTestIssuer({ redirectUris: [`${BASE_URL}/auth/${NAME}/callback`], publishKeys: false });
    try {
      await harness.start(provider(keyless));
      const accept = 'application/json';
      const refused = await harness.login((url) => keyless.authorize(url), accept);
      expect(refused.callback.body.message).toBe('The provider publishes no keys (jwks_uri): its ID token cannot be verified.');
      await expectRefused(refused, accept, NAME, secrets(keyless));
    } finally {
      await keyless.close();
    }
  });

  it.each(FORGERIES.filter(([name]) => /foreign key under the issuer|alg none|changed after signing|another iss$/.test(name)))(
    'refuses an ID token %s in a refresh answer, and keeps the stored tokens',
    async (_name, forge) => {
      await start();
      issuer.accessTokenTtl = 30;
      const { browser, callback } = await harness.login((url) => issuer.authorize(url));
      expect(callback.status).toBe(302);
      const [loginAccessToken] = issuer.issued.accessTokens;
      later(20); // due (within the skew, past half its life), not yet expired
      issuer.forge = forge;
      // Refused: the access token still in hand is handed out, the refresh's tokens are not kept.
      const kept = (await browser.get(`/token/${NAME}`).expect(200)).body;
      expect(issuer.counts.refresh).toBe(1);
      expect(kept.accessToken).toBe(loginAccessToken);
      expect(kept.claims.nonce).toEqual(expect.any(String)); // the login's claims, not the refresh's
      expect(harness.errors).toEqual(['invalid_response']);
      const answer = JSON.stringify(kept);
      for (const token of [...issuer.issued.accessTokens.slice(1), ...issuer.issued.idTokens.slice(1)]) {
        expect(answer).not.toContain(token);
      }

      // Expired: nothing to fall back on, the refusal is the answer; the tokens are still kept.
      await start();
      issuer.accessTokenTtl = 0;
      const expired = await harness.login((url) => issuer.authorize(url));
      expect(expired.callback.status).toBe(302);
      issuer.forge = forge;
      const refused = await expired.browser.get(`/token/${NAME}`).set('accept', 'application/json').expect(502);
      expect(refused.body).toMatchObject({ error: 'invalid_response', provider: NAME });
      for (const secret of secrets()) expect(refused.text).not.toContain(secret);
      const connected = (await expired.browser.get(`/connected/${NAME}`).expect(200)).body;
      expect(connected).toEqual({ connected: true, connections: [NAME] });
    },
  );

  it('picks up a rotated key: an unknown kid fetches the JWK Set again, at most once a minute', async () => {
    await start();
    await signedIn();
    expect(issuer.counts.jwks).toBe(1);
    const kid = issuer.rotate();
    const accept = 'application/json';

    // The set fetched seconds ago lacks the new key: refused, without fetching again (cool-down).
    await expectRefused(await harness.login((url) => issuer.authorize(url), accept), accept, NAME, secrets());
    expect(issuer.counts.jwks).toBe(1);

    // A minute later the unknown kid fetches the set once, finds the new key, and signs the user in.
    const realNow = Date.now.bind(Date);
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 61_000);
    await signedIn();
    expect(issuer.counts.jwks).toBe(2);
    await signedIn();
    expect(issuer.counts.jwks).toBe(2);
    expect(JSON.parse(Buffer.from(issuer.issued.idTokens.at(-1)?.split('.')[0] ?? '', 'base64url').toString())).toMatchObject({
      kid,
    });

    // A kid nobody published: one more fetch a minute later, then none within the minute.
    clock.mockImplementation(() => realNow() + 122_000);
    issuer.forge = FORGERIES[1]?.[1]; // a foreign key under a new kid
    await expectRefused(await harness.login((url) => issuer.authorize(url), accept), accept, NAME, secrets());
    expect(issuer.counts.jwks).toBe(3);
    await expectRefused(await harness.login((url) => issuer.authorize(url), accept), accept, NAME, secrets());
    expect(issuer.counts.jwks).toBe(3);
  });
});

describe.each(ADAPTERS)('google() ID tokens on $name', (adapter) => {
  const NAME = 'google';
  let issuer: TestIssuer;
  const harness = appHarness(adapter, NAME);

  beforeAll(async () => {
    // Google's issuer, served locally; its published keys are fetched from Google's jwks_uri,
    // which this test answers with the local issuer's.
    issuer = await startTestIssuer({
      issuer: 'https://accounts.google.com',
      redirectUris: [`${BASE_URL}/auth/${NAME}/callback`],
    });
  });
  afterAll(async () => {
    await harness.close();
    await issuer?.close();
  });

  async function start(): Promise<string[]> {
    issuer.reset();
    const jwksRequests: string[] = [];
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url !== GOOGLE_JWKS) return realFetch(input, init);
      jwksRequests.push(url);
      return realFetch(`${issuer.origin}/jwks`, init);
    });
    await harness.start(
      google({
        clientId: issuer.clientId,
        clientSecret: issuer.clientSecret,
        endpoints: {
          authorization: `${issuer.origin}/authorize`,
          token: `${issuer.origin}/token`,
          revoke: `${issuer.origin}/revoke`,
        },
      }),
    );
    return jwksRequests;
  }
  const secrets = () => [issuer.clientSecret, ...issuer.issued.codes, ...issuer.issued.accessTokens, ...issuer.issued.idTokens];

  it('verifies a genuine ID token with Google’s published keys', async () => {
    const jwksRequests = await start();
    const { browser, callback } = await harness.login((url) => issuer.authorize(url));
    expect(callback.status).toBe(302);
    const token = (await browser.get(`/token/${NAME}`).expect(200)).body;
    expect(token.claims).toMatchObject({ iss: 'https://accounts.google.com', sub: 'user-1' });
    expect(jwksRequests).toEqual([GOOGLE_JWKS]);
  });

  it.each(FORGERIES.filter(([name]) => /foreign key|unknown kid|alg none|HS256|EC key|changed after signing|future/.test(name)))(
    'refuses an ID token %s',
    async (_name, forge) => {
      await start();
      issuer.forge = forge;
      for (const accept of ['text/html', 'application/json']) {
        await expectRefused(await harness.login((url) => issuer.authorize(url), accept), accept, NAME, secrets());
      }
    },
  );

  it('refuses a forged ID token in a refresh answer, and keeps the stored tokens', async () => {
    await start();
    issuer.accessTokenTtl = 30;
    const { browser, callback } = await harness.login((url) => issuer.authorize(url));
    expect(callback.status).toBe(302);
    later(20); // due, not yet expired
    issuer.forge = FORGERIES[0]?.[1];
    const kept = (await browser.get(`/token/${NAME}`).expect(200)).body;
    expect(issuer.counts.refresh).toBe(1);
    expect(kept.accessToken).toBe(issuer.issued.accessTokens[0]);
    expect(harness.errors).toEqual(['invalid_response']);
  });
});

describe.each(ADAPTERS)('microsoft() ID tokens on $name', (adapter) => {
  const NAME = 'microsoft';
  let entra: EntraServer;
  const harness = appHarness(adapter, NAME);
  /** Forgeries of the local Entra ID's tokens: given its header, claims and genuine token. */
  const ENTRA_FORGERIES: Array<[string, NonNullable<EntraServer['forge']>]> = [
    ['signed with a foreign key under Entra’s kid', (h, c) => jws(h, c, foreign.privateKey)],
    ['signed with a foreign key under a new kid', (h, c) => jws({ ...h, kid: 'kid-attacker' }, c, foreign.privateKey)],
    ['a corrupted signature', (_h, _c, token) => corrupted(token)],
    ['alg none', (_h, c) => jws({ alg: 'none', typ: 'JWT' }, c, null)],
    ['HS256 signed with the client secret', (_h, c) => jws({ alg: 'HS256', typ: 'JWT' }, c, ENTRA_CLIENT_SECRET)],
    ['a genuine token whose payload was changed after signing', (_h, c, token) => swappedPayload(token, { ...c, oid: 'admin' })],
  ];

  beforeAll(async () => {
    entra = await startEntra({ redirectUris: [`${BASE_URL}/auth/${NAME}/callback`] });
  });
  afterAll(async () => {
    await harness.close();
    await entra?.close();
  });

  async function start(tenant: string): Promise<void> {
    entra.reset();
    await harness.start(
      microsoft({ clientId: ENTRA_CLIENT_ID, clientSecret: ENTRA_CLIENT_SECRET, authorityHost: entra.origin, tenant }),
    );
  }
  const signIn = (user: EntraUser, accept = 'text/html') => harness.login((url) => entra.signIn(url, user), accept);

  it.each(['common', CONTOSO.domain])('%s: genuine ID tokens pass, the tenant’s keys fetched once', async (tenant) => {
    await start(tenant);
    for (const user of [USERS.alice, USERS.alice]) {
      const { browser, callback } = await signIn(user);
      expect(callback.status).toBe(302);
      const token = (await browser.get(`/token/${NAME}`).expect(200)).body;
      expect(token.claims).toMatchObject({ tid: CONTOSO.id, iss: entra.issuerOf(CONTOSO) });
    }
    expect(entra.counts).toMatchObject({ discovery: 1, jwks: 1, authorizationCode: 2 });
  });

  // `common` takes the multi-tenant path (issuer from the token's tid), a domain the single-tenant one.
  describe.each(['common', CONTOSO.domain])('tenant %s', (tenant) => {
    it.each(ENTRA_FORGERIES)('refuses an ID token %s', async (_name, forge) => {
      await start(tenant);
      entra.forge = forge;
      for (const accept of ['text/html', 'application/json']) {
        await expectRefused(await signIn(USERS.alice, accept), accept, NAME, [ENTRA_CLIENT_SECRET]);
      }
      entra.forge = undefined;
      expect((await signIn(USERS.alice)).callback.status).toBe(302);
    });
  });

  it('refuses a forged ID token in a refresh answer (organizations), and keeps the stored tokens', async () => {
    await start('organizations');
    entra.accessTokenTtl = 30;
    const { browser, callback } = await signIn(USERS.bob);
    expect(callback.status).toBe(302);
    later(20); // due, not yet expired
    entra.forge = ENTRA_FORGERIES[0]?.[1];
    const kept = (await browser.get(`/token/${NAME}`).expect(200)).body;
    expect(entra.counts.refresh).toBe(1);
    expect(kept.claims.nonce).toEqual(expect.any(String)); // the login's tokens, not the refresh's
    expect(harness.errors).toEqual(['invalid_response']);
  });
});
