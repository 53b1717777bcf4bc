/**
 * A strict emulator of Cal.com's standard OAuth 2.0 (shared/providers/CONTRACTS.md §3b and its
 * 2026-11-30 correction): the web app's `/auth/oauth2/authorize` and api.cal.com's
 * `/v2/auth/oauth2/token` on one local origin, and the API's `GET /v2/me`.
 */
import { createHash } from 'node:crypto';
import {
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

export interface CalcomEmulatorOptions extends EmulatorOptions {
  /** The scopes the OAuth client was approved for. Default `['BOOKING_READ', 'SCHEDULE_READ', 'PROFILE_READ']`. */
  scopes?: readonly string[];
}

/** The code's lifetime is undocumented [U]: ten minutes. */
const CODE_LIFETIME_SECONDS = 600;

/** What a code was issued for, checked again at the exchange. */
interface CodeGrant {
  redirectUri: string;
  scope: string;
  challenge: string | undefined;
}

/** RFC 6749 §5.2 errors (Cal.com's `oauth2-http-exception.filter.ts`). */
function fail(status: 400 | 401, error: string, description: string, reason = description): Reply {
  return { status, json: { error, error_description: description }, reason };
}

/**
 * Starts a Cal.com standard OAuth 2.0 emulator: `GET /auth/oauth2/authorize`,
 * `POST /v2/auth/oauth2/token` (exchange and refresh) and `GET /v2/me`.
 * - Authorization requires `client_id`, the exact registered `redirect_uri` and `scope`, split on
 *   commas, each one of the client's approved scopes ("scope parameter is required for this OAuth
 *   client"); `state` is echoed; a `code_challenge` must be S256 and binds the code.
 * - The token request is form-encoded or JSON, with `client_id` and `client_secret` in the body;
 *   `redirect_uri` must match for a code; a code sent with a challenge needs its `code_verifier`.
 * - Refresh tokens rotate: each is single use. Answers are flat RFC 6749 JSON with
 *   `token_type: "bearer"` and `expires_in` (the access token lifetime, 1800 by default at Cal.com).
 *
 * @example
 * ```ts
 * const emulator = await startCalcomEmulator({ redirectUri: 'http://127.0.0.1:3000/auth/cal/callback' });
 * const preset = calcom({ clientId: emulator.clientId, clientSecret: emulator.clientSecret, endpoints: emulator.endpoints, scopes: ['BOOKING_READ'] });
 * ```
 */
export function startCalcomEmulator(options: CalcomEmulatorOptions): Promise<Emulator> {
  const approved = new Set(options.scopes ?? ['BOOKING_READ', 'SCHEDULE_READ', 'PROFILE_READ']);
  const codes = new Map<string, CodeGrant>();
  return startEmulator({
    options: { accessTokenTtl: 1800, ...options },
    endpoints: (origin) => ({
      authorization: `${origin}/auth/oauth2/authorize`,
      token: `${origin}/v2/auth/oauth2/token`,
      refresh: `${origin}/v2/auth/oauth2/token`,
      api: `${origin}/v2/me`,
    }),
    routes: (ctx) => [
      {
        method: 'GET',
        path: '/auth/oauth2/authorize',
        endpoint: 'authorize',
        handle: (req) => authorize(ctx, req, approved, codes),
      },
      {
        method: 'POST',
        path: '/v2/auth/oauth2/token',
        endpoint: (req) => (field(req.body, 'grant_type') === 'refresh_token' ? 'refresh' : 'token'),
        handle: (req) => token(ctx, req, codes),
      },
      { method: 'GET', path: '/v2/me', endpoint: 'api', handle: (req) => me(ctx, req) },
    ],
  });
}

function authorize(
  { emulator, book, redirectUri: registered }: EmulatorContext,
  req: EmulatorRequest,
  approved: ReadonlySet<string>,
  codes: Map<string, CodeGrant>,
): Reply {
  const q = req.query;
  if (q.get('client_id') !== emulator.clientId) return errorPage('unknown client_id');
  const redirectUri = q.get('redirect_uri');
  if (redirectUri !== registered) return errorPage('redirect_uri must match a registered one exactly');
  const scope = q.get('scope');
  if (!scope) return errorPage('scope parameter is required for this OAuth client');
  // The authorize page splits on commas: `A B` would be one unknown scope.
  const asked = scope.split(',');
  const unknown = asked.filter((s) => !approved.has(s));
  if (unknown.length > 0) return errorPage(`scope not approved for this OAuth client: ${unknown.join(', ')}`);
  const challenge = q.get('code_challenge') ?? undefined;
  if (challenge !== undefined && q.get('code_challenge_method') !== 'S256')
    return errorPage('code_challenge_method must be S256');
  const state = q.get('state') ?? undefined;
  if (emulator.declineNext) {
    emulator.declineNext = false;
    return redirectTo(redirectUri, { error: 'access_denied', state });
  }
  const code = book.addCode(randomToken(24), CODE_LIFETIME_SECONDS);
  codes.set(code, { redirectUri, scope: asked.join(','), challenge });
  return redirectTo(redirectUri, { code, state });
}

function token(ctx: EmulatorContext, req: EmulatorRequest, codes: Map<string, CodeGrant>): Reply {
  const { emulator, book } = ctx;
  // Form-encoded or JSON: both are documented (CONTRACTS.md §3b, Token).
  if (req.bodyType !== 'form' && req.bodyType !== 'json') {
    return fail(400, 'invalid_request', 'Unsupported content type', `${req.bodyType} body`);
  }
  if (req.headers.authorization !== undefined && field(req.body, 'client_secret') === undefined) {
    return fail(401, 'invalid_client', 'Invalid client credentials', 'client credentials in a header instead of the body');
  }
  if (field(req.body, 'client_id') !== emulator.clientId || field(req.body, 'client_secret') !== emulator.clientSecret) {
    return fail(401, 'invalid_client', 'Invalid client credentials', 'missing or wrong client_id / client_secret in the body');
  }
  const grantType = field(req.body, 'grant_type');
  if (grantType === 'refresh_token') {
    const refreshToken = field(req.body, 'refresh_token');
    const check = book.checkRefresh(refreshToken);
    if (!check.ok) return fail(400, 'invalid_grant', 'Invalid refresh token', `${check.why} (or already used) refresh token`);
    book.dropRefresh(refreshToken as string); // rotation: single use
    return issue(ctx, check.grant);
  }
  if (grantType !== 'authorization_code') return fail(400, 'unsupported_grant_type', 'Unsupported grant type');
  const code = field(req.body, 'code') ?? '';
  const issuedFor = codes.get(code);
  codes.delete(code);
  const taken = book.takeCode(code);
  if (!taken.ok || !issuedFor)
    return fail(400, 'invalid_grant', 'Invalid or expired authorization code', 'unknown, expired or used code');
  if (field(req.body, 'redirect_uri') !== issuedFor.redirectUri) {
    return fail(400, 'invalid_grant', 'redirect_uri does not match', 'redirect_uri differs from the authorization request');
  }
  if (issuedFor.challenge !== undefined) {
    const verifier = field(req.body, 'code_verifier') ?? '';
    const computed = createHash('sha256').update(verifier).digest('base64url');
    if (computed !== issuedFor.challenge)
      return fail(400, 'invalid_grant', 'Invalid code_verifier', 'PKCE verifier does not match');
  }
  return issue(ctx, book.newGrant(), issuedFor.scope);
}

function issue({ emulator, book }: EmulatorContext, grant: Grant, scope?: string): Reply {
  const accessToken = `cal_at_${randomToken(32)}`;
  const refreshToken = `cal_rt_${randomToken(32)}`;
  book.addAccess(accessToken, grant, emulator.accessTokenTtl);
  book.addRefresh(refreshToken, grant);
  const json = {
    access_token: accessToken,
    token_type: 'bearer',
    refresh_token: refreshToken,
    expires_in: emulator.accessTokenTtl,
    ...(scope ? { scope } : {}),
  };
  return { status: 200, issued: { accessToken, refreshToken }, json };
}

function me({ book }: EmulatorContext, req: EmulatorRequest): Reply {
  const check = book.checkAccess(bearerToken(req));
  if (!check.ok) {
    const json = { status: 'error', error: { code: 'UnauthorizedException', message: 'Invalid Access Token.' } };
    return { status: 401, json, reason: `${check.why} access token` };
  }
  const data = { id: 1, username: 'user-1', email: 'user-1@example.com', timeZone: 'Europe/London' };
  return { status: 200, json: { status: 'success', data } };
}
