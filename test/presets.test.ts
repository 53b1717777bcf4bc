/**
 * What each preset sends in its authorization request, read off the URL it builds (no network:
 * presets with known endpoints need no discovery). The token side is proven end to end against
 * the emulators.
 */
import { describe, expect, it } from 'vitest';
import { createOAuth } from '../src/index.js';
import {
  calcom,
  calcomPlatform,
  dropboxSign,
  github,
  google,
  hellosign,
  microsoft,
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
  it.each<[string, ProviderDefinition, string, Record<string, string | null>]>([
    [
      'pipedrive',
      pipedrive(credentials),
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
      dropboxSign(credentials),
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
      'calcomPlatform',
      calcomPlatform(credentials),
      'https://app.cal.com/auth/platform/authorize',
      { client_id: 'the-client', redirect_uri: redirect, state: 'the-state', response_type: null, code_challenge: null },
    ],
    [
      'calcom',
      calcom(credentials),
      'https://app.cal.com/auth/oauth2/authorize',
      { client_id: 'the-client', response_type: 'code', code_challenge: 'the-challenge', code_challenge_method: 'S256' },
    ],
    [
      'sunshineConversations',
      sunshineConversations(credentials),
      'https://oauth-bridge.zendesk.com/sc/oauth/authorize',
      { client_id: 'the-client', response_type: 'code', redirect_uri: redirect, scope: null, code_challenge: null },
    ],
    [
      'google',
      google(credentials),
      'https://accounts.google.com/o/oauth2/v2/auth',
      { scope: 'openid email profile', access_type: 'offline', prompt: 'consent', code_challenge_method: 'S256' },
    ],
    [
      'github',
      github(credentials),
      'https://github.com/login/oauth/authorize',
      { scope: 'read:user', code_challenge_method: 'S256' },
    ],
    [
      'microsoft',
      microsoft({ ...credentials, tenant: 'contoso.example' }),
      'https://login.microsoftonline.com/contoso.example/oauth2/v2.0/authorize',
      { scope: 'openid profile email offline_access User.Read' },
    ],
    [
      'slack',
      slack({ ...credentials, scopes: ['users:read', 'chat:write'] }),
      'https://slack.com/oauth/v2/authorize',
      { user_scope: 'users:read,chat:write', scope: null, code_challenge: null },
    ],
  ])('%s sends what its provider expects, and nothing it refuses', async (_name, provider, endpoint, expected) => {
    const url = await authorizationUrl(provider);
    expect(url.origin + url.pathname).toBe(endpoint);
    for (const [param, value] of Object.entries(expected)) expect([param, url.searchParams.get(param)]).toEqual([param, value]);
  });

  it('hellosign is dropboxSign', () => {
    expect(hellosign).toBe(dropboxSign);
  });

  it('sends a nonce only to OpenID Connect presets', () => {
    expect(google(credentials).nonce).toBe(true);
    expect(microsoft({ ...credentials, tenant: 'contoso.example' }).nonce).toBe(true);
    expect(microsoft(credentials).nonce).toBe(false); // multi-tenant: no issuer to check
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

  it.each<[string, ProviderDefinition, string]>([
    ['calcomPlatform', calcomPlatform({ ...credentials, endpoints: { token: 'http://127.0.0.1:1/t' } }), 'refresh'],
    ['dropboxSign', dropboxSign({ ...credentials, endpoints: { token: 'http://127.0.0.1:1/t' } }), 'refresh'],
    ['pipedrive', pipedrive({ ...credentials, endpoints: { token: 'http://127.0.0.1:1/t' } }), 'revoke'],
    ['sunshineConversations', sunshineConversations({ ...credentials, endpoints: { token: 'http://127.0.0.1:1/t' } }), 'revoke'],
    ['github', github({ ...credentials, endpoints: { authorization: 'https://ghe.example/login/oauth/authorize' } }), 'revoke'],
  ])(
    '%s refuses a token or authorization URL moved alone: its %s URL would still reach the production host',
    (_name, provider, field) => {
      const attempt = () => createOAuth({ baseUrl: redirect, secret: 's'.repeat(32), providers: { p: provider } });
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
    const provider = calcomPlatform({ clientId: 'abc/1', clientSecret: 's' });
    expect(provider.stateOptional).toBe(true);
    expect(provider.expiredStatuses).toEqual([401, 498]);
    expect((await authorizationUrl(provider)).searchParams.get('client_id')).toBe('abc/1');
  });
});
