/**
 * A strict emulator of Cal.com's platform OAuth (shared/providers/CONTRACTS.md §3a and its
 * 2026-11-30 correction): api.cal.com's `/v2/oauth/{clientId}/…` and the managed users of
 * `/v2/oauth-clients/{clientId}/users` on one local origin, the API's `GET /v2/me`, and a stand-in
 * for a first-party authorization page.
 */
import { randomUUID } from 'node:crypto';
import {
  bearerToken,
  errorPage,
  field,
  jwtLike,
  startEmulator,
  type EmulatorContext,
  type EmulatorRequest,
  type Grant,
  type Reply,
} from './server.js';
import type { Emulator, EmulatorOptions } from './types.js';

export interface CalcomPlatformEmulatorOptions extends EmulatorOptions {
  /** Add `&state=` to the redirect back when the app sent one. Whether Cal.com does is uncertain [U]; default false. */
  echoState?: boolean;
}

/** The authorization token's lifetime is undocumented [U]: ten minutes. */
const CODE_LIFETIME_SECONDS = 600;
/**
 * Refresh tokens live a year (CONTRACTS.md §3a) and are refused after the `refreshTokenExpiresAt`
 * announced. The rounding of both expiries to a minute or a day is not emulated.
 */
const REFRESH_LIFETIME_SECONDS = 365 * 24 * 3600;

/** Nest's exception filter envelope (CONTRACTS.md §3a, Errors). */
function fail(req: EmulatorRequest, status: 400 | 401 | 498, message: string, reason = message): Reply {
  const code = { 400: 'BadRequestException', 401: 'UnauthorizedException', 498: 'TokenExpiredException' }[status];
  const json = { status: 'error', timestamp: new Date().toISOString(), path: req.path, error: { code, message } };
  return { status, json, reason };
}

/**
 * Starts a Cal.com platform emulator: `POST /v2/oauth-clients/{clientId}/users` (creates a managed
 * user and answers its tokens), `POST /v2/oauth-clients/{clientId}/users/{userId}/force-refresh`,
 * `POST /v2/oauth/{clientId}/exchange`, `POST /v2/oauth/{clientId}/refresh`, `GET /v2/me`, and
 * `GET /auth/platform/authorize`, which approves at once.
 * - That page stands for a first-party app's own authorization page (`endpoints.authorization`, set
 *   explicitly). Cal.com's web app page at that path is a static mock that never completes a login,
 *   so the preset sends no browser there by default.
 * - Managed users (with `x-cal-secret-key`): creation takes JSON `{email}` and answers
 *   `{status, data: {user, accessToken, refreshToken, accessTokenExpiresAt, refreshTokenExpiresAt}}`;
 *   force-refresh ends the user's tokens and answers new ones (`{status, data: {accessToken, ...}}`).
 *   Both count as `token`, force-refresh as `refresh`.
 * - The redirect back is `${redirect_uri}?code=…`, without `state` unless `echoState` is set.
 * - Exchange: the code in `Authorization: Bearer`, JSON `{"clientSecret"}`. Refresh: `x-cal-secret-key`,
 *   JSON `{"refreshToken"}`; refresh tokens are single use (rotated) and refused after their `refreshTokenExpiresAt`.
 * - Answers are `{status: "success", data: {accessToken, refreshToken, accessTokenExpiresAt, refreshTokenExpiresAt}}`
 *   (epoch ms). The API answers 498 for an expired access token, 401 for an unknown or revoked one. No revocation.
 *
 * @example
 * ```ts
 * const emulator = await startCalcomPlatformEmulator({ redirectUri: 'http://127.0.0.1:3000/auth/cal/callback' });
 * const preset = calcomPlatform({ clientId: emulator.clientId, clientSecret: emulator.clientSecret, endpoints: emulator.endpoints });
 * ```
 */
export function startCalcomPlatformEmulator(options: CalcomPlatformEmulatorOptions): Promise<Emulator> {
  const echoState = options.echoState ?? false;
  const users = new Map<number, ManagedUser>(); // managed users by id, each with its current grant
  return startEmulator({
    options,
    endpoints: (origin, clientId) => ({
      authorization: `${origin}/auth/platform/authorize`,
      token: `${origin}/v2/oauth/${encodeURIComponent(clientId)}/exchange`,
      refresh: `${origin}/v2/oauth/${encodeURIComponent(clientId)}/refresh`,
      recover: `${origin}/v2/oauth-clients/${encodeURIComponent(clientId)}/users/{userId}/force-refresh`,
      managedUsers: `${origin}/v2/oauth-clients/${encodeURIComponent(clientId)}/users`,
      api: `${origin}/v2/me`,
    }),
    routes: (ctx) => [
      { method: 'GET', path: '/auth/platform/authorize', endpoint: 'authorize', handle: (req) => authorize(ctx, req, echoState) },
      {
        method: 'POST',
        path: '/v2/oauth-clients/:clientId/users',
        endpoint: 'token',
        handle: (req) => createUser(ctx, users, req),
      },
      {
        method: 'POST',
        path: '/v2/oauth-clients/:clientId/users/:userId/force-refresh',
        endpoint: 'refresh',
        handle: (req) => forceRefresh(ctx, users, req),
      },
      { method: 'POST', path: '/v2/oauth/:clientId/exchange', endpoint: 'token', handle: (req) => exchange(ctx, req) },
      { method: 'POST', path: '/v2/oauth/:clientId/refresh', endpoint: 'refresh', handle: (req) => refresh(ctx, req) },
      { method: 'GET', path: '/v2/me', endpoint: 'api', handle: (req) => me(ctx, req) },
    ],
  });
}

function authorize(
  { emulator, book, redirectUri: registered }: EmulatorContext,
  req: EmulatorRequest,
  echoState: boolean,
): Reply {
  const q = req.query;
  if (q.get('client_id') !== emulator.clientId) return errorPage('unknown client_id');
  // The redirect URI must be one registered for the OAuth client (exact match in older builds).
  if (q.get('redirect_uri') !== registered) return errorPage("Invalid 'redirect_uri' value.");
  // The page reads state, scope and PKCE parameters, but the exchange takes no verifier: PKCE cannot bind anything.
  // "The user has already authorized the client" (a 400 at the API) is not emulated: it would forbid logging in twice.
  const state = q.get('state');
  const stateParam = echoState && state !== null ? `&state=${encodeURIComponent(state)}` : '';
  if (emulator.declineNext) {
    emulator.declineNext = false;
    return { status: 302, location: `${registered}?error=access_denied${stateParam}` };
  }
  // Cal.com builds the URL by string concatenation (CONTRACTS.md §3a), so a callback with a query would break; so does this.
  const code = book.addCode(randomUUID(), CODE_LIFETIME_SECONDS);
  return { status: 302, location: `${registered}?code=${code}${stateParam}` };
}

function exchange(ctx: EmulatorContext, req: EmulatorRequest): Reply {
  if (req.bodyType !== 'json') return fail(req, 400, 'Body must be application/json', `${req.bodyType} body`);
  // The code travels as a bearer token, not in the body (CONTRACTS.md §3a, Exchange).
  const code = bearerToken(req);
  if (code === undefined) {
    const reason =
      'code' in req.body || 'authorizationCode' in req.body ? 'code in the body instead of Authorization: Bearer' : undefined;
    return fail(req, 400, "Missing 'Bearer' Authorization header.", reason);
  }
  const invalid = 'Invalid OAuth Client.';
  if (req.params.clientId !== ctx.emulator.clientId) return fail(req, 400, invalid, 'unknown client id in path');
  const secret = field(req.body, 'clientSecret');
  if (secret !== ctx.emulator.clientSecret) {
    return fail(req, 400, invalid, secret === undefined ? 'no clientSecret in body' : 'wrong clientSecret');
  }
  // The authorization token is deleted after use (CONTRACTS.md §3a): single use.
  const taken = ctx.book.takeCode(code);
  if (!taken.ok) return fail(req, 400, 'Invalid Authorization Token.', `${taken.why} or already used code`);
  return issue(ctx, ctx.book.newGrant());
}

function refresh(ctx: EmulatorContext, req: EmulatorRequest): Reply {
  const header = req.headers['x-cal-secret-key'];
  if (typeof header !== 'string' || header === '') return fail(req, 401, 'Invalid client secret', 'no x-cal-secret-key header');
  // The refresh names an unknown client in its own words (CONTRACTS.md §3a, Refresh).
  if (req.params.clientId !== ctx.emulator.clientId) {
    return fail(req, 400, 'Invalid OAuthClient credentials.', 'unknown client id in path');
  }
  if (header !== ctx.emulator.clientSecret) return fail(req, 401, 'Invalid client secret', 'wrong x-cal-secret-key');
  if (req.bodyType !== 'json') return fail(req, 400, 'Body must be application/json', `${req.bodyType} body`);
  const refreshToken = field(req.body, 'refreshToken');
  if (refreshToken === undefined) return fail(req, 400, 'refreshToken must be a string', 'no refreshToken in body');
  const check = ctx.book.checkRefresh(refreshToken);
  if (!check.ok) return fail(req, 400, 'Invalid refresh token', `${check.why} (or already used) refresh token`);
  // Rotation: the old refresh token is deleted in the same transaction (CONTRACTS.md §3a, Refresh).
  ctx.book.dropRefresh(refreshToken);
  return issue(ctx, check.grant);
}

/** The platform's own guard on the managed-user routes: the client's secret in `x-cal-secret-key`. */
function secretKeyRefusal(ctx: EmulatorContext, req: EmulatorRequest): Reply | undefined {
  const header = req.headers['x-cal-secret-key'];
  if (typeof header !== 'string' || header === '') return fail(req, 401, 'Invalid client secret', 'no x-cal-secret-key header');
  if (req.params.clientId !== ctx.emulator.clientId) return fail(req, 400, 'Invalid OAuth Client.', 'unknown client id in path');
  if (header !== ctx.emulator.clientSecret) return fail(req, 401, 'Invalid client secret', 'wrong x-cal-secret-key');
  return undefined;
}

interface ManagedUser {
  id: number;
  email: string;
  grant: Grant;
}

function createUser(ctx: EmulatorContext, users: Map<number, ManagedUser>, req: EmulatorRequest): Reply {
  const refused = secretKeyRefusal(ctx, req);
  if (refused) return refused;
  if (req.bodyType !== 'json') return fail(req, 400, 'Body must be application/json', `${req.bodyType} body`);
  const email = field(req.body, 'email');
  if (email === undefined || !email.includes('@')) return fail(req, 400, 'email must be an email', 'no valid email');
  const user: ManagedUser = { id: users.size + 1, email, grant: ctx.book.newGrant() };
  users.set(user.id, user);
  const reply = issue(ctx, user.grant);
  const { data } = reply.json as { data: Record<string, unknown> };
  const profile = { id: user.id, email: user.email, username: `managed-${user.id}`, timeZone: 'Europe/London' };
  return { ...reply, json: { status: 'success', data: { user: profile, ...data } } };
}

function forceRefresh(ctx: EmulatorContext, users: Map<number, ManagedUser>, req: EmulatorRequest): Reply {
  const refused = secretKeyRefusal(ctx, req);
  if (refused) return refused;
  const user = users.get(Number(req.params.userId));
  if (!user) return fail(req, 400, 'User not found', 'unknown managed user');
  // New tokens for the user; every token issued before is ended.
  ctx.book.revokeGrant(user.grant);
  user.grant = ctx.book.newGrant();
  return issue(ctx, user.grant);
}

function issue({ emulator, book }: EmulatorContext, grant: Grant): Reply {
  const now = Date.now();
  const claims = { clientId: emulator.clientId, ownerId: 1, iat: Math.floor(now / 1000) };
  const accessTokenExpiresAt = now + emulator.accessTokenTtl * 1000;
  const refreshTokenExpiresAt = now + REFRESH_LIFETIME_SECONDS * 1000;
  const accessToken = jwtLike({ ...claims, type: 'access_token', expiresAt: accessTokenExpiresAt });
  const refreshToken = jwtLike({ ...claims, type: 'refresh_token', expiresAt: refreshTokenExpiresAt });
  book.addAccess(accessToken, grant, emulator.accessTokenTtl);
  book.addRefresh(refreshToken, grant, refreshTokenExpiresAt);
  return {
    status: 200,
    issued: { accessToken, refreshToken },
    json: { status: 'success', data: { accessToken, refreshToken, accessTokenExpiresAt, refreshTokenExpiresAt } },
  };
}

function me({ book }: EmulatorContext, req: EmulatorRequest): Reply {
  const check = book.checkAccess(bearerToken(req));
  // An expired token gets 498, HTTP_CODE_TOKEN_EXPIRED (CONTRACTS.md §3a, Errors); unknown and revoked ones 401.
  if (!check.ok && check.why === 'expired') return fail(req, 498, 'ACCESS_TOKEN_IS_EXPIRED', 'expired access token');
  if (!check.ok) return fail(req, 401, 'Invalid Access Token.', `${check.why} access token`);
  const data = { id: 1, username: 'user-1', email: 'user-1@example.com', timeZone: 'Europe/London', weekStart: 'Monday' };
  return { status: 200, json: { status: 'success', data } };
}
