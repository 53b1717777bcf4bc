/**
 * One provider's tokens: the library's one token shape, as a provider hands them back and as a
 * store keeps them (`TokenSet` is the view the app sees). The refresh token never leaves the library.
 * In a module of its own: providers produce it and stores keep it, and neither imports the other.
 */
export interface StoredTokens {
  accessToken: string;
  tokenType: string;
  /** Epoch seconds; absent when the provider gives no lifetime (valid until revoked). */
  expiresAt?: number | undefined;
  /** Epoch seconds, when these tokens arrived (with `expiresAt`, their lifetime). */
  obtainedAt?: number | undefined;
  refreshToken?: string | undefined;
  /** Epoch seconds, when the provider says when the refresh token expires. */
  refreshExpiresAt?: number | undefined;
  scope?: string | undefined;
  /** Only once validated (openid-client, at login or refresh): its claims are read from it. */
  idToken?: string | undefined;
  /** Provider fields this library has no name for (Pipedrive's `api_domain`, ...). */
  extras: Record<string, unknown>;
}
