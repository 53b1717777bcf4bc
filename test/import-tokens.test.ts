/**
 * `importTokens` with fields (tokens the app obtained without a browser login): each malformed
 * field is told at once as `config_invalid`, naming the field, and nothing is stored; the edges of
 * what is accepted (epoch seconds from 1e9 to 1e11 inclusive) are accepted; and a valid import is
 * what `getToken` then gives over HTTP, on every adapter, with `Bearer` when no type was given.
 * With the provider's own answer, for oidc(): one without an access token or with an expiry that is
 * no number of seconds is `invalid_response`; an absent or null expiry is none.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth, memoryStore, OAuthError, type OAuth } from '../src/index.js';
import { oauth2, oidc } from '../src/providers/index.js';
import { adapters, userHeader } from './support/apps.js';
import { startTokenEndpoint, type TokenEndpoint } from './support/token-endpoint.js';

function oauthWithStore(): OAuth {
  return createOAuth({
    baseUrl: 'http://127.0.0.1:3999',
    secret: 's'.repeat(40),
    store: memoryStore(),
    // The app's own user, as its authentication knows it (here a header, for the test).
    subject: userHeader,
    providers: {
      // Never called: imported tokens that are not due need no provider.
      p: oauth2({
        authorization: 'http://127.0.0.1:9/authorize',
        token: 'http://127.0.0.1:9/token',
        clientId: 'client',
        clientSecret: 'client-secret-0123456789',
      }),
    },
  });
}

const FAR = 4_000_000_000; // 2096: never due

type Fields = Record<string, unknown>;
const TEXT = 'must be a non-empty string';
const EPOCH = 'must be epoch seconds';

const BAD: Array<[string, Fields, string, string]> = [
  ['accessToken empty', { accessToken: '' }, 'accessToken', TEXT],
  ['accessToken missing', {}, 'accessToken', TEXT],
  ['accessToken a number', { accessToken: 42 }, 'accessToken', TEXT],
  ...(['tokenType', 'refreshToken', 'scope'] as const).flatMap((field): Array<[string, Fields, string, string]> => [
    [`${field} empty`, { accessToken: 'a', [field]: '' }, field, TEXT],
    [`${field} a number`, { accessToken: 'a', [field]: 7 }, field, TEXT],
    [`${field} null`, { accessToken: 'a', [field]: null }, field, TEXT],
  ]),
  ...(['expiresAt', 'refreshExpiresAt'] as const).flatMap((field): Array<[string, Fields, string, string]> => [
    [`${field} 1e9 - 1`, { accessToken: 'a', [field]: 1e9 - 1 }, field, EPOCH],
    [`${field} 1e11 + 1`, { accessToken: 'a', [field]: 1e11 + 1 }, field, EPOCH],
    [`${field} milliseconds`, { accessToken: 'a', [field]: 1_700_000_000_000 }, field, EPOCH],
    [`${field} 1.5e9 + 0.5`, { accessToken: 'a', [field]: 1.5e9 + 0.5 }, field, EPOCH],
    [`${field} a numeric string`, { accessToken: 'a', [field]: '1700000000' }, field, EPOCH],
    [`${field} NaN`, { accessToken: 'a', [field]: Number.NaN }, field, EPOCH],
    [`${field} null`, { accessToken: 'a', [field]: null }, field, EPOCH],
  ]),
];

const GOOD: Array<[string, Fields]> = [
  ['only an access token', { accessToken: 'a' }],
  ...(['expiresAt', 'refreshExpiresAt'] as const).flatMap((field): Array<[string, Fields]> => [
    [`${field} 1e9`, { accessToken: 'a', [field]: 1e9 }],
    [`${field} 1e11`, { accessToken: 'a', [field]: 1e11 }],
    [`${field} 1700000000`, { accessToken: 'a', [field]: 1_700_000_000 }],
  ]),
  ['every field', { accessToken: 'a', tokenType: 'DPoP', refreshToken: 'r', scope: 's', expiresAt: FAR, refreshExpiresAt: FAR }],
];

describe('importTokens with fields', () => {
  it.each(BAD)('refuses %s: config_invalid naming the field, nothing stored', async (_case, fields, field, why) => {
    const user = oauthWithStore().tokens('ada');
    const refused = await user.importTokens('p', fields as never).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(OAuthError);
    expect(refused).toMatchObject({
      code: 'config_invalid',
      message: `Imported tokens: ${field} ${why}.`,
      field: `tokens.${field}`,
    });
    expect(await user.isConnected('p')).toBe(false);
  });

  it.each(GOOD)('accepts %s', async (_case, fields) => {
    const user = oauthWithStore().tokens('ada');
    await expect(user.importTokens('p', fields as never)).resolves.toBeUndefined();
    expect(await user.isConnected('p')).toBe(true);
  });
});

describe("importTokens with the provider's own answer, for a profile", () => {
  it.each([
    ['no access token', { expires_in: 'soon' }],
    ['an empty access token', { access_token: '', expires_in: 'soon' }],
  ])('tells of %s first, whatever else is wrong', async (_case, answer) => {
    const refused = await oauthWithStore()
      .tokens('u')
      .importTokens('p', { answer })
      .catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: 'invalid_response', message: 'The token answer holds no access token.' });
  });
});

describe('oauth.tokens(user)', () => {
  it('needs the subject option, and a user that is text', () => {
    const withoutSubject = createOAuth({
      baseUrl: 'http://127.0.0.1:3999',
      secret: 's'.repeat(40),
      store: memoryStore(),
      providers: {
        p: oauth2({ authorization: 'http://127.0.0.1:9/a', token: 'http://127.0.0.1:9/t', clientId: 'c', clientSecret: 's' }),
      },
    });
    expect(() => withoutSubject.tokens('u')).toThrow(
      expect.objectContaining({
        code: 'config_invalid',
        field: 'subject',
        message: 'oauth.tokens() needs the subject option and a server-side store.',
      }),
    );
    for (const user of ['', 7, undefined]) {
      expect(() => oauthWithStore().tokens(user as string)).toThrow(
        expect.objectContaining({ code: 'not_connected', message: 'No such user.' }),
      );
    }
  });
});

describe("importTokens with the provider's own answer, for oidc() (a profile reads it in its dialect)", () => {
  const NO_TOKEN = 'The token answer holds no access token.';
  const NO_SECONDS = "The token answer's expires_in is not a number of seconds.";
  let issuer: TokenEndpoint;
  beforeAll(async () => {
    issuer = await startTokenEndpoint(); // its discovery document, for oidc()
  });
  afterAll(async () => {
    await issuer?.close();
  });
  const user = () =>
    createOAuth({
      baseUrl: 'http://127.0.0.1:3999',
      secret: 's'.repeat(40),
      store: memoryStore(),
      subject: () => 'u',
      providers: { p: oidc({ issuer: issuer.origin, clientId: 'client', clientSecret: 'client-secret-0123456789' }) },
    }).tokens('u');

  it.each([
    ['not an object', ['a'], NO_TOKEN],
    ['null', null, NO_TOKEN],
    ['without an access token', { token_type: 'Bearer' }, NO_TOKEN],
    ['with an empty access token', { access_token: '' }, NO_TOKEN],
    ['with an expiry of empty text', { access_token: 'a', expires_in: '' }, NO_SECONDS],
    ['with an expiry of blank text', { access_token: 'a', expires_in: '  ' }, NO_SECONDS],
    ['with a negative expiry', { access_token: 'a', expires_in: -1 }, NO_SECONDS],
  ])('refuses one %s: invalid_response, nothing stored', async (_case, answer, message) => {
    const tokens = user();
    const refused = await tokens.importTokens('p', { answer }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(OAuthError);
    expect(refused).toMatchObject({ code: 'invalid_response', message });
    expect(await tokens.isConnected('p')).toBe(false);
  });

  it.each([
    ['no expiry', { access_token: 'a' }, undefined],
    ['a null expiry', { access_token: 'a', expires_in: null }, undefined],
    ['an expiry of 7200 s, as text', { access_token: 'a', expires_in: ' 7200 ' }, 7200],
  ])('reads one with %s, Bearer when it names no type', async (_case, answer, seconds) => {
    const tokens = user();
    const before = Math.floor(Date.now() / 1000);
    await tokens.importTokens('p', { answer });
    const read = await tokens.getToken('p');
    expect(read).toMatchObject({ accessToken: 'a', tokenType: 'Bearer' });
    if (seconds === undefined) expect(read.expiresAt).toBeUndefined();
    else expect(read.expiresAt).toBeGreaterThanOrEqual(before + seconds);
    if (seconds !== undefined) expect(read.expiresAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + seconds);
  });

  it('keeps the fields it does not read as extras, but none that is undefined', async () => {
    const tokens = user();
    await tokens.importTokens('p', { answer: { access_token: 'a', workspace: 'w-1', team: undefined, plan: null } });
    expect((await tokens.getToken('p')).extras).toStrictEqual({ workspace: 'w-1', plan: null });
  });

  it.each([
    ['ten years exactly', 10 * 365 * 24 * 3600, true],
    ['a second more than ten years', 10 * 365 * 24 * 3600 + 1, false],
  ])('reads an expiry of %s as a lifetime or as none', async (_case, seconds, kept) => {
    const tokens = user();
    await tokens.importTokens('p', { answer: { access_token: 'a', expires_in: seconds } });
    const { expiresAt } = await tokens.getToken('p');
    if (kept) expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + seconds - 2);
    else expect(expiresAt).toBeUndefined();
  });

  it('reads one that expires at once (0 s)', async () => {
    const tokens = user();
    await tokens.importTokens('p', { answer: { access_token: 'a', refresh_token: 'r', expires_in: 0 } });
    expect(await tokens.isConnected('p')).toBe(true);
  });
});

describe.each(adapters)('$name adapter', (adapter) => {
  it('serves imported tokens through getToken, Bearer when no type was given', async () => {
    const oauth = oauthWithStore();
    const app = await adapter.start(oauth);
    try {
      await oauth
        .tokens('ada')
        .importTokens('p', { accessToken: 'at-ada', refreshToken: 'rt-ada', scope: 'read write', expiresAt: FAR });
      await oauth
        .tokens('bob')
        .importTokens('p', { accessToken: 'at-bob', tokenType: 'MAC', expiresAt: FAR, refreshExpiresAt: FAR });
      const ada = await request(app.server).get('/token/p').set('x-user', 'ada').expect(200);
      expect(ada.body).toEqual({ accessToken: 'at-ada', tokenType: 'Bearer', expiresAt: FAR, scope: 'read write', extras: {} });
      const bob = await request(app.server).get('/token/p').set('x-user', 'bob').expect(200);
      expect(bob.body).toEqual({ accessToken: 'at-bob', tokenType: 'MAC', expiresAt: FAR, extras: {} });
      await request(app.server).get('/token/p').set('x-user', 'cyd').set('accept', 'application/json').expect(401);
    } finally {
      await app.close();
    }
  });
});
