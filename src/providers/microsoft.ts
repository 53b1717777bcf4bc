import { fromProfile } from './from-profile.js';
import type { PresetOptions, ProviderProfile } from './profile.js';
import type { ProviderDefinition } from './types.js';

const MULTI_TENANT = new Set(['common', 'organizations', 'consumers']);

/**
 * Microsoft identity platform (Entra ID) v2.0. With a tenant id or domain the ID token's issuer is
 * checked; with `common`, `organizations` or `consumers` each user's issuer is their own tenant's,
 * so the ID token is dropped (no `claims`; call Microsoft Graph `/me` instead).
 *
 * @example
 * ```ts
 * providers: { microsoft: microsoft({ clientId, clientSecret, tenant: 'contoso.onmicrosoft.com' }) }
 * ```
 */
export function microsoft(options: PresetOptions & { tenant?: string }): ProviderDefinition {
  const tenant = encodeURIComponent(options.tenant ?? 'common');
  const base = `https://login.microsoftonline.com/${tenant}`;
  const multiTenant = MULTI_TENANT.has(tenant);
  const profile: ProviderProfile = {
    name: 'microsoft',
    ...(multiTenant ? {} : { oidc: { issuer: `${base}/v2.0` } }),
    authorization: { url: `${base}/oauth2/v2.0/authorize` },
    token: { url: `${base}/oauth2/v2.0/token`, clientAuth: { in: 'body', secret: 'client_secret' } },
    // `ext_expires_in` (a lifetime for Microsoft's own outages) is no use to an app: no extras kept.
    response: { idToken: !multiTenant, extras: [] },
  };
  return fromProfile(profile, options, { scopes: ['openid', 'profile', 'email', 'offline_access', 'User.Read'] });
}
