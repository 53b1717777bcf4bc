/**
 * Sunshine Conversations beyond the common provider contract (test/providers-e2e.test.ts), on every
 * adapter against the strict emulator: a Zendesk Marketplace bot's headers, the app's id and
 * subdomain learnt from tokenInfo, and the revocation at that subdomain's own host, including when
 * tokenInfo did not tell it. Then the generic pieces under it: `headers` on every kind of provider
 * request and refused at start-up where the library sets them, a fixed `subdomain`, and the DNS-label
 * check that keeps provider data from choosing where a token goes.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOAuth, OAuthError } from '../src/index.js';
import {
  calcomPlatform,
  github,
  pipedrive,
  type ProviderDefinition,
  sunshineConversations,
  sunshineConversationsProfile,
} from '../src/providers/index.js';
import type { SunshineConversationsOptions } from '../src/providers/sunshine-conversations.js';
import { startSunshineConversationsEmulator } from '../emulators/index.js';
import type { SunshineConversationsEmulator } from '../emulators/sunshine-conversations.js';
import { adapters } from './support/apps.js';
import { BASE_URL } from './support/authorization-server.js';
import { resolveLocalhostNames } from './support/localhost-names.js';

const marketplace = { name: 'Acme Bot', organizationId: '12345', botId: '42' };
const MARKETPLACE_HEADERS = {
  'X-Zendesk-Marketplace-Name': marketplace.name,
  'X-Zendesk-Marketplace-Organization-Id': marketplace.organizationId,
  'X-Zendesk-Marketplace-Bot-Id': marketplace.botId,
};

let emulator: SunshineConversationsEmulator;
let restoreNames: () => void;
beforeAll(async () => {
  restoreNames = resolveLocalhostNames();
  emulator = await startSunshineConversationsEmulator({ redirectUri: `${BASE_URL}/auth/sunshine/callback`, marketplace });
});
afterEach(() => emulator.reset());
afterAll(async () => {
  restoreNames();
  await emulator?.close();
});

/** The preset on the emulator, revoking at `{subdomain}.localhost` as it revokes at `{subdomain}.zendesk.com`. */
function preset(options: Partial<SunshineConversationsOptions> = {}): ProviderDefinition {
  return sunshineConversations({
    clientId: emulator.clientId,
    clientSecret: emulator.clientSecret,
    headers: MARKETPLACE_HEADERS,
    ...options,
    endpoints: { ...emulator.endpoints, revoke: emulator.revokeTemplate, ...options.endpoints },
  });
}

/** What tokenInfo says about a token now, asked as the bot (its headers, or a 403). */
function tokenInfo(accessToken: string): Promise<Response> {
  return fetch(emulator.endpoints.tokenInfo ?? '', {
    headers: { ...MARKETPLACE_HEADERS, authorization: `Bearer ${accessToken}` },
  });
}

const host = (subdomain: string) => `${subdomain}.localhost:${new URL(emulator.origin).port}`;

describe.each(adapters)('Sunshine Conversations on $name', (adapter) => {
  async function start(provider: ProviderDefinition) {
    const errors: unknown[] = [];
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: 's'.repeat(40),
      providers: { sunshine: provider },
      hooks: { onError: (error) => errors.push(error) },
    });
    const app = await adapter.start(oauth);
    return { app, agent: request.agent(app.server), errors };
  }

  async function login(agent: request.Agent): Promise<{ accessToken: string; extras: Record<string, unknown> }> {
    const started = await agent.get('/auth/sunshine/login').expect(302);
    const callback = await emulator.authorize(started.headers.location as string);
    await agent
      .get(callback.pathname + callback.search)
      .expect(302)
      .expect('location', '/');
    return (await agent.get('/token/sunshine').expect(200)).body;
  }

  const logout = (agent: request.Agent) => agent.post('/auth/sunshine/logout').set('accept', 'application/json').expect(204);

  it("logs a Marketplace bot in with its headers, keeps the app's id and subdomain, and revokes at that subdomain", async () => {
    const { app, agent, errors } = await start(preset());
    try {
      const token = await login(agent);
      expect(token.extras).toEqual({ appId: emulator.app.id, subdomain: 'user-company' });
      expect(emulator.counts).toMatchObject({ token: 1, api: 1, revoke: 0 }); // one tokenInfo request, at login
      await logout(agent);
      expect(emulator.revokedAt).toEqual([host('user-company')]);
      expect(emulator.rejections).toEqual([]);
      expect(errors).toEqual([]);
      expect((await tokenInfo(token.accessToken)).status).toBe(401);
      await agent.get('/token/sunshine').expect(401, /not_connected/);
    } finally {
      await app.close();
    }
  });

  it('refuses the login of a bot without its headers as a typed 502, naming no secret and no code', async () => {
    const { app, agent, errors } = await start(preset({ headers: undefined }));
    try {
      const started = await agent.get('/auth/sunshine/login').expect(302);
      const callback = await emulator.authorize(started.headers.location as string);
      const refused = await agent.get(callback.pathname + callback.search).expect(502);
      // `forbidden` is Sunshine's word, not a registered OAuth code: the app reads it, the browser does not.
      expect(refused.body).toEqual({ error: 'provider_error', message: expect.any(String), provider: 'sunshine' });
      expect(errors).toEqual([expect.objectContaining({ code: 'provider_error', error: 'forbidden' })]);
      expect(refused.text).not.toContain(emulator.clientSecret);
      expect(refused.text).not.toContain(callback.searchParams.get('code'));
      expect(emulator.rejections).toEqual([expect.objectContaining({ endpoint: 'token', status: 403 })]);
    } finally {
      await app.close();
    }
  });

  it.each(['evil.example', 'evil.example/x?', 'user-company.evil', '-x', 'a_b', 'x'.repeat(64)])(
    'keeps the login when tokenInfo names a subdomain that is no DNS label (%s), keeps no subdomain, and revokes nowhere else',
    async (hostile) => {
      const { app, agent, errors } = await start(preset());
      try {
        emulator.app.subdomain = hostile;
        const token = await login(agent);
        expect(token.extras).toEqual({ appId: emulator.app.id });
        await logout(agent);
        // tokenInfo is asked again at logout; it still names no usable host: not revoked, and said so.
        expect(emulator.counts).toMatchObject({ api: 2, revoke: 0 });
        expect(errors).toEqual([expect.objectContaining({ code: 'invalid_response', provider: 'sunshine' })]);
        const printed = inspect(errors, { depth: 8, showHidden: true });
        for (const secret of [token.accessToken, emulator.clientSecret]) expect(printed).not.toContain(secret);
        await agent.get('/token/sunshine').expect(401, /not_connected/); // deleted all the same
        expect((await tokenInfo(token.accessToken)).status).toBe(200); // the grant lives on at Zendesk
      } finally {
        await app.close();
      }
    },
  );

  it('learns at logout the subdomain its tokenInfo did not tell at login, and revokes there', async () => {
    const { app, agent, errors } = await start(preset());
    try {
      emulator.app.subdomain = 'not a label';
      const token = await login(agent);
      expect(token.extras.subdomain).toBeUndefined();
      emulator.app.subdomain = 'user-company';
      await logout(agent);
      expect(emulator.revokedAt).toEqual([host('user-company')]);
      expect((await tokenInfo(token.accessToken)).status).toBe(401);
      expect(errors).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it.each<[string, () => Partial<SunshineConversationsOptions>, () => string]>([
    ['a fixed subdomain', () => ({ subdomain: 'user-company' }), () => host('user-company')],
    [
      'a fixed revocation URL (the legacy host)',
      () => ({ endpoints: { revoke: emulator.endpoints.revoke } }),
      () => new URL(emulator.origin).host,
    ],
  ])('revokes at %s without tokenInfo', async (_name, options, expected) => {
    const fixed = options();
    // tokenInfo answers 404: the login keeps no extras, and the revocation needs none.
    const broken = { ...fixed.endpoints, tokenInfo: `${emulator.origin}/sc/v2/nowhere` };
    const { app, agent, errors } = await start(preset({ ...fixed, endpoints: broken }));
    try {
      const token = await login(agent);
      expect(token.extras).toEqual({});
      await logout(agent);
      expect(emulator.revokedAt).toEqual([expected()]);
      expect(emulator.rejections.map((r) => r.endpoint)).toEqual(['GET /sc/v2/nowhere']); // asked once, at login
      expect(errors).toEqual([]);
      expect((await tokenInfo(token.accessToken)).status).toBe(401);
    } finally {
      await app.close();
    }
  });
});

describe('Sunshine Conversations preset: defaults and start-up checks', () => {
  const credentials = { clientId: 'the-client', clientSecret: 'the-secret' };
  const create = (provider: ProviderDefinition) =>
    createOAuth({ baseUrl: 'https://app.example.com', secret: 's'.repeat(32), providers: { p: provider } });

  it("revokes at the customer's own host by default, learnt from tokenInfo at oauth-bridge; api.smooch.io only when set", () => {
    expect(sunshineConversationsProfile.revoke).toEqual({
      kind: 'request',
      url: 'https://{subdomain}.zendesk.com/sc/oauth/authorization',
      method: 'DELETE',
      auth: 'bearer',
    });
    expect(sunshineConversationsProfile.tokenInfo).toMatchObject({
      url: 'https://oauth-bridge.zendesk.com/sc/v2/tokenInfo',
      extras: { appId: 'app.id', subdomain: 'app.subdomain' },
    });
    expect(JSON.stringify(sunshineConversationsProfile)).not.toContain('smooch.io');
    expect(() => create(sunshineConversations(credentials))).not.toThrow();
    const legacy = sunshineConversations({ ...credentials, endpoints: { revoke: 'https://api.smooch.io/oauth/authorization' } });
    expect(() => create(legacy)).not.toThrow();
  });

  it.each([
    ['a host name', 'acme.evil.example'],
    ['a path', 'acme/x'],
    ['an underscore', 'a_b'],
    ['a leading hyphen', '-acme'],
    ['64 characters', 'a'.repeat(64)],
    ['nothing', ''],
  ])('refuses a subdomain option with %s', (_name, subdomain) => {
    expect(() => create(sunshineConversations({ ...credentials, subdomain }))).toThrow(
      expect.objectContaining({ code: 'config_invalid', field: 'providers.p.subdomain' }),
    );
  });

  it('fills a subdomain option into every URL that holds {subdomain}, and refuses a URL that nothing fills', () => {
    const tokenInfo = 'https://{subdomain}.zendesk.com/sc/v2/tokenInfo';
    expect(() => create(sunshineConversations({ ...credentials, subdomain: 'Acme-1', endpoints: { tokenInfo } }))).not.toThrow();
    const attempt = () => create(sunshineConversations({ ...credentials, endpoints: { tokenInfo } }));
    expect(attempt).toThrow(expect.objectContaining({ code: 'config_invalid', field: 'providers.p.endpoints.tokenInfo' }));
    expect(attempt).toThrow(/\{subdomain\}/);
  });

  it('refuses token and revocation URLs moved to a test server while tokenInfo would still get the token at oauth-bridge', () => {
    const local = { token: 'http://127.0.0.1:1/t', revoke: 'http://127.0.0.1:1/r' };
    expect(() => create(sunshineConversations({ ...credentials, endpoints: local }))).toThrow(
      expect.objectContaining({ code: 'config_invalid', field: 'providers.p.endpoints.tokenInfo' }),
    );
    const all = { ...local, tokenInfo: 'http://127.0.0.1:1/i' };
    expect(() => create(sunshineConversations({ ...credentials, endpoints: all }))).not.toThrow();
  });

  it.each<[string, ProviderDefinition, string, RegExp]>([
    [
      'authorization',
      sunshineConversations({ ...credentials, headers: { Authorization: 'Bearer x' } }),
      'Authorization',
      /set by the library/,
    ],
    [
      'content-type',
      sunshineConversations({ ...credentials, headers: { 'content-type': 'text/plain' } }),
      'content-type',
      /set by the library/,
    ],
    ['accept', sunshineConversations({ ...credentials, headers: { ACCEPT: '*/*' } }), 'ACCEPT', /set by the library/],
    ['host', sunshineConversations({ ...credentials, headers: { host: 'evil.example' } }), 'host', /set by the library/],
    [
      "Cal.com's client-credential header",
      calcomPlatform({ ...credentials, headers: { 'X-Cal-Secret-Key': 'x' } }),
      'X-Cal-Secret-Key',
      /set by the library/,
    ],
    ["GitHub's own accept", github({ ...credentials, headers: { Accept: 'text/html' } }), 'Accept', /set by the library/],
    [
      'a name with a space',
      sunshineConversations({ ...credentials, headers: { 'X Bot': '1' } }),
      'X Bot',
      /not a valid header name/,
    ],
    [
      'a value with a line break',
      sunshineConversations({ ...credentials, headers: { 'X-Bot': '1\r\nX-Evil: 1' } }),
      'X-Bot',
      /line breaks/,
    ],
  ])('refuses at start-up a headers option that sets %s', (_name, provider, field, reason) => {
    const attempt = () => create(provider);
    expect(attempt).toThrow(expect.objectContaining({ code: 'config_invalid', field: `providers.p.headers.${field}` }));
    expect(attempt).toThrow(reason);
  });
});

interface Seen {
  method: string;
  target: string;
  headers: IncomingHttpHeaders;
}

describe('headers on every kind of provider request', () => {
  it('go on the code exchange, the refresh, an RFC 7009 revocation and a DELETE revocation, never replacing what the library sets', async () => {
    const seen: Seen[] = [];
    const server = createServer((req, res) => {
      seen.push({ method: req.method ?? '', target: req.url ?? '', headers: req.headers });
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.url === '/token' ? JSON.stringify({ access_token: 'at', token_type: 'bearer', refresh_token: 'rt' }) : '{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const endpoints = { authorization: `${origin}/a`, token: `${origin}/token`, revoke: `${origin}/revoke` };
      const headers = { 'X-Zendesk-Marketplace-Bot-Id': '42' };
      const pd = await pipedrive({ clientId: 'id', clientSecret: 'secret', endpoints, headers }).connect();
      const checks = { state: 's' };
      await pd.exchangeCode(new URL(`https://app.example/cb?code=c&state=s`), 'https://app.example/cb', checks);
      await pd.refresh('rt');
      await pd.revoke?.({ accessToken: 'at', refreshToken: 'rt' });
      const gh = await github({ clientId: 'id', clientSecret: 'secret', endpoints, headers }).connect();
      await gh.revoke?.({ accessToken: 'at' });
      expect(seen.map((s) => `${s.method} ${s.target}`)).toEqual([
        'POST /token',
        'POST /token',
        'POST /revoke',
        'DELETE /revoke',
      ]);
      for (const { headers: sent } of seen) {
        expect(sent['x-zendesk-marketplace-bot-id']).toBe('42');
        expect(sent.accept).toBe('application/json');
        expect(sent.authorization).toMatch(/^Basic /);
      }
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('are not sent on the browser redirect', async () => {
    const ready = await sunshineConversations({ clientId: 'id', clientSecret: 'x', headers: MARKETPLACE_HEADERS }).connect();
    const url = ready.authorizationUrl('https://app.example/cb', { state: 's' }, undefined);
    expect(url.href).not.toMatch(/marketplace|Acme/i);
  });
});

describe('the revocation host comes from provider data only as a DNS label', () => {
  it.each(['evil.example', 'evil.example:443', 'a@evil.example', 'a/b', '', 'x'.repeat(64), 42, null])(
    'refuses %j as the subdomain: invalid_response, no request sent anywhere',
    async (subdomain) => {
      emulator.app.subdomain = 'still not a label'; // the retry at tokenInfo tells nothing usable either
      const ready = await preset().connect();
      const issued = emulator.issued.length;
      const started = ready.authorizationUrl(`${BASE_URL}/auth/sunshine/callback`, { state: 's' }, undefined);
      const callback = await emulator.authorize(started.href);
      const tokens = await ready.exchangeCode(callback, `${BASE_URL}/auth/sunshine/callback`, { state: 's' });
      expect(emulator.issued.length).toBe(issued + 1);
      const failure = await ready.revoke?.({ accessToken: tokens.accessToken, extras: { subdomain } }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(OAuthError);
      expect(failure).toMatchObject({ code: 'invalid_response' });
      expect(String(failure)).not.toContain(tokens.accessToken);
      expect(emulator.counts.revoke).toBe(0);
    },
  );
});
