import { fromProfile } from './from-profile.js';
import type { PresetOptions, ProviderProfile } from './profile.js';
import type { ProviderDefinition } from './types.js';

/**
 * Pipedrive (shared/providers/CONTRACTS.md §1). Hosts from the facts: the seeds' api.pipedrive.com is wrong.
 * - No `scope` (scopes live in the Developer Hub) and no PKCE: both break authorization (Nango ac05c5bac9).
 * - `response_type` is undocumented [U]: not sent.
 * - `state` is always sent and required back. Installs started from the Marketplace may come without
 *   it [P]; they have no login transaction in this browser either, so their code cannot be accepted
 *   safely (a stateless callback without PKCE could be forged). Such a callback, to a browser with
 *   no Pipedrive login in flight, goes through the app's login route instead (`state: 'restart'`):
 *   the user, who just approved the app, is sent straight back with a code and a state.
 * - Denial is `error=user_denied`. Basic client auth, form bodies, RFC 7009 revocation.
 * - Logout revokes the refresh token, the only way to end the grant, and revoking it uninstalls the
 *   app for that user at Pipedrive [P SDK]: their next login installs it again.
 * - Refresh at `/oauth/token` without the seeds' trailing slash; tokens do not rotate [P] (a new
 *   refresh token [U] would be kept all the same). `api_domain` is kept: API calls go there.
 *
 * Sources: pipedrive.readme.io `marketplace-oauth-authorization` (hosts, state, Basic auth, body
 * credentials allowed, 5-minute codes, no rotation), `app-uninstallation` (RFC 7009 revoke);
 * pipedrive/client-nodejs `src/versions/v1/configuration.ts` (hosts), `revokeToken` (revoking the
 * refresh token uninstalls), `test/functional/oauth/access-token.test.ts` (error bodies);
 * NangoHQ/nango commit ac05c5bac9 (scope and PKCE break authorization).
 */
export const pipedriveProfile: ProviderProfile = {
  name: 'pipedrive',
  authorization: {
    url: 'https://oauth.pipedrive.com/oauth/authorize',
    omit: ['scope', 'response_type'],
    pkce: false,
    state: 'restart',
    deniedErrors: ['user_denied'],
  },
  token: { url: 'https://oauth.pipedrive.com/oauth/token', encoding: 'form', clientAuth: { in: 'basic' } },
  response: { extras: ['api_domain'] },
  revoke: { kind: 'rfc7009', url: 'https://oauth.pipedrive.com/oauth/revoke', clientAuth: { in: 'basic' } },
};

/**
 * Pipedrive. `req.oauth.getToken('pipedrive')` gives `extras.api_domain`, the base URL of the company's API.
 *
 * @example
 * ```ts
 * providers: { pipedrive: pipedrive({ clientId, clientSecret }) }
 * ```
 */
export function pipedrive(options: PresetOptions): ProviderDefinition {
  return fromProfile(pipedriveProfile, options);
}
