/**
 * A strict Pipedrive emulator (shared/providers/CONTRACTS.md §1): oauth.pipedrive.com's paths on a
 * local origin, and the API's `GET /api/v1/users/me`.
 */
import {
  basicMatches,
  bearerToken,
  errorPage,
  field,
  randomToken,
  redirectTo,
  startEmulator,
  type EmulatorContext,
  type EmulatorRequest,
  type Grant,
  type Reply,
} from './server.js';
import type { Emulator, EmulatorOptions } from './types.js';

/** Authorization codes live 5 minutes (CONTRACTS.md §1, Pipedrive's docs). */
const CODE_LIFETIME_SECONDS = 300;

const FORM_ONLY = 'Invalid request: content must be application/x-www-form-urlencoded';

/** Pipedrive's error body, as its SDK's fixtures mock it (CONTRACTS.md §1, Errors). */
function fail(status: 400 | 401, error: string, message: string, reason = message): Reply {
  const headers: Record<string, string> = status === 401 ? { 'www-authenticate': 'Basic realm="Pipedrive"' } : {};
  return { status, json: { success: false, message, error }, headers, reason };
}

/**
 * Starts a Pipedrive emulator: `GET /oauth/authorize`, `POST /oauth/token` (exchange and refresh),
 * `POST /oauth/revoke` (RFC 7009) and `GET /api/v1/users/me`.
 * - Authorization refuses `scope` (even empty) and PKCE parameters, requires the registered `redirect_uri`,
 *   echoes `state` when given; a declined authorization comes back as `error=user_denied`.
 * - The token endpoint takes only form bodies with HTTP Basic client authentication.
 * - Refresh tokens do not rotate. `api_domain` is the emulator's origin, so `${api_domain}/api/v1/…` reaches it.
 * - Revoking the refresh token ends the whole grant, as uninstalling the app does.
 *
 * @example
 * ```ts
 * const emulator = await startPipedriveEmulator({ redirectUri: 'http://127.0.0.1:3000/auth/pipedrive/callback' });
 * const preset = pipedrive({ clientId: emulator.clientId, clientSecret: emulator.clientSecret, endpoints: emulator.endpoints });
 * ```
 */
export function startPipedriveEmulator(options: EmulatorOptions): Promise<Emulator> {
  return startEmulator({
    options,
    endpoints: (origin) => ({
      authorization: `${origin}/oauth/authorize`,
      token: `${origin}/oauth/token`,
      refresh: `${origin}/oauth/token`,
      revoke: `${origin}/oauth/revoke`,
      api: `${origin}/api/v1/users/me`,
    }),
    routes: (ctx) => [
      { method: 'GET', path: '/oauth/authorize', endpoint: 'authorize', handle: (req) => authorize(ctx, req) },
      {
        method: 'POST',
        path: '/oauth/token',
        endpoint: (req) => (field(req.body, 'grant_type') === 'refresh_token' ? 'refresh' : 'token'),
        handle: (req) => token(ctx, req),
      },
      // The seeds' `/oauth/token/` is an OpenAPI artifact (CONTRACTS.md §1, Refresh): the real server has no such path.
      {
        method: 'POST',
        path: '/oauth/token/',
        handle: () => ({ status: 404, json: { success: false, error: 'Not found' }, reason: 'trailing slash: /oauth/token/' }),
      },
      { method: 'POST', path: '/oauth/revoke', endpoint: 'revoke', handle: (req) => revoke(ctx, req) },
      { method: 'GET', path: '/api/v1/users/me', endpoint: 'api', handle: (req) => me(ctx, req) },
    ],
  });
}

function authorize({ emulator, book, redirectUri: registered }: EmulatorContext, req: EmulatorRequest): Reply {
  const q = req.query;
  if (q.get('client_id') !== emulator.clientId) return errorPage('unknown client_id');
  const redirectUri = q.get('redirect_uri');
  if (redirectUri === null) return errorPage('redirect_uri is required');
  if (redirectUri !== registered) return errorPage('redirect_uri does not match the registered callback URL');
  // Scopes are set in the Developer Hub; a `scope` parameter, even empty, or PKCE breaks authorization (Nango ac05c5bac9).
  if (q.has('scope')) return errorPage('scope parameter is not accepted');
  if (q.has('code_challenge') || q.has('code_challenge_method')) return errorPage('PKCE is not supported');
  // `response_type` is undocumented but tolerated (CONTRACTS.md §1) when it says `code`.
  if (q.has('response_type') && q.get('response_type') !== 'code') return errorPage('unsupported response_type');
  const state = q.get('state') ?? undefined;
  if (emulator.declineNext) {
    emulator.declineNext = false;
    return redirectTo(redirectUri, { error: 'user_denied', state });
  }
  const code = book.addCode(randomToken(20), CODE_LIFETIME_SECONDS);
  return redirectTo(redirectUri, { code, state });
}

function token(ctx: EmulatorContext, req: EmulatorRequest): Reply {
  const { emulator, book } = ctx;
  if (req.bodyType !== 'form') return fail(400, 'invalid_request', FORM_ONLY, `${req.bodyType} body`);
  // Basic is what the docs ask for; body credentials "also work" (CONTRACTS.md §1, Token exchange).
  const basic = basicMatches(req, emulator.clientId, emulator.clientSecret);
  const inBody = field(req.body, 'client_id') !== undefined || field(req.body, 'client_secret') !== undefined;
  if (basic === undefined && !inBody) {
    return fail(401, 'invalid_client', 'Invalid client: cannot retrieve client credentials', 'no client credentials');
  }
  const valid =
    basic ?? (field(req.body, 'client_id') === emulator.clientId && field(req.body, 'client_secret') === emulator.clientSecret);
  if (!valid) return fail(401, 'invalid_client', 'Invalid client: client is invalid', 'wrong client credentials');
  const grantType = field(req.body, 'grant_type');
  if (grantType === 'authorization_code') return exchange(ctx, req.body);
  if (grantType === 'refresh_token') {
    const refreshToken = field(req.body, 'refresh_token');
    if (!refreshToken) return fail(400, 'invalid_request', 'Missing parameter: `refresh_token`');
    const check = book.checkRefresh(refreshToken);
    if (!check.ok) return fail(400, 'invalid_grant', 'Invalid grant: refresh token is invalid', `${check.why} refresh token`);
    // No rotation: "the same refresh token will be issued" (CONTRACTS.md §1, Refresh).
    return issue(ctx, check.grant, refreshToken);
  }
  if (grantType === undefined) return fail(400, 'invalid_request', 'Missing parameter: `grant_type`');
  return fail(400, 'unsupported_grant_type', 'Unsupported grant type: `grant_type` is invalid');
}

function exchange(ctx: EmulatorContext, body: Record<string, unknown>): Reply {
  const code = field(body, 'code');
  if (!code) return fail(400, 'invalid_request', 'Missing parameter: `code`');
  const redirectUri = field(body, 'redirect_uri');
  if (!redirectUri) return fail(400, 'invalid_request', 'Missing parameter: `redirect_uri`');
  // There is one registered callback, so this is the redirect_uri the code was issued for (RFC 6749 §4.1.3).
  // Checked before the code is taken, so a wrong redirect_uri does not burn the code.
  if (redirectUri !== ctx.redirectUri) return fail(400, 'invalid_request', 'Invalid request: `redirect_uri` is invalid');
  const taken = ctx.book.takeCode(code);
  if (!taken.ok) {
    const message =
      taken.why === 'expired' ? 'Invalid grant: authorization code has expired' : 'Invalid grant: authorization code is invalid';
    return fail(400, 'invalid_grant', message, `${taken.why} or already used code`);
  }
  const grant = ctx.book.newGrant();
  return issue(ctx, grant, ctx.book.addRefresh(`1:1:${randomToken(30)}`, grant));
}

function issue({ emulator, book }: EmulatorContext, grant: Grant, refreshToken: string): Reply {
  const accessToken = `v1u:${randomToken(60)}`;
  book.addAccess(accessToken, grant, emulator.accessTokenTtl);
  return {
    status: 200,
    issued: { accessToken, refreshToken },
    json: {
      access_token: accessToken,
      token_type: 'Bearer',
      refresh_token: refreshToken,
      scope: 'base',
      expires_in: emulator.accessTokenTtl,
      api_domain: emulator.origin,
    },
  };
}

function revoke({ emulator, book }: EmulatorContext, req: EmulatorRequest): Reply {
  if (req.bodyType !== 'form') return fail(400, 'invalid_request', FORM_ONLY, `${req.bodyType} body`);
  if (!basicMatches(req, emulator.clientId, emulator.clientSecret)) {
    return fail(401, 'invalid_client', 'Invalid client: client is invalid', 'missing or wrong HTTP Basic client credentials');
  }
  const value = field(req.body, 'token');
  if (!value) return fail(400, 'invalid_request', 'Missing parameter: `token`');
  // The hint is only a hint (RFC 7009 §2.1): both kinds are looked up. Revoking the refresh token
  // uninstalls the app (CONTRACTS.md §1, Revoke), so every token of the grant ends with it.
  const refresh = book.checkRefresh(value);
  if (refresh.ok) book.revokeGrant(refresh.grant);
  else book.revokeAccess(value);
  // Unknown tokens too get 200 (RFC 7009 §2.2).
  return { status: 200 };
}

function me({ book }: EmulatorContext, req: EmulatorRequest): Reply {
  const check = book.checkAccess(bearerToken(req));
  if (!check.ok) {
    const json = { success: false, error: 'unauthorized access', errorCode: 401 };
    return { status: 401, json, reason: `${check.why} access token` };
  }
  const data = { id: 1, name: 'Test User', email: 'user-1@example.com', company_id: 1, company_domain: 'user-company' };
  return { status: 200, json: { success: true, data } };
}
