import { fromProfile } from './from-profile.js';
import type { PresetOptions, ProviderProfile } from './profile.js';
import type { ProviderDefinition } from './types.js';

/**
 * Cal.com's platform OAuth clients (CONTRACTS.md §3a and its 2026-11-30 correction), deprecated by
 * Cal.com for new customers but run by existing ones. Sources: calcom/cal.com `apps/api/v2/src/modules/oauth-clients/`
 * (controllers, `oauth-flow.service.ts`, `tokens.repository.ts`), cal.com/docs (platform refresh, managed users).
 * - No browser login by default. The web app's `auth/platform/authorize` page is a static mock
 *   (its client is hard-coded and its Allow button does nothing), and the API's
 *   `POST /v2/oauth/{clientId}/authorize` needs a logged-in Cal.com session. Platform customers get
 *   their managed users' tokens server-side (`POST /v2/oauth-clients/{clientId}/users`, with
 *   `x-cal-secret-key`) and hand them over with `importTokens`. A first-party app with a page of its
 *   own sets `endpoints.authorization`; callbacks then may lack `state` [U] and are bound by the
 *   transaction cookie, and no PKCE is sent (the exchange takes no verifier).
 * - Exchange: the code in `Authorization: Bearer`, `{"clientSecret"}` as JSON, the client id in the path.
 * - Refresh: the secret in `x-cal-secret-key`, `{"refreshToken"}` as JSON. Refresh tokens are
 *   single use (rotated in the same transaction, `tokens.repository.ts`): refreshes run once per token.
 * - Answers are `{status, data}`, camelCase, expiry in epoch milliseconds (`KeysResponse.dto.ts`);
 *   errors are Nest's `{status: "error", error: {code, message}}`, the message telling which
 *   credential was refused: "Invalid OAuth Client." (a wrong secret, `oauth-flow.service.ts`) and
 *   "Invalid client secret" (401 from the secret-key guard) mean `invalid_client`; "Invalid refresh
 *   token" and an invalid authorization token mean `invalid_grant`.
 * - An expired access token gets HTTP 498 from the API (`HTTP_CODE_TOKEN_EXPIRED`): `req.oauth.fetch` treats it like 401.
 * - `forceRefresh: true`: a refresh token refused as spent is recovered through
 *   `POST /v2/oauth-clients/{clientId}/users/{userId}/force-refresh` (the docs' recovery after lost
 *   tokens), the user id taken from `extras.userId` (give it to `importTokens`).
 */
export const calcomPlatformProfile: ProviderProfile = {
  name: 'calcom-platform',
  authorization: { omit: ['response_type'], pkce: false, state: 'optional' },
  token: {
    url: 'https://api.cal.com/v2/oauth/{clientId}/exchange',
    encoding: 'json',
    code: 'bearer',
    clientAuth: { in: 'body', id: null, secret: 'clientSecret' },
    omit: ['grant_type', 'redirect_uri', 'code_verifier'],
  },
  refresh: {
    url: 'https://api.cal.com/v2/oauth/{clientId}/refresh',
    encoding: 'json',
    clientAuth: { in: 'header', name: 'x-cal-secret-key' },
    omit: ['grant_type'],
    rename: { refresh_token: 'refreshToken' },
  },
  response: {
    envelope: 'data',
    accessToken: 'accessToken',
    refreshToken: 'refreshToken',
    expiry: { kind: 'epoch-ms', path: 'accessTokenExpiresAt' },
    refreshExpiry: { kind: 'epoch-ms', path: 'refreshTokenExpiresAt' }, // missing in older builds
    extras: [],
  },
  errors: {
    // Cal.com names exceptions, not OAuth errors: its messages say which credential was refused
    // ("Invalid client secret", "Invalid OAuthClient credentials.", "Invalid OAuth Client.").
    // Stryker disable next-line StringLiteral: any other text than '' matches no pattern below either.
    classify(status, { description = '' }) {
      if (status === 401 || /credentials|secret|oauth client/i.test(description)) return 'invalid_client';
      if (/refresh token|code|authorization token/i.test(description)) return 'invalid_grant';
      return 'invalid_request';
    },
  },
  // Used only with `forceRefresh: true` (see calcomPlatform).
  recover: { url: 'https://api.cal.com/v2/oauth-clients/{clientId}/users/{userId}/force-refresh' },
  expiredStatuses: [401, 498],
};

/**
 * Cal.com platform OAuth clients and their managed users (`/v2/oauth/{clientId}/…`). For Cal.com's
 * standard OAuth 2.0, use `calcom()`.
 *
 * @example
 * ```ts
 * providers: { cal: calcomPlatform({ clientId, clientSecret, forceRefresh: true }) }
 * // after creating a managed user at Cal.com (POST /v2/oauth-clients/{clientId}/users):
 * await oauth.tokens(appUserId).importTokens('cal', { answer: created, extras: { userId: created.data.user.id } });
 * ```
 */
export function calcomPlatform(options: PresetOptions & { forceRefresh?: boolean | undefined }): ProviderDefinition {
  // Force-refresh ends every earlier token of the user: only when the app says its tokens live here alone.
  const profile: ProviderProfile = options.forceRefresh
    ? calcomPlatformProfile
    : { ...calcomPlatformProfile, recover: undefined };
  return fromProfile(profile, options);
}

/**
 * Cal.com's standard OAuth 2.0 (CONTRACTS.md §3b and its 2026-11-30 correction; not in the seeds).
 * Sources: cal.com/docs `api-reference/v2/oauth.mdx`; calcom/cal.com `auth/oauth2/authorize-view`,
 * `OAuthService`, `oauth2-http-exception.filter.ts`, `oauth2-tokens.output.ts`.
 * - The browser goes to the web app's `auth/oauth2/authorize` (client_id, redirect_uri, state,
 *   scope, code_challenge); tokens come from `api.cal.com/v2/auth/oauth2/token`.
 * - `scope` is required for every client created since scopes exist ("scope parameter is required
 *   for this OAuth client"): a preset without scopes is refused at start-up. The authorize page
 *   splits scopes on commas (the backend on commas or spaces): they are sent comma-separated.
 * - PKCE S256; client credentials in the body, form-encoded (JSON is accepted too).
 * - Refresh tokens rotate. Answers are RFC 6749 (`token_type: "bearer"`, `expires_in` 1800); one
 *   build wrapped them in `{status, data}` [U which is live]: tolerated. Errors are RFC `{error, error_description}`.
 */
export const calcomProfile: ProviderProfile = {
  name: 'calcom',
  authorization: { url: 'https://app.cal.com/auth/oauth2/authorize', scopeSeparator: ',', scopesRequired: true },
  token: {
    url: 'https://api.cal.com/v2/auth/oauth2/token',
    encoding: 'form',
    clientAuth: { in: 'body', secret: 'client_secret' },
  },
  response: { envelope: 'data' },
  expiredStatuses: [401, 498],
};

/**
 * Cal.com, standard OAuth 2.0. `scopes` are required: those your OAuth client was approved for.
 *
 * @example
 * ```ts
 * providers: { cal: calcom({ clientId, clientSecret, scopes: ['BOOKING_READ', 'SCHEDULE_READ'] }) }
 * ```
 */
export function calcom(options: PresetOptions): ProviderDefinition {
  return fromProfile(calcomProfile, options);
}
