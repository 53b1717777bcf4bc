import { fromProfile } from './from-profile.js';
import type { PresetOptions, ProviderProfile } from './profile.js';
import type { ProviderDefinition } from './types.js';

/**
 * GitHub: plain OAuth 2.0, no OIDC. Its token endpoint answers form-encoded unless asked for JSON,
 * and reports errors with HTTP 200. Logout deletes the app's grant (Basic auth, token in a JSON body).
 * PKCE S256 is sent: GitHub supports it since 2025-07-14 (GitHub changelog, "PKCE support for OAuth
 * and GitHub App authentication").
 *
 * Sources: docs.github.com "Authorizing OAuth apps" (endpoints, `Accept: application/json`, error
 * codes such as `bad_verification_code` answered with 200), "Refreshing user access tokens"
 * (GitHub Apps' expiring tokens, `bad_refresh_token`), REST "Delete an app authorization"
 * (`DELETE /applications/{client_id}/grant`, Basic auth, `access_token` in the JSON body).
 */
export const githubProfile: ProviderProfile = {
  name: 'github',
  authorization: { url: 'https://github.com/login/oauth/authorize' },
  token: {
    url: 'https://github.com/login/oauth/access_token',
    headers: { accept: 'application/json' },
    clientAuth: { in: 'body', secret: 'client_secret' },
  },
  errors: { aliases: { bad_verification_code: 'invalid_grant', bad_refresh_token: 'invalid_grant' } },
  revoke: {
    kind: 'request',
    url: 'https://api.github.com/applications/{clientId}/grant',
    method: 'DELETE',
    auth: 'basic',
    tokenInBody: true,
  },
};

/**
 * GitHub (OAuth apps and GitHub Apps; the latter's expiring tokens are refreshed). Default scope: `read:user`.
 *
 * @example
 * ```ts
 * providers: { github: github({ clientId, clientSecret, scopes: ['repo'] }) }
 * ```
 */
export function github(options: PresetOptions): ProviderDefinition {
  return fromProfile(githubProfile, options, { scopes: ['read:user'] });
}
