export type { OAuthConfig, OAuthHooks, VisibleConfig } from './config.js';
export { isOAuthError, OAuthError, type OAuthErrorCode } from './errors.js';
export { createOAuth, type OAuth } from './flow.js';
export type { OAuthContext } from './request-tokens.js';
export type { ProviderDefinition } from './providers/types.js';
export { cookieStore } from './stores/cookie.js';
export { memoryStore } from './stores/memory.js';
export type { CookieTokenStore, ServerTokenStore, StoredTokens, StoreLock, TokenRecord, TokenStore } from './stores/types.js';
export type { ImportedTokens, TokenSet } from './tokens.js';
