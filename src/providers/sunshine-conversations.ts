import { fromProfile } from './from-profile.js';
import type { PresetOptions, ProviderProfile } from './profile.js';
import type { ProviderDefinition } from './types.js';

/**
 * Sunshine Conversations, formerly Smooch (CONTRACTS.md §4 and its 2026-11-30 correction).
 * Sources: zendesk/sunshine-conversations-api-spec `openapi.yaml` (the OAuth endpoints, `GET
 * /v2/tokenInfo`, the API hosts); zendesk/sunshine-conversations-shoplifter `zendeskApi.js`
 * (Zendesk's own sample: exchange, tokenInfo, API base URL); developer.zendesk.com "Building a
 * marketplace bot" and "Request header requirements for Marketplace apps" (the headers).
 * - Authorization and token exchange at `oauth-bridge.zendesk.com/sc`. `response_type=code`; no
 *   scope, no PKCE. `redirect_uri` is sent (it must be a registered one).
 * - Token request: credentials in the body, JSON as the spec says (the sample sends form; both work).
 * - The answer is only `{access_token, token_type}`: no refresh token, no expiry. The token is
 *   valid until revoked, so no refresh is ever attempted.
 * - After the exchange, `GET https://oauth-bridge.zendesk.com/sc/v2/tokenInfo` with the token says
 *   which app installed the integration: `{app: {id, subdomain, ...}}`, kept as `extras.appId` and
 *   `extras.subdomain` (the sample builds its API base `https://{subdomain}.zendesk.com/sc/v2/apps/{appId}`
 *   from them). A subdomain that is not a DNS label is not kept: it would name another host.
 * - Revocation: `DELETE /oauth/authorization` with the bearer token on the customer's own host,
 *   `https://{subdomain}.zendesk.com/sc` (the spec's current API host; `api.smooch.io` is "legacy
 *   Sunshine Conversations only": set `endpoints.revoke` to it for such apps). Whether oauth-bridge
 *   serves this path is undocumented [U], so it is not used.
 * - Marketplace bots must send `X-Zendesk-Marketplace-Name`, `-Organization-Id` and `-Bot-Id` on
 *   API requests (not `-App-Id`, which is for apps); the sample sends its headers on `/oauth/token`
 *   and tokenInfo too. Give them as `headers`: they go on every request to the provider.
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
  tokenInfo: {
    url: 'https://oauth-bridge.zendesk.com/sc/v2/tokenInfo',
    extras: { appId: 'app.id', subdomain: 'app.subdomain' },
    dnsLabels: ['subdomain'],
  },
  revoke: { kind: 'request', url: 'https://{subdomain}.zendesk.com/sc/oauth/authorization', method: 'DELETE', auth: 'bearer' },
};

/** `sunshineConversations()` options. */
export interface SunshineConversationsOptions extends PresetOptions {
  /**
   * The customer's Zendesk subdomain (`acme` for acme.zendesk.com), for an app that serves one
   * customer: fills `{subdomain}` in the URLs at start-up (a DNS label, else `config_invalid`).
   * Without it, each login's subdomain comes from tokenInfo (`extras.subdomain`).
   */
  subdomain?: string | undefined;
}

/**
 * Sunshine Conversations (Smooch / Zendesk messaging). `getToken().extras` holds the app's `appId`
 * and `subdomain`: call the API at `https://{subdomain}.zendesk.com/sc/v2/apps/{appId}/...`. Logout
 * revokes at that subdomain. A login whose tokenInfo request failed is kept, without those extras;
 * its logout asks tokenInfo again and, when it still cannot learn the subdomain, does not revoke
 * (`onError` receives `invalid_response`) but deletes the tokens all the same.
 *
 * @example
 * ```ts
 * providers: {
 *   sunshine: sunshineConversations({
 *     clientId,
 *     clientSecret,
 *     // a Zendesk Marketplace bot: on the token, tokenInfo and revocation requests
 *     headers: {
 *       'X-Zendesk-Marketplace-Name': 'Acme Bot',
 *       'X-Zendesk-Marketplace-Organization-Id': '12345',
 *       'X-Zendesk-Marketplace-Bot-Id': '42',
 *     },
 *   }),
 * }
 * ```
 */
export function sunshineConversations(options: SunshineConversationsOptions): ProviderDefinition {
  return fromProfile(sunshineConversationsProfile, options, { values: { subdomain: options.subdomain } });
}
