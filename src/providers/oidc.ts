import * as client from 'openid-client';
import { call, clientAuthentication, openIdClient, RESERVED_AUTHORIZATION_PARAMS, translateClientError } from './openid.js';
import type { ProviderClient, ProviderDefinition, ProviderOptions } from './types.js';
import type { StoredTokens } from '../token-shape.js';
import { insecureScheme, isLoopback } from '../loopback.js';

export interface OidcOptions extends ProviderOptions {
  /** The issuer identifier, exactly as the provider's discovery document spells it. */
  issuer: string;
}

/**
 * A standard OpenID Connect provider, configured by discovery.
 * PKCE (S256), `state` and `nonce` are always sent; the ID token is validated by openid-client, its
 * claims and its signature, with a key of the discovered `jwks_uri` (at login and at refresh).
 *
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html
 * @example
 * ```ts
 * oidc({ issuer: 'https://accounts.google.com', clientId, clientSecret, scopes: ['openid', 'email'] })
 * ```
 */
export function oidc(options: OidcOptions): ProviderDefinition {
  const scopes = options.scopes ?? ['openid', 'profile', 'email'];
  let connecting: Promise<ProviderClient> | undefined;

  async function discover(): Promise<ProviderClient> {
    const issuer = new URL(options.issuer);
    const config = await client.discovery(issuer, options.clientId, undefined, clientAuthentication(options), {
      // Stryker disable next-line ConditionalExpression: start-up refuses http: anywhere but loopback; https: needs no allowance.
      execute: issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [],
      timeout: options.timeoutSeconds ?? 10,
    });
    return openIdClient(config, {
      scopes,
      authorizationParams: options.authorizationParams ?? {},
      timeoutSeconds: options.timeoutSeconds ?? 10,
      secrets: [options.clientSecret],
      verifyIdTokens: true,
    });
  }

  return {
    clientId: options.clientId,
    scopes,
    pkce: true,
    browserLogin: true,
    // An ID token (and so a nonce) only when `openid` is asked for: without it there is none.
    nonce: scopes.includes('openid'),
    timeoutSeconds: options.timeoutSeconds ?? 10,
    // Stryker disable next-line ArrayDeclaration,StringLiteral: the flow reads access_denied as a decline whatever this lists.
    deniedErrors: ['access_denied'],
    withoutState: 'refuse',
    expiredStatuses: [401],
    problems: () => [...urlProblems('issuer', options.issuer), ...commonProblems(options)],
    connect() {
      // Discovery runs once; a failed attempt is forgotten so the next request tries again.
      connecting ??= discover().catch((err: unknown) => {
        connecting = undefined;
        throw translateClientError(err);
      });
      return connecting;
    },
  };
}

/** Where an issuer publishes the keys of its ID tokens, and how it signs them. */
export interface IdTokenKeys {
  /** The `iss` its ID tokens must have. */
  issuer: string;
  /** Its JWK Set (`jwks_uri`). */
  jwksUri: string;
  /** Its `id_token_signing_alg_values_supported`; default RS256, as openid-client's. `none` and HS* never pass. */
  algorithms?: readonly string[] | undefined;
}

/**
 * A preset without discovery (`google()`), whose ID tokens openid-client validated without knowing
 * the issuer's keys, with each ID token's signature verified too (see `idTokenSignatures`).
 */
export function withVerifiedIdTokens(definition: ProviderDefinition, keys: IdTokenKeys): ProviderDefinition {
  const verified = idTokenSignatures(definition.clientId, definition.timeoutSeconds);
  let ready: ProviderClient | undefined;
  return {
    ...definition,
    async connect() {
      if (ready) return ready;
      const base = await definition.connect();
      ready = {
        ...base,
        exchangeCode: async (callbackUrl, redirectUri, checks) =>
          verified(await base.exchangeCode(callbackUrl, redirectUri, checks), keys),
        refresh: async (refreshToken) => verified(await base.refresh(refreshToken), keys),
      };
      return ready;
    },
  };
}

/** The token endpoint of the verifying Configuration: never requested (the `.invalid` TLD does not resolve). */
const REPLAY_ENDPOINT = 'https://id-token.invalid/token';

/**
 * Verifies the signature of the ID token in tokens that openid-client already validated (claims,
 * `nonce`) through a Configuration that did not know the issuer's keys: a profile's Configuration,
 * built from fixed endpoints. openid-client does the work: the ID token is handed, in a token answer
 * of its own, to a second Configuration that knows the JWK Set and has `enableNonRepudiationChecks`;
 * it validates the claims once more (`iss`, `aud`, `azp`, `exp`, `alg`) and verifies the JWS with the
 * key the header's `kid` and `alg` select. The JWK Set is cached per `jwks_uri` across calls with
 * openid-client's `getJwksCache` / `setJwksCache`, so it behaves as one Configuration's: fetched
 * again after 5 minutes, or for a `kid` it lacks once the copy is a minute old. Returns the tokens
 * as they were; throws `invalid_response` (`provider_unavailable` when the JWK Set cannot be had).
 */
export function idTokenSignatures(
  clientId: string,
  timeoutSeconds: number,
): (tokens: StoredTokens, keys: IdTokenKeys) => Promise<StoredTokens> {
  const caches = new Map<string, client.ExportedJWKSCache>();
  return async (tokens, keys) => {
    const { idToken } = tokens;
    // Stryker disable next-line ConditionalExpression: a replay without an ID token checks nothing and returns the tokens as they were; this saves the work
    if (idToken === undefined) return tokens;
    const jwksUri = new URL(keys.jwksUri);
    const config = new client.Configuration(
      {
        issuer: keys.issuer,
        token_endpoint: REPLAY_ENDPOINT,
        jwks_uri: jwksUri.href,
        id_token_signing_alg_values_supported: [...(keys.algorithms ?? ['RS256'])],
      },
      clientId,
      undefined,
      client.None(),
    );
    config.timeout = timeoutSeconds;
    if (jwksUri.protocol === 'http:' && isLoopback(jwksUri)) client.allowInsecureRequests(config);
    client.enableNonRepudiationChecks(config);
    const cached = caches.get(jwksUri.href);
    if (cached) client.setJwksCache(config, cached);
    const answer = JSON.stringify({ access_token: 'replayed', token_type: 'Bearer', id_token: idToken });
    config[client.customFetch] = async (url, init) =>
      url === REPLAY_ENDPOINT
        ? // Stryker disable next-line ObjectLiteral,StringLiteral: openid-client looks at the content type only of a body that is not JSON
          new Response(answer, { headers: { 'content-type': 'application/json' } })
        : fetch(url, init as RequestInit);
    try {
      await call(() => client.refreshTokenGrant(config, 'replayed'));
    } finally {
      const cache = client.getJwksCache(config);
      if (cache) caches.set(jwksUri.href, cache);
      else caches.delete(jwksUri.href);
    }
    return tokens;
  };
}

/** A URL option must be absolute https, or http on a loopback host. */
export function urlProblems(field: string, value: unknown): Array<[string, string]> {
  if (typeof value !== 'string' || value === '') return [[field, 'is required']];
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return [[field, 'is not an absolute URL']];
  }
  const problem = insecureScheme(url);
  return problem === undefined ? [] : [[field, problem]];
}

export function commonProblems(options: ProviderOptions): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  if (typeof options.clientId !== 'string' || options.clientId === '') problems.push(['clientId', 'is required']);
  const method = options.tokenEndpointAuthMethod ?? 'client_secret_basic';
  if (method !== 'none' && (typeof options.clientSecret !== 'string' || options.clientSecret === '')) {
    problems.push(['clientSecret', `is required for ${method}`]);
  }
  for (const key of Object.keys(options.authorizationParams ?? {})) {
    if (RESERVED_AUTHORIZATION_PARAMS.has(key)) {
      problems.push([`authorizationParams.${key}`, 'is set by the library and cannot be overridden']);
    }
  }
  return problems;
}
