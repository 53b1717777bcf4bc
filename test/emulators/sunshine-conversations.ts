/**
 * A strict Sunshine Conversations (Smooch / Zendesk) emulator (shared/providers/CONTRACTS.md §4):
 * oauth-bridge.zendesk.com's `/sc/…` paths on a local origin, with `GET /sc/v2/tokenInfo`.
 */
import {
  basicMatches,
  bearerToken,
  errorPage,
  field,
  jwtLike,
  randomToken,
  redirectTo,
  startEmulator,
  type EmulatorContext,
  type EmulatorRequest,
  type Reply,
} from './server.js';
import type { Emulator, EmulatorOptions } from './types.js';

/** The code's lifetime is undocumented [U]: ten minutes. */
const CODE_LIFETIME_SECONDS = 600;
const APP_ID = '5e4af71a81966c000f2d6b8a';

/** The API's error envelope (CONTRACTS.md §4, Errors); the token endpoint's own shape is undocumented [U]. */
function fail(status: 400 | 401, message: string, reason = message): Reply {
  return { status, json: { errors: [{ code: status === 401 ? 'unauthorized' : 'bad_request', title: message }] }, reason };
}

/**
 * Starts a Sunshine Conversations emulator: `GET /sc/oauth/authorize`, `POST /sc/oauth/token`,
 * `DELETE /sc/oauth/authorization` (revocation) and `GET /sc/v2/tokenInfo`.
 * - Authorization requires `response_type=code`; `redirect_uri` is optional but must be the registered
 *   one; scope and PKCE are ignored; `state` is echoed; a declined authorization returns `error=access_denied`.
 * - The token request carries the client credentials in its body, JSON or form. The answer is only
 *   `{access_token, token_type}`: the token never expires (`accessTokenTtl` is ignored) and there is no refresh.
 * - Revocation takes the access token as a bearer (or the client's Basic credentials, which end every token).
 *
 * @example
 * ```ts
 * const emulator = await startSunshineConversationsEmulator({ redirectUri: 'http://127.0.0.1:3000/auth/sunshine/callback' });
 * const preset = sunshineConversations({ clientId: emulator.clientId, clientSecret: emulator.clientSecret, endpoints: emulator.endpoints });
 * ```
 */
export function startSunshineConversationsEmulator(options: EmulatorOptions): Promise<Emulator> {
  return startEmulator({
    options,
    endpoints: (origin) => ({
      authorization: `${origin}/sc/oauth/authorize`,
      token: `${origin}/sc/oauth/token`,
      revoke: `${origin}/sc/oauth/authorization`,
      api: `${origin}/sc/v2/tokenInfo`,
    }),
    routes: (ctx) => [
      { method: 'GET', path: '/sc/oauth/authorize', endpoint: 'authorize', handle: (req) => authorize(ctx, req) },
      {
        method: 'POST',
        path: '/sc/oauth/token',
        endpoint: (req) => (field(req.body, 'grant_type') === 'refresh_token' ? 'refresh' : 'token'),
        handle: (req) => token(ctx, req),
      },
      { method: 'DELETE', path: '/sc/oauth/authorization', endpoint: 'revoke', handle: (req) => revoke(ctx, req) },
      { method: 'GET', path: '/sc/v2/tokenInfo', endpoint: 'api', handle: (req) => tokenInfo(ctx, req) },
    ],
  });
}

function authorize({ emulator, book, redirectUri: registered }: EmulatorContext, req: EmulatorRequest): Reply {
  const q = req.query;
  // `code` is the only response_type accepted (CONTRACTS.md §4 [S]).
  if (q.get('response_type') !== 'code') return errorPage('response_type must be code');
  if (q.get('client_id') !== emulator.clientId) return errorPage('unknown client_id');
  // Optional, but when given it must be a registered URI; without it the (first) registered one is used [S].
  const redirectUri = q.get('redirect_uri');
  if (redirectUri !== null && redirectUri !== registered) return errorPage('redirect_uri is not a registered redirect URI');
  const state = q.get('state') ?? undefined;
  if (emulator.declineNext) {
    emulator.declineNext = false;
    return redirectTo(registered, { error: 'access_denied', state });
  }
  return redirectTo(registered, { code: book.addCode(randomToken(16), CODE_LIFETIME_SECONDS), state });
}

function token({ emulator, book }: EmulatorContext, req: EmulatorRequest): Reply {
  // The spec says JSON; Zendesk's own sample sends form (CONTRACTS.md §4): both are accepted.
  if (req.bodyType !== 'json' && req.bodyType !== 'form')
    return fail(400, 'Body must be JSON or form-urlencoded', `${req.bodyType} body`);
  const grantType = field(req.body, 'grant_type');
  // There is no refresh token, hence no refresh grant (CONTRACTS.md §4, Refresh).
  if (grantType === 'refresh_token') return fail(400, 'Unsupported grant_type', 'refresh_token grant (Sunshine has no refresh)');
  // Client credentials go in the body.
  const id = field(req.body, 'client_id');
  const secret = field(req.body, 'client_secret');
  if (id === undefined || secret === undefined)
    return fail(401, 'Invalid client credentials', 'no client credentials in the body');
  if (id !== emulator.clientId || secret !== emulator.clientSecret)
    return fail(401, 'Invalid client credentials', 'wrong client credentials');
  if (grantType !== 'authorization_code') return fail(400, 'grant_type must be authorization_code');
  const code = field(req.body, 'code');
  const taken = code === undefined ? undefined : book.takeCode(code);
  if (!taken?.ok) return fail(400, 'Invalid code', `${taken?.why ?? 'missing'} code`);
  // A JWT with `iat` and no `exp`: valid until revoked (CONTRACTS.md §4 [U]), so no lifetime is recorded.
  const accessToken = jwtLike({ scope: 'integration', appId: APP_ID, iat: Math.floor(Date.now() / 1000) });
  book.addAccess(accessToken, book.newGrant(), undefined);
  return { status: 200, issued: { accessToken }, json: { access_token: accessToken, token_type: 'Bearer' } };
}

function revoke({ emulator, book }: EmulatorContext, req: EmulatorRequest): Reply {
  const basic = basicMatches(req, emulator.clientId, emulator.clientSecret);
  if (basic !== undefined) {
    // Basic is also accepted [S]; it names the integration's app, not one token, so every token ends.
    if (!basic) return fail(401, 'Authorization is required', 'wrong Basic client credentials');
    book.revokeAll();
    return { status: 200, json: {} };
  }
  const check = book.checkAccess(bearerToken(req));
  if (!check.ok) return fail(401, 'Authorization is required', `${check.why} access token`);
  // Revoking removes the integration (CONTRACTS.md §4, Revoke): the token stops working.
  book.revokeGrant(check.grant);
  return { status: 200, json: {} };
}

function tokenInfo({ book }: EmulatorContext, req: EmulatorRequest): Reply {
  const check = book.checkAccess(bearerToken(req));
  if (!check.ok) return fail(401, 'Authorization is required', `${check.why} access token`);
  return { status: 200, json: { app: { id: APP_ID, displayName: 'Test App', subdomain: 'user-company' } } };
}
