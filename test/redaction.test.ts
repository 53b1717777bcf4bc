/**
 * A provider that quotes what it was sent in its error descriptions (the code, the PKCE verifier,
 * the refresh token, the client credentials): none of it reaches a response, and the app and the
 * hooks get the provider's words with every such secret taken out. On every adapter, for oidc()
 * (openid-client's path) and oauth2() (the profile path).
 */
import { inspect } from 'node:util';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth, memoryStore, type OAuth, OAuthError, type ProviderDefinition } from '../src/index.js';
import { oauth2, oidc } from '../src/providers/index.js';
import { adapters, type RunningApp } from './support/apps.js';
import { freshTokens, startTokenEndpoint, type TokenEndpoint, type TokenRequest } from './support/token-endpoint.js';

const BASE_URL = 'http://127.0.0.1:3999';
const CLIENT_ID = 'echo-client';
const CLIENT_SECRET = 'echo-client-secret-0123456789';
const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const USER = 'alice';

/** The request as a provider might quote it: the form body and the Authorization header. */
const quoted = (request: TokenRequest) => `${request.body} ${request.authorization ?? ''}`;

/**
 * Signs in (`ok`), or refuses quoting the whole request, decoded (`echo`) or as sent (`echo-encoded`),
 * or quoting only the code or refresh token after 290 characters, then more (`cut`): across the 300
 * characters a description is cut to.
 */
function echoing(endpoint: TokenEndpoint, mode: 'ok' | 'echo' | 'echo-encoded' | 'cut') {
  endpoint.answer = (request) => {
    if (mode === 'ok') return { status: 200, body: freshTokens() };
    if (mode === 'cut') {
      const secret = request.params.get('code') ?? request.params.get('refresh_token');
      return { status: 400, body: { error: 'invalid_grant', error_description: `${'.'.repeat(290)}${secret} and more` } };
    }
    const text = mode === 'echo' ? decodeURIComponent(quoted(request).replace(/\+/g, ' ')) : quoted(request);
    return { status: 400, body: { error: 'invalid_grant', error_description: `refused: ${text}` } };
  };
}

let echo: TokenEndpoint;
beforeAll(async () => {
  echo = await startTokenEndpoint();
});
afterAll(async () => {
  await echo?.close();
});

const presets: Array<{ name: string; make: (issuer: string) => ProviderDefinition }> = [
  // No `openid` scope: no ID token to validate, the refusal is what is tested here.
  { name: 'oidc', make: (issuer) => oidc({ issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scopes: ['profile'] }) },
  {
    name: 'oauth2',
    make: (issuer) =>
      oauth2({
        authorization: `${issuer}/authorize`,
        token: `${issuer}/token`,
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
      }),
  },
];

describe.each(adapters)('$name adapter', (adapter) => {
  describe.each(presets)('$name preset', (preset) => {
    let app: RunningApp;
    let oauth: OAuth;
    const reported: unknown[] = [];

    beforeAll(async () => {
      oauth = createOAuth({
        baseUrl: BASE_URL,
        secret: SECRET,
        store: memoryStore(),
        subject: () => USER, // one app user, so that the test can call getToken outside a request too
        providers: { p: preset.make(echo.origin) },
        hooks: { onError: (err) => reported.push(err) },
      });
      app = await adapter.start(oauth);
    });
    afterAll(async () => {
      await app?.close();
    });

    /** The secrets of the requests sent so far: the code, verifier, refresh token and client credentials. */
    function secretsSent(): string[] {
      const found = new Set<string>([CLIENT_SECRET]);
      for (const request of echo.requests) {
        for (const [key, value] of request.params) {
          if (['code', 'code_verifier', 'refresh_token', 'client_secret'].includes(key)) found.add(value);
        }
        if (request.authorization) found.add(request.authorization.slice('Basic '.length));
      }
      return [...found];
    }

    /** No secret sent, in clear or URL-encoded as the provider received it. */
    function expectNoSecret(where: string) {
      for (const secret of secretsSent()) {
        expect(where).not.toContain(secret);
        expect(where).not.toContain(encodeURIComponent(secret));
      }
    }

    /** A login to the point of the callback: its URL, with a code of our making. */
    async function callbackFor(agent: request.Agent, code: string): Promise<string> {
      const started = await agent.get('/auth/p/login').expect(302);
      const state = new URL(started.headers.location as string).searchParams.get('state') as string;
      return `/auth/p/callback?${new URLSearchParams({ code, state })}`;
    }

    it.each(['echo', 'echo-encoded'] as const)(
      'keeps a code exchange refusal that quotes the code and the verifier (%s) out of the response, redacted for the hooks',
      async (mode) => {
        echoing(echo, mode);
        echo.requests = [];
        reported.length = 0;
        const agent = request.agent(app.server);
        const refused = await agent.get(await callbackFor(agent, 'the-code-0123456789/+=')).expect(502);
        expect(refused.body).toEqual({
          error: 'provider_error',
          message: expect.any(String),
          provider: 'p',
          provider_error: 'invalid_grant',
        });
        const verifier = echo.requests[0]?.params.get('code_verifier');
        expect(verifier).toMatch(/^[\w-]{43}$/);
        expectNoSecret(JSON.stringify(refused.headers) + refused.text);
        // The hooks get the provider's words, with what it quoted taken out.
        expect(reported).toEqual([expect.objectContaining({ code: 'provider_error', error: 'invalid_grant' })]);
        const [error] = reported as OAuthError[];
        expect(error?.errorDescription).toMatch(/^refused: .*\[redacted\]/);
        // A summary of the low-level failure, kept off the error's enumerable properties (and so out
        // of logs that serialise those).
        expect(error?.cause).toBeInstanceOf(Error);
        expect(Object.keys(error as object)).not.toContain('cause');
        expectNoSecret(inspect(reported, { depth: 8, showHidden: true }));
      },
    );

    it('keeps a refresh refusal that quotes the refresh token out of the response and out of the error the app gets', async () => {
      echoing(echo, 'ok');
      echo.requests = [];
      reported.length = 0;
      const agent = request.agent(app.server);
      await agent.get(await callbackFor(agent, 'a-good-code')).expect(302);
      echoing(echo, 'echo');
      const refused = await agent.get('/token/p').expect(401);
      expect(refused.body).toMatchObject({ error: 'reauth_required', provider_error: 'invalid_grant' });
      expectNoSecret(JSON.stringify(refused.headers) + refused.text);

      // The same refusal, outside any request: the app's error holds the provider's words, redacted.
      echoing(echo, 'ok');
      await agent.get(await callbackFor(agent, 'another-good-code')).expect(302);
      echoing(echo, 'echo');
      const thrown = await oauth
        .tokens(USER)
        .getToken('p')
        .catch((err: unknown) => err);
      expect(thrown).toBeInstanceOf(OAuthError);
      expect((thrown as OAuthError).code).toBe('reauth_required');
      expect((thrown as OAuthError).errorDescription).toMatch(/^refused: .*\[redacted\]/);
      expectNoSecret(inspect(thrown, { depth: 8, showHidden: true }));
      expectNoSecret(inspect(reported, { depth: 8, showHidden: true }));
    });

    it('takes a quoted code or refresh token out before cutting a long description, so that no piece of it is left', async () => {
      // Cut to 300 first, the secret would leave its first ten characters behind.
      const cut = `${'.'.repeat(290)}[redacted]`;
      echoing(echo, 'ok');
      const agent = request.agent(app.server);
      await agent.get(await callbackFor(agent, 'a-good-code')).expect(302);
      echoing(echo, 'cut');
      const thrown = await oauth
        .tokens(USER)
        .getToken('p')
        .catch((err: unknown) => err);
      expect(echo.requests.at(-1)?.params.get('refresh_token')).toMatch(/^rt-\d+$/);
      expect(thrown).toMatchObject({ code: 'reauth_required', errorDescription: cut });

      reported.length = 0;
      await agent.get(await callbackFor(agent, 'a-code-that-would-be-cut-0123456789')).expect(502);
      expect(reported).toEqual([expect.objectContaining({ code: 'provider_error', errorDescription: cut })]);
    });
  });
});
