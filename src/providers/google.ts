import { fromProfile } from './from-profile.js';
import { type IdTokenKeys, withVerifiedIdTokens } from './oidc.js';
import type { PresetOptions, ProviderProfile } from './profile.js';
import type { ProviderDefinition } from './types.js';

/**
 * Google: OpenID Connect; `access_type=offline` and `prompt=consent` so that a refresh token is issued
 * (developers.google.com/identity/protocols/oauth2/web-server: a refresh token comes only with
 * offline access, and again only on consent). Endpoints from accounts.google.com/.well-known/openid-configuration;
 * revocation at oauth2.googleapis.com/revoke (RFC 7009).
 */
export const googleProfile: ProviderProfile = {
  name: 'google',
  oidc: { issuer: 'https://accounts.google.com' },
  authorization: { url: 'https://accounts.google.com/o/oauth2/v2/auth' },
  token: { url: 'https://oauth2.googleapis.com/token', clientAuth: { in: 'body', secret: 'client_secret' } },
  revoke: { kind: 'rfc7009', url: 'https://oauth2.googleapis.com/revoke', clientAuth: { in: 'body', secret: 'client_secret' } },
};

/**
 * Where Google publishes the keys of its ID tokens, and how it signs them: `jwks_uri` and
 * `id_token_signing_alg_values_supported` of accounts.google.com/.well-known/openid-configuration
 * (developers.google.com/identity/openid-connect/openid-connect: validate an ID token with the
 * keys at the discovery document's `jwks_uri`).
 */
const googleIdTokenKeys: IdTokenKeys = {
  issuer: 'https://accounts.google.com',
  jwksUri: 'https://www.googleapis.com/oauth2/v3/certs',
  algorithms: ['RS256'],
};

/**
 * Google. Default scopes: `openid email profile`. The ID token is validated by openid-client, its
 * claims and its signature (Google's published keys, whatever `endpoints` says).
 *
 * @example
 * ```ts
 * providers: { google: google({ clientId, clientSecret, scopes: ['openid', 'email', 'https://www.googleapis.com/auth/calendar.readonly'] }) }
 * ```
 */
export function google(options: PresetOptions): ProviderDefinition {
  return withVerifiedIdTokens(
    fromProfile(
      googleProfile,
      { ...options, authorizationParams: { access_type: 'offline', prompt: 'consent', ...options.authorizationParams } },
      { scopes: ['openid', 'email', 'profile'] },
    ),
    googleIdTokenKeys,
  );
}
