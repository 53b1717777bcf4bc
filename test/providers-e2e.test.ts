/**
 * Each seed provider end to end, on both adapters, against its strict emulator: login, callback,
 * getToken, expiry and refresh (never for Sunshine), concurrent refresh with exactly one call,
 * logout with revocation where the provider has it, `fetch` retried after the API says the token
 * expired, and the provider's own error bodies turned into typed errors with its message kept.
 * Every request the library sends must be accepted: `rejections` stays empty unless a test
 * provokes one.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOAuth } from '../src/index.js';
import {
  calcom,
  calcomPlatform,
  dropboxSign,
  pipedrive,
  type ProviderDefinition,
  sunshineConversations,
} from '../src/providers/index.js';
import {
  type Emulator,
  startCalcomEmulator,
  startCalcomPlatformEmulator,
  startDropboxSignEmulator,
  startPipedriveEmulator,
  startSunshineConversationsEmulator,
} from '../emulators/index.js';
import type { SunshineConversationsEmulator } from '../emulators/sunshine-conversations.js';
import { adapters, type RunningApp } from './support/apps.js';
import { resolveLocalhostNames } from './support/localhost-names.js';
import { BASE_URL } from './support/authorization-server.js';

interface Case {
  name: string;
  start: (redirectUri: string) => Promise<Emulator>;
  preset: (emulator: Emulator) => ProviderDefinition;
  refreshes: boolean;
  revokes: boolean;
  /** What `getToken().extras` holds: only fields an app needs, never an echoed `state`. */
  extras: (emulator: Emulator) => Record<string, unknown>;
  /** The provider's own `error` and words for a forged code, as the JSON error keeps them. */
  forgedCode: ProviderWords;
  /** The same for a refresh token the provider no longer knows; none where there is no refresh. */
  deadGrant?: ProviderWords;
  /** API calls the preset makes itself at each login (Sunshine's tokenInfo). */
  apiCallsAtLogin?: number;
  /** Checks where the logout's revocation went, where the emulator records it. */
  afterLogout?: (emulator: Emulator) => void;
}

interface ProviderWords {
  provider_error: string;
  provider_error_description: string;
}

const credentials = (e: Emulator) => ({ clientId: e.clientId, clientSecret: e.clientSecret, endpoints: e.endpoints });
const sunshine = (e: Emulator) => e as SunshineConversationsEmulator;
const cases: Case[] = [
  {
    name: 'pipedrive',
    start: (r) => startPipedriveEmulator({ redirectUri: r }),
    preset: (e) => pipedrive(credentials(e)),
    refreshes: true,
    revokes: true,
    extras: (e) => ({ api_domain: e.origin }),
    forgedCode: { provider_error: 'invalid_grant', provider_error_description: 'Invalid grant: authorization code is invalid' },
    deadGrant: { provider_error: 'invalid_grant', provider_error_description: 'Invalid grant: refresh token is invalid' },
  },
  {
    name: 'dropboxSign',
    start: (r) => startDropboxSignEmulator({ redirectUri: r, rotateRefreshTokens: true }),
    preset: (e) => dropboxSign(credentials(e)),
    refreshes: true,
    revokes: false,
    extras: () => ({}),
    forgedCode: {
      provider_error: 'invalid_request',
      provider_error_description:
        'Either the combo client_id/code is wrong or this request was made more than 1 hour after the inital grant',
    },
    deadGrant: { provider_error: 'invalid_grant', provider_error_description: 'Invalid grant data (refresh token)' },
  },
  {
    name: 'calcomPlatform',
    start: (r) => startCalcomPlatformEmulator({ redirectUri: r }),
    preset: (e) => calcomPlatform(credentials(e)),
    refreshes: true,
    revokes: false,
    extras: () => ({}),
    // Cal.com names exceptions, not OAuth errors: the preset reads the code off its message.
    forgedCode: { provider_error: 'invalid_grant', provider_error_description: 'Invalid Authorization Token.' },
    deadGrant: { provider_error: 'invalid_grant', provider_error_description: 'Invalid refresh token' },
  },
  {
    name: 'calcom',
    start: (r) => startCalcomEmulator({ redirectUri: r }),
    preset: (e) => calcom({ ...credentials(e), scopes: ['BOOKING_READ', 'SCHEDULE_READ'] }),
    refreshes: true,
    revokes: false,
    extras: () => ({}),
    forgedCode: { provider_error: 'invalid_grant', provider_error_description: 'Invalid or expired authorization code' },
    deadGrant: { provider_error: 'invalid_grant', provider_error_description: 'Invalid refresh token' },
  },
  {
    name: 'sunshine',
    start: (r) => startSunshineConversationsEmulator({ redirectUri: r }),
    preset: (e) =>
      sunshineConversations({
        ...credentials(e),
        // The preset's own revocation URL shape, `{subdomain}` filled from the login's tokenInfo.
        // (A Marketplace bot's headers: test/sunshine-conversations.test.ts.)
        endpoints: { ...e.endpoints, revoke: sunshine(e).revokeTemplate },
      }),
    refreshes: false,
    revokes: true,
    extras: (e) => ({ appId: sunshine(e).app.id, subdomain: 'user-company' }),
    apiCallsAtLogin: 1,
    afterLogout: (e) => expect(sunshine(e).revokedAt).toEqual([`user-company.localhost:${new URL(e.origin).port}`]),
    forgedCode: { provider_error: 'bad_request', provider_error_description: 'Invalid code' },
  },
];

// The Sunshine emulator serves each customer's host as `{subdomain}.localhost` (RFC 6761).
let restoreNames: () => void;
beforeAll(() => {
  restoreNames = resolveLocalhostNames();
});
afterAll(() => restoreNames());

describe.each(cases)('$name', (c) => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await c.start(`${BASE_URL}/auth/${c.name}/callback`);
  });
  afterAll(async () => {
    await emulator?.close();
  });

  describe.each(adapters)('on $name', (adapter) => {
    let errors: unknown[] = [];
    async function start(refreshSkewSeconds = 60): Promise<{ app: RunningApp; agent: request.Agent }> {
      emulator.reset();
      errors = [];
      const oauth = createOAuth({
        baseUrl: BASE_URL,
        secret: 's'.repeat(40),
        refreshSkewSeconds,
        hooks: { onError: (err) => errors.push(err) },
        providers: { [c.name]: c.preset(emulator) },
      });
      const app = await adapter.start(oauth);
      return { app, agent: request.agent(app.server) };
    }

    async function login(agent: request.Agent): Promise<URL> {
      const started = await agent.get(`/auth/${c.name}/login`).expect(302);
      const callback = await emulator.authorize(started.headers.location as string);
      await agent
        .get(callback.pathname + callback.search)
        .expect(302)
        .expect('location', '/');
      return callback;
    }

    it('logs in, refreshes when due (or never, without refresh), and revokes at logout', async () => {
      const { app, agent } = await start();
      try {
        emulator.accessTokenTtl = 30; // due at once with the 60 s skew
        await login(agent);
        expect(emulator.counts.token).toBe(1);
        emulator.accessTokenTtl = 3600;
        const first = (await agent.get(`/token/${c.name}`).expect(200)).body;
        const second = (await agent.get(`/token/${c.name}`).expect(200)).body;
        expect(first.tokenType).toBe('Bearer');
        expect(JSON.stringify(first)).not.toMatch(/refresh/i);
        if (c.refreshes) {
          expect(emulator.counts.refresh).toBe(1);
          expect(second.accessToken).toBe(first.accessToken);
          expect(first.expiresAt).toBeGreaterThan(Date.now() / 1000 + 3000);
        } else {
          expect(emulator.counts.refresh).toBe(0); // Sunshine: valid until revoked
          expect(first.expiresAt).toBeUndefined();
        }
        expect(first.extras).toEqual(c.extras(emulator));
        await agent.post(`/auth/${c.name}/logout`).set('accept', 'application/json').expect(204);
        expect(emulator.counts.revoke).toBe(c.revokes ? 1 : 0);
        c.afterLogout?.(emulator);
        await agent.get(`/token/${c.name}`).expect(401);
        expect(emulator.rejections).toEqual([]);
        // Revoked means refused by the provider afterwards, not merely called (Pipedrive answers 200
        // even for a token it does not know). Without revocation the token lives on at the provider.
        const last = emulator.issued.at(-1);
        expect(last?.accessToken).toBe(first.accessToken);
        const api = await fetch(emulator.endpoints.api, { headers: { authorization: `Bearer ${first.accessToken}` } });
        expect(api.status).toBe(c.revokes ? 401 : 200);
        if (c.revokes && last?.refreshToken) {
          // Pipedrive: the refresh token was revoked, which ends the whole grant (the app is uninstalled).
          const client = await c.preset(emulator).connect();
          await expect(client.refresh(last.refreshToken)).rejects.toMatchObject({
            code: 'provider_error',
            error: 'invalid_grant',
          });
        }
      } finally {
        await app.close();
      }
    });

    it('gives 20 concurrent requests on a due token exactly one refresh', async () => {
      const { app, agent } = await start();
      try {
        emulator.accessTokenTtl = 30;
        await login(agent);
        emulator.accessTokenTtl = 3600;
        const responses = await Promise.all(Array.from({ length: 20 }, () => agent.get(`/token/${c.name}`)));
        expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
        expect(new Set(responses.map((r) => r.body.accessToken)).size).toBe(1);
        expect(emulator.counts.refresh).toBe(c.refreshes ? 1 : 0);
        expect(emulator.rejections).toEqual([]);
      } finally {
        await app.close();
      }
    });

    it('retries fetch once with a new token after the API says the token expired', async () => {
      const { app, agent } = await start();
      try {
        await login(agent);
        // The code exchange's answer (Dropbox Sign's echoes `state`), before any refresh reshapes it.
        expect((await agent.get(`/token/${c.name}`).expect(200)).body.extras).toEqual(c.extras(emulator));
        // Tokens with a lifetime end early at the API; Sunshine's never expire, so its grant is revoked instead.
        if (c.refreshes) emulator.expireAccessTokens();
        else emulator.revokeAll();
        const url = encodeURIComponent(emulator.endpoints.api);
        const res = await agent.get(`/fetch/${c.name}?url=${url}`).expect(200);
        expect(emulator.counts.api).toBe((c.refreshes ? 2 : 1) + (c.apiCallsAtLogin ?? 0));
        expect(emulator.counts.refresh).toBe(c.refreshes ? 1 : 0);
        expect(res.body.status).toBe(c.refreshes ? 200 : 401); // without refresh, the API's answer as it is
      } finally {
        await app.close();
      }
    });

    it('turns a refused code into provider_error with the provider message for the app only, and a dead grant into reauth_required', async () => {
      const { app, agent } = await start();
      try {
        const started = await agent.get(`/auth/${c.name}/login`).expect(302);
        const callback = await emulator.authorize(started.headers.location as string);
        const code = callback.searchParams.get('code') as string;
        callback.searchParams.set('code', `${code}-forged`);
        const refused = await agent.get(callback.pathname + callback.search).expect(502);
        // The response names the provider's error only when it is a registered code, never its text.
        const registered = ['invalid_grant', 'invalid_client', 'invalid_request'].includes(c.forgedCode.provider_error);
        expect(refused.body).toEqual({
          error: 'provider_error',
          message: expect.any(String),
          provider: c.name,
          ...(registered ? { provider_error: c.forgedCode.provider_error } : {}),
        });
        // The app's hooks get the provider's words.
        expect(errors).toContainEqual(
          expect.objectContaining({
            code: 'provider_error',
            error: c.forgedCode.provider_error,
            errorDescription: c.forgedCode.provider_error_description,
          }),
        );
        expect(refused.text).not.toContain(emulator.clientSecret);
        expect(refused.text).not.toContain(code);

        if (!c.deadGrant) return;
        emulator.accessTokenTtl = 30;
        await login(agent);
        emulator.revokeAll(); // the user removed the app at the provider
        const dead = await agent.get(`/token/${c.name}`).expect(401);
        expect(dead.body).toMatchObject({
          error: 'reauth_required',
          provider: c.name,
          provider_error: c.deadGrant.provider_error,
        });
        expect(dead.body).not.toHaveProperty('provider_error_description');
        expect(dead.text).not.toContain(emulator.clientSecret);
        await agent.get(`/token/${c.name}`).expect(401, /not_connected/);
      } finally {
        await app.close();
      }
    });

    it('turns a declined authorization into 403 access_denied', async () => {
      const { app, agent } = await start();
      try {
        emulator.declineNext = true;
        const started = await agent.get(`/auth/${c.name}/login`).expect(302);
        const callback = await emulator.authorize(started.headers.location as string);
        const res = await agent.get(callback.pathname + callback.search).expect(403);
        expect(res.body.error).toBe('access_denied');
        expect(emulator.counts.token).toBe(0);
      } finally {
        await app.close();
      }
    });
  });
});

describe('callbacks without state', () => {
  it('are refused for a provider that echoes state (Pipedrive) unless no login is in flight (a Marketplace install: sent to the login), and accepted briefly where state may not come back (Cal.com)', async () => {
    const pd = await startPipedriveEmulator({ redirectUri: `${BASE_URL}/auth/pd/callback` });
    const cal = await startCalcomPlatformEmulator({ redirectUri: `${BASE_URL}/auth/cal/callback` });
    const oauth = createOAuth({
      baseUrl: BASE_URL,
      secret: 's'.repeat(40),
      providers: { pd: pipedrive(credentials(pd)), cal: calcomPlatform(credentials(cal)) },
    });
    const app = await adapters[0]!.start(oauth);
    try {
      const agent = request.agent(app.server);
      const pdStart = await agent.get('/auth/pd/login').expect(302);
      const pdBack = await pd.authorize(pdStart.headers.location as string);
      pdBack.searchParams.delete('state'); // an attacker's callback carries no state
      const refused = await agent.get(pdBack.pathname + pdBack.search).expect(400);
      expect(refused.body.error).toBe('state_mismatch');
      expect(pd.counts.token).toBe(0);

      // A Marketplace install: a code without state, to a browser with no Pipedrive login in flight.
      // Its code is never exchanged; the user goes through the app's login, which comes back with state.
      const install = await request(app.server).get('/auth/pd/callback?code=marketplace-code').expect(302);
      expect(install.headers.location).toBe('/auth/pd/login');
      expect(pd.counts.token).toBe(0);

      // Cal.com: a stateless callback binds to a login started in the last two minutes, not older.
      const calStart = await agent.get('/auth/cal/login').expect(302);
      const calBack = await cal.authorize(calStart.headers.location as string);
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 3 * 60 * 1000 });
      try {
        const stale = await agent.get(calBack.pathname + calBack.search).expect(400);
        expect(stale.body.error).toBe('state_mismatch');
      } finally {
        vi.useRealTimers();
      }
      const fresh = await agent.get('/auth/cal/login').expect(302);
      const freshBack = await cal.authorize(fresh.headers.location as string);
      await agent.get(freshBack.pathname + freshBack.search).expect(302);
      expect(cal.counts.token).toBe(1);
    } finally {
      await app.close();
      await pd.close();
      await cal.close();
    }
  });
});
