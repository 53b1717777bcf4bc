/**
 * What every provider emulator offers. An emulator is a strict HTTP server on 127.0.0.1 that
 * follows one provider's OAuth contract (shared/providers/CONTRACTS.md) and rejects what the real
 * provider would reject. Users import emulators from `oauth-middleware/testing` to test their apps.
 */

export interface EmulatorOptions {
  /** Default 'test-client-id'. */
  clientId?: string;
  /** Default 'test-client-secret-0123456789'. */
  clientSecret?: string;
  /** The app's callback URL registered at the provider. Required where the provider checks or uses it. */
  redirectUri: string;
  /** Lifetime of issued access tokens in seconds (read at each issue; also settable later). Default 3600. */
  accessTokenTtl?: number;
}

/** The full URLs an app needs, to pass as a preset's `endpoints`. */
export interface EmulatorEndpoints {
  authorization: string;
  token: string;
  refresh?: string;
  revoke?: string;
  /** Where tokens are minted for a grant whose refresh token was refused (Cal.com platform's force-refresh), `{userId}` left to fill. */
  recover?: string;
  /** Cal.com platform: where managed users are created (`POST`, with `x-cal-secret-key`), answering their tokens. */
  managedUsers?: string;
  /** Sunshine Conversations: what a token belongs to (`GET`, bearer), asked by the preset after each code exchange. */
  tokenInfo?: string;
  /** A protected API resource answering the token's user, for `req.oauth.fetch` tests. */
  api: string;
}

export interface Emulator {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly endpoints: EmulatorEndpoints;
  readonly clientId: string;
  readonly clientSecret: string;
  /**
   * Calls per endpoint, counted whether they succeed or are rejected.
   * Keys: 'authorize', 'token' (code exchange), 'refresh', 'revoke', 'api'.
   */
  readonly counts: Record<'authorize' | 'token' | 'refresh' | 'revoke' | 'api', number>;
  /** Every request the emulator refused, with the reason, newest last (for debugging failed tests). */
  readonly rejections: Array<{ endpoint: string; status: number; reason: string }>;
  /**
   * Every token the emulator handed out from its token endpoint, newest last: to check that a
   * token your app was meant to revoke at logout is now refused (try it at `endpoints.api`).
   */
  readonly issued: Array<{ endpoint: 'token' | 'refresh'; accessToken: string; refreshToken?: string | undefined }>;
  /** Lifetime in seconds of access tokens issued from now on. */
  accessTokenTtl: number;
  /** When set, the next authorization is declined by the user (the callback carries the provider's denial error). */
  declineNext: boolean;
  /** When set, token and refresh requests answer this HTTP status with an empty/HTML body (simulated outage). */
  failWith: number | undefined;
  /** Following the authorization URL as a consenting user: returns the redirect back to the app (callback URL). */
  authorize(authorizationUrl: string): Promise<URL>;
  /** Invalidates every token and refresh token issued so far (the user removed the app at the provider). */
  revokeAll(): void;
  /** Makes every access token issued so far expired at the API, before the time it announced; refresh tokens stay valid. */
  expireAccessTokens(): void;
  /** Zeroes counts, rejections and issued; restores accessTokenTtl, declineNext and failWith to their defaults. Issued tokens stay valid. */
  reset(): void;
  close(): Promise<void>;
}
