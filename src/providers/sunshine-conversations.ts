import { fromProfile } from './from-profile.js';
import type { PresetOptions, ProviderProfile } from './profile.js';
import type { ProviderDefinition } from './types.js';

/**
 * Sunshine Conversations, formerly Smooch (CONTRACTS.md §4).
 * - `response_type=code`; no scope, no PKCE. `redirect_uri` is sent (it must be a registered one).
 * - Token request: credentials in the body, JSON as the spec says (Zendesk's sample sends form; both work).
 * - The answer is only `{access_token, token_type}`: no refresh token, no expiry. The token is
 *   valid until revoked, so no refresh is ever attempted.
 * - Revocation: `DELETE /oauth/authorization` with the bearer token. The spec does not say whether
 *   the oauth-bridge host serves it [U]: the seed's host (api.smooch.io) is used; a regional
 *   `https://{subdomain}.zendesk.com/sc/oauth/authorization` can be set with `endpoints.revoke`.
 */
export const sunshineConversationsProfile: ProviderProfile = {
  name: 'sunshine-conversations',
  authorization: { url: 'https://oauth-bridge.zendesk.com/sc/oauth/authorize', omit: ['scope'], pkce: false },
  token: {
    url: 'https://oauth-bridge.zendesk.com/sc/oauth/token',
    encoding: 'json',
    clientAuth: { in: 'body', secret: 'client_secret' },
    omit: ['redirect_uri', 'code_verifier'],
  },
  refresh: false,
  response: { expiry: { kind: 'none' } },
  revoke: { kind: 'request', url: 'https://api.smooch.io/oauth/authorization', method: 'DELETE', auth: 'bearer' },
};

/**
 * Sunshine Conversations (Smooch). The token carries the app's id; call
 * `https://oauth-bridge.zendesk.com/sc/v2/tokenInfo` with it to learn the app and its subdomain.
 *
 * @example
 * ```ts
 * providers: { sunshine: sunshineConversations({ clientId, clientSecret }) }
 * ```
 */
export function sunshineConversations(options: PresetOptions): ProviderDefinition {
  return fromProfile(sunshineConversationsProfile, options);
}
