/**
 * The `microsoft()` preset end to end, on every adapter, against a local server that issues tokens
 * as Entra ID does (test/support/entra.ts): ID tokens whose `iss` names the tenant's GUID whatever
 * alias the login used, tenant-independent discovery documents with a `{tenantid}` issuer. Each
 * kind of tenant signs in with its ID token validated (claims, nonce); a token from another tenant,
 * or whose `iss` does not match its `tid`, is refused as `invalid_response`.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth } from '../src/index.js';
import { microsoft, type ProviderDefinition } from '../src/providers/index.js';
import { adapters, type RunningApp } from './support/apps.js';
import { BASE_URL } from './support/authorization-server.js';
import {
  CONSUMERS,
  CONTOSO,
  ENTRA_CLIENT_ID,
  ENTRA_CLIENT_SECRET,
  type EntraServer,
  type EntraTenant,
  type EntraUser,
  FABRIKAM,
  startEntra,
  USERS,
} from './support/entra.js';

const NAME = 'microsoft';
const SECRET = 's'.repeat(40);

let entra: EntraServer;
beforeAll(async () => {
  entra = await startEntra({ redirectUris: [`${BASE_URL}/auth/${NAME}/callback`] });
});
afterAll(async () => {
  await entra?.close();
});

const preset = (tenant?: string, options: { authorityHost?: string } = {}) =>
  microsoft({
    clientId: ENTRA_CLIENT_ID,
    clientSecret: ENTRA_CLIENT_SECRET,
    authorityHost: options.authorityHost ?? entra.origin,
    ...(tenant === undefined ? {} : { tenant }),
  });

/** Claims every validated Entra ID token of `user` carries, the issuer naming the user's tenant. */
const claimsOf = (user: EntraUser) => ({
  iss: entra.issuerOf(user.tenant),
  tid: user.tenant.id,
  aud: ENTRA_CLIENT_ID,
  oid: user.oid,
  preferred_username: user.upn,
  ver: '2.0',
});

describe.each(adapters)('microsoft() on $name', (adapter) => {
  let app: RunningApp | undefined;
  let errors: unknown[] = [];

  async function start(provider: ProviderDefinition, refreshSkewSeconds = 60): Promise<void> {
    await app?.close();
    entra.reset();
    errors = [];
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: SECRET,
      refreshSkewSeconds,
      providers: { [NAME]: provider },
      hooks: { onError: (err) => errors.push(err) },
    });
    app = await adapter.start(oauth);
  }
  afterAll(async () => {
    await app?.close();
  });

  /** Starts a login in a new browser; returns it with the authorization URL it was sent to. */
  async function startLogin(): Promise<{ browser: request.Agent; authorizationUrl: URL }> {
    const browser = request.agent(app?.server);
    const started = await browser.get(`/auth/${NAME}/login`).expect(302);
    return { browser, authorizationUrl: new URL(started.headers.location as string) };
  }

  /** Signs `user` in and comes back to the app: the callback's answer. */
  async function signIn(user: EntraUser): Promise<{ browser: request.Agent; callback: request.Response; authorizationUrl: URL }> {
    const { browser, authorizationUrl } = await startLogin();
    const back = await entra.signIn(authorizationUrl.href, user);
    const callback = await browser.get(back.pathname + back.search);
    return { browser, callback, authorizationUrl };
  }

  async function signedIn(user: EntraUser): Promise<Record<string, unknown>> {
    const { browser, callback, authorizationUrl } = await signIn(user);
    expect([callback.status, callback.headers.location]).toEqual([302, '/']);
    const token = (await browser.get(`/token/${NAME}`).expect(200)).body;
    // The nonce sent is the one the validated token carries (openid-client refuses any other).
    expect(authorizationUrl.searchParams.get('nonce')).toEqual(expect.any(String));
    expect(token.claims).toMatchObject({ ...claimsOf(user), nonce: authorizationUrl.searchParams.get('nonce') });
    expect(token.extras).toEqual({}); // `ext_expires_in` is not kept
    return token.claims;
  }

  it.each<[string, string, EntraTenant]>([
    ['a tenant given as a domain', CONTOSO.domain, CONTOSO],
    ['a tenant given as its GUID', CONTOSO.id, CONTOSO],
    ['consumers (personal accounts: one tenant of its own)', 'consumers', CONSUMERS],
  ])('%s signs in with the ID token validated against the GUID issuer', async (_kind, tenant, expected) => {
    await start(preset(tenant));
    const user = Object.values(USERS).find((u) => u.tenant === expected) as EntraUser;
    const { authorizationUrl } = await startLogin();
    expect(authorizationUrl.origin + authorizationUrl.pathname).toBe(`${entra.origin}/${tenant}/oauth2/v2.0/authorize`);
    await signedIn(user);
    expect(entra.counts).toMatchObject({ discovery: 1, authorizationCode: 1 });
  });

  it.each<[string, string, EntraUser[]]>([
    ['organizations', 'organizations', [USERS.alice, USERS.bob]],
    ['common', 'common', [USERS.alice, USERS.bob, USERS.carol]],
    ['no tenant (common)', '', [USERS.carol, USERS.alice]],
  ])('%s signs in users of several tenants, each ID token checked against its own tid', async (_kind, tenant, users) => {
    await start(preset(tenant === '' ? undefined : tenant));
    for (const user of users) await signedIn(user);
    // One discovery document for the preset, whatever the users' tenants.
    expect(entra.counts).toMatchObject({ discovery: 1, authorizationCode: users.length });
  });

  it('checks the ID token of a refresh against its tenant too', async () => {
    await start(preset('organizations'));
    entra.accessTokenTtl = 30; // due at once with the 60 s skew
    const { browser, callback } = await signIn(USERS.bob);
    expect(callback.status).toBe(302);
    entra.accessTokenTtl = 3600;
    const refreshed = (await browser.get(`/token/${NAME}`).expect(200)).body;
    expect(entra.counts.refresh).toBe(1);
    expect(refreshed.claims).toMatchObject(claimsOf(USERS.bob));
    expect(refreshed.claims.nonce).toBeUndefined(); // the refreshed ID token's claims, not the login's

    // Expired at once: a refused refresh cannot fall back on the access token still in hand.
    entra.accessTokenTtl = 0;
    const second = await signIn(USERS.alice);
    expect(second.callback.status).toBe(302);
    entra.tamper = (claims) => ({ ...claims, iss: entra.issuerOf(FABRIKAM) }); // alice's tid, another issuer
    const refused = await second.browser.get(`/token/${NAME}`).expect(502);
    expect(refused.body).toMatchObject({ error: 'invalid_response', provider: NAME });
  });

  it.each<[string, string, (claims: Record<string, unknown>) => Record<string, unknown>]>([
    [
      'a domain tenant, a token of another tenant',
      CONTOSO.domain,
      (c) => ({ ...c, iss: entra.issuerOf(FABRIKAM), tid: FABRIKAM.id }),
    ],
    ['a GUID tenant, a token of another tenant', CONTOSO.id, (c) => ({ ...c, iss: entra.issuerOf(FABRIKAM), tid: FABRIKAM.id })],
    ['a GUID tenant, a foreign issuer', CONTOSO.id, (c) => ({ ...c, iss: `https://evil.example/${CONTOSO.id}/v2.0` })],
    ['a domain tenant, the alias as issuer', CONTOSO.domain, (c) => ({ ...c, iss: `${entra.origin}/${CONTOSO.domain}/v2.0` })],
    ['organizations, an iss not matching tid', 'organizations', (c) => ({ ...c, iss: entra.issuerOf(FABRIKAM) })],
    ['organizations, the template itself as iss', 'organizations', (c) => ({ ...c, iss: `${entra.origin}/{tenantid}/v2.0` })],
    ['common, an iss not matching tid', 'common', (c) => ({ ...c, tid: FABRIKAM.id })],
    ['common, a foreign issuer matching tid', 'common', (c) => ({ ...c, iss: `https://evil.example/${CONTOSO.id}/v2.0` })],
    ['common, no tid', 'common', ({ tid: _tid, ...c }) => c],
    ['common, a tid that is no GUID', 'common', (c) => ({ ...c, tid: 'x/v2.0/..', iss: `${entra.origin}/x/v2.0/../v2.0` })],
    ['organizations, another nonce', 'organizations', (c) => ({ ...c, nonce: 'not-the-one-sent' })],
    ['common, another audience', 'common', (c) => ({ ...c, aud: 'another-app' })],
  ])('%s: refused with invalid_response, no session', async (_case, tenant, tamper) => {
    await start(preset(tenant));
    entra.tamper = tamper;
    const { browser, callback } = await signIn(USERS.alice);
    expect(callback.status).toBe(502);
    expect(callback.body).toMatchObject({ error: 'invalid_response', provider: NAME });
    expect(callback.text).not.toContain(ENTRA_CLIENT_SECRET);
    await browser.get(`/token/${NAME}`).expect(401, /not_connected/);
  });

  it('checks a single tenant’s ID token by its issuer alone: no `tid` needed, and an authority host with its slash', async () => {
    await start(preset(CONTOSO.id, { authorityHost: `${entra.origin}/` }));
    entra.tamper = ({ tid: _tid, ...claims }) => claims;
    const { browser, callback } = await signIn(USERS.alice);
    expect(callback.status).toBe(302);
    await browser.get(`/token/${NAME}`).expect(200);
  });

  it('refuses a tenant-independent login whose ID token names no tenant, saying so', async () => {
    await start(preset('common'));
    entra.tamper = ({ tid: _tid, ...claims }) => claims;
    const { callback } = await signIn(USERS.alice);
    expect(callback.status).toBe(502);
    expect(callback.body).toMatchObject({
      error: 'invalid_response',
      provider: NAME,
      message: 'The ID token names no tenant (`tid`): its issuer cannot be checked.',
    });
  });

  it.each<[string, (document: Record<string, unknown>) => Record<string, unknown>, string]>([
    ['an issuer that is no URL', (document) => ({ ...document, issuer: 'contoso' }), 'issuer'],
    ['no key set', ({ jwks_uri: _jwks, ...document }) => document, 'jwks_uri'],
    ['a key set over http on a public host', (document) => ({ ...document, jwks_uri: 'http://keys.example/keys' }), 'jwks_uri'],
  ])('refuses a discovery document with %s as invalid_response, naming the field', async (_case, tamper, field) => {
    await start(preset(CONTOSO.domain));
    entra.tamperDiscovery = tamper;
    const { browser, callback } = await signIn(USERS.alice);
    expect(callback.status).toBe(502);
    expect(callback.body).toMatchObject({ error: 'invalid_response', provider: NAME });
    expect(callback.body.message).toMatch(new RegExp(`^The discovery document of the Microsoft tenant .*${field}`));
    expect(entra.counts.authorizationCode).toBe(0);
    await browser.get(`/token/${NAME}`).expect(401, /not_connected/);
  });

  it('refuses a user the tenant does not know as access_denied', async () => {
    await start(preset(CONTOSO.domain));
    const { callback } = await signIn(USERS.bob);
    expect(callback.status).toBe(403);
    expect(callback.body).toMatchObject({ error: 'access_denied', provider: NAME });
  });

  it('turns an unknown tenant or an unreachable authority into typed errors, and tries discovery again', async () => {
    const callbackOfNewLogin = async () => {
      const { browser, authorizationUrl } = await startLogin();
      return browser.get(`/auth/${NAME}/callback?code=any&state=${authorizationUrl.searchParams.get('state')}`);
    };
    await start(preset('nosuch.onmicrosoft.com'));
    const refused = await callbackOfNewLogin();
    expect(refused.status).toBe(502);
    expect(refused.body).toMatchObject({ error: 'invalid_response', provider: NAME });
    expect(refused.body.message).toBe(
      'The discovery document of the Microsoft tenant nosuch.onmicrosoft.com was refused (is the tenant right?).',
    );
    // The app sees why, in the error's cause (Entra ID's own answer, which names no secret).
    expect(errors.at(-1)).toMatchObject({ cause: expect.anything() });
    expect(refused.text).not.toContain(ENTRA_CLIENT_SECRET);
    // A failed discovery is not remembered: the next callback asks again.
    expect((await callbackOfNewLogin()).status).toBe(502);
    expect(entra.counts).toMatchObject({ discovery: 2, authorizationCode: 0 });

    // Nothing listens on port 9 of the loopback (discard): the connection is refused.
    await start(preset(CONTOSO.domain, { authorityHost: 'http://127.0.0.1:9' }));
    const unavailable = await callbackOfNewLogin();
    expect(unavailable.status).toBe(503);
    expect(unavailable.body).toMatchObject({ error: 'provider_unavailable', provider: NAME });
    expect(unavailable.body.message).toBe(
      `The discovery document of the Microsoft tenant ${CONTOSO.domain} could not be fetched.`,
    );

    // Discovery answers, the token endpoint does not: the failed request is the error, as it is.
    const tokenDown = microsoft({
      clientId: ENTRA_CLIENT_ID,
      clientSecret: ENTRA_CLIENT_SECRET,
      authorityHost: entra.origin,
      endpoints: { token: 'http://127.0.0.1:9/token' },
    });
    await start(tokenDown);
    const { browser, authorizationUrl } = await startLogin();
    const back = await entra.signIn(authorizationUrl.href, USERS.alice);
    const down = await browser.get(back.pathname + back.search);
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ error: 'provider_unavailable', provider: NAME });
    expect(down.text).not.toContain(ENTRA_CLIENT_SECRET);
  });

  it('turns a refused code into provider_error with Microsoft’s words, and never echoes the secret', async () => {
    await start(preset('organizations'));
    const { browser, authorizationUrl } = await startLogin();
    const back = await entra.signIn(authorizationUrl.href, USERS.alice);
    back.searchParams.set('code', `${back.searchParams.get('code')}-forged`);
    const refused = await browser.get(back.pathname + back.search).expect(502);
    expect(refused.body).toMatchObject({ error: 'provider_error', provider: NAME, provider_error: 'invalid_grant' });
    expect(refused.body).not.toHaveProperty('provider_error_description'); // Microsoft's words are for the app
    expect(errors).toContainEqual(expect.objectContaining({ errorDescription: expect.stringMatching(/^AADSTS70000:/) }));
    expect(refused.text).not.toContain(ENTRA_CLIENT_SECRET);
  });
});

describe('microsoft() configuration', () => {
  it.each<[string, { tenant?: string; authorityHost?: string }, string]>([
    ['a tenant with a path in it', { tenant: 'contoso.com/../common' }, 'tenant'],
    ['an empty tenant', { tenant: '' }, 'tenant'],
    ['a tenant that is no string', { tenant: 42 as unknown as string }, 'tenant'],
    ['an authority host with a path', { authorityHost: 'https://login.microsoftonline.com/common' }, 'authorityHost'],
    ['an authority host over http', { authorityHost: 'http://login.microsoftonline.com' }, 'authorityHost'],
    ['an authority host that is no URL', { authorityHost: 'login.microsoftonline.us' }, 'authorityHost'],
  ])('refuses %s at start-up as config_invalid', (_case, options, field) => {
    const provider = microsoft({ clientId: 'id', clientSecret: 'secret', ...options });
    expect(() => createOAuth({ baseUrl: BASE_URL, secret: SECRET, providers: { m: provider } })).toThrow(
      expect.objectContaining({ code: 'config_invalid', field: `providers.m.${field}` }),
    );
  });

  it('says what a tenant and an authority host must be', () => {
    const problems = (options: { tenant?: string; authorityHost?: string }) =>
      microsoft({ clientId: 'id', clientSecret: 'secret', ...options }).problems();
    expect(problems({ tenant: 'a/b' })).toEqual([
      ['tenant', 'must be a tenant id (a GUID), a domain name, or common, organizations or consumers'],
    ]);
    expect(problems({ authorityHost: 'https://login.microsoftonline.us/x' })).toEqual([
      ['authorityHost', 'must be an origin only, such as https://login.microsoftonline.us (the tenant is set apart)'],
    ]);
  });

  it('accepts GUIDs, domains, the aliases and sovereign clouds', () => {
    for (const options of [
      { tenant: CONTOSO.id },
      { tenant: 'contoso.onmicrosoft.com' },
      { tenant: 'organizations' },
      { tenant: 'consumers' },
      {},
      { authorityHost: 'https://login.microsoftonline.us' },
      { authorityHost: 'https://login.partner.microsoftonline.cn/' },
    ]) {
      const provider = microsoft({ clientId: 'id', clientSecret: 'secret', ...options });
      expect(provider.problems()).toEqual([]);
      expect(provider.nonce).toBe(true);
    }
  });
});
