/**
 * What the flow needs from a provider. A provider file fills these in; it knows nothing of
 * sessions, cookies or stores, and the flow never asks a provider for its name. A provider hands
 * back tokens in the library's one shape, `StoredTokens`, wire names normalised away; an ID token
 * is in them only once validated, so its claims are read from it, never carried beside it.
 */
import type { StoredTokens } from '../token-shape.js';

/** The secrets and bindings of one login, as the flow keeps them in the transaction cookie. */
export interface LoginChecks {
  state: string;
  codeVerifier?: string | undefined;
  nonce?: string | undefined;
}

/** A ready client for one provider: built once, lazily (discovery may need the network). */
export interface ProviderClient {
  /** The issuer identifier the callback's `iss` must equal (RFC 9207), when known. */
  readonly issuer?: string | undefined;
  /** Whether the server promises `iss` in every callback (RFC 9207 metadata). */
  readonly issRequired: boolean;
  /**
   * The client's credentials in every form its requests carry them (the secret, HTTP Basic
   * encodings): taken out of any provider text, which may quote what it was sent.
   */
  readonly secrets?: readonly string[] | undefined;
  authorizationUrl(redirectUri: string, checks: LoginChecks, codeChallenge: string | undefined): URL;
  /** Exchanges the code in a callback URL whose `state`, `iss` and `error` were already checked. */
  exchangeCode(callbackUrl: URL, redirectUri: string, checks: LoginChecks): Promise<StoredTokens>;
  refresh(refreshToken: string): Promise<StoredTokens>;
  /**
   * Present when the provider can mint new tokens for a grant whose refresh token it refused
   * (Cal.com's force-refresh), from what the grant keeps in `extras`. Throws `OAuthError`.
   */
  recover?(extras: Readonly<Record<string, unknown>>): Promise<StoredTokens>;
  /**
   * Reads a token answer the app obtained from the provider itself (tokens minted server-side),
   * as the token endpoint's answers are read. An ID token in it is dropped: nothing validated it.
   * Throws `OAuthError` `invalid_response` when it holds no access token.
   */
  readTokens(answer: unknown): StoredTokens;
  /**
   * Present only when the provider can revoke. Revokes the grant (the refresh token where that is how).
   * `extras` fill a revocation URL's placeholders (Sunshine's `{subdomain}`).
   */
  revoke?(tokens: {
    accessToken: string;
    refreshToken?: string | undefined;
    extras?: Readonly<Record<string, unknown>> | undefined;
  }): Promise<void>;
}

/**
 * A configured provider, as the presets return it.
 *
 * @example
 * ```ts
 * const providers = { google: oidc({ issuer: 'https://accounts.google.com', clientId, clientSecret }) };
 * ```
 */
export interface ProviderDefinition {
  readonly clientId: string;
  readonly scopes: readonly string[];
  readonly pkce: boolean;
  readonly nonce: boolean;
  /** Whether browsers can log in through the login route (false: tokens are imported by the app). */
  readonly browserLogin: boolean;
  /** `error=` values in a callback that mean "the user declined" (always includes access_denied). */
  readonly deniedErrors: readonly string[];
  /**
   * What a callback without `state` means. `refuse`: a forgery (state_mismatch). `newest-login`: the
   * provider may not echo it, so this browser's newest login of the last two minutes (its transaction
   * cookie) alone binds the callback. `restart`: the provider echoes it for logins this app starts,
   * so a stateless callback to a browser with no login in flight is a flow started at the provider
   * (Pipedrive's Marketplace install): its code is never exchanged and the user goes through a login
   * of this app instead.
   */
  readonly withoutState: 'refuse' | 'newest-login' | 'restart';
  /** API statuses meaning "access token expired", for `req.oauth.fetch` (401; Cal.com adds 498). */
  readonly expiredStatuses: readonly number[];
  /** Per-request timeout towards the provider, in seconds (refresh locks outlive it). */
  readonly timeoutSeconds: number;
  /** Problems with this definition, as `[field, reason]`, checked by `createOAuth` at start-up. */
  problems(): Array<[field: string, reason: string]>;
  connect(): Promise<ProviderClient>;
}

/** Options every provider factory takes. */
export interface ProviderOptions {
  clientId: string;
  clientSecret?: string | undefined;
  scopes?: readonly string[] | undefined;
  /** Extra authorization request parameters (`prompt`, `access_type`, ...). Never overrides state, PKCE, nonce or redirect_uri. */
  authorizationParams?: Readonly<Record<string, string>> | undefined;
  /** How the client authenticates at the token endpoint. Default: HTTP Basic. */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'none' | undefined;
  /** Per-request timeout towards the provider, in seconds. Default 10. */
  timeoutSeconds?: number | undefined;
}
