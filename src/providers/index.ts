export { type OAuth2Options, oauth2 } from './oauth2.js';
export { type OidcOptions, oidc } from './oidc.js';
export type { LoginChecks, ProviderClient, ProviderDefinition, ProviderOptions, ProviderTokens } from './types.js';
