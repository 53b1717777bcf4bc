import { fromProfile } from './from-profile.js';
import type { PresetOptions, ProviderProfile } from './profile.js';
import type { ProviderDefinition } from './types.js';

/**
 * Dropbox Sign, formerly HelloSign (CONTRACTS.md §2). Hosts from the facts: app.hellosign.com.
 * - Never a `scope` parameter, not even empty: it makes authorization fail (Nango 0aaee4c92b).
 * - No `redirect_uri` parameter: the app's configured callback URL is used.
 * - PKCE is undocumented [U]: not sent.
 * - Client credentials in the body; `state` sent with the exchange (the spec marks it required).
 * - Encoding: the spec says JSON, the official curl example and Nango send form, which was measured
 *   to work [U]: form-urlencoded, as recommended.
 * - Refresh at `/oauth/token?refresh`, a valueless flag kept literally.
 * - `expires_in` is seconds, but the schema text says "epoch time" [U]: values over 1e9 are read as an epoch.
 * - Rotation unknown [U]: whatever refresh token comes back is kept. No revocation endpoint.
 * - The answer echoes the login's `state`: no extras are kept, so it never reaches `getToken()`.
 *
 * Sources: hellosign/hellosign-openapi `openapi.yaml` (app.hellosign.com server override, body
 * fields, `?refresh`, "client_id/client_secret required for new API apps", error envelope) and
 * `examples/json/OAuthTokenGenerateResponse.json`; hellosign/hellosign-ruby-sdk
 * `lib/hello_sign/api/oauth.rb` (authorize URL); NangoHQ/nango `dropbox-sign` and commit 0aaee4c92b
 * (no scope); developers.hellosign.com OAuth walkthrough (no redirect_uri, code lifetime).
 */
export const dropboxSignProfile: ProviderProfile = {
  name: 'dropbox-sign',
  authorization: { url: 'https://app.hellosign.com/oauth/authorize', omit: ['scope', 'redirect_uri'], pkce: false },
  token: {
    url: 'https://app.hellosign.com/oauth/token',
    encoding: 'form',
    clientAuth: { in: 'body', secret: 'client_secret' },
    omit: ['redirect_uri', 'code_verifier'],
    sendState: true,
  },
  refresh: { url: 'https://app.hellosign.com/oauth/token?refresh' },
  response: { expiry: { kind: 'seconds-or-epoch', path: 'expires_in' }, extras: [] },
};

/**
 * Dropbox Sign (HelloSign). Scopes are chosen in the app's settings, not here.
 *
 * @example
 * ```ts
 * providers: { dropboxSign: dropboxSign({ clientId, clientSecret }) }
 * ```
 */
export function dropboxSign(options: PresetOptions): ProviderDefinition {
  return fromProfile(dropboxSignProfile, options);
}

/** The same as `dropboxSign`, under the provider's former name. */
export const hellosign = dropboxSign;
