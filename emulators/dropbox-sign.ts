/**
 * A strict Dropbox Sign (HelloSign) emulator (shared/providers/CONTRACTS.md §2): app.hellosign.com's
 * OAuth paths on a local origin, and the API's `GET /v3/account`.
 */
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

export interface DropboxSignEmulatorOptions extends EmulatorOptions {
  /** Whether a refresh returns a new refresh token and voids the old one. Unknown at the real provider [U]; default false. */
  rotateRefreshTokens?: boolean;
}

/** The code lives about an hour: "more than 1 hour after the inital grant" (CONTRACTS.md §2, Errors [U]). */
const CODE_LIFETIME_SECONDS = 3600;

/** The API's error envelope (CONTRACTS.md §2, Errors); its token endpoint uses OAuth names in `error_name` [U]. */
function fail(status: 400 | 401, name: string, message: string, reason = message): Reply {
  return { status, json: { error: { error_msg: message, error_name: name } }, reason };
}

/** Tokens are base64 strings, not JWTs (CONTRACTS.md §2, changelog 2024-09-30). */
const opaqueToken = () => randomToken(40).replace(/-/g, '+').replace(/_/g, '/') + '=';

/**
 * Starts a Dropbox Sign emulator: `GET /oauth/authorize`, `POST /oauth/token` (code exchange),
 * `POST /oauth/token?refresh` (refresh, the valueless flag taken literally) and `GET /v3/account`.
 * - Authorization requires `response_type=code`, refuses any `scope` parameter (even empty), ignores
 *   `redirect_uri` and PKCE, and always returns to the registered callback with `state` echoed.
 * - Token requests carry `client_id` and `client_secret` in the body (form or JSON); a Basic header is not enough.
 * - The answer has `state` on exchange (the body's `state`, or null) and no `scope`. No revocation endpoint.
 *
 * @example
 * ```ts
 * const emulator = await startDropboxSignEmulator({ redirectUri: 'http://127.0.0.1:3000/auth/dropbox-sign/callback' });
 * const preset = dropboxSign({ clientId: emulator.clientId, clientSecret: emulator.clientSecret, endpoints: emulator.endpoints });
 * ```
 */
export function startDropboxSignEmulator(options: DropboxSignEmulatorOptions): Promise<Emulator> {
  const rotate = options.rotateRefreshTokens ?? false;
  return startEmulator({
    options,
    endpoints: (origin) => ({
      authorization: `${origin}/oauth/authorize`,
      token: `${origin}/oauth/token`,
      refresh: `${origin}/oauth/token?refresh`,
      api: `${origin}/v3/account`,
    }),
    routes: (ctx) => [
      { method: 'GET', path: '/oauth/authorize', endpoint: 'authorize', handle: (req) => authorize(ctx, req) },
      {
        method: 'POST',
        path: '/oauth/token',
        endpoint: (req) =>
          req.rawQuery?.startsWith('refresh') || field(req.body, 'grant_type') === 'refresh_token' ? 'refresh' : 'token',
        handle: (req) => token(ctx, req, rotate),
      },
      { method: 'GET', path: '/v3/account', endpoint: 'api', handle: (req) => account(ctx, req) },
    ],
  });
}

function authorize({ emulator, book, redirectUri }: EmulatorContext, req: EmulatorRequest): Reply {
  const q = req.query;
  if (q.get('response_type') !== 'code') return errorPage('response_type=code is required');
  if (q.get('client_id') !== emulator.clientId) return errorPage('unknown client_id');
  // Scopes live in the app's settings; a `scope` parameter, even empty, breaks authorization (Nango 0aaee4c92b).
  if (q.has('scope')) return errorPage('scope parameter is not accepted');
  // A `redirect_uri` or PKCE parameter is ignored [U]: the user always returns to the app's configured callback URL.
  const state = q.get('state') ?? undefined;
  if (emulator.declineNext) {
    emulator.declineNext = false;
    return redirectTo(redirectUri, { error: 'access_denied', state });
  }
  return redirectTo(redirectUri, { code: book.addCode(randomToken(16), CODE_LIFETIME_SECONDS), state });
}

function token(ctx: EmulatorContext, req: EmulatorRequest, rotate: boolean): Reply {
  const { emulator, book } = ctx;
  // Refresh lives at `?refresh`, a flag without a value (CONTRACTS.md §2, Refresh); `?refresh=` is not the same URL.
  const isRefresh = req.rawQuery === 'refresh';
  if (req.rawQuery !== undefined && req.rawQuery !== '' && !isRefresh) {
    // The reason shows parameter names only: a query value could be a credential.
    const shown = req.rawQuery.replace(/=[^&]+/g, '=…');
    return fail(400, 'invalid_request', 'Unknown query; refresh is POST /oauth/token?refresh', `query "?${shown}"`);
  }
  // The spec says JSON, form is measured to work, the official curl example posts multipart (CONTRACTS.md §2).
  if (req.bodyType !== 'form' && req.bodyType !== 'json' && req.bodyType !== 'multipart') {
    const message = 'Body must be application/x-www-form-urlencoded, multipart/form-data or application/json';
    return fail(400, 'invalid_request', message, `${req.bodyType} body`);
  }
  const grantType = field(req.body, 'grant_type');
  if (!isRefresh && grantType === 'refresh_token') {
    return fail(400, 'invalid_request', 'Refresh must be posted to /oauth/token?refresh', 'refresh_token grant without ?refresh');
  }
  // Client credentials go in the body, not in a header (CONTRACTS.md §2). The official refresh samples
  // send none ("required for new API apps", says the spec): a refresh without them is accepted.
  const id = field(req.body, 'client_id');
  const secret = field(req.body, 'client_secret');
  const sentNone = id === undefined && secret === undefined && !req.headers.authorization;
  if (!(isRefresh && sentNone) && (id === undefined || secret === undefined)) {
    const reason = req.headers.authorization ? 'client credentials in a header instead of the body' : 'no client credentials';
    return fail(401, 'unauthorized', 'Missing client_id or client_secret', reason);
  }
  if (!(isRefresh && sentNone) && (id !== emulator.clientId || secret !== emulator.clientSecret)) {
    return fail(401, 'unauthorized', 'Invalid client_id or client_secret', 'wrong client credentials');
  }
  if (isRefresh) {
    if (grantType !== 'refresh_token') return fail(400, 'invalid_request', 'grant_type must be refresh_token');
    const refreshToken = field(req.body, 'refresh_token');
    if (!refreshToken) return fail(400, 'invalid_request', 'Missing refresh_token');
    const check = book.checkRefresh(refreshToken);
    if (!check.ok) return fail(400, 'invalid_grant', 'Invalid grant data (refresh token)', `${check.why} refresh token`);
    let next = refreshToken;
    if (rotate) {
      book.dropRefresh(refreshToken);
      next = book.addRefresh(opaqueToken(), check.grant);
    }
    const access = issueAccess(ctx, check.grant);
    return {
      status: 200,
      issued: { accessToken: access.access_token, refreshToken: next },
      json: { ...access, refresh_token: next },
    };
  }
  if (grantType !== 'authorization_code') return fail(400, 'invalid_request', 'grant_type must be authorization_code');
  const code = field(req.body, 'code');
  const taken = code ? book.takeCode(code) : undefined;
  if (!taken?.ok) {
    const message = 'Either the combo client_id/code is wrong or this request was made more than 1 hour after the inital grant';
    return fail(400, 'invalid_request', message, `${taken?.why ?? 'missing'} code`);
  }
  const grant = book.newGrant();
  const refreshToken = book.addRefresh(opaqueToken(), grant);
  // `state` is echoed from the body and nullable; the spec's "required" is not enforced (CONTRACTS.md §2 [U]).
  const state = field(req.body, 'state') ?? null;
  const access = issueAccess(ctx, grant);
  return {
    status: 200,
    issued: { accessToken: access.access_token, refreshToken },
    json: { ...access, refresh_token: refreshToken, state },
  };
}

function issueAccess({ emulator, book }: EmulatorContext, grant: Grant) {
  const accessToken = opaqueToken();
  book.addAccess(accessToken, grant, emulator.accessTokenTtl);
  return { access_token: accessToken, token_type: 'Bearer', expires_in: emulator.accessTokenTtl };
}

function account({ book }: EmulatorContext, req: EmulatorRequest): Reply {
  const check = book.checkAccess(bearerToken(req));
  if (!check.ok) return { ...fail(401, 'unauthorized', 'Unauthorized api key'), reason: `${check.why} access token` };
  return {
    status: 200,
    json: { account: { account_id: 'a1b2c3d4e5f60718293a4b5c6d7e8f90', email_address: 'user-1@example.com', is_locked: false } },
  };
}
