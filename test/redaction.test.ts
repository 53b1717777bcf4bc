/**
 * A provider that quotes what it was sent in its error descriptions (the code, the PKCE verifier,
 * the refresh token, the client credentials): none of it reaches a response, and the app and the
 * hooks get the provider's words with every such secret taken out. On every adapter, for oidc()
 * (openid-client's path) and oauth2() (the profile path).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth, memoryStore, type OAuth, OAuthError, type ProviderDefinition } from '../src/index.js';
import { oauth2, oidc } from '../src/providers/index.js';
import { adapters, type RunningApp } from './support/apps.js';

const BASE_URL = 'http://127.0.0.1:3999';
const CLIENT_ID = 'echo-client';
const CLIENT_SECRET = 'echo-client-secret-0123456789';
const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const USER = 'alice';

/** A token endpoint that signs in, or refuses quoting the whole request (body and Authorization header). */
interface EchoProvider {
  issuer: string;
  mode: 'ok' | 'echo' | 'echo-encoded';
  /** Everything the app sent, so the test knows each secret (the verifier is never seen elsewhere). */
  sent: string[];
  close(): Promise<void>;
}

async function startEchoProvider(): Promise<EchoProvider> {
  const state: EchoProvider = { issuer: '', mode: 'ok', sent: [], close: async () => undefined };
  let issued = 0;
  const server: Server = createServer(async (req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      return json(200, {
        issuer: state.issuer,
        authorization_endpoint: `${state.issuer}/authorize`,
        token_endpoint: `${state.issuer}/token`,
        jwks_uri: `${state.issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    if (req.url !== '/token' || req.method !== 'POST') return json(404, { error: 'not_found' });
    const body = await text(req);
    const quoted = `${body} ${req.headers.authorization ?? ''}`;
    state.sent.push(quoted);
    if (state.mode === 'ok') {
      issued += 1;
      return json(200, {
        access_token: `at-${issued}-${Math.random().toString(36).slice(2)}`,
        token_type: 'Bearer',
        expires_in: 30, // due at first use with the 60 s skew: the next request refreshes
        refresh_token: `rt-${issued}-${Math.random().toString(36).slice(2)}`,
      });
    }
    const description = state.mode === 'echo' ? decodeURIComponent(quoted.replace(/\+/g, ' ')) : quoted;
    return json(400, { error: 'invalid_grant', error_description: `refused: ${description}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () => new Promise((resolve) => server.close(() => resolve()));
  return state;
}

function text(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (data += chunk));
    req.on('end', () => resolve(data));
  });
}

let echo: EchoProvider;
beforeAll(async () => {
  echo = await startEchoProvider();
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
        providers: { p: preset.make(echo.issuer) },
        hooks: { onError: (err) => reported.push(err) },
      });
      app = await adapter.start(oauth);
    });
    afterAll(async () => {
      await app?.close();
    });

    /** The secrets of the requests sent so far: every form field's value and the Basic credentials. */
    function secretsSent(): string[] {
      const found = new Set<string>([CLIENT_SECRET]);
      for (const line of echo.sent) {
        const [body = '', authorization = ''] = line.split(' ');
        for (const [key, value] of new URLSearchParams(body)) {
          if (['code', 'code_verifier', 'refresh_token', 'client_secret'].includes(key)) found.add(value);
        }
        if (authorization) found.add(line.slice(body.length + 1 + 'Basic '.length));
      }
      return [...found];
    }

    function expectNoSecret(where: string) {
      for (const secret of secretsSent()) expect(where).not.toContain(secret);
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
        echo.mode = mode;
        echo.sent = [];
        reported.length = 0;
        const agent = request.agent(app.server);
        const refused = await agent.get(await callbackFor(agent, 'the-code-0123456789/+=')).expect(502);
        expect(refused.body).toEqual({
          error: 'provider_error',
          message: expect.any(String),
          provider: 'p',
          provider_error: 'invalid_grant',
        });
        const verifier = new URLSearchParams(echo.sent[0]?.split(' ')[0]).get('code_verifier');
        expect(verifier).toMatch(/^[\w-]{43}$/);
        expectNoSecret(JSON.stringify(refused.headers) + refused.text);
        // The hooks get the provider's words, with what it quoted taken out.
        expect(reported).toEqual([expect.objectContaining({ code: 'provider_error', error: 'invalid_grant' })]);
        const [error] = reported as OAuthError[];
        expect(error?.errorDescription).toMatch(/^refused: .*\[redacted\]/);
        expectNoSecret(inspect(reported, { depth: 8, showHidden: true }));
      },
    );

    it('keeps a refresh refusal that quotes the refresh token out of the response and out of the error the app gets', async () => {
      echo.mode = 'ok';
      echo.sent = [];
      reported.length = 0;
      const agent = request.agent(app.server);
      await agent.get(await callbackFor(agent, 'a-good-code')).expect(302);
      echo.mode = 'echo';
      const refused = await agent.get('/token/p').expect(401);
      expect(refused.body).toMatchObject({ error: 'reauth_required', provider_error: 'invalid_grant' });
      expectNoSecret(JSON.stringify(refused.headers) + refused.text);

      // The same refusal, outside any request: the app's error holds the provider's words, redacted.
      echo.mode = 'ok';
      await agent.get(await callbackFor(agent, 'another-good-code')).expect(302);
      echo.mode = 'echo';
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
  });
});
