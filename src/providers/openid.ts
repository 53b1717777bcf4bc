/**
 * The openid-client v6 side of every provider: one Configuration, four calls, and the one place
 * where openid-client's errors become OAuthErrors.
 */
import * as client from 'openid-client';
import { OAuthError } from '../errors.js';
import type { LoginChecks, ProviderClient, ProviderOptions, ProviderTokens } from './types.js';

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

/**
 * http: is allowed for loopback hosts only (local development and tests). Names under `localhost`
 * (`acme.localhost`) are loopback too (RFC 6761 §6.3), as browsers treat them: a URL template
 * `http://{subdomain}.localhost:port/...` stands in for a provider's per-customer hosts.
 */
export function isLoopback(url: URL): boolean {
  return ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) || url.hostname.endsWith('.localhost');
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
  /** Redacted from any provider message kept in an error (the client secret). */
  secrets?: ReadonlyArray<string | undefined> | undefined;
  /** Mints new tokens for a grant whose refresh token was refused (see `ProviderClient.recover`): RFC 6749 JSON. */
  recover?: ((extras: Readonly<Record<string, unknown>>) => Promise<unknown>) | undefined;
  /** Re-expresses a provider's own token answer as RFC 6749 JSON (a profile's dialect); undefined when it holds no token. */
  standardAnswer?: ((answer: unknown) => Record<string, unknown> | undefined) | undefined;
}

/** Wraps a ready openid-client Configuration as a ProviderClient. */
export function openIdClient(config: client.Configuration, settings: OpenIdSettings): ProviderClient {
  config.timeout = settings.timeoutSeconds;
  const metadata = config.serverMetadata();
  const { recover } = settings;
  const revoke =
    settings.revoke ??
    (metadata.revocation_endpoint
      ? async ({ accessToken, refreshToken }: { accessToken: string; refreshToken?: string | undefined }) => {
          // Revoking the refresh token ends the grant (RFC 7009 §2.1); an access token alone is all some grants have.
          const [token, hint] = refreshToken ? [refreshToken, 'refresh_token'] : [accessToken, 'access_token'];
          await call(() => client.tokenRevocation(config, token, { token_type_hint: hint }), settings.secrets);
        }
      : undefined);

  return {
    issuer: metadata.issuer,
    issRequired: metadata.authorization_response_iss_parameter_supported === true,

    authorizationUrl(redirectUri: string, checks: LoginChecks, codeChallenge: string | undefined): URL {
      const params: Record<string, string> = {
        ...settings.authorizationParams,
        response_type: 'code',
        redirect_uri: redirectUri,
        state: checks.state,
      };
      if (settings.scopes.length > 0)
        params[settings.scopeParam ?? 'scope'] = settings.scopes.join(settings.scopeSeparator ?? ' ');
      if (codeChallenge !== undefined) {
        params.code_challenge = codeChallenge;
        params.code_challenge_method = 'S256';
      }
      if (checks.nonce !== undefined) params.nonce = checks.nonce;
      const url = client.buildAuthorizationUrl(config, params);
      for (const name of settings.omit ?? []) url.searchParams.delete(name);
      return url;
    },

    async exchangeCode(callbackUrl: URL, _redirectUri: string, checks: LoginChecks): Promise<ProviderTokens> {
      const response = await call(
        () =>
          client.authorizationCodeGrant(
            config,
            callbackUrl,
            {
              // A provider that may not echo state was bound by the transaction cookie instead (see the flow).
              expectedState: callbackUrl.searchParams.has('state') ? checks.state : client.skipStateCheck,
              pkceCodeVerifier: checks.codeVerifier,
              expectedNonce: checks.nonce,
              idTokenExpected: checks.nonce !== undefined,
            },
            settings.sendState ? { state: checks.state } : undefined,
          ),
        settings.secrets,
      );
      return normalise(response);
    },

    async refresh(refreshToken: string): Promise<ProviderTokens> {
      if (settings.noRefresh) {
        throw new OAuthError('provider_error', 'The provider has no refresh grant.', { error: 'invalid_grant' });
      }
      return normalise(await call(() => client.refreshTokenGrant(config, refreshToken), settings.secrets));
    },

    readTokens(answer: unknown): ProviderTokens {
      return unvalidated(settings.standardAnswer ? settings.standardAnswer(answer) : answer);
    },

    ...(recover ? { recover: async (extras) => unvalidated(await recover(extras)) } : {}),

    ...(revoke ? { revoke } : {}),
  };
}

// A lifetime beyond ten years is no lifetime: read as "none given" (it would overflow store expiries).
const LONGEST_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;

function normalise(response: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers): ProviderTokens {
  return fromBody(response, response.expiresIn(), response.claims());
}

/** Tokens from an RFC 6749 token answer (validated by openid-client, or imported by the app). */
function fromBody(
  body: Record<string, unknown> & { access_token: string; token_type: string },
  expiresIn: number | undefined,
  claims: Record<string, unknown> | undefined,
): ProviderTokens {
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
    claims: claims ? { ...claims } : undefined,
    extras,
  };
}

/**
 * Tokens from an RFC 6749 answer that did not come through openid-client's validation: imported by
 * the app, or minted by a recovery. An ID token in it is dropped, since nothing validated it.
 */
function unvalidated(body: unknown): ProviderTokens {
  if (!isRecord(body) || typeof body.access_token !== 'string' || body.access_token === '') {
    throw new OAuthError('invalid_response', 'The token answer holds no access token.');
  }
  const { id_token: _unvalidated, access_token: accessToken, token_type: tokenType, ...rest } = body;
  const expiresIn = rest.expires_in;
  return fromBody(
    { ...rest, access_token: accessToken, token_type: typeof tokenType === 'string' ? tokenType : 'Bearer' },
    typeof expiresIn === 'number' && Number.isFinite(expiresIn) ? expiresIn : undefined,
    undefined,
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Runs one openid-client call and translates its failures. The provider name is added by the
 * flow (a provider file does not know the name it was configured under).
 */
export async function call<T>(run: () => Promise<T>, secrets: ReadonlyArray<string | undefined> = []): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw translateClientError(err, secrets);
  }
}

/**
 * Maps openid-client and fetch failures onto OAuthError codes. The original error is not kept as
 * the cause: some carry the whole response body (tokens included). The cause is a summary.
 */
export function translateClientError(err: unknown, secrets: ReadonlyArray<string | undefined> = []): OAuthError {
  if (err instanceof OAuthError) return err;
  const cause = summary(err);
  if (err instanceof client.ResponseBodyError) {
    if (err.status === 429) return new OAuthError('provider_unavailable', 'The provider is rate limiting.', { cause });
    return new OAuthError('provider_error', 'The provider refused the request.', {
      error: err.error,
      errorDescription: redact(err.error_description, secrets),
      cause,
    });
  }
  if (err instanceof client.WWWAuthenticateChallengeError) {
    // RFC 6749 §5.2: a 401 with a challenge, typically invalid_client under HTTP Basic.
    const parameters = err.cause[0]?.parameters;
    return new OAuthError('provider_error', 'The provider refused the client credentials.', {
      error: parameters?.error ?? 'invalid_client',
      errorDescription: redact(parameters?.error_description, secrets),
      cause,
    });
  }
  if (err instanceof client.ClientError) {
    const response = err.cause instanceof Response ? err.cause : undefined;
    if (
      err.code === 'OAUTH_TIMEOUT' ||
      err.code === 'OAUTH_ABORT' ||
      (response && (response.status >= 500 || response.status === 429))
    ) {
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

function summary(err: unknown): Error {
  if (!(err instanceof Error)) return new Error('non-error thrown');
  const code = (err as { code?: unknown }).code;
  const network = (err.cause as { code?: unknown } | undefined)?.code;
  const parts = [
    err.name,
    typeof code === 'string' ? code : undefined,
    err.message,
    typeof network === 'string' ? network : undefined,
  ];
  return new Error(parts.filter(Boolean).join(': '));
}

function redact(text: string | undefined, secrets: ReadonlyArray<string | undefined>): string | undefined {
  let safe = text;
  for (const secret of secrets) if (safe !== undefined && secret) safe = safe.split(secret).join('[redacted]');
  return safe?.slice(0, 300);
}
