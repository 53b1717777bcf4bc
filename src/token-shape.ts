/**
 * One provider's tokens: the library's one token shape, as a provider hands them back and as a
 * store keeps them (`TokenSet` is the view the app sees). The refresh token never leaves the library.
 * In a module of its own: providers produce it and stores keep it, and neither imports the other.
 */
export interface StoredTokens {
  accessToken: string;
  tokenType: string;
  /** Epoch seconds. */
  expiresAt?: number | undefined;
  /** Epoch seconds, when these tokens arrived (with `expiresAt`, their lifetime). */
  obtainedAt?: number | undefined;
  refreshToken?: string | undefined;
  /** Epoch seconds, when the provider says when the refresh token expires. */
  refreshExpiresAt?: number | undefined;
  scope?: string | undefined;
  idToken?: string | undefined;
  extras: Record<string, unknown>;
}
