/**
 * A strict Sunshine Conversations (Smooch / Zendesk) emulator (shared/providers/CONTRACTS.md §4 and
 * its 2026-11-30 correction): oauth-bridge.zendesk.com's `/sc/…` paths on a local origin, with
 * `GET /sc/v2/tokenInfo`, and the revocation of the customer's own `{subdomain}.zendesk.com/sc` host
 * served under `{subdomain}.localhost`.
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

export interface SunshineConversationsEmulatorOptions extends EmulatorOptions {
  /** The app that installs the integration, as tokenInfo tells it. Default `{ id: '5e4af71a81966c000f2d6b8a', subdomain: 'user-company' }`. */
  app?: { id?: string; subdomain?: string };
  /**
   * A Zendesk Marketplace bot's identity. When set, token, tokenInfo and revocation requests
   * without exactly these `X-Zendesk-Marketplace-Name`, `-Organization-Id` and `-Bot-Id` headers
   * are refused with 403 (how Zendesk refuses them is undocumented [U]).
   */
  marketplace?: { name: string; organizationId: string; botId: string };
}

export interface SunshineConversationsEmulator extends Emulator {
  /** What tokenInfo answers as `app` (change `subdomain` to see what your app does with another one); `reset()` restores it. */
  readonly app: { id: string; subdomain: string };
  /**
   * The revocation URL in the preset's own shape, `http://{subdomain}.localhost:<port>/sc/oauth/authorization`,
   * to pass as `endpoints.revoke`: the preset fills in each login's subdomain. Names under
   * `localhost` must resolve to 127.0.0.1 (RFC 6761: systemd-resolved and macOS do; a plain glibc
   * `files dns` does not, and then the test resolves them itself). A revocation there at another
   * subdomain than the app's is refused.
   */
  readonly revokeTemplate: string;
  /**
   * The `Host` of every revocation accepted, newest last: `user-company.localhost:<port>` through
   * `revokeTemplate`, `127.0.0.1:<port>` through `endpoints.revoke`. Cleared by `reset()`.
   */
  readonly revokedAt: string[];
}

/** The code's lifetime is undocumented [U]: ten minutes. */
const CODE_LIFETIME_SECONDS = 600;
const APP = { id: '5e4af71a81966c000f2d6b8a', subdomain: 'user-company' };
const MARKETPLACE_HEADERS = {
  name: 'x-zendesk-marketplace-name',
  organizationId: 'x-zendesk-marketplace-organization-id',
  botId: 'x-zendesk-marketplace-bot-id',
} as const;

/** The API's error envelope (CONTRACTS.md §4, Errors); the token endpoint's own shape is undocumented [U]. */
function fail(status: 400 | 401 | 403, message: string, reason = message): Reply {
  const code = { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden' }[status];
  return { status, json: { errors: [{ code, title: message }] }, reason };
}

/**
 * Starts a Sunshine Conversations emulator: `GET /sc/oauth/authorize`, `POST /sc/oauth/token`,
 * `DELETE /sc/oauth/authorization` (revocation) and `GET /sc/v2/tokenInfo` (`endpoints.tokenInfo`,
 * and `endpoints.api`: each call is counted as `api`), at the preset's default paths.
 * - Authorization requires `response_type=code`; `redirect_uri` is optional but must be the registered
 *   one; scope and PKCE are ignored; `state` is echoed; a declined authorization returns `error=access_denied`.
 * - The token request carries the client credentials in its body, JSON or form. The answer is only
 *   `{access_token, token_type}`: the token never expires (`accessTokenTtl` is ignored) and there is no refresh.
 * - tokenInfo answers `{app: {id, subdomain, ...}}` for a valid token.
 * - Revocation takes the access token as a bearer (or the client's Basic credentials, which end every token),
 *   at `endpoints.revoke` or, as the preset does by default, at the app's subdomain (`revokeTemplate`).
 * - With `marketplace`, token, tokenInfo and revocation requests must carry the bot's headers.
 *
 * @example
 * ```ts
 * const emulator = await startSunshineConversationsEmulator({ redirectUri: 'http://127.0.0.1:3000/auth/sunshine/callback' });
 * const preset = sunshineConversations({ clientId: emulator.clientId, clientSecret: emulator.clientSecret, endpoints: emulator.endpoints });
 * // or revoke at the login's subdomain, as against Zendesk (needs *.localhost to resolve to 127.0.0.1):
 * // endpoints: { ...emulator.endpoints, revoke: emulator.revokeTemplate }
 * ```
 */
export async function startSunshineConversationsEmulator(
  options: SunshineConversationsEmulatorOptions,
): Promise<SunshineConversationsEmulator> {
  const app = { ...APP, ...options.app };
  const { marketplace } = options;
  // The handlers run only once the server answers requests, after `sunshine` below exists.
  const self = (): SunshineConversationsEmulator => sunshine;
  const emulator = await startEmulator({
    options,
    endpoints: (origin) => ({
      authorization: `${origin}/sc/oauth/authorize`,
      token: `${origin}/sc/oauth/token`,
      revoke: `${origin}/sc/oauth/authorization`,
      tokenInfo: `${origin}/sc/v2/tokenInfo`,
      api: `${origin}/sc/v2/tokenInfo`,
    }),
    routes: (ctx) => [
      { method: 'GET', path: '/sc/oauth/authorize', endpoint: 'authorize', handle: (req) => authorize(ctx, req) },
      {
        method: 'POST',
        path: '/sc/oauth/token',
        endpoint: (req) => (field(req.body, 'grant_type') === 'refresh_token' ? 'refresh' : 'token'),
        handle: (req) => marketplaceRefusal(marketplace, req) ?? token(ctx, self(), req),
      },
      {
        method: 'DELETE',
        path: '/sc/oauth/authorization',
        endpoint: 'revoke',
        handle: (req) => marketplaceRefusal(marketplace, req) ?? revoke(ctx, self(), req),
      },
      {
        method: 'GET',
        path: '/sc/v2/tokenInfo',
        endpoint: 'api',
        handle: (req) => marketplaceRefusal(marketplace, req) ?? tokenInfo(ctx, self(), req),
      },
    ],
  });
  const reset = emulator.reset.bind(emulator);
  const sunshine: SunshineConversationsEmulator = Object.assign(emulator, {
    app: { ...app },
    revokeTemplate: `http://{subdomain}.localhost:${new URL(emulator.origin).port}/sc/oauth/authorization`,
    revokedAt: [] as string[],
    reset() {
      reset();
      Object.assign(self().app, app);
      self().revokedAt.length = 0;
    },
  });
  return sunshine;
}

/** A Marketplace bot's request without its headers (developer.zendesk.com, marketplace bots), when the emulator is one. */
function marketplaceRefusal(
  marketplace: SunshineConversationsEmulatorOptions['marketplace'],
  req: EmulatorRequest,
): Reply | undefined {
  if (!marketplace) return undefined;
  const wrong = (Object.keys(MARKETPLACE_HEADERS) as Array<keyof typeof MARKETPLACE_HEADERS>).filter(
    (key) => req.headers[MARKETPLACE_HEADERS[key]] !== marketplace[key],
  );
  if (wrong.length === 0) return undefined;
  const names = wrong.map((key) => MARKETPLACE_HEADERS[key]).join(', ');
  return fail(403, 'Marketplace bots must send their X-Zendesk-Marketplace-* headers', `missing or wrong ${names}`);
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

function token({ emulator, book }: EmulatorContext, { app }: SunshineConversationsEmulator, req: EmulatorRequest): Reply {
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
  const accessToken = jwtLike({ scope: 'integration', appId: app.id, iat: Math.floor(Date.now() / 1000) });
  book.addAccess(accessToken, book.newGrant(), undefined);
  return { status: 200, issued: { accessToken }, json: { access_token: accessToken, token_type: 'Bearer' } };
}

function revoke({ emulator, book }: EmulatorContext, sunshine: SunshineConversationsEmulator, req: EmulatorRequest): Reply {
  // At `{subdomain}.localhost`, the customer's own host: only the app's own subdomain knows the integration.
  const host = req.headers.host ?? '';
  const subdomain = /^([^.]+)\.localhost(?::\d+)?$/i.exec(host)?.[1];
  if (subdomain !== undefined && subdomain !== sunshine.app.subdomain)
    return fail(401, 'Authorization is required', `revocation at ${subdomain}, not the app's ${sunshine.app.subdomain}`);
  const reply = revokeToken(emulator, book, req);
  if (reply.reason === undefined) sunshine.revokedAt.push(host);
  return reply;
}

function revokeToken(emulator: Emulator, book: EmulatorContext['book'], req: EmulatorRequest): Reply {
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

function tokenInfo({ book }: EmulatorContext, { app }: SunshineConversationsEmulator, req: EmulatorRequest): Reply {
  const check = book.checkAccess(bearerToken(req));
  if (!check.ok) return fail(401, 'Authorization is required', `${check.why} access token`);
  return { status: 200, json: { app: { id: app.id, displayName: 'Test App', subdomain: app.subdomain } } };
}
