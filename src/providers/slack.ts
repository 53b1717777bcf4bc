import { fromProfile } from './from-profile.js';
import type { PresetOptions, ProviderProfile } from './profile.js';
import type { ProviderDefinition } from './types.js';

/**
 * Slack, "Sign in with Slack" user tokens (OAuth v2): scopes go in `user_scope`, comma-separated,
 * and the user's token comes nested in `authed_user`; a refresh (token rotation) answers flat.
 * Slack reports errors with HTTP 200 and `{ok: false, error}`. Slack refuses a login without
 * scopes: a preset without any is refused at start-up.
 *
 * Sources: api.slack.com/authentication/oauth-v2 (`user_scope`, `authed_user`, errors with 200),
 * api.slack.com/authentication/rotation (refresh answers flat, `invalid_refresh_token`),
 * api.slack.com/methods/auth.revoke (bearer revocation).
 */
export const slackProfile: ProviderProfile = {
  name: 'slack',
  authorization: {
    url: 'https://slack.com/oauth/v2/authorize',
    scopeParam: 'user_scope',
    scopeSeparator: ',',
    pkce: false,
    scopesRequired: true,
  },
  token: { url: 'https://slack.com/api/oauth.v2.access', clientAuth: { in: 'body', secret: 'client_secret' } },
  response: {
    accessToken: 'authed_user.access_token',
    refreshToken: 'authed_user.refresh_token',
    tokenType: 'authed_user.token_type',
    scope: 'authed_user.scope',
    expiry: { kind: 'seconds', path: 'authed_user.expires_in' },
    extras: ['authed_user.id', 'team', 'enterprise'],
  },
  refreshResponse: { extras: ['team', 'enterprise'] },
  errors: {
    aliases: { invalid_refresh_token: 'invalid_grant', invalid_code: 'invalid_grant', code_already_used: 'invalid_grant' },
  },
  revoke: { kind: 'request', url: 'https://slack.com/api/auth.revoke', method: 'POST', auth: 'bearer' },
};

/**
 * Slack user tokens. `scopes` are user scopes (`users:read`, `chat:write`, ...).
 *
 * @example
 * ```ts
 * providers: { slack: slack({ clientId, clientSecret, scopes: ['users:read'] }) }
 * ```
 */
export function slack(options: PresetOptions): ProviderDefinition {
  return fromProfile(slackProfile, options);
}
