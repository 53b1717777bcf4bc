/**
 * oidc-provider as the real authorization server of the tests: counts requests per grant,
 * injects faults on demand, and completes its login and consent over HTTP without a browser.
 */
import type Provider from 'oidc-provider';
import { type DemoIdp, startDemoIdp } from '../../examples/demo-idp/index.js';
import { oidc } from '../../src/providers/index.js';

export const CLIENT_ID = 'test-app';
export const CLIENT_SECRET = 'test-app-secret-0123456789';
export const BASE_URL = 'http://127.0.0.1:3999';

export interface TestServer extends DemoIdp {
  /** Token endpoint calls by grant type, and revocation calls. */
  counts: { authorization_code: number; refresh_token: number; revocation: number };
  /** Access token lifetime for the next issued tokens, in seconds. */
  accessTokenTtl: number;
  /** When set, the token endpoint answers this status (with a JSON error body) instead of working. */
  failTokenEndpoint: number | undefined;
  /** When set, the revocation endpoint answers this status (with a JSON error body) instead of working. */
  failRevocation: number | undefined;
  /** Added to the token endpoint's answer time, in ms (to widen race windows). */
  tokenDelayMs: number;
  /**
   * Every token the token endpoint handed out since the last reset, in order (the last refresh
   * token is the one the app should now hold). Tests use them to look for leaks and to call the
   * provider directly.
   */
  issued: IssuedTokens;
  reset(): void;
  /** Ends the grant behind an access token, as a user removing the app at the provider would. */
  revokeGrant(accessToken: string): Promise<void>;
}

export interface IssuedTokens {
  accessTokens: string[];
  refreshTokens: string[];
  idTokens: string[];
}

function noneIssued(): IssuedTokens {
  return { accessTokens: [], refreshTokens: [], idTokens: [] };
}

export async function startAuthorizationServer(
  providerNames: string[] = ['op'],
  options: { jwtAccessTokens?: boolean; mountPaths?: string[] } = {},
): Promise<TestServer> {
  const state = {
    counts: { authorization_code: 0, refresh_token: 0, revocation: 0 },
    accessTokenTtl: 3600,
    failTokenEndpoint: undefined as number | undefined,
    failRevocation: undefined as number | undefined,
    tokenDelayMs: 0,
    issued: noneIssued(),
    reset() {
      state.counts = { authorization_code: 0, refresh_token: 0, revocation: 0 };
      state.issued = noneIssued();
      state.accessTokenTtl = 3600;
      state.failTokenEndpoint = undefined;
      state.tokenDelayMs = 0;
    },
  };
  const idp = await startDemoIdp({
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: (options.mountPaths ?? ['']).flatMap((mount) =>
          providerNames.map((name) => `${BASE_URL}${mount}/auth/${name}/callback`),
        ),
      },
    ],
    accessTokenTtl: () => state.accessTokenTtl,
    jwtAccessTokens: options.jwtAccessTokens ?? false,
    configure(provider: Provider) {
      provider.use(async (ctx, next) => {
        if (ctx.method === 'POST' && ctx.path === '/token') {
          if (state.tokenDelayMs > 0) await new Promise((r) => setTimeout(r, state.tokenDelayMs));
          if (state.failTokenEndpoint !== undefined) {
            ctx.status = state.failTokenEndpoint;
            ctx.body = { error: 'temporarily_unavailable', error_description: 'injected failure' };
            return;
          }
        }
        if (ctx.method === 'POST' && ctx.path === '/token/revocation') {
          state.counts.revocation++;
          if (state.failRevocation !== undefined) {
            ctx.status = state.failRevocation;
            ctx.body = { error: 'temporarily_unavailable', error_description: 'injected failure' };
            return;
          }
        }
        await next();
        if (ctx.method === 'POST' && ctx.path === '/token' && ctx.body && typeof ctx.body === 'object') {
          const body = ctx.body as { access_token?: unknown; refresh_token?: unknown; id_token?: unknown };
          if (typeof body.access_token === 'string') state.issued.accessTokens.push(body.access_token);
          if (typeof body.refresh_token === 'string') state.issued.refreshTokens.push(body.refresh_token);
          if (typeof body.id_token === 'string') state.issued.idTokens.push(body.id_token);
        }
      });
      const countGrant = (ctx: { oidc?: { params?: { grant_type?: unknown } } }) => {
        const grant = ctx.oidc?.params?.grant_type;
        if (grant === 'authorization_code' || grant === 'refresh_token') state.counts[grant]++;
      };
      provider.on('grant.success', countGrant);
      provider.on('grant.error', countGrant);
    },
  });
  async function revokeGrant(accessToken: string) {
    const token = await idp.provider.AccessToken.find(accessToken);
    if (!token?.grantId) throw new Error('unknown access token');
    const grant = await idp.provider.Grant.find(token.grantId);
    await grant?.destroy();
  }
  // The closures above read `state`, so `state` itself becomes the returned object.
  return Object.assign(state, idp, { revokeGrant });
}

/**
 * A refresh_token grant sent straight to the server as the test client, bypassing the library:
 * tells whether the server still honours a refresh token (a revoked one gives `invalid_grant`).
 * Note that a successful call rotates the token, so the app's copy is spent afterwards.
 */
export async function refreshDirectly(
  server: { issuer: string },
  refreshToken: string,
): Promise<{ status: number; body: { error?: string; access_token?: string; refresh_token?: string } }> {
  const response = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    signal: AbortSignal.timeout(5000),
  });
  return { status: response.status, body: (await response.json()) as { error?: string } };
}

/**
 * The app's provider definition for this server: refresh tokens need `offline_access` and a
 * consent prompt (oidc-provider issues them only then).
 */
export function testProvider(server: { issuer: string }, extraScopes: string[] = []) {
  return oidc({
    issuer: server.issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    scopes: ['openid', 'profile', 'email', 'offline_access', ...extraScopes],
    authorizationParams: { prompt: 'consent' },
  });
}

const MAX_HOPS = 20;

/**
 * Follows the authorization request through oidc-provider's login and consent forms, as a
 * browser would, and returns the redirect back to the app (the callback URL with code and state).
 * `decline` aborts at the login form instead, which yields `error=access_denied`.
 */
export async function completeLogin(authorizationUrl: string, options: { user?: string; decline?: boolean } = {}): Promise<URL> {
  const origin = new URL(authorizationUrl).origin;
  const jar = new Map<string, string>();
  let url = authorizationUrl;
  let body: URLSearchParams | undefined;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const response = await fetch(url, {
      method: body ? 'POST' : 'GET',
      body,
      redirect: 'manual',
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
      signal: AbortSignal.timeout(5000),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const value = pair.slice(eq + 1);
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) jar.delete(pair.slice(0, eq));
      else jar.set(pair.slice(0, eq), value);
    }
    body = undefined;
    const location = response.headers.get('location');
    if (location) {
      const next = new URL(location, url);
      if (next.origin !== origin) return next;
      url = next.href;
      continue;
    }
    const html = await response.text();
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (!prompt || !action) throw new Error(`unexpected page at ${url} (${response.status})`);
    if (options.decline) {
      url = new URL(`${action}/abort`, url).href;
      continue;
    }
    url = new URL(action, url).href;
    body =
      prompt === 'login'
        ? new URLSearchParams({ prompt, login: options.user ?? 'alice', password: 'any' })
        : new URLSearchParams({ prompt });
  }
  throw new Error('login did not come back to the app');
}

/**
 * Calls `keep` with every PKCE verifier the server receives at its token endpoint, exchanges that
 * succeed or fail alike: the secrets a test then looks for in every answer.
 */
export function onVerifier(op: TestServer, keep: (verifier: string) => void): void {
  const record = (ctx: { oidc?: { params?: Record<string, unknown> } }) => {
    const verifier = ctx.oidc?.params?.code_verifier;
    if (typeof verifier === 'string') keep(verifier);
  };
  op.provider.on('grant.success', record);
  op.provider.on('grant.error', record);
}
