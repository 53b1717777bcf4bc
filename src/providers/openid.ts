/**
 * The openid-client v6 side of every provider: one Configuration, four calls, and the one place
 * where openid-client's errors become OAuthErrors.
 */
import * as client from 'openid-client';
import { OAuthError } from '../errors.js';
import type { LoginChecks, ProviderClient, ProviderOptions } from './types.js';
import type { StoredTokens } from '../token-shape.js';

// `refresh_token_expires_in` is not RFC 6749 but common (GitHub, Microsoft) and what profiles emit.
const STANDARD_FIELDS = new Set([
  'access_token',
  'token_type',
  'expires_in',
  'refresh_token',
  'refresh_token_expires_in',
  'scope',
  'id_token',
]);

/** Parameters this library sets itself; `authorizationParams` may not override them. */
export const RESERVED_AUTHORIZATION_PARAMS: ReadonlySet<string> = new Set([
  'state',
  'nonce',
  'redirect_uri',
  'code_challenge',
  'code_challenge_method',
  'response_type',
  'client_id',
  'scope',
]);

export function clientAuthentication(options: ProviderOptions): client.ClientAuth {
  switch (options.tokenEndpointAuthMethod ?? 'client_secret_basic') {
    case 'client_secret_post':
      return client.ClientSecretPost(options.clientSecret);
    case 'none':
      return client.None();
    default:
      return client.ClientSecretBasic(options.clientSecret);
  }
}

export interface OpenIdSettings {
  scopes: readonly string[];
  authorizationParams: Readonly<Record<string, string>>;
  timeoutSeconds: number;
  /** Authorization parameters never to send. */
  omit?: ReadonlyArray<'scope' | 'response_type' | 'redirect_uri'> | undefined;
  scopeParam?: string | undefined;
  scopeSeparator?: string | undefined;
  /** Send the login's `state` with the code exchange. */
  sendState?: boolean | undefined;
  /** The provider has no refresh grant. */
  noRefresh?: boolean | undefined;
  /** A revocation that is not RFC 7009 (or undefined: RFC 7009 when the server has an endpoint). */
  revoke?: ProviderClient['revoke'];
  /** The client secret, in every form its requests carry it: the flow redacts them from provider messages. */
  secrets?: ReadonlyArray<string | undefined> | undefined;
  /** Mints new tokens for a grant whose refresh token was refused (see `ProviderClient.recover`): RFC 6749 JSON. */
  recover?: ((extras: Readonly<Record<string, unknown>>) => Promise<unknown>) | undefined;
  /** Re-expresses a provider's own token answer as RFC 6749 JSON (a profile's dialect); undefined when it holds no token. */
  standardAnswer?: ((answer: unknown) => Record<string, unknown> | undefined) | undefined;
  /**
   * Verify each ID token's signature (JWS) against the server's JWK Set, its metadata's `jwks_uri`,
   * with openid-client's non-repudiation checks; an ID token from a server without a `jwks_uri` is
   * refused. Without it, openid-client checks the claims only: a caller then verifies signatures
   * itself (`withVerifiedIdTokens` in oidc.ts) or its ID tokens are not verified.
   */
  verifyIdTokens?: boolean | undefined;
}

/**
 * A client secret as requests carry it: in clear (form bodies) and inside HTTP Basic credentials,
 * whose id and secret are form-encoded first (RFC 6749 §2.3.1) by openid-client's stricter rules
 * (`-_.!~*'()` too) or by the looser `encodeURIComponent`, or not at all.
 */
export function credentialForms(clientId: string, secrets: ReadonlyArray<string | undefined> = []): string[] {
  const loose = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  const strict = (value: string) => loose(value).replace(/[-_.!~*'()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    forms.add(secret);
    for (const encode of [strict, loose, (value: string) => value]) {
      forms.add(Buffer.from(`${encode(clientId)}:${encode(secret)}`).toString('base64'));
    }
  }
  return [...forms];
}

/** Wraps a ready openid-client Configuration as a ProviderClient. */
export function openIdClient(config: client.Configuration, settings: OpenIdSettings): ProviderClient {
  config.timeout = settings.timeoutSeconds;
  const metadata = config.serverMetadata();
  const { recover } = settings;
  // openid-client verifies an ID token's signature only when asked to, with a key of `jwks_uri`
  // chosen by the token's `kid`, `alg` and key type; `none` and HS* (the client secret) are never
  // accepted. The JWK Set is cached with the Configuration: fetched again after 5 minutes, or at
  // once for a `kid` it lacks if the copy is a minute old (key rotation, bounded).
  if (settings.verifyIdTokens && metadata.jwks_uri !== undefined) client.enableNonRepudiationChecks(config);
  const checked = <T extends client.TokenEndpointResponse & client.TokenEndpointResponseHelpers>(response: T): T =>
    checkedIdToken(response, settings.verifyIdTokens === true && metadata.jwks_uri === undefined);
  const revoke =
    settings.revoke ??
    (metadata.revocation_endpoint
      ? async ({ accessToken, refreshToken }: { accessToken: string; refreshToken?: string | undefined }) => {
          // Revoking the refresh token ends the grant (RFC 7009 §2.1); an access token alone is all some grants have.
          const [token, hint] = refreshToken ? [refreshToken, 'refresh_token'] : [accessToken, 'access_token'];
          await call(() => client.tokenRevocation(config, token, { token_type_hint: hint }));
        }
      : undefined);

  return {
    issuer: metadata.issuer,
    secrets: credentialForms(config.clientMetadata().client_id, settings.secrets),
    issRequired: metadata.authorization_response_iss_parameter_supported === true,

    authorizationUrl: (redirectUri: string, checks: LoginChecks, codeChallenge: string | undefined) =>
      authorizationUrl(config, settings, redirectUri, checks, codeChallenge),

    async exchangeCode(callbackUrl: URL, _redirectUri: string, checks: LoginChecks): Promise<StoredTokens> {
      const response = await call(() =>
        client.authorizationCodeGrant(
          config,
          callbackUrl,
          {
            // A provider that may not echo state was bound by the transaction cookie instead (see LoginTransactions).
            // Stryker disable next-line StringLiteral: the flow has compared the state already; this check repeats it.
            expectedState: callbackUrl.searchParams.has('state') ? checks.state : client.skipStateCheck,
            pkceCodeVerifier: checks.codeVerifier,
            // With a nonce, openid-client requires an ID token that carries it.
            expectedNonce: checks.nonce,
          },
          settings.sendState ? { state: checks.state } : undefined,
        ),
      );
      return normalise(checked(response));
    },

    async refresh(refreshToken: string): Promise<StoredTokens> {
      if (settings.noRefresh) {
        // Stryker disable next-line StringLiteral: never shown: RequestTokens answers reauth_required, with its own message
        throw new OAuthError('provider_error', 'The provider has no refresh grant.', { error: 'invalid_grant' });
      }
      return normalise(checked(await call(() => client.refreshTokenGrant(config, refreshToken))));
    },

    readTokens(answer: unknown): StoredTokens {
      return unvalidated(settings.standardAnswer ? settings.standardAnswer(answer) : answer);
    },

    ...(recover ? { recover: async (extras) => unvalidated(await recover(extras)) } : {}),

    ...(revoke ? { revoke } : {}),
  };
}

/**
 * openid-client compares an ID token's `exp` and `nbf` with the clock (30 s tolerance), but not
 * `iat`; nor can it verify a token whose provider publishes no keys (`keyless`).
 */
function checkedIdToken<T extends client.TokenEndpointResponse & client.TokenEndpointResponseHelpers>(
  response: T,
  keyless: boolean,
): T {
  if (response.id_token === undefined) return response;
  if (keyless) {
    throw new OAuthError('invalid_response', 'The provider publishes no keys (jwks_uri): its ID token cannot be verified.');
  }
  const iat = response.claims()?.iat;
  if (typeof iat === 'number' && iat > Date.now() / 1000 + 30) {
    throw new OAuthError('invalid_response', 'The ID token claims to be issued in the future (iat).');
  }
  return response;
}

function authorizationUrl(
  config: client.Configuration,
  settings: OpenIdSettings,
  redirectUri: string,
  checks: LoginChecks,
  codeChallenge: string | undefined,
): URL {
  const params: Record<string, string> = {
    ...settings.authorizationParams,
    response_type: 'code',
    redirect_uri: redirectUri,
    state: checks.state,
  };
  if (settings.scopes.length > 0) params[settings.scopeParam ?? 'scope'] = settings.scopes.join(settings.scopeSeparator ?? ' ');
  if (codeChallenge !== undefined) {
    params.code_challenge = codeChallenge;
    params.code_challenge_method = 'S256';
  }
  if (checks.nonce !== undefined) params.nonce = checks.nonce;
  const url = client.buildAuthorizationUrl(config, params);
  for (const name of settings.omit ?? []) url.searchParams.delete(name);
  return url;
}

// A lifetime beyond ten years is no lifetime: read as "none given" (it would overflow store expiries).
const LONGEST_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;

function normalise(response: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers): StoredTokens {
  return fromBody(response, response.expiresIn());
}

/** Tokens from an RFC 6749 token answer (validated by openid-client, or imported by the app). */
function fromBody(
  body: Record<string, unknown> & { access_token: string; token_type: string },
  expiresIn: number | undefined,
): StoredTokens {
  const extras: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (!STANDARD_FIELDS.has(key) && value !== undefined) extras[key] = value;
  }
  const now = Math.floor(Date.now() / 1000);
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const refreshExpiresIn = body.refresh_token_expires_in;
  return {
    accessToken: body.access_token,
    tokenType: body.token_type === 'bearer' ? 'Bearer' : body.token_type,
    expiresAt: expiresIn !== undefined && expiresIn <= LONGEST_LIFETIME_SECONDS ? now + expiresIn : undefined,
    refreshToken: text(body.refresh_token),
    refreshExpiresAt:
      typeof refreshExpiresIn === 'number' && refreshExpiresIn > 0 && refreshExpiresIn <= LONGEST_LIFETIME_SECONDS
        ? now + refreshExpiresIn
        : undefined,
    scope: text(body.scope),
    idToken: text(body.id_token),
    extras,
  };
}

/**
 * Tokens from an RFC 6749 answer that did not come through openid-client's validation: imported by
 * the app, or minted by a recovery. An ID token in it is dropped, since nothing validated it.
 */
function unvalidated(body: unknown): StoredTokens {
  if (!isRecord(body) || typeof body.access_token !== 'string' || body.access_token === '') {
    throw new OAuthError('invalid_response', 'The token answer holds no access token.');
  }
  const { id_token: _unvalidated, access_token: accessToken, token_type: tokenType, ...rest } = body;
  // As openid-client rules for an answer it validates: an `expires_in` that is there must be a
  // number of seconds (or its text); absent (or null) is no given lifetime.
  const raw = rest.expires_in;
  const expiresIn = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (
    expiresIn !== undefined &&
    expiresIn !== null &&
    !(typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn >= 0)
  ) {
    throw new OAuthError('invalid_response', "The token answer's expires_in is not a number of seconds.");
  }
  return fromBody(
    { ...rest, access_token: accessToken, token_type: typeof tokenType === 'string' ? tokenType : 'Bearer' },
    typeof expiresIn === 'number' ? Math.floor(expiresIn) : undefined,
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Runs one openid-client call and translates its failures. The provider name is added by the
 * flow (a provider file does not know the name it was configured under), and so is redaction:
 * the flow knows every secret of the request (see `forProvider`).
 */
export async function call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw translateClientError(err);
  }
}

/**
 * Maps openid-client and fetch failures onto OAuthError codes. The original error is not kept as
 * the cause: some carry the whole response body (tokens included). The cause is a summary.
 *
 * A call that broke on the way is `provider_unavailable`, whichever layer noticed: no connection,
 * a connection reset before or in the middle of the answer, a timeout before the headers or while
 * the body was still coming. openid-client reports the last two as a JSON parse error, whose cause
 * chain tells them from a body that came whole and is not JSON (a SyntaxError): that one, like any
 * complete answer that fails validation, is `invalid_response`.
 */
export function translateClientError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  // Thrown inside a custom fetch (a profile's dialect), it comes back wrapped by openid-client.
  if (err instanceof client.ClientError && err.cause instanceof OAuthError) return err.cause;
  const cause = summary(err);
  if (err instanceof client.ResponseBodyError) {
    if (err.status === 429) return new OAuthError('provider_unavailable', 'The provider is rate limiting.', { cause });
    return new OAuthError('provider_error', 'The provider refused the request.', {
      error: err.error,
      errorDescription: err.error_description,
      cause,
    });
  }
  if (err instanceof client.WWWAuthenticateChallengeError) {
    // RFC 6749 §5.2: a 401 with a challenge, typically invalid_client under HTTP Basic.
    const parameters = err.cause[0]?.parameters;
    return new OAuthError('provider_error', 'The provider refused the client credentials.', {
      error: parameters?.error ?? 'invalid_client',
      errorDescription: parameters?.error_description,
      cause,
    });
  }
  if (interrupted(err)) {
    return new OAuthError('provider_unavailable', 'The provider could not be reached, or its answer was cut off or late.', {
      cause,
    });
  }
  if (err instanceof client.ClientError) {
    const response = err.cause instanceof Response ? err.cause : undefined;
    if (response && (response.status >= 500 || response.status === 429)) {
      return new OAuthError('provider_unavailable', 'The provider did not answer in time or failed.', { cause });
    }
    return new OAuthError('invalid_response', 'The provider sent an answer that failed validation.', { cause });
  }
  // fetch() rejects with a TypeError for network failures (refused, reset, DNS).
  if (err instanceof TypeError) {
    return new OAuthError('provider_unavailable', 'The provider could not be reached.', { cause });
  }
  return new OAuthError('invalid_response', 'The provider call failed unexpectedly.', { cause });
}

// What undici's fetch rejects with, or errors a body stream with: `fetch failed` (no connection,
// a reset before the answer), `terminated` (the connection ended inside the body).
const NETWORK_MESSAGES = new Set(['fetch failed', 'terminated']);
// Socket and undici error codes, for failures that reach here without fetch's TypeError around them.
const NETWORK_CODES = new Set([
  'OAUTH_TIMEOUT',
  'OAUTH_ABORT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const MAX_CAUSES = 6;

/** Whether the call broke on the way (network, reset, timeout, abort) rather than on what the provider said. */
function interrupted(err: unknown): boolean {
  for (const link of causes(err)) {
    // A timeout or abort, before the headers or inside the body (AbortSignal.timeout's DOMException).
    if (link.name === 'TimeoutError' || link.name === 'AbortError') return true;
    if (link instanceof TypeError && NETWORK_MESSAGES.has(link.message)) return true;
    const code = (link as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  }
  return false;
}

/** The error and its causes, as long as they are errors (a cause may be a Response or a JSON body). */
function causes(err: unknown): Error[] {
  const chain: Error[] = [];
  for (let link = err; link instanceof Error && chain.length < MAX_CAUSES && !chain.includes(link); link = link.cause) {
    chain.push(link);
  }
  return chain;
}

/**
 * One line naming the error and its causes: names and codes, and only the messages known to hold
 * nothing of the answer (a JSON parse error's message quotes the body, tokens included).
 */
function summary(err: unknown): Error {
  if (!(err instanceof Error)) return new Error('non-error thrown');
  const [first, ...rest] = causes(err);
  const describe = (link: Error, withMessage: boolean) => {
    const code = (link as { code?: unknown }).code;
    return [link.name, typeof code === 'string' ? code : undefined, withMessage ? link.message : undefined]
      .filter(Boolean)
      .join(': ');
  };
  const safeMessage = (link: Error) =>
    (link instanceof TypeError && NETWORK_MESSAGES.has(link.message)) ||
    link.name === 'TimeoutError' ||
    link.name === 'AbortError';
  const parts = [describe(first as Error, true), ...rest.map((link) => describe(link, safeMessage(link)))];
  return new Error(parts.join(' <- '));
}
