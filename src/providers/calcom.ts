import { fromProfile } from './from-profile.js';
import type { PresetOptions, ProviderProfile } from './profile.js';
import type { ProviderDefinition } from './types.js';

/**
 * Cal.com's platform OAuth, the seeds' flow (CONTRACTS.md §3a and its addendum), deprecated by Cal.com.
 * - The browser goes to the web app's authorize page; no `response_type`, and no PKCE: the exchange
 *   takes no verifier. Whether `state` comes back is uncertain [U]: callbacks without it are
 *   bound by the transaction cookie.
 * - Exchange: the code in `Authorization: Bearer`, `{"clientSecret"}` as JSON, the client id in the path.
 * - Refresh: the secret in `x-cal-secret-key`, `{"refreshToken"}` as JSON. Refresh tokens are
 *   single-use (rotated in the same transaction): refreshes run once per token.
 * - Answers are `{status, data}` with camelCase fields and expiry in epoch milliseconds; errors are
 *   `{status: "error", error: {code, message}}`, the message telling what went wrong.
 * - An expired access token gets HTTP 498 from the API: `req.oauth.fetch` treats it like 401.
 */
export const calcomPlatformProfile: ProviderProfile = {
  name: 'calcom-platform',
  authorization: { url: 'https://app.cal.com/auth/platform/authorize', omit: ['response_type'], pkce: false, state: 'optional' },
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
    // Cal.com names exceptions, not OAuth errors: its messages say which credential was refused.
    classify(status, { description = '' }) {
      if (status === 401 || /credentials|secret/i.test(description)) return 'invalid_client';
      if (/refresh token|code|authorization token/i.test(description)) return 'invalid_grant';
      return 'invalid_request';
    },
  },
  expiredStatuses: [401, 498],
};

/**
 * Cal.com platform OAuth clients (`/v2/oauth/{clientId}/…`). For Cal.com's newer standard OAuth 2.0, use `calcom()`.
 *
 * @example
 * ```ts
 * providers: { cal: calcomPlatform({ clientId, clientSecret }) }
 * ```
 */
export function calcomPlatform(options: PresetOptions): ProviderDefinition {
  return fromProfile(calcomPlatformProfile, options);
}

/**
 * Cal.com's standard OAuth 2.0 (CONTRACTS.md §3b, not in the seeds): PKCE S256, client credentials
 * in the body, RFC errors. One build wrapped answers in `{status, data}` [U]: tolerated.
 */
export const calcomProfile: ProviderProfile = {
  name: 'calcom',
  authorization: { url: 'https://app.cal.com/auth/oauth2/authorize' },
  token: {
    url: 'https://api.cal.com/v2/auth/oauth2/token',
    encoding: 'form',
    clientAuth: { in: 'body', secret: 'client_secret' },
  },
  response: { envelope: 'data' },
  expiredStatuses: [401, 498],
};

/**
 * Cal.com, standard OAuth 2.0.
 *
 * @example
 * ```ts
 * providers: { cal: calcom({ clientId, clientSecret }) }
 * ```
 */
export function calcom(options: PresetOptions): ProviderDefinition {
  return fromProfile(calcomProfile, options);
}
